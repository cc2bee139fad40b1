"""The observation builder equals highway-env's own KinematicObservation on the vehicles in view."""

from __future__ import annotations

import numpy as np
import pytest

from msgs import ControlCommand, EgoState, Object
from nodes.planning.observation import FEATURES, ObservationConfig, build_observation
from sim.highway import HighwaySim, SimParams


def _reference(sim: HighwaySim, objects: list[Object]) -> np.ndarray:
    """highway-env's observation on a road that holds only the ego and the vehicles in view."""
    env = sim.env
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
    sim = HighwaySim(SimParams(vehicles_count=25, render=False))
    sim.unwrapped.configure({"observation": config.highway_env_config()})
    rng = np.random.default_rng(0)
    checked_rows = 0
    out_of_view_seen = False
    for seed in (0, 1):
        sim.reset(seed, episode=seed)
        for tick in range(90):
            sim.step(ControlCommand(acceleration=rng.uniform(-0.3, 0.6), steering=rng.uniform(-0.02, 0.02)))
            if sim.end_reason is not None:
                break
            if tick % 10:
                continue
            header = sim.header()
            objects = sim.objects_gt(header).objects
            out_of_view_seen |= not all(o.in_view for o in objects)
            ours = build_observation(objects, sim.ego_state(header), config)
            ref = _reference(sim, objects)
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
