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


# --- the "lanes" observation -------------------------------------------------------------------------
LANES = ObservationConfig(kind="lanes")


def _ego(lane: int, speed: float = 25.0) -> EgoState:
    return EgoState(x=300.0, y=4.0 * lane, heading=0.0, speed=speed, vx=speed, vy=0.0, lane_index=lane,
                    lateral_offset=0.0)


def test_lanes_reads_leaders_and_follower_per_lane() -> None:
    ego = _ego(1)
    objects = [
        Object(id=1, x=25.0, y=0.0, vx=-3.0, vy=0.0),  # own lane, 20 m gap, 3 m/s slower
        Object(id=2, x=55.0, y=0.3, vx=1.0, vy=0.0),  # own lane (0.3 m off centre), second ahead
        Object(id=3, x=-15.0, y=-4.0, vx=4.0, vy=0.0),  # left lane, behind: 10 m gap, 4 m/s faster
        Object(id=4, x=-40.0, y=-4.0, vx=0.0, vy=0.0),  # left lane, further behind: not the follower
        Object(id=5, x=12.0, y=4.0, vx=0.0, vy=0.0, in_view=False),  # right lane, not seen
    ]
    obs = build_observation(objects, ego, LANES)
    assert obs.shape == (4, 7) and obs.dtype == np.float32
    ego_row, left, own, right = obs
    assert ego_row.tolist() == pytest.approx([1.0, 0.25, -1.0 / 3.0, 0.0, 0.0, -1.0, -1.0])
    assert own.tolist() == pytest.approx([1.0, -0.6, -0.3, 0.0, 0.1, 1.0, -1.0])  # gaps 20 m, 50 m; no follower
    assert left.tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, -2.0 / 3.0, 0.4])  # free ahead; follower 10 m
    assert right.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]  # the hidden vehicle is not there
    everything = build_observation(objects, ego, ObservationConfig(kind="lanes", only_in_view=False))
    assert everything[3, 1] == pytest.approx(-0.86)  # 7 m gap once the camera's cut is off


def test_lanes_marks_missing_lanes_blocked_and_clips() -> None:
    blocked = [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0]
    leftmost = build_observation([Object(id=1, x=400.0, y=0.0, vx=-30.0, vy=0.0)], _ego(0), LANES)
    assert leftmost[1].tolist() == blocked and leftmost[0, 5] == 1.0 and leftmost[0, 6] == -1.0
    assert leftmost[2, 1:3].tolist() == [1.0, -1.0]  # clipped: far beyond 100 m, far slower than 10 m/s
    rightmost = build_observation([], _ego(3), LANES)
    assert rightmost[3].tolist() == blocked and rightmost[0, 6] == 1.0
    assert np.all(np.abs(rightmost) <= 1.0)


def test_for_shape_tells_the_kind_and_refuses_unknown_shapes() -> None:
    assert ObservationConfig.for_shape((4, 7)) == LANES
    assert ObservationConfig.for_shape((9, 5), see_behind=False) == ObservationConfig(9, see_behind=False)
    with pytest.raises(ValueError, match="no planner observation has shape"):
        ObservationConfig.for_shape((4, 6))
    with pytest.raises(ValueError, match="kind"):
        ObservationConfig(kind="grid")
    with pytest.raises(ValueError, match="no counterpart"):
        LANES.highway_env_config()
