"""The planning node with `policy: rules`: the rule planner on the node's own observation, at the plan rate."""

from __future__ import annotations

import pytest

from msgs import Action, EgoState, ObjectArray, Plan
from nodes.planning.node import PlanningNode
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.rules import RuleParams, RulePlanner
from nodes.runtime.node import make_params
from tests.planning.ticks import gt_ticks


def _ticks(count: int, seed: int = 3) -> list[tuple[EgoState, ObjectArray]]:
    return gt_ticks(count, seed, vehicles=15, duration=20.0, acceleration=0.2)


def test_rules_policy_replans_at_the_plan_rate_on_the_lanes_observation() -> None:
    params = {"policy": "rules", "plan_rate_hz": 3.0, "rules": {"change_gain": 4.0}}
    node = PlanningNode(make_params(PlanningNode, params))
    assert node.observation.kind == "lanes"
    reference = RulePlanner(RuleParams(change_gain=4.0), period=1.0 / 3.0)
    node.reset(0)
    plans: list[Plan] = []
    expected: list[int] = []
    for ego, objects in _ticks(46):
        [(port, plan)] = node.step({"ego": ego, "objects": objects})
        assert port == "plan" and plan.header == ego.header and plan.q_values == []
        plans.append(plan)
        if plan.replanned:
            obs = build_observation(objects.objects, ego, ObservationConfig(kind="lanes"))
            expected.append(int(reference.step(obs)))
    assert [p.header.tick for p in plans if p.replanned] == list(range(0, 46, 5))
    assert [p.action for p in plans if p.replanned] == expected
    assert all(p.action == plans[p.plan_tick].action for p in plans)  # held between replans
    assert {Action(a) for a in expected} != {Action.IDLE}  # it did decide something in 15 s of traffic


def test_a_new_episode_resets_the_rule_planner() -> None:
    node = PlanningNode(make_params(PlanningNode, {"policy": "rules"}))
    ticks = _ticks(31)
    node.reset(0)
    first = [node.step({"ego": e, "objects": o})[0][1].action for e, o in ticks]
    node.reset(1)
    again = [node.step({"ego": e, "objects": o})[0][1].action for e, o in ticks]
    assert first == again


def test_rules_params_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="horizon"):
        PlanningNode(make_params(PlanningNode, {"policy": "rules", "rules": {"horizon": -1.0}}))
    with pytest.raises(ValueError, match="horizn"):
        make_params(PlanningNode, {"policy": "rules", "rules": {"horizn": 5.0}})
    with pytest.raises(ValueError, match="'dqn', 'rules' or 'idle'"):
        PlanningNode(make_params(PlanningNode, {"policy": "rule"}))
