"""The shipped planner as the stack runs it (the DQN on its default ONNX backend, behind decision's whole layer,
decision and control at 15 Hz from ground truth in the camera's view) over several highway-v0 episodes, against
the bounds that catch a broken planner. The README's figures themselves (100 held-out episodes: no collision,
23.2 m/s, 1.5 lane changes, interventions in 1.0% of plan periods) come from `drivestack evaluate` and
bench/planner.py; these episodes are the bench's development ones (BENCH_SEED_BASE), never the held-out range."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from nodes.planning.backends import make_policy
from nodes.planning.env import PlannerEnv, PlannerEnvConfig, evaluation_sim
from nodes.planning.observation import ObservationConfig
from nodes.planning.policy import DEFAULT_MODEL
from nodes.planning.seeds import BENCH_SEED_BASE

EPISODES = 3
DURATION_S = 20.0  # [s] half of highway-v0's 40 s: long enough for the planner to pass, change lanes and follow


@pytest.fixture(scope="module")
def episodes() -> list:
    policy = make_policy(DEFAULT_MODEL, "onnx")
    env = PlannerEnv(PlannerEnvConfig(sim=msgspec.structs.replace(evaluation_sim(), duration=DURATION_S),
                                      overrides=True, interventions_share=1.0,
                                      observation=ObservationConfig.for_shape(policy.observation_shape)))
    out = []
    for seed in range(BENCH_SEED_BASE, BENCH_SEED_BASE + EPISODES):
        obs, _ = env.reset(seed=seed)
        done, asked = False, []
        while not done:
            asked.append(int(policy.act(obs)[0]))
            obs, _, terminated, truncated, _ = env.step(asked[-1])
            done = terminated or truncated
        out.append((env.stats, asked))
    env.close()
    return out


@pytest.mark.slow
def test_no_collision_and_every_episode_driven_to_its_time_limit(episodes):
    assert [s.end_reason for s, _ in episodes] == ["time_limit"] * EPISODES


@pytest.mark.slow
def test_it_keeps_up_speed_changes_lanes_and_rarely_needs_an_intervention(episodes):
    speed = float(np.mean([s.mean_speed for s, _ in episodes]))
    # README: 23.2 m/s over 100 held-out 40 s episodes. On these three 20 s episodes the shipped DQN drives
    # 24.4 m/s, a planner that always asks SLOWER 20.1: 22 m/s lies between, 2.4 m/s below.
    assert 22.0 <= speed <= 30.0, speed
    # the planner acts on the scene: the DQN asks for four of the five meta-actions in these three episodes and
    # changes lanes once (1.7 times a 40 s episode on the model-selection episodes: it is charged for each
    # change); a planner that only holds its lane (always IDLE: 23.3 m/s here, which the speed bound lets pass)
    # asks for one and changes none
    asked = {action for _, actions in episodes for action in actions}
    assert len(asked) >= 3, asked
    assert sum(s.lane_changes for s, _ in episodes) >= 1
    plan_periods = sum(s.plan_steps for s, _ in episodes)
    # decision intervened in 1.0% of plan periods in the README (none in these three); a quarter would mean a
    # planner that keeps asking for what the layer must refuse
    assert sum(s.intervened_steps for s, _ in episodes) <= 0.25 * plan_periods
