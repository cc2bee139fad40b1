"""The planner's observation builder pinned to the rules in its module docstring, each value worked out here:
the Kinematics normalisation (x / 200 m, y / (lane width * lanes), speeds / 80 m/s, clipped), the cut at
PERCEPTION_DISTANCE and behind the ego, the order by |dx|, and the "lanes" summary's mappings and defaults.
Fast: no highway-env (the comparison against highway-env itself is tests/planning/test_planner_observation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from msgs import EgoState, Object
from nodes.planning.observation import (
    FEATURES,
    LANE_FEATURES,
    ObservationConfig,
    build_observation,
    visible_neighbours,
)


def ego(x: float = 100.0, lane: int = 1, *, vx: float = 25.0, vy: float = 0.0, offset: float = 0.0,
        lanes: int = 4, width: float = 4.0) -> EgoState:
    return EgoState(x=x, y=lane * width + offset, heading=0.0, speed=vx, vx=vx, vy=vy, lane_index=lane,
                    lateral_offset=offset, lanes_count=lanes, lane_width=width)


def obj(i: int, x: float, y: float = 0.0, vx: float = 0.0, vy: float = 0.0, **kw) -> Object:
    return Object(id=i, x=x, y=y, vx=vx, vy=vy, **kw)


def test_kinematics_rows_in_closed_form():
    # y range = 4 m * 4 lanes = 16 m; x range 200 m; speeds 80 m/s
    e = ego(x=50.0, vx=20.0, vy=-0.8)
    obs = build_observation([obj(1, 30.0, -4.0, -6.0, 0.4)], e, ObservationConfig(vehicles_count=3))
    assert obs.dtype == np.float32 and obs.shape == (3, len(FEATURES))
    np.testing.assert_allclose(obs[0], [1.0, 50.0 / 200, 4.0 / 16, 20.0 / 80, -0.8 / 80], rtol=1e-6)
    np.testing.assert_allclose(obs[1], [1.0, 30.0 / 200, -4.0 / 16, -6.0 / 80, 0.4 / 80], rtol=1e-6)
    assert obs[2].tolist() == [0.0] * 5  # a missing row is zeros


def test_kinematics_values_are_clipped_to_one():
    e = ego(x=5000.0, vx=100.0, vy=-100.0, lanes=2)  # y range 8 m: the ego at y = 4 m reads 0.5
    obs = build_observation([obj(1, 150.0, 30.0, -120.0, 90.0)], e, ObservationConfig(vehicles_count=2))
    assert obs[0].tolist() == pytest.approx([1.0, 1.0, 0.5, 1.0, -1.0])
    assert obs[1].tolist() == pytest.approx([1.0, 0.75, 1.0, -1.0, 1.0])


def test_neighbours_are_cut_at_the_perception_distance_and_ordered_by_distance_along_the_road():
    objs = [obj(1, -30.0), obj(2, 120.0, 160.0), obj(3, 200.0), obj(4, 10.0, 8.0), obj(5, -10.0),
            obj(6, 199.9), obj(7, 10.0, -4.0)]
    # hypot(120, 160) = 200 and x = 200 are not < 200 m: dropped; ties in |dx| keep their order (stable)
    got = [o.id for o in visible_neighbours(objs, ObservationConfig(vehicles_count=10))]
    assert got == [4, 5, 7, 1, 6]
    assert [o.id for o in visible_neighbours(objs, ObservationConfig(vehicles_count=3))] == [4, 5]
    assert visible_neighbours(objs, ObservationConfig(vehicles_count=1)) == []


def test_see_behind_off_drops_vehicles_two_lengths_behind_or_more():
    objs = [obj(1, -10.0), obj(2, -9.99), obj(3, 5.0)]
    got = visible_neighbours(objs, ObservationConfig(vehicles_count=7, see_behind=False))
    assert [o.id for o in got] == [3, 2]  # -10 m (2 x 5 m) is not > -10 m


def test_only_in_view_off_keeps_the_hidden_vehicles():
    objs = [obj(1, 8.0, in_view=False), obj(2, 20.0)]
    assert [o.id for o in visible_neighbours(objs, ObservationConfig())] == [2]
    assert [o.id for o in visible_neighbours(objs, ObservationConfig(only_in_view=False))] == [1, 2]


LANES = ObservationConfig(kind="lanes")


def test_lanes_ego_row_in_closed_form():
    # speed [0, 40] m/s, lane [0, lanes - 1], offset [-width, width], vy [-5, 5] m/s, all onto [-1, 1]
    obs = build_observation([], ego(lane=2, vx=30.0, vy=1.0, offset=-1.0, lanes=5, width=3.5), LANES)
    assert obs.shape == (4, len(LANE_FEATURES))
    np.testing.assert_allclose(obs[0], [1.0, -1 + 30.0 * 2 / 40, -1 + 2 * 2 / 4, -1 + 2.5 * 2 / 7,
                                        -1 + 6.0 * 2 / 10, -1.0, -1.0], rtol=1e-6)


def test_lanes_on_a_one_lane_road():
    # lane index over [0, max(lanes - 1, 1)] = [0, 1]; leftmost and rightmost at once; both neighbours blocked
    obs = build_observation([], ego(lane=0, lanes=1), LANES)
    assert obs[0, 2] == -1.0 and obs[0, 5] == 1.0 and obs[0, 6] == 1.0
    blocked = [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0]
    assert obs[1].tolist() == blocked and obs[3].tolist() == blocked
    assert obs[2].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]  # the ego's lane: empty, not blocked


def test_lanes_gaps_and_speeds_in_closed_form():
    # ego 5 m long in lane 1 of 4 m lanes; gaps bumper to bumper: ahead over [0, 100] m, behind [0, 60] m;
    # relative speeds over [-10, 10] m/s. Vehicles are put in lanes by round((ego y + y) / width).
    e = ego(lane=1)
    objs = [obj(1, 30.0, 1.9, -2.0, length=7.0),  # own lane (4 + 1.9 = 5.9 -> lane 1): gap 30 - 6 = 24 m
            obj(2, 0.0, 0.0, 1.5),  # own lane, level with the ego: ahead (x >= 0), gap -5 m -> clipped
            obj(3, -20.0, -0.5, 3.0),  # own lane behind: gap 20 - 5 = 15 m
            obj(4, 15.0, 2.1, 0.5)]  # 6.1 m -> lane 2, ahead
    obs = build_observation(objs, e, LANES)
    own, right = obs[2], obs[3]
    np.testing.assert_allclose(own, [1.0, -1.0, 0.15, -1 + 24 * 2 / 100, -0.2, -1 + 15 * 2 / 60, 0.3], rtol=1e-6)
    np.testing.assert_allclose(right, [1.0, -1 + 10 * 2 / 100, 0.05, 1.0, 1.0, 1.0, -1.0], rtol=1e-6)


def test_shape_for_shape_and_the_highway_env_config():
    assert LANES.shape == (4, 7) and ObservationConfig(vehicles_count=9).shape == (9, 5)
    assert ObservationConfig.for_shape([7, 5]) == ObservationConfig()
    assert ObservationConfig.for_shape((1, 5)) == ObservationConfig(vehicles_count=1)
    for bad in [(0, 5), (7,), (7, 5, 1), (3, 7)]:
        with pytest.raises(ValueError):
            ObservationConfig.for_shape(bad)
    assert ObservationConfig(vehicles_count=5, see_behind=False).highway_env_config() == {
        "type": "Kinematics", "vehicles_count": 5, "features": ["presence", "x", "y", "vx", "vy"],
        "absolute": False, "order": "sorted", "normalize": True, "clip": True, "see_behind": False}
    assert ObservationConfig(vehicles_count=1).vehicles_count == 1
    with pytest.raises(ValueError, match="vehicles_count"):
        ObservationConfig(vehicles_count=0)


def test_lanes_lane_index_on_a_two_lane_road_and_for_shape_keeps_see_behind():
    obs = build_observation([], ego(lane=1, lanes=2), LANES)
    assert obs[0, 2] == 1.0 and obs[0, 6] == 1.0  # lane 1 of [0, 1]: +1, and the rightmost
    assert ObservationConfig.for_shape((4, 7), see_behind=False) == ObservationConfig(kind="lanes", see_behind=False)
    with pytest.raises(ValueError, match="kinematics, lanes"):
        ObservationConfig(kind="grid")
