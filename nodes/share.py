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
