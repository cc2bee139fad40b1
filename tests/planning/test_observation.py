"""The observation builder equals highway-env's own KinematicObservation on the vehicles in view."""

from __future__ import annotations

import gymnasium as gym
import highway_env  # noqa: F401  (registers the envs)
import numpy as np
import pytest

from msgs import EgoState, Object
from nodes.planning.observation import FEATURES, ObservationConfig, build_observation
from sim.view import DEFAULT_VIEW


def _ego_state(env) -> EgoState:
    v = env.unwrapped.vehicle
    lane = v.lane_index[2]
    return EgoState(
        x=float(v.position[0]), y=float(v.position[1]), heading=float(v.heading), speed=float(v.speed),
        vx=float(v.velocity[0]), vy=float(v.velocity[1]), lane_index=lane,
        lateral_offset=float(v.position[1] - 4.0 * lane), lanes_count=4,
    )


def _objects(env) -> list[Object]:
    ego = env.unwrapped.vehicle
    out = []
    for i, v in enumerate(env.unwrapped.road.vehicles):
        if v is ego:
            continue
        dx, dy = (v.position - ego.position).tolist()
        dvx, dvy = (v.velocity - ego.velocity).tolist()
        out.append(Object(id=i, x=dx, y=dy, vx=dvx, vy=dvy, length=v.LENGTH, width=v.WIDTH,
                          in_view=DEFAULT_VIEW.fully_in_view(dx, dy, v.LENGTH, v.WIDTH)))
    return out


def _reference(env, objects: list[Object]) -> np.ndarray:
    """highway-env's observation on a road that holds only the ego and the vehicles in view."""
    road = env.unwrapped.road
    ego = env.unwrapped.vehicle
    others = [v for v in road.vehicles if v is not ego]
    in_view = [v for v, o in zip(others, objects, strict=True) if o.in_view]
    all_vehicles = road.vehicles
    road.vehicles = [v for v in all_vehicles if v is ego or any(v is w for w in in_view)]
    try:
        return env.unwrapped.observation_type.observe()
    finally:
        road.vehicles = all_vehicles


@pytest.mark.parametrize("see_behind,count", [(True, 7), (False, 5), (True, 15)])
def test_builder_matches_kinematic_observation_in_view(see_behind: bool, count: int) -> None:
    config = ObservationConfig(vehicles_count=count, see_behind=see_behind)
    env = gym.make("highway-v0", config={
        "observation": config.highway_env_config(), "action": {"type": "ContinuousAction"},
        "simulation_frequency": 15, "policy_frequency": 15, "vehicles_count": 25, "duration": 40,
    })
    rng = np.random.default_rng(0)
    checked_rows = 0
    out_of_view_seen = False
    for seed in (0, 1):
        env.reset(seed=seed)
        for tick in range(90):
            action = np.array([rng.uniform(-0.3, 0.6), rng.uniform(-0.02, 0.02)])
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
            if tick % 10:
                continue
            objects = _objects(env)
            out_of_view_seen |= not all(o.in_view for o in objects)
            ours = build_observation(objects, _ego_state(env), config)
            ref = _reference(env, objects)
            assert ours.shape == ref.shape == (count, len(FEATURES))
            assert ours.dtype == np.float32
            np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)
            checked_rows += int(ref[:, 0].sum())
    assert out_of_view_seen, "the test never exercised the field-of-view cut"
    assert checked_rows > 20


def test_out_of_view_and_far_objects_are_dropped() -> None:
    ego = EgoState(x=100.0, y=4.0, heading=0.0, speed=25.0, vx=25.0, vy=0.0, lane_index=1,
                   lateral_offset=0.0)
    near = Object(id=1, x=10.0, y=0.0, vx=-2.0, vy=0.0)
    hidden = Object(id=2, x=5.0, y=4.0, vx=0.0, vy=0.0, in_view=False)
    behind = Object(id=3, x=-20.0, y=4.0, vx=3.0, vy=0.0)
    obs = build_observation([hidden, behind, near], ego, ObservationConfig(vehicles_count=4))
    assert obs[:, 0].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert obs[1, 1] == pytest.approx(10.0 / 200.0)  # nearest first
    assert obs[2, 1] == pytest.approx(-20.0 / 200.0)
    assert obs[0, 1] == pytest.approx(0.5)  # ego keeps its world x (100 m of 200 m)
    no_behind = build_observation([hidden, behind, near], ego, ObservationConfig(4, see_behind=False))
    assert no_behind[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_config_rejects_empty_observation() -> None:
    with pytest.raises(ValueError, match="vehicles_count"):
        ObservationConfig(vehicles_count=0)
