"""A node of the user's own: in a folder outside the package, swapped into a stack by a launch file that includes
the stack's and leaves one node out; and `drivestack new node`, whose untouched output runs and passes its test."""

import subprocess
import sys
from pathlib import Path

import pytest

from nodes.runtime.launchfile import LaunchError, load_plan
from tests.conftest import ROOT, _env, run_launch

MY_ECHO = '''
from msgs import ControlCommand, EgoState
from nodes.runtime.node import Node, Params


class MyEchoParams(Params, kw_only=True, forbid_unknown_fields=True):
    accel: float = 0.25


class MyEcho(Node):
    inputs = {"ego": "/sim/ego"}
    outputs = {"cmd": "/control/cmd"}
    Params = MyEchoParams

    def step(self, inputs):
        ego = inputs["ego"]
        assert isinstance(ego, EgoState)
        print(f"my_echo tick {ego.header.tick}", flush=True)
        return [("cmd", ControlCommand(header=ego.header, acceleration=self.params.accel, steering=0.0))]


NODE = MyEcho
'''

MY_STACK = '''
args:
  ticks: {default: 30}
include:
  - {file: demo.yaml, args: {ticks: $(arg ticks)}, without: [echo]}
nodes:
  - {name: mine, module: my_echo, required: true, params: {accel: 0.5}}
'''


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_echo.py").write_text(MY_ECHO)
    (folder / "my_stack.yaml").write_text(MY_STACK)
    return folder


def test_an_include_can_leave_nodes_out_and_a_module_beside_the_file_is_found(tmp_path):
    folder = _user_folder(tmp_path)
    plan = load_plan(folder / "my_stack.yaml")
    assert [n.name for n in plan.nodes] == ["ticker", "mine"]
    assert plan.node("mine").import_path == str(folder) and plan.node("ticker").import_path is None
    (folder / "bad.yaml").write_text(MY_STACK.replace("without: [echo]", "without: [echoo]"))
    with pytest.raises(LaunchError, match=r"include\[0\].without: \['echoo'\] names no node of demo.yaml"):
        load_plan(folder / "bad.yaml")
    (folder / "bad2.yaml").write_text(MY_STACK.replace("without: [echo]", "exclude: [echo]"))
    with pytest.raises(LaunchError, match=r"include\[0\]: unknown key\(s\) \['exclude'\]"):
        load_plan(folder / "bad2.yaml")


@pytest.mark.slow
def test_the_user_node_runs_in_its_own_process_from_elsewhere(tmp_path):
    folder = _user_folder(tmp_path)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    res = run_launch(str(folder / "my_stack.yaml"), "ticks:=30", cwd=elsewhere)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ticker: 30 commands over 1 episode(s)" in res.stdout
    log = next((elsewhere / "runs").glob("*/logs/mine.log")).read_text()
    assert "my_echo tick 29" in log


def test_new_node_refuses_bad_names_and_overwriting(tmp_path):
    for name, why in (("json", "already an importable module"), ("My-Node", "Python module name")):
        res = subprocess.run([sys.executable, "-m", "nodes.cli", "new", "node", name, "--dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=60, env=_env(None), cwd=ROOT)
        assert res.returncode == 2 and why in res.stderr, res.stderr
    ok = [sys.executable, "-m", "nodes.cli", "new", "node", "my_control", "--dir", str(tmp_path)]
    assert subprocess.run(ok, capture_output=True, timeout=60, env=_env(None), cwd=ROOT).returncode == 0
    again = subprocess.run(ok, capture_output=True, text=True, timeout=60, env=_env(None), cwd=ROOT)
    assert again.returncode == 2 and "would overwrite" in again.stderr


@pytest.mark.slow
def test_a_scaffolded_node_untouched_passes_its_test_and_drives_the_stack(tmp_path):
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "new", "node", "my_control"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, env=_env(None))
    assert res.returncode == 0, res.stderr
    folder = tmp_path / "my_control"
    assert sorted(p.name for p in folder.iterdir()) == ["my_control.py", "my_control.yaml", "test_my_control.py"]
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env(None))
    assert test.returncode == 0 and "3 passed" in test.stdout, test.stdout + test.stderr
    run = run_launch(str(folder / "my_control.yaml"), "episodes:=1", "duration:=3", "vehicles:=5",
                     "perception:=gt", "record:=false", cwd=tmp_path, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "time_limit" in run.stdout  # the episode ran to its end, no collision
    runs = next((tmp_path / "runs").glob("*/logs"))
    assert (runs / "my_control.log").is_file() and not (runs / "control.log").exists()
