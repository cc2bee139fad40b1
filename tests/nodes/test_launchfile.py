"""Each class of launch-file mistake gives one clear error naming the file, node and field."""

import textwrap
from pathlib import Path

import pytest

from nodes.runtime.launchfile import LaunchError, load_plan, parse_overrides
from tests.conftest import run_launch

GOOD = """
description: toy loop
args:
  ticks: {default: 10}
  mode: {default: lockstep, choices: [lockstep, realtime]}
mode: $(arg mode)
nodes:
  - name: ticker
    module: nodes.demo.ticker
    required: true
    params: {ticks: $(arg ticks)}
  - name: echo
    module: nodes.demo.echo
"""


def write(tmp_path, text, name="stack.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_resolves_args_with_types(tmp_path):
    plan = load_plan(write(tmp_path, GOOD), {"ticks": 25})
    assert plan.node("ticker").params.ticks == 25
    assert plan.node("echo").inputs == {"ego": "/sim/ego"}


@pytest.mark.parametrize("mutation, expected", [
    (lambda t: t.replace("nodes:", "nodes: [\n"), "not valid YAML"),
    (lambda t: t.replace("nodes.demo.echo", "nodes.demo.nope"),
     "node 'echo': module: no module named 'nodes.demo.nope'"),
    (lambda t: t.replace("params: {ticks: $(arg ticks)}", "params: {tickz: 3}"),
     "node 'ticker': params.tickz: Object contains unknown field `tickz`"),
    (lambda t: t.replace("params: {ticks: $(arg ticks)}", "params: {ticks: many}"),
     "node 'ticker': params.ticks: Expected `int`, got `str`"),
    (lambda t: t.replace("name: echo", "name: ticker"), "node 'ticker': name: duplicate node name"),
    (lambda t: t.replace("required: true", "required: true\n    colour: red"),
     "node 'ticker': unknown key(s) ['colour']"),
    (lambda t: t.replace("$(arg ticks)", "$(arg tocks)"),
     "node 'ticker': .params.ticks: $(arg tocks) names no declared arg"),
    (lambda t: t + "    remap: {/sim/ego: /control/cmd}\n",
     "node 'echo': inputs.ego: subscribes to /control/cmd as EgoState, but node 'echo' publishes it as ControlCommand"),
    (lambda t: t + "    remap: {/control/cmd: /sim/episode}\n",
     "node 'echo': outputs.cmd: /sim/episode is already published by node 'ticker'"),
    (lambda t: t.replace("module: nodes.demo.echo", "module: nodes.demo.echo\n    remap: {/nope: /x}"),
     "node 'echo': remap./nope: '/nope' is not a topic of this node"),
    (lambda t: t.replace("mode: $(arg mode)", "mode: fast"), "mode: 'fast' is not one of"),
])
def test_each_mistake_names_file_node_and_field(tmp_path, mutation, expected):
    path = write(tmp_path, mutation(GOOD))
    with pytest.raises(LaunchError) as err:
        load_plan(path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value)


def test_unknown_and_mistyped_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(LaunchError, match=r"unknown arg\(s\) \['tick'\]; this file takes: \['mode', 'ticks'\]"):
        load_plan(path, {"tick": 3})
    with pytest.raises(LaunchError, match=r"args.mode: 'fast' is not one of"):
        load_plan(path, parse_overrides(["mode:=fast"]))
    with pytest.raises(LaunchError, match=r"args.ticks: 'ten' is a str, expected a int"):
        load_plan(path, parse_overrides(["ticks:=ten"]))
    with pytest.raises(ValueError, match="not of the form name:=value"):
        parse_overrides(["ticks=3"])


def test_missing_file_and_missing_include(tmp_path):
    with pytest.raises(LaunchError, match="no such launch file"):
        load_plan(tmp_path / "absent.yaml")
    path = write(tmp_path, GOOD + "include:\n  - {file: other.yaml}\n")
    with pytest.raises(LaunchError, match=r"include\[0\].file: .*no such launch file"):
        load_plan(path)


def test_include_brings_nodes_with_its_own_args(tmp_path):
    write(tmp_path, """
        args: {gain: {default: 0.5}}
        nodes:
          - {name: echo, module: nodes.demo.echo, params: {gain: $(arg gain)}}
        """, "child.yaml")
    path = write(tmp_path, """
        nodes:
          - {name: ticker, module: nodes.demo.ticker, required: true}
        include:
          - {file: child.yaml, args: {gain: 0.25}}
        """)
    plan = load_plan(path)
    assert plan.node("echo").params.gain == 0.25


def test_bad_file_starts_nothing_and_exits_2(workdir):
    bad = write(workdir, GOOD.replace("params: {ticks: $(arg ticks)}", "params: {ticks: 1.5}"))
    res = run_launch(str(bad), cwd=workdir)
    assert res.returncode == 2
    assert "node 'ticker': params.ticks: Expected `int`, got `float`" in res.stderr
    assert not (workdir / "runs").exists()


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "golden_stack.mcap"
SHIPPED = sorted((Path(__file__).resolve().parents[2] / "launch").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_launch_file_plans_with_its_defaults(path):
    # replay.yaml has no sensible default recording: it must be given one
    overrides = {"file": str(GOLDEN)} if path.name == "replay.yaml" else None
    plan = load_plan(path, overrides)
    assert plan.nodes, f"{path.name} plans no node"
    assert all(node.name for node in plan.nodes)


def test_a_missing_planner_model_is_a_launch_error_naming_node_and_field():
    with pytest.raises(LaunchError, match=r"full_stack\.yaml: node 'planning': params: model_path: no planner model"):
        load_plan("full_stack.yaml", {"planner_model": "models/nowhere.zip"})
    assert load_plan("full_stack.yaml", {"planner_model": "models/planner_dqn_off.zip"}).node("planning")
