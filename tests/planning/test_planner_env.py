"""The training env carries meta-actions out with our decision and control at the control rate."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from msgs import Action
from nodes.planning.env import PlannerEnv, PlannerEnvConfig
from nodes.planning.observation import build_observation
from sim.highway import SimParams


def _env(vehicles: int = 5, duration: float = 8.0, **kwargs) -> PlannerEnv:
    return PlannerEnv(PlannerEnvConfig(sim=SimParams(vehicles_count=vehicles, duration=duration), **kwargs))


def test_one_step_is_one_plan_period_and_observes_the_field_of_view() -> None:
    env = _env()
    obs, info = env.reset(seed=3)
    assert info["seed"] == 3 and env.sim.tick == 0
    obs, reward, terminated, truncated, info = env.step(Action.IDLE)
    assert env.sim.tick == 15
    assert 0.0 <= reward <= 1.0 and not terminated and not truncated
    assert reward == pytest.approx(env.stats.reward_sum / 15)
    header = env.sim.header()
    in_view = [o for o in env.sim.objects_gt(header).objects if o.in_view]
    np.testing.assert_array_equal(obs, build_observation(in_view, env.sim.ego_state(header)))
    assert env.observation_space.contains(obs)


def test_meta_actions_move_the_ego_through_our_decision_and_control() -> None:
    env = _env(vehicles=0, duration=12.0)
    env.reset(seed=1)
    start = env.sim.ego_state(env.sim.header())
    side = Action.LANE_RIGHT if start.lane_index < start.lanes_count - 1 else Action.LANE_LEFT
    for action in (side, Action.FASTER, Action.FASTER, Action.IDLE, Action.IDLE, Action.IDLE):
        env.step(action)
    ego = env.sim.ego_state(env.sim.header())
    assert ego.lane_index == start.lane_index + (1 if side == Action.LANE_RIGHT else -1)
    assert abs(ego.lateral_offset) < 0.3
    assert ego.speed == pytest.approx(30.0, abs=1.0)  # two FASTER steps from 25 m/s: the top set-point
    assert env.stats.lane_changes == 1 and env.stats.overridden_steps == 0


def test_same_seed_same_episode_and_the_time_limit_truncates() -> None:
    runs = []
    for _ in range(2):
        env = _env(duration=4.0)
        env.reset(seed=7)
        rewards, done = [], False
        while not done:
            obs, reward, terminated, truncated, info = env.step(Action.FASTER)
            rewards.append(reward)
            done = terminated or truncated
        runs.append((rewards, obs.tobytes(), truncated, info["end_reason"]))
    assert runs[0] == runs[1]
    assert runs[0][2] and runs[0][3] == "time_limit" and len(runs[0][0]) == 4


@pytest.mark.filterwarnings("ignore:Your observation  has an unconventional shape")
def test_overrides_switch_and_gymnasium_api() -> None:
    assert _env().decision.params.overrides is False
    env = _env(overrides=True)
    assert env.decision.params.overrides is True
    check_env(env, warn=True, skip_render_check=True)
    with pytest.raises(ValueError, match="plan_period_ticks"):
        PlannerEnvConfig(plan_period_ticks=0)


def test_drive_reward_is_the_speed_term_on_an_empty_road() -> None:
    env = _env(vehicles=0, duration=12.0, reward="drive", overrides=True)
    env.reset(seed=1)
    for _ in range(4):  # settle at the top set-point, 30 m/s
        env.step(Action.FASTER)
    _, reward, terminated, _, info = env.step(Action.IDLE)
    assert not terminated and not info["intervened"]
    assert reward == pytest.approx(1.0, abs=0.02)  # 30 m/s maps to 1; nothing to charge
    env.reset(seed=1)
    env.step(Action.SLOWER)
    env.step(Action.SLOWER)
    for _ in range(4):
        _, reward, *_ = env.step(Action.IDLE)
    assert reward == pytest.approx(0.0, abs=0.02)  # 20 m/s maps to 0


def test_drive_reward_charges_a_collision_and_the_share_switches_interventions() -> None:
    """A lane change into a car alongside: with interventions off it is made and crashes, costing the
    collision penalty; with them on it is refused and the step is charged the intervention penalty."""
    from highway_env.vehicle.kinematics import Vehicle

    outcome = {}
    for share in (0.0, 1.0):
        env = _env(vehicles=0, duration=10.0, reward="drive", overrides=True, interventions_share=share,
                   collision_penalty=5.0, intervention_penalty=0.25)
        env.reset(seed=1)
        assert env.stats.interventions is (share == 1.0)
        ego = env.sim.unwrapped.vehicle
        side = -1 if ego.lane_index[2] > 0 else 1
        road = env.sim.unwrapped.road
        road.vehicles.append(Vehicle(road, ego.position + np.array([-2.0, 4.0 * side]), 0.0, ego.speed))
        action, intervened = Action.LANE_LEFT if side < 0 else Action.LANE_RIGHT, False
        for _ in range(3):  # the lane change is asked for once, then the plan is held
            _, reward, terminated, _, info = env.step(action)
            intervened |= info["intervened"]
            action = Action.IDLE
            if terminated:
                break
        outcome[share] = (reward, terminated, intervened, info["end_reason"])
    reward, terminated, intervened, end = outcome[0.0]
    assert terminated and end == "collision" and not intervened and -5.0 <= reward <= -4.0
    reward, terminated, intervened, end = outcome[1.0]
    assert not terminated and intervened and end is None and -0.25 <= reward <= 0.75


def test_the_env_config_refuses_bad_rewards_and_shares() -> None:
    with pytest.raises(ValueError, match="reward must be one of highway, drive"):
        PlannerEnvConfig(reward="fast")
    with pytest.raises(ValueError, match="interventions_share must be in"):
        PlannerEnvConfig(interventions_share=1.5)


def test_drive_reward_charges_each_lane_crossed_into() -> None:
    """The same episode with and without a lane-change penalty: the returns differ by the penalty times the
    lanes the ego crossed into, and only in the step the crossing happened."""
    per_step = {}
    for penalty in (0.0, 0.5):
        env = _env(vehicles=0, duration=6.0, reward="drive", lane_change_penalty=penalty)
        env.reset(seed=1)
        ego = env.sim.unwrapped.vehicle
        action = Action.LANE_LEFT if ego.lane_index[2] > 0 else Action.LANE_RIGHT
        rewards = []
        for _ in range(4):
            _, reward, _, _, _ = env.step(action)
            rewards.append(reward)
            action = Action.IDLE
        per_step[penalty] = (rewards, env.stats.lane_changes)
    (free, changes), (charged, changes_again) = per_step[0.0], per_step[0.5]
    assert changes == changes_again == 1
    differences = [a - b for a, b in zip(free, charged, strict=True)]
    assert sorted(differences) == pytest.approx([0.0, 0.0, 0.0, 0.5])
