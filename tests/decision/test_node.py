"""DecisionNode: ports, params, lockstep and real-time inputs, episodes."""

from __future__ import annotations

import pytest

from msgs import TOPICS, Action, DrivingTarget, EgoState, Header, Mode, Object, ObjectArray, Plan
from nodes.decision.node import NODE, DecisionNode
from nodes.runtime.node import make_params


def header(tick: int, episode: int = 0) -> Header:
    return Header(episode=episode, tick=tick, stamp_ns=tick * 1_000_000_000 // 15, frame_id="world")


def ego(tick: int, episode: int = 0, lane: int = 1) -> EgoState:
    return EgoState(header=header(tick, episode), x=25.0 * tick / 15, y=4.0 * lane, heading=0.0, speed=25.0,
                    vx=25.0, vy=0.0, lane_index=lane, lateral_offset=0.0)


def objects(tick: int, episode: int = 0, *objs: Object) -> ObjectArray:
    return ObjectArray(header=header(tick, episode), objects=list(objs))


def plan(tick: int, action: Action = Action.IDLE, episode: int = 0) -> Plan:
    return Plan(header=header(tick, episode), action=int(action), replanned=tick % 15 == 0,
                plan_tick=tick - tick % 15)


def node(**logic) -> DecisionNode:
    return DecisionNode(make_params(DecisionNode, {"logic": logic} if logic else {}))


def test_ports_are_registered_topics_of_the_right_types():
    assert NODE is DecisionNode and DecisionNode.name == "decision" and DecisionNode.trigger == "ego"
    assert DecisionNode.inputs == {
        "plan": "/planning/plan", "objects": "/perception/objects", "ego": "/sim/ego",
    }
    assert DecisionNode.outputs == {"target": "/decision/target"}
    assert TOPICS["/decision/target"].type is DrivingTarget
    assert TOPICS["/planning/plan"].type is Plan and TOPICS["/perception/objects"].type is ObjectArray


def test_params_reject_an_unknown_key_naming_the_node():
    with pytest.raises(ValueError, match="DecisionNode params.*time_headway_s"):
        make_params(DecisionNode, {"logic": {"time_headway_s": 1.0}})
    assert make_params(DecisionNode, {"logic": {"time_headway": 1.5}}).logic.time_headway == 1.5


def test_lockstep_one_target_per_tick_with_the_ego_header():
    n = node()
    for tick in range(20):
        action = Action.LANE_LEFT if tick >= 15 else Action.IDLE
        out = n.step({"plan": plan(tick, action), "objects": objects(tick), "ego": ego(tick)})
        assert len(out) == 1 and out[0][0] == "target"
        target = out[0][1]
        assert target.header == ego(tick).header and target.mode == Mode.NOMINAL
    assert target.target_lane == 0 and target.plan_action == Action.LANE_LEFT
    assert n.counters()["ticks"] == 20


def test_real_time_missing_inputs_age_until_minimal_risk_and_recover():
    n = node()
    modes = []
    for tick in range(12):
        fresh = tick < 3 or tick >= 10
        inputs = {"plan": plan(tick) if fresh else None, "objects": objects(tick) if fresh else None,
                  "ego": ego(tick)}
        modes.append(n.step(inputs)[0][1].mode)
    # last inputs at tick 2: stale from tick 6 (4 ticks old) until they return at tick 10
    assert modes == [Mode.NOMINAL] * 6 + [Mode.MINIMAL_RISK] * 4 + [Mode.NOMINAL] * 2


def test_real_time_inputs_one_tick_late_are_fresh():
    n = node()
    n.step({"plan": None, "objects": None, "ego": ego(0)})
    for tick in range(1, 10):
        out = n.step({"plan": plan(tick - 1), "objects": objects(tick - 1), "ego": ego(tick)})
        assert out[0][1].mode == Mode.NOMINAL


def test_a_new_episode_resets_and_late_messages_of_the_last_are_dropped():
    n = node()
    for tick in range(16):
        n.step({"plan": plan(tick, Action.LANE_LEFT), "objects": objects(tick), "ego": ego(tick)})
    out = n.step({"plan": plan(16), "objects": objects(16), "ego": ego(0, episode=1, lane=2)})[0][1]
    assert out.target_lane == 2 and out.mode == Mode.MINIMAL_RISK  # nothing of episode 1 received yet
    assert n.counters()["foreign_episode"] == 2
    out = n.step({"plan": plan(1, episode=1), "objects": objects(1, 1), "ego": ego(1, episode=1, lane=2)})
    assert out[0][1].mode == Mode.NOMINAL


def test_an_invalid_action_is_counted_not_raised():
    n = node()
    bad = Plan(header=header(0), action=42, replanned=True)
    out = n.step({"plan": bad, "objects": objects(0), "ego": ego(0)})
    assert out[0][1].mode == Mode.MINIMAL_RISK and n.counters()["invalid_plans"] == 1


def test_no_ego_no_output():
    assert node().step({"plan": plan(0), "objects": objects(0), "ego": None}) == []


def test_overrides_reach_the_logic():
    close = Object(id=3, x=12.0, y=0.0, vx=-8.0, vy=0.0)
    on = node().step({"plan": plan(0), "objects": objects(0, 0, close), "ego": ego(0)})[0][1]
    off = node(overrides=False).step({"plan": plan(0), "objects": objects(0, 0, close), "ego": ego(0)})[0][1]
    assert on.mode == Mode.EMERGENCY and on.max_decel > 0
    assert off.mode == Mode.NOMINAL and off.target_speed == 25.0
