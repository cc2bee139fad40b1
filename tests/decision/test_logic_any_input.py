"""DecisionLogic on any finite input: no exception, a finite target inside the road and the speed ladder."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from msgs import Mode
from msgs.limits import MAX_LANES
from nodes.decision.logic import DecisionLogic, DecisionParams
from tests.finite_inputs import FINITE_SETTINGS, SOME_INT, egos, object_arrays, plans

TICK = st.tuples(egos(), st.none() | object_arrays(), st.none() | plans(), st.none() | SOME_INT, st.none() | SOME_INT)


@FINITE_SETTINGS
@given(st.lists(TICK, min_size=1, max_size=5), SOME_INT, st.booleans())
def test_any_finite_inputs_give_a_finite_target(ticks, first_tick, overrides):
    p = DecisionParams(overrides=overrides)
    logic = DecisionLogic(p)
    for k, (ego, objects, plan, objects_tick, plan_tick) in enumerate(ticks):
        target = logic.step(first_tick + k, ego, objects, plan, objects_tick, plan_tick)
        lanes = min(max(ego.lanes_count, 1), MAX_LANES)
        assert 0 <= target.target_lane < lanes
        assert math.isfinite(target.target_speed) and 0.0 <= target.target_speed <= max(p.speed_setpoints)
        assert math.isfinite(target.max_decel) and 0.0 <= target.max_decel <= p.emergency_max_decel
        assert target.mode in tuple(Mode)
        assert target.header == ego.header
