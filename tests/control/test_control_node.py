"""ControlNode called directly: header passthrough, per-episode reset, missing-target fallback."""

from __future__ import annotations

import pytest

from msgs import ControlCommand, DrivingTarget, EgoState, Header
from nodes.control.node import ControlNode
from nodes.runtime.node import make_params


def ego(tick: int = 0, episode: int = 0, **kw) -> EgoState:
    base = dict(x=0.0, y=4.0, heading=0.0, speed=25.0, vx=25.0, vy=0.0, lane_index=1, lateral_offset=0.0)
    return EgoState(header=Header(episode=episode, tick=tick, stamp_ns=0, frame_id="world"), **(base | kw))


def test_command_answers_the_ego_tick():
    node = ControlNode(make_params(ControlNode, {}))
    e = ego(tick=7, episode=2)
    [(port, cmd)] = node.step({"ego": e, "target": DrivingTarget(target_lane=1, target_speed=30.0)})
    assert port == "cmd" and isinstance(cmd, ControlCommand) and cmd.header == e.header
    assert cmd.acceleration > 0 and cmd.steering == 0.0


def test_missing_target_holds_the_lane_and_slows_gently(plant):
    node = ControlNode(make_params(ControlNode, {"missing_target_decel": 1.0}))
    p = plant(y=4.5, speed=25.0)  # half a metre off the centre of lane 1
    accels = []
    for _ in range(150):
        [(_, cmd)] = node.step({"ego": p.ego(), "target": None})
        p.apply(cmd)
        accels.append(cmd.acceleration * 5.0)
    assert node.counters()["missing_target"] == 150
    assert p.vehicle.position[1] == pytest.approx(4.0, abs=0.02)  # back on the centre of its lane
    assert 25.0 - 10 * 1.0 - 1.5 <= p.vehicle.speed <= 25.0 - 10 * 1.0 + 1.5  # about 1 m/s^2 for 10 s
    assert min(accels) >= -1.5 and max(accels) <= 0.0


def test_new_episode_resets_the_controller():
    node = ControlNode(make_params(ControlNode, {}))
    target = DrivingTarget(target_lane=1, target_speed=30.0)
    first = node.step({"ego": ego(), "target": target})[0][1]
    for k in range(1, 20):
        node.step({"ego": ego(tick=k), "target": target})
    again = node.step({"ego": ego(episode=1), "target": target})[0][1]
    assert (again.acceleration, again.steering) == (first.acceleration, first.steering)


def test_unknown_gain_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="kp_sped"):
        make_params(ControlNode, {"pid": {"kp_sped": 1.0}})
    with pytest.raises(ValueError, match="missing_target_decel"):
        ControlNode(make_params(ControlNode, {"missing_target_decel": 0.0}))
