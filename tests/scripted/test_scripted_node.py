"""ScriptedTargetNode: set-points in simulated time."""

from __future__ import annotations

import pytest

from msgs import EgoState, Header
from nodes.runtime.node import make_params
from nodes.scripted.node import ScriptedTargetNode


def ego(t: float, episode: int = 0, lane: int = 2, speed: float = 24.0) -> EgoState:
    header = Header(episode=episode, tick=round(t * 15), stamp_ns=round(t * 1e9), frame_id="world")
    return EgoState(header=header, x=0.0, y=lane * 4.0, heading=0.0, speed=speed, vx=speed, vy=0.0,
                    lane_index=lane, lateral_offset=0.0)


def targets(node: ScriptedTargetNode, times: list[float], **kw) -> list[tuple[int, float]]:
    out = []
    for t in times:
        [(port, msg)] = node.step({"ego": ego(t, **kw)})
        assert port == "target" and msg.header.stamp_ns == round(t * 1e9)
        out.append((msg.target_lane, msg.target_speed))
    return out


def test_setpoints_apply_from_their_time_and_negative_means_the_start():
    node = ScriptedTargetNode(make_params(ScriptedTargetNode, {"setpoints": [[1.0, 3, 30.0], [2.0, -1, -1]]}))
    got = targets(node, [0.0, 0.9, 1.0, 1.5, 2.0, 5.0])
    assert got == [(2, 24.0), (2, 24.0), (3, 30.0), (3, 30.0), (2, 24.0), (2, 24.0)]


def test_the_start_is_taken_again_in_each_episode():
    node = ScriptedTargetNode(make_params(ScriptedTargetNode, {}))
    assert targets(node, [0.0, 1.0]) == [(2, 24.0), (2, 24.0)]
    assert targets(node, [0.0], episode=1, lane=0, speed=20.0) == [(0, 20.0)]


@pytest.mark.parametrize("setpoints,match", [([[1.0, 2]], "setpoints\\[0\\]"),
                                             ([[2.0, 1, 20], [1.0, 1, 20]], "before"),
                                             ([[0.0, 1.5, 20]], "integer")])
def test_bad_setpoints_are_rejected(setpoints, match):
    with pytest.raises(ValueError, match=match):
        ScriptedTargetNode(make_params(ScriptedTargetNode, {"setpoints": setpoints}))
