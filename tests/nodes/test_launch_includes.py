"""Includes pass args through: a baseline holds only its change, and every shipped file plans as it did when each
baseline re-declared full_stack.yaml's args (tests/data/launch_before/ holds those files as they were)."""

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from nodes.planning.seeds import BENCH_SEED_BASE
from nodes.runtime.launchfile import LAUNCH_DIR, LaunchError, LaunchPlan, launch_args, load_plan
from tests.conftest import ROOT, _env

BEFORE = sorted((Path(__file__).resolve().parents[1] / "data" / "launch_before").glob("*.yaml"))


def canonical(plan: LaunchPlan) -> dict[str, Any]:
    """Everything of a plan that decides what runs: nodes in order, their typed params, topics and flags."""
    return {"mode": plan.mode, "base_port": plan.base_port, "stall_timeout_s": plan.stall_timeout_s,
            "nodes": [(n.name, n.module, msgspec.to_builtins(n.params), n.inputs, n.outputs, n.required, n.respawn,
                       n.host) for n in plan.nodes]}


def _changed(decl: Any) -> Any:
    """A value of an arg other than its default (None when there is no obvious one)."""
    decl = decl if isinstance(decl, dict) else {"default": decl}
    default = decl.get("default")
    if "choices" in decl:
        return next(c for c in decl["choices"] if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 3 if default else 7600  # 7600: a valid base_port
    if isinstance(default, float):
        return default + 1.5
    return None


@pytest.mark.parametrize("before", BEFORE, ids=[p.name for p in BEFORE])
def test_each_file_plans_as_before_with_every_arg_it_took(before):
    declared = yaml.safe_load(before.read_text())["args"]
    # each arg changed on its own (gui needs a display; mode: see the test below)
    changed = [{name: v} for name, decl in declared.items()
               if name not in ("gui", "mode") and (v := _changed(decl)) is not None]
    assert len(changed) >= 6
    now = LAUNCH_DIR / before.name
    assert set(declared) <= set(launch_args(now)), "an arg the file took is gone"
    for given in [{}, *changed]:
        assert canonical(load_plan(now, given)) == canonical(load_plan(before, given)), given


@pytest.mark.parametrize("name", ["gt_perception.yaml", "idm_baseline.yaml", "no_safety.yaml",
                                  "no_interventions.yaml", "rules_planner.yaml"])
def test_a_baseline_holds_only_its_change_and_takes_every_arg_of_full_stack(name):
    data = yaml.safe_load((LAUNCH_DIR / name).read_text())
    assert set(data) == {"description", "include"} and len(data["include"]) == 1
    fixed = data["include"][0]["args"]
    assert 1 <= len(fixed) <= 2
    assert list(launch_args(name)) == [a for a in launch_args("full_stack.yaml") if a not in fixed]
    # an arg the baseline did not take before reaches its node now, and realtime is the whole launch's mode
    plan = load_plan(name, {"planner_backend": "torch", "mode": "realtime"})
    assert plan.node("planning").params.backend == "torch"
    assert plan.mode == "realtime" and plan.node("sim").params.mode == "realtime"


def test_the_seed_base_is_written_once():
    """full_stack.yaml's seed default is the evaluation range's base of nodes/planning/seeds.py, and no other
    launch file writes it (the baselines and the CARLA stack take full_stack.yaml's seed arg)."""
    assert launch_args("full_stack.yaml")["seed"]["default"] == BENCH_SEED_BASE
    others = [p.name for p in LAUNCH_DIR.glob("*.yaml") if p.name != "full_stack.yaml"]
    assert [n for n in others if str(BENCH_SEED_BASE) in (LAUNCH_DIR / n).read_text()] == []
    for name in ("carla_stack.yaml", "gt_perception.yaml", "rules_planner.yaml"):
        assert launch_args(name)["seed"] == launch_args("full_stack.yaml")["seed"]
    carla = launch_args("carla_stack.yaml")
    assert "road" not in carla and "ego_driver" not in carla  # used by full_stack's sim only, which it leaves out


CHILD = """
args:
  gain: {default: 0.5, doc: the echo's gain}
  ticks: {default: 10, doc: ticks per episode}
  mode: {default: lockstep, choices: [lockstep, realtime]}
  unused: {default: 1}
  record: {default: false}
mode: $(arg mode)
nodes:
  - {name: ticker, module: nodes.demo.ticker, required: true, params: {ticks: $(arg ticks)}}
  - {name: echo, module: nodes.demo.echo, params: {gain: $(arg gain)}}
  - {name: recorder, module: nodes.recorder.node, if: $(arg record)}
"""


def write(folder: Path, text: str, name: str) -> Path:
    (folder / name).write_text(textwrap.dedent(text))
    return folder / name


def test_args_pass_through_and_a_default_can_change(tmp_path):
    write(tmp_path, CHILD, "child.yaml")
    parent = write(tmp_path, "include: child.yaml\nargs:\n  gain: {default: 0.25}\n", "parent.yaml")
    args = launch_args(parent)
    assert list(args) == ["gain", "ticks", "mode", "record"]  # `unused` feeds no node: it is not passed
    assert args["gain"] == {"default": 0.25, "doc": "the echo's gain"}  # the doc is inherited
    plan = load_plan(parent, {"ticks": 7, "mode": "realtime"})
    assert plan.node("ticker").params.ticks == 7 and plan.node("echo").params.gain == 0.25
    assert plan.mode == "realtime"
    with pytest.raises(LaunchError, match=r"parent\.yaml: unknown arg\(s\) \['unused'\]"):
        load_plan(parent, {"unused": 2})
    fixed = write(tmp_path, "include: [{file: child.yaml, args: {gain: 0.75}}]\n", "fixed.yaml")
    assert "gain" not in launch_args(fixed) and load_plan(fixed).node("echo").params.gain == 0.75
    bad_choice = write(tmp_path, "include: child.yaml\nargs:\n  mode: {default: fast}\n", "bad_choice.yaml")
    with pytest.raises(LaunchError, match=r"bad_choice\.yaml: args\.mode: 'fast' is not one of"):
        load_plan(bad_choice)


def test_per_node_params_and_a_node_in_the_place_of_a_left_out_one(tmp_path):
    write(tmp_path, CHILD, "child.yaml")
    parent = write(tmp_path, """
        args: {g: {default: 0.125}}
        include:
          - {file: child.yaml, without: [ticker], params: {echo: {gain: $(arg g)}}}
        nodes:
          - {name: ticker, module: nodes.demo.ticker, required: true, params: {ticks: 3}}
        """, "parent.yaml")
    plan = load_plan(parent, {"g": 0.5})
    assert [n.name for n in plan.nodes] == ["ticker", "echo"]  # in the left-out node's place
    assert plan.node("echo").params.gain == 0.5 and plan.node("ticker").params.ticks == 3
    assert "ticks" not in launch_args(parent)  # it fed only the left-out ticker


@pytest.mark.parametrize(("include", "expected"), [
    ("{file: child.yaml, params: {echoo: {gain: 1.0}}}",
     r"parent\.yaml: include\[0\]\.params\.echoo: names no node of child\.yaml.*did you mean 'echo'"),
    ("{file: child.yaml, without: [echo], params: {echo: {gain: 1.0}}}",
     r"parent\.yaml: include\[0\]\.params\.echo: names no node of child\.yaml \(it is left out by `without`\)"),
    ("{file: child.yaml, params: {echo: {gainz: 1.0}}}",
     r"parent\.yaml: node 'echo': include\[0\]\.params\.echo\.gainz: .*unknown field `gainz`"),
    ("{file: child.yaml, params: {echo: {gain: loud}}}",
     r"parent\.yaml: node 'echo': include\[0\]\.params\.echo\.gain: Expected `float`"),
    ("{file: child.yaml, args: {gian: 1.0}}",
     r"parent\.yaml: include\[0\]\.args: child\.yaml takes no arg\(s\) \['gian'\].*did you mean 'gain'"),
    ("{file: nowhere.yaml}", r"parent\.yaml: include\[0\]\.file: .*no such launch file"),
    ("{file: $(arg x)}", r"parent\.yaml: include\[0\]\.file: must be a launch file's name"),
    ("{file: child.yaml, without: [echoo]}", r"include\[0\]\.without: \['echoo'\] names no node of child\.yaml"),
])
def test_each_include_mistake_names_the_file_and_field(tmp_path, include, expected):
    write(tmp_path, CHILD, "child.yaml")
    parent = write(tmp_path, f"include:\n  - {include}\n", "parent.yaml")
    with pytest.raises(LaunchError, match=expected):
        load_plan(parent)


def test_an_include_cycle_is_an_error(tmp_path):
    write(tmp_path, "include: b.yaml\nnodes: [{name: ticker, module: nodes.demo.ticker}]\n", "a.yaml")
    write(tmp_path, "include: a.yaml\n", "b.yaml")
    with pytest.raises(LaunchError, match=r"a\.yaml: includes itself \(through .*a\.yaml -> .*b\.yaml\)"):
        load_plan(tmp_path / "a.yaml")
    with pytest.raises(LaunchError, match="includes itself"):
        launch_args(tmp_path / "a.yaml")


def test_show_args_and_check_on_a_baseline():
    res = subprocess.run([sys.executable, "-m", "nodes.launch", "rules_planner.yaml", "--show-args"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=_env(None))
    assert res.returncode == 0, res.stderr
    assert "planner_backend:=onnx" in res.stdout and "planner:=" not in res.stdout
    res = subprocess.run([sys.executable, "-m", "nodes.launch", "no_safety.yaml", "--check", "episodes:=2",
                          "road:=stock"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=_env(None))
    assert res.returncode == 0 and "OK, 6 nodes" in res.stdout, res.stdout + res.stderr
