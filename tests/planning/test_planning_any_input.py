"""The planner's observation builder and the rule planner on any finite input: no exception, every feature
finite and in [-1, 1], a valid meta-action."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from msgs import Action, EgoState
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.rules import OBSERVATION_SHAPE, RulePlanner
from tests.finite_inputs import ANY_FLOAT, FINITE_SETTINGS, egos, objects

CONFIGS = st.sampled_from([ObservationConfig(), ObservationConfig(kind="lanes"),
                           ObservationConfig(vehicles_count=3, see_behind=False, only_in_view=False)])


@FINITE_SETTINGS
@given(st.lists(objects(), max_size=8), egos(), CONFIGS)
def test_any_finite_ego_and_objects_give_an_observation_in_range(objs, ego, config):
    obs = build_observation(objs, ego, config)
    assert obs.shape == config.shape and obs.dtype == np.float32
    assert np.isfinite(obs).all() and (np.abs(obs) <= 1.0).all()


def test_a_negative_lane_width_is_clamped_not_refused():
    ego = EgoState(x=0.0, y=4.0, heading=0.0, speed=25.0, vx=25.0, vy=0.0, lane_index=1, lateral_offset=0.0,
                   lane_width=-4.0, lanes_count=0)
    for kind in ("kinematics", "lanes"):
        obs = build_observation([], ego, ObservationConfig(kind=kind))
        assert np.isfinite(obs).all() and (np.abs(obs) <= 1.0).all()


@FINITE_SETTINGS
@given(st.lists(st.lists(ANY_FLOAT, min_size=OBSERVATION_SHAPE[0] * OBSERVATION_SHAPE[1],
                         max_size=OBSERVATION_SHAPE[0] * OBSERVATION_SHAPE[1]), min_size=1, max_size=4))
def test_the_rule_planner_takes_any_finite_observation(observations):
    planner = RulePlanner()
    for flat in observations:
        action = planner.step(np.array(flat).reshape(OBSERVATION_SHAPE))
        assert action in tuple(Action)
        assert planner.setpoint in planner.params.speed_setpoints


@FINITE_SETTINGS
@given(st.lists(st.tuples(st.lists(objects(), max_size=6), egos()), min_size=1, max_size=4))
def test_the_rule_planner_behind_the_builder_takes_any_finite_ego(ticks):
    planner = RulePlanner()
    for objs, ego in ticks:
        assert planner.step(build_observation(objs, ego, ObservationConfig(kind="lanes"))) in tuple(Action)
