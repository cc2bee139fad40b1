"""The planning node: replans on schedule, republishes the held plan every tick, fails clearly."""

from __future__ import annotations

import numpy as np
import pytest

from msgs import Action, EgoState, ObjectArray, Plan
from nodes.planning.node import PlanningNode
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.policy import DEFAULT_MODEL, DQNPolicy
from nodes.runtime.node import make_params
from sim.highway import SimParams
from tests.planning.ticks import gt_ticks


def _ticks(count: int, seed: int = 2) -> list[tuple[EgoState, ObjectArray]]:
    return gt_ticks(count, seed, vehicles=10, duration=10.0, acceleration=0.1)


@pytest.mark.parametrize("model", [DEFAULT_MODEL, "models/planner_dqn_off.zip"])
def test_shipped_model_loads_and_acts(model: str) -> None:
    policy = DQNPolicy(model)
    config = ObservationConfig.for_shape(policy.observation_shape)
    assert config.shape == policy.observation_shape
    ego, objects = _ticks(1)[0]
    obs = build_observation(objects.objects, ego, config)
    action, q = policy.act(obs)
    assert action in {a.value for a in Action}
    assert len(q) == len(Action) and np.all(np.isfinite(q)) and action == int(np.argmax(q))


def test_replans_on_schedule_and_republishes_the_held_plan_every_tick() -> None:
    node = PlanningNode(make_params(PlanningNode, {"plan_rate_hz": 1.0}))
    node.reset(0)
    plans: list[Plan] = []
    for ego, objects in _ticks(31):
        out = node.step({"ego": ego, "objects": objects})
        assert len(out) == 1 and out[0][0] == "plan"
        plan = out[0][1]
        assert plan.header == ego.header  # answers the tick it was given
        plans.append(plan)
    assert [p.header.tick for p in plans if p.replanned] == [0, 15, 30]
    for p in plans:
        held = plans[p.plan_tick]
        assert p.plan_tick == p.header.tick - p.header.tick % 15
        assert (p.action, p.q_values) == (held.action, held.q_values)
        assert len(p.q_values) == len(Action) and p.action == int(np.argmax(p.q_values))
    assert node.counters()["replans"] == 3


def test_a_faster_plan_rate_and_a_new_episode_replan() -> None:
    node = PlanningNode(make_params(PlanningNode, {"policy": "idle", "plan_rate_hz": 5.0}))
    ticks = _ticks(7)
    replanned = [node.step({"ego": e, "objects": o})[0][1].replanned for e, o in ticks]
    assert replanned == [True, False, False, True, False, False, True]
    node.reset(1)
    assert node.step({"ego": ticks[4][0], "objects": ticks[4][1]})[0][1].replanned  # no held plan
    idle = node.step({"ego": ticks[5][0], "objects": None})[0][1]
    assert idle.action == Action.IDLE and idle.q_values == [] and not idle.replanned


def test_missing_model_and_bad_params_fail_clearly(tmp_path) -> None:
    missing = tmp_path / "nowhere.zip"
    with pytest.raises(ValueError, match=r"nowhere\.zip.*drivestack train planner"):  # the node's check, first
        PlanningNode(make_params(PlanningNode, {"model_path": str(missing)}))
    with pytest.raises(ValueError, match="whole number"):
        PlanningNode(make_params(PlanningNode, {"policy": "idle", "plan_rate_hz": 4.0}))
    with pytest.raises(ValueError, match="policy"):
        PlanningNode(make_params(PlanningNode, {"policy": "random"}))
    with pytest.raises(ValueError, match="PlanningNode"):
        make_params(PlanningNode, {"plan_rate": 1.0})


def test_the_model_shape_picks_the_observation(tmp_path) -> None:
    """A model trained on the "lanes" observation gets it in the node, the Kinematics one otherwise."""
    from stable_baselines3 import DQN

    from nodes.planning.env import PlannerEnv, PlannerEnvConfig

    env = PlannerEnv(PlannerEnvConfig(sim=SimParams(vehicles_count=3, duration=4.0),
                                      observation=ObservationConfig(kind="lanes")))
    path = tmp_path / "lanes.zip"
    DQN("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, device="cpu").save(path)
    env.close()
    node = PlanningNode(make_params(PlanningNode, {"model_path": str(path), "backend": "torch"}))  # not exported
    assert node.observation == ObservationConfig(kind="lanes")
    ego, objects = _ticks(1)[0]
    plan = node.step({"ego": ego, "objects": objects})[0][1]
    assert plan.replanned and len(plan.q_values) == len(Action)
    kinematics = PlanningNode(make_params(PlanningNode, {"model_path": "models/planner_dqn_off.zip"}))
    assert kinematics.observation == ObservationConfig()  # the ablation sees the 7 nearest vehicles
