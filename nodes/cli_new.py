"""`drivestack new node NAME`: scaffold a node of your own, its launch file and its test (like `dora new`).

Writes NAME/NAME.py (a control node: /decision/target + /sim/ego -> /control/cmd, a P controller on speed and
lateral position with typed params), NAME/NAME.yaml (full_stack.yaml with its control node swapped for this one)
and NAME/test_NAME.py. Untouched, they run: `launch NAME/NAME.yaml` drives the stack with the new node, and
`python -m pytest NAME/test_NAME.py` passes. docs/writing-a-node.md walks through them.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")

NODE_PY = '''"""{name}: /decision/target + /sim/ego -> /control/cmd, a P controller on speed and on the lane centre.

A node is a class with typed Params, declared inputs and outputs (port -> topic) and a pure `step`; the
runtime gives it its process, its sockets and the lockstep schedule. Change `step` and the Params, keep the
shape. Run it in the stack: `launch {name}.yaml`; test it: `python -m pytest test_{name}.py`.
"""

from __future__ import annotations

import math
from typing import ClassVar

from msgs import ControlCommand, DrivingTarget, EgoState, Message
from nodes.runtime.node import Node, Outputs, Params

ACCEL_UNIT = 5.0  # [m/s^2] ControlCommand.acceleration 1.0 (highway-env's ContinuousAction)
STEER_UNIT = math.pi / 4  # [rad] ControlCommand.steering 1.0


class {cls}Params(Params, kw_only=True, forbid_unknown_fields=True):
    kp_speed: float = 0.8  # [1/s] acceleration per m/s of speed error
    accel_max: float = 2.0  # [m/s^2]
    decel_max: float = 4.0  # [m/s^2] (an emergency target may ask for more)
    kp_lateral: float = 0.4  # [1/s] heading wanted per metre off the lane centre, times speed
    heading_max: float = 0.12  # [rad] largest heading towards the lane centre
    kp_heading: float = 1.5  # steering [rad] per rad of heading error
    steering_max: float = 0.15  # [rad]


class {cls}Node(Node):
    name: ClassVar[str] = "{name}"
    Params: ClassVar[type[Params]] = {cls}Params
    inputs: ClassVar[dict[str, str]] = {{"target": "/decision/target", "ego": "/sim/ego"}}
    outputs: ClassVar[dict[str, str]] = {{"cmd": "/control/cmd"}}
    trigger: ClassVar[str | None] = "ego"  # real-time mode: run on each ego state

    @classmethod
    def check(cls, params: Params) -> None:
        """Param rules: run by `launch --check`, by every launch before anything starts, and at construction."""
        assert isinstance(params, {cls}Params)
        for name in ("kp_speed", "accel_max", "decel_max", "kp_lateral", "heading_max", "kp_heading",
                     "steering_max"):
            value = getattr(params, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: {{name}} must be > 0, got {{value}}")

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego, target = inputs.get("ego"), inputs.get("target")
        if not isinstance(ego, EgoState):
            return []
        if not isinstance(target, DrivingTarget):  # real-time mode, before the first target: hold the lane
            target = DrivingTarget(header=ego.header, target_lane=ego.lane_index, target_speed=ego.speed)
        p = self.params
        assert isinstance(p, {cls}Params)
        accel = min(max(p.kp_speed * (target.target_speed - ego.speed), -p.decel_max), p.accel_max)
        if target.max_decel > 0:  # an emergency stop asked by the decision layer
            accel = min(accel, -target.max_decel)
        error = target.target_lane * ego.lane_width - ego.y  # [m] to the target lane's centre (+: higher lanes)
        heading_ref = max(-p.heading_max, min(p.heading_max, p.kp_lateral * error / max(ego.speed, 1.0)))
        steering = max(-p.steering_max, min(p.steering_max, p.kp_heading * (heading_ref - ego.heading)))
        cmd = ControlCommand(header=ego.header, acceleration=max(-1.0, min(1.0, accel / ACCEL_UNIT)),
                             steering=steering / STEER_UNIT)
        return [("cmd", cmd)]


NODE = {cls}Node
'''

LAUNCH_YAML = '''# full_stack.yaml with its control node left out and {name} (./{name}.py) in its place. Every arg of
# full_stack.yaml is this file's too (launch {name}.yaml --show-args).
description: the full stack with {name} as its control node
include:
  - file: full_stack.yaml        # found in the installed package's launch files
    without: [control]           # leave out its control node: this file gives its own
nodes:
  - name: {name}
    module: {name}               # ./{name}.py, beside this file
    required: true
    params:
      kp_speed: 0.8
'''

TEST_PY = '''"""{name}: its logic in closed form, and its launch file checks out."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

from msgs import DrivingTarget, EgoState, Header  # noqa: E402
from nodes.runtime.node import make_params  # noqa: E402

from {name} import {cls}Node  # noqa: E402  # ./{name}.py


def ego(y: float = 4.0, speed: float = 20.0, heading: float = 0.0) -> EgoState:
    return EgoState(header=Header(tick=1), x=0.0, y=y, heading=heading, speed=speed, vx=speed, vy=0.0,
                    lane_index=round(y / 4.0), lateral_offset=y - 4.0 * round(y / 4.0))


def command(node: {cls}Node, target: DrivingTarget, state: EgoState):
    [(port, cmd)] = node.step({{"target": target, "ego": state}})
    assert port == "cmd" and cmd.header == state.header
    return cmd


def test_speed_error_gives_kp_speed_times_it_within_limits():
    node = {cls}Node(make_params({cls}Node, {{"kp_speed": 0.5}}))
    cmd = command(node, DrivingTarget(target_lane=1, target_speed=22.0), ego(speed=20.0))
    assert cmd.acceleration == pytest.approx(0.5 * 2.0 / 5.0)  # 1 m/s^2, normalised by 5 m/s^2
    cmd = command(node, DrivingTarget(target_lane=1, target_speed=0.0), ego(speed=20.0))
    assert cmd.acceleration == pytest.approx(-4.0 / 5.0)  # decel_max
    assert cmd.steering == pytest.approx(0.0)  # on the lane centre, heading along the road


def test_steers_towards_the_target_lane_and_brakes_on_an_emergency():
    node = {cls}Node(make_params({cls}Node, {{}}))
    assert command(node, DrivingTarget(target_lane=2, target_speed=20.0), ego()).steering > 0  # to higher y
    assert command(node, DrivingTarget(target_lane=0, target_speed=20.0), ego()).steering < 0
    cmd = command(node, DrivingTarget(target_lane=1, target_speed=30.0, max_decel=4.5), ego())
    assert cmd.acceleration == pytest.approx(-4.5 / 5.0)  # beyond decel_max (4 m/s^2) when asked


def test_bad_params_are_refused_and_the_launch_file_checks_out():
    with pytest.raises(ValueError, match="kp_speed must be > 0"):
        {cls}Node(make_params({cls}Node, {{"kp_speed": -1.0}}))
    res = subprocess.run([sys.executable, "-m", "nodes.launch", str(HERE / "{name}.yaml"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "{name}" in res.stdout and "control," not in res.stdout, res.stdout + res.stderr
'''


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def scaffold(name: str, parent: Path) -> list[Path]:
    """Write the node, its launch file and its test under parent/name/; ValueError says why not."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r}: a node name here is a Python module name: lower-case letters, digits and '_', "
                         "starting with a letter, at most 31 characters")
    if importlib.util.find_spec(name) is not None:
        raise ValueError(f"{name!r} is already an importable module here; choose another name")
    folder = parent / name
    files = {folder / f"{name}.py": NODE_PY, folder / f"{name}.yaml": LAUNCH_YAML,
             folder / f"test_{name}.py": TEST_PY}
    if existing := [str(p) for p in files if p.exists()]:
        raise ValueError(f"would overwrite {', '.join(existing)}")
    folder.mkdir(parents=True, exist_ok=True)
    for path, template in files.items():
        path.write_text(template.format(name=name, cls=class_name(name)))
    return list(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivestack new", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["node"], help="what to make")
    parser.add_argument("name", help="the node's name, also its module's (e.g. my_control)")
    parser.add_argument("--dir", type=Path, default=Path("."), help="where its folder goes (default: here)")
    args = parser.parse_args(argv)
    try:
        files = scaffold(args.name, args.dir)
    except ValueError as exc:
        print(f"drivestack new: error: {exc}", file=sys.stderr)
        return 2
    for path in files:
        print(f"wrote {path}")
    folder = files[0].parent
    print(f"next: launch {folder / (args.name + '.yaml')} episodes:=1    "
          f"python -m pytest {folder / ('test_' + args.name + '.py')}    (docs/writing-a-node.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
