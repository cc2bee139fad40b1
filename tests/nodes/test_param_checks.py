"""Every node refuses at `launch --check` what it would refuse when built, with the same error.

For each node module of the tree (every module that assigns NODE), param values it refuses: `launch FILE --check`
must exit 2 naming the file, the node and the field, and building the node from the same params must raise the
same message. A test below fails when a node module is added without cases here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodes.launch import main as launch_main
from nodes.runtime.node import make_params
from nodes.runtime.spec import load_node_class
from nodes.share import MODELS_DIR
from tests.conftest import ROOT, _env

GOLDEN = ROOT / "tests" / "golden" / "golden_stack.mcap"


def _stale_export(tmp: Path, weights: str, export: str, name: str) -> Path:
    """A copy of shipped weights changed by one byte, with the shipped export beside it: an export of other
    weights, which the ONNX backends refuse."""
    src = MODELS_DIR / weights
    changed = tmp / (name + src.suffix)
    changed.write_bytes(src.read_bytes() + b"\0")
    (tmp / (name + export.removeprefix(Path(weights).stem))).write_bytes((MODELS_DIR / export).read_bytes())
    return changed


# (module, params, the field (under params) the launch error names, words of the message); <tmp>, <stale_detector>,
# <stale_planner> and <a_file> stand for files the `places` fixture makes
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("nodes.sim.node", {"episodes": 0}, "episodes", "episodes must be >= 1"),
    ("nodes.sim.node", {"seed": -1}, "seed", "seed must be >= 0"),
    ("nodes.sim.node", {"mode": "fast"}, "mode", "mode must be one of"),
    ("nodes.sim.node", {"duration": 0.0}, "duration", "SimParams.duration must be > 0"),
    ("nodes.sim.node", {"env_id": "merge-v0"}, "env_id", "straight-road"),
    ("nodes.sim.carla_node", {"episodes": 0}, "episodes", "episodes must be >= 1"),
    ("nodes.sim.carla_node", {"port": 0}, "port", "CarlaParams.port"),
    ("nodes.sim.carla_node", {"camera_fov": 180.0}, "camera_fov", "CarlaParams.camera_fov must be in (0, 180)"),
    ("nodes.perception.node", {"model": "nowhere.pt"}, "model", "no perception model 'nowhere.pt'"),
    ("nodes.perception.node", {"model": "nowhere.pt", "backend": "torch"}, "model", "nowhere.pt"),
    ("nodes.perception.node", {"model": "<stale_detector>"}, "backend", "exported from other weights"),
    ("nodes.perception.node", {"gate_m": 0.0}, "gate_m", "gate_m must be > 0"),
    ("nodes.perception.node", {"score_threshold": 1.5}, "score_threshold", "score_threshold"),
    ("nodes.perception.node", {"backend": "tflite"}, "backend", "backend must be one of"),
    ("nodes.planning.node", {"model_path": "models/nowhere.zip"}, "model_path", "no planner model"),
    ("nodes.planning.node", {"model_path": "<stale_planner>"}, "backend", "exported from other weights"),
    ("nodes.planning.node", {"model_path": "<a_file>", "backend": "torch"}, "model_path",
     "not a stable-baselines3 model zip"),
    ("nodes.planning.node", {"plan_rate_hz": 4.0}, "control_rate_hz", "whole number"),
    ("nodes.planning.node", {"policy": "rules", "rules": {"horizon": 0.0}}, "rules.horizon",
     "RuleParams.horizon"),
    ("nodes.decision.node", {"logic": {"time_headway": 0.0}}, "logic.time_headway",
     "DecisionParams.time_headway must be > 0"),
    ("nodes.decision.node", {"logic": {"emergency_ttc": 2.0, "emergency_ttc_exit": 1.0}},
     "logic.emergency_ttc_exit", "emergency_ttc_exit"),
    ("nodes.control.node", {"pid": {"kp_speed": -1.0}}, "pid.kp_speed", "ControlParams.kp_speed"),
    ("nodes.control.node", {"pid": {"jerk_max": 9.0}}, "pid.jerk_max", "comfort bound"),
    ("nodes.control.node", {"missing_target_decel": 0.0}, "missing_target_decel", "missing_target_decel"),
    ("nodes.recorder.node", {"topics": ["/sim/egos"]}, "topics", "unknown topic"),
    ("nodes.recorder.node", {"path": "<tmp>"}, "path", "is a folder"),
    ("nodes.recorder.node", {"path": "<a_file>/run.mcap"}, "path", "is a file, not a folder"),
    ("nodes.replay.node", {"file": "<tmp>/none.mcap"}, "file", "no such recording"),
    ("nodes.replay.node", {"file": str(GOLDEN), "topics": ["/sim/ego"], "exclude": ["/sim/ego"]},
     "topics", "has no messages on the chosen topics"),
    ("nodes.replay.node", {"file": str(GOLDEN), "start_offset": float("nan")}, "start_offset", "seconds"),
    ("nodes.viewer.node", {"scale": 0}, "scale", "scale must be >= 1"),
    ("nodes.viewer.node", {"backend": "tk"}, "backend", "backend must be one of"),
    ("nodes.viewer.foxglove_node", {"host": "0.0.0.0"}, "host", "loopback only"),
    ("nodes.viewer.foxglove_node", {"camera": "bmp"}, "camera", "camera must be one of"),
    ("nodes.scripted.node", {"setpoints": [[1.0, 0.5, 20.0]]}, "setpoints", "is not an integer"),
    ("nodes.scripted.node", {"setpoints": [[2.0, 0, 20.0], [1.0, 0, 20.0]]}, "setpoints", "before"),
    ("nodes.demo.ticker", {"dt": 0.0}, "dt", "dt must be > 0"),
    ("nodes.demo.ticker", {"episodes": 0}, "episodes", "episodes must be >= 1"),
    ("nodes.demo.echo", {"gain": float("nan")}, "gain", "gain must be a finite number"),
]
IDS = [f"{module.removeprefix('nodes.')}:{','.join(params)}" for module, params, _, _ in CASES]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("param_checks")
    a_file = tmp / "a_file"
    a_file.write_text("")
    return {"<tmp>": str(tmp), "<a_file>": str(a_file),
            "<stale_detector>": str(_stale_export(tmp, "perception.pt", "perception.int8.onnx", "stale_detector")),
            "<stale_planner>": str(_stale_export(tmp, "planner_dqn.zip", "planner_dqn.onnx", "stale_planner"))}


def _placed(value: Any, places: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _placed(v, places) for k, v in value.items()}
    if isinstance(value, str):
        for key, path in places.items():
            value = value.replace(key, path)
    return value


def _node_modules() -> set[str]:
    """Every module under nodes/ that assigns NODE at its top level (what a launch file can start)."""
    found = set()
    for path in (ROOT / "nodes").rglob("*.py"):
        tree = ast.parse(path.read_bytes(), str(path))
        for stmt in tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
                stmt, ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == "NODE" for t in targets):
                found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def _launch_file(tmp: Path, module: str, params: dict[str, Any]) -> tuple[Path, str]:
    """A launch file that starts just this node with these params (real time: nothing waits for its inputs)."""
    name = module.removeprefix("nodes.").replace(".", "-")  # e.g. sim-carla_node
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"mode": "realtime", "nodes": [{"name": name, "module": module,
                                                                    "params": params}]}))
    return path, name


def _build_error(module: str, params: dict[str, Any]) -> str:
    """The message of the ValueError raised when the node is built from these params, without the prefix that
    `make_params` adds for type errors (the launch error names the node instead)."""
    node_cls = load_node_class(module)
    with pytest.raises(ValueError) as info:
        node_cls(make_params(node_cls, params))
    return str(info.value).removeprefix(f"{node_cls.__name__} params: ")


def test_every_node_module_has_refused_values_here():
    modules = _node_modules()
    assert len(modules) >= 13  # sim, CARLA sim, perception, planning, decision, control, recorder, replay, ...
    assert modules - {m for m, *_ in CASES} == set(), "a node module without refused values in CASES"


@pytest.mark.parametrize("module, params, field, words", CASES, ids=IDS)
def test_launch_check_refuses_what_the_node_refuses_when_built(module, params, field, words, places, tmp_path,
                                                                capsys):
    params = _placed(params, places)
    built = _build_error(module, params)
    assert words in built
    file, name = _launch_file(tmp_path, module, params)
    capsys.readouterr()
    assert launch_main([str(file), "--check"]) == 2
    err = capsys.readouterr().err
    # the field: in the error's place (params.FIELD: ...) or leading its message (params: FIELD: ...)
    assert re.search(rf"{re.escape(str(file))}: node '{name}': params(\.|: ){re.escape(field)}: ", err), err
    assert built in err, f"launch --check said:\n{err}\nbuilding the node said:\n{built}"


def test_the_shipped_defaults_are_accepted_by_every_check():
    """The refusals above are the params' own: each node's defaults pass its check."""
    for module in sorted(_node_modules() - {"nodes.replay.node", "nodes.viewer.node", "nodes.viewer.foxglove_node"}):
        node_cls = load_node_class(module)
        node_cls.check(make_params(node_cls, {}))


@pytest.mark.parametrize("override, field, message", [
    ("episodes:=0", "episodes", "sim params: episodes must be >= 1, got 0"),
    ("seed:=-1", "seed", "sim params: seed must be >= 0 (episode i uses seed + i), got -1"),
])
def test_the_launch_program_refuses_an_arg_that_the_sim_refuses(override, field, message):
    """The real program, with a `name:=value` arg that a node's param takes."""
    res = subprocess.run([sys.executable, "-m", "nodes.launch", "full_stack.yaml", "--check", override],
                         cwd=ROOT, env=_env(None), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"full_stack.yaml: node 'sim': params.{field}: {message}" in res.stderr
