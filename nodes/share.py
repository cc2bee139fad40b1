"""Where the files that are not code live: a source checkout's top-level folders, or their copies in a wheel.

A source checkout (or an editable install of one) has launch/, models/, bench/ and tests/golden/ beside the
packages. A built wheel installs the same folders under `nodes/_share/` (pyproject.toml maps them there, so the
wheel adds no top-level `launch` or `models` package: `launch` is ROS 2's launch library's import name).
`data_root() / "models" / "perception.pt"` is the same file either way.
"""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]
_INSTALLED = Path(__file__).resolve().parent / "_share"


def is_checkout() -> bool:
    """True when running from a source checkout (its pyproject.toml is beside the packages)."""
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "launch").is_dir()


def data_root() -> Path:
    """The folder holding launch/, models/, bench/ and tests/golden/."""
    return _CHECKOUT if is_checkout() else _INSTALLED


MODELS_DIR = data_root() / "models"  # the shipped weights (and their exports)


def golden_dir() -> Path:
    """The default folder of the golden recording (golden_stack.yaml, the stack it runs, and golden_stack.mcap,
    its reference recording) that `drivestack golden` checks: tests/golden/ of a checkout, or its copy in a wheel.
    The golden tools take the folder as a parameter (`drivestack golden --dir DIR`); this is only its default."""
    return data_root() / "tests" / "golden"


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A model param names no file. A ValueError too, so a node's `check` refuses it like any other param."""


def model_candidates(name: str | Path) -> list[Path]:
    """Where a model param is looked for, in order: an absolute path as given; a relative one from the working
    directory, then under models/, then from the folder that holds models/ (so `models/x.zip` works anywhere)."""
    p = Path(name).expanduser()
    if p.is_absolute():
        return [p]
    return list(dict.fromkeys([Path.cwd() / p, MODELS_DIR / p, data_root() / p]))


def resolve_model(name: str | Path) -> Path:
    """The file a model param (perception's `model`, planning's `model_path`) names: the first of
    `model_candidates` that is a file; when none is, the one under models/ (where a trained model is written)."""
    candidates = model_candidates(name)
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return found
    p = Path(name).expanduser()
    return p if p.is_absolute() else MODELS_DIR / p


def require_model(name: str | Path, what: str, make_command: str) -> Path:
    """`resolve_model(name)`, or ModelNotFoundError naming every place looked at and the command that makes one.

    :param name: the model param as given.
    :param what: whose model it is, for the message ("planner", "perception").
    :param make_command: the command that makes the file.
    """
    path = resolve_model(name)
    if not path.is_file():
        looked = ", ".join(str(c) for c in model_candidates(name))
        raise ModelNotFoundError(f"no {what} model {str(name)!r} (looked at {looked}); make it with: {make_command}")
    return path
