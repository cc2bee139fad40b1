"""In-process closed loop: SimNode -> ScriptedTargetNode -> ControlNode -> SimNode, no sockets."""

from __future__ import annotations

import numpy as np

from msgs import EgoState
from nodes.control.node import ControlNode
from nodes.runtime.node import make_params
from nodes.scripted.node import ScriptedTargetNode
from nodes.sim.node import SimNode

DT = 1.0 / 15.0


def drive(sim: SimNode, scripted: ScriptedTargetNode, control: ControlNode) -> list[EgoState]:
    egos: list[EgoState] = []
    out = sim.start()
    while not sim.finished:
        ego = next((m for p, m in out if p == "ego"), None)
        if ego is None:  # the command for the terminal tick: the sim answers with the end event
            out = sim.step({"cmd": None})
            continue
        egos.append(ego)
        target = scripted.step({"ego": ego})[0][1]
        cmd = control.step({"ego": ego, "target": target})[0][1]
        assert cmd.header == ego.header
        out = sim.step({"cmd": cmd})
    return egos


def test_keeps_its_lane_then_completes_a_commanded_lane_change():
    sim = SimNode(make_params(SimNode, {"vehicles_count": 0, "duration": 10.0, "episodes": 1, "seed": 4,
                                        "render": False}))
    start_lane = sim.start()[1][1].lane_index
    sim = SimNode(sim.params)
    new_lane = start_lane - 1 if start_lane > 0 else 1
    scripted = ScriptedTargetNode(make_params(ScriptedTargetNode, {"setpoints": [[3.0, new_lane, 27.0]]}))
    control = ControlNode(make_params(ControlNode, {}))
    egos = drive(sim, scripted, control)
    assert len(egos) == 151
    y = np.array([e.y for e in egos])
    before = [e for e in egos if e.header.stamp_ns < 3_000_000_000]
    assert all(e.lane_index == start_lane and abs(e.lateral_offset) < 0.05 for e in before)
    after = [e for e in egos if e.header.stamp_ns >= 6_500_000_000]  # 3.5 s after the command
    assert all(e.lane_index == new_lane and abs(e.lateral_offset) <= 0.2 for e in after)
    assert abs(egos[-1].lateral_offset) < 0.02 and abs(egos[-1].speed - 27.0) < 0.5
    overshoot = np.max((y - new_lane * 4.0) * np.sign(new_lane - start_lane))
    assert overshoot <= 0.15
    assert all(e.on_road and not e.crashed for e in egos)
    assert control.counters()["missing_target"] == 0


def test_the_loop_survives_traffic_for_a_few_seconds():
    sim = SimNode(make_params(SimNode, {"vehicles_count": 5, "duration": 4.0, "episodes": 2, "seed": 1}))
    scripted = ScriptedTargetNode(make_params(ScriptedTargetNode, {}))
    control = ControlNode(make_params(ControlNode, {}))
    egos = drive(sim, scripted, control)
    assert {e.header.episode for e in egos} == {0, 1}
    # holding the starting lane and speed: no drift
    assert max(abs(e.lateral_offset) for e in egos) < 1e-6
