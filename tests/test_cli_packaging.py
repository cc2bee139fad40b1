"""The built wheel: no top-level `launch` or `models` package, and the commands that need the repository's other
folders (launch files, models, bench/, the golden recording) work from it, away from the source checkout."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

SHARED = {"nodes._share.launch": "launch", "nodes._share.models": "models", "nodes._share.bench": "bench",
          "nodes._share.tests.golden": "tests/golden"}


def test_the_package_list_is_every_package_of_the_tree():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    in_tree = {".".join(p.parent.relative_to(ROOT).parts) for top in ("msgs", "sim", "nodes", "evaluation")
               for p in (ROOT / top).rglob("__init__.py")}
    listed = set(setuptools["packages"])
    assert listed - set(SHARED) == in_tree, "pyproject.toml [tool.setuptools] packages: add or remove these"
    assert setuptools["package-dir"] == SHARED


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out / "dist")], check=True, timeout=600, capture_output=True)
    wheel = next((out / "dist").glob("drivestack-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(out / "site"),
                    str(wheel)], check=True, timeout=600, capture_output=True)
    return out


def _run(installed: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A command against the installed wheel only: its folder first on the path, started outside the checkout."""
    cwd = installed / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(installed / "site"), "HOME": str(installed)}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_the_wheel_has_no_top_level_launch_or_models(installed):
    wheel = next((installed / "dist").glob("drivestack-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"msgs", "sim", "nodes", "evaluation", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for path in ("nodes/_share/launch/full_stack.yaml", "nodes/_share/models/planner_dqn.zip",
                 "nodes/_share/models/perception.pt", "nodes/_share/bench/loop.py",
                 "nodes/_share/tests/golden/golden_stack.mcap"):
        assert path in names, path
    # -S: without site-packages, where this checkout's own editable install maps `launch` to its folder
    res = _run(installed, "-S", "-c", "import nodes, nodes.share\nimport launch")
    assert "No module named 'launch'" in res.stderr, res.stdout + res.stderr


@pytest.mark.slow
def test_commands_work_from_the_wheel(installed):
    site = installed / "site"
    res = _run(installed, "-c", "import nodes.share as s; print(s.is_checkout(), s.data_root())")
    assert res.stdout.split() == ["False", str(site / "nodes" / "_share")], res.stdout + res.stderr
    res = _run(installed, "-m", "nodes.launch", "demo.yaml", "--check")
    assert res.returncode == 0 and str(site / "nodes" / "_share" / "launch" / "demo.yaml") in res.stdout, (
        res.stdout + res.stderr)
    res = _run(installed, "-m", "nodes.cli", "bench", "--help")
    assert "loop" in res.stdout and "transport" in res.stdout, res.stdout + res.stderr
    res = _run(installed, "-m", "nodes.cli", "bench", "transport", "--quick")
    assert res.returncode == 0 and "ours/raw p50" in res.stdout, res.stdout + res.stderr
    # the golden replays run from the wheel's copy of the recording, and judge as the checkout does
    res = _run(installed, "-m", "nodes.cli", "golden")
    here = subprocess.run([sys.executable, "-m", "nodes.cli", "golden"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in res.stderr, res.stderr
    for node in ("sim", "perception", "planning", "decision", "control"):
        assert any(line.startswith(node) for line in res.stdout.splitlines()), res.stdout
    assert (res.returncode, res.stdout) == (here.returncode, here.stdout)
    res = _run(installed, "-m", "nodes.cli", "golden", "--refresh")
    assert res.returncode == 2 and "source checkout" in res.stderr, res.stdout + res.stderr
