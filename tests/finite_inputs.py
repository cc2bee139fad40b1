"""Hypothesis strategies for messages whose every field takes any value the wire can carry: floats over the
whole finite range (no bounds: 1e308 m/s, -0.0, subnormals), ints over msgspec's range (int64 to uint64)."""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st

from msgs import DrivingTarget, EgoState, Header, Object, ObjectArray, Plan

ANY_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
ANY_INT = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what a MessagePack int decodes to
# hypothesis draws mostly edge values of unbounded ints; the typical small ones are mixed in as well
SOME_INT = st.one_of(st.integers(-3, 8), ANY_INT)

# Slow machine, many processes: no deadline, a fixed number of examples per property.
FINITE_SETTINGS = settings(max_examples=200, deadline=None)


def headers() -> st.SearchStrategy[Header]:
    return st.builds(Header, episode=st.integers(0, 3), tick=SOME_INT, stamp_ns=ANY_INT)


def egos() -> st.SearchStrategy[EgoState]:
    return st.builds(
        EgoState, header=headers(), x=ANY_FLOAT, y=ANY_FLOAT, heading=ANY_FLOAT, speed=ANY_FLOAT, vx=ANY_FLOAT,
        vy=ANY_FLOAT, lane_index=SOME_INT, lateral_offset=ANY_FLOAT, lanes_count=SOME_INT, lane_width=ANY_FLOAT,
        length=ANY_FLOAT, width=ANY_FLOAT, acceleration=ANY_FLOAT, steering=ANY_FLOAT, reward=ANY_FLOAT,
        crashed=st.booleans(), on_road=st.booleans(),
    )


def objects() -> st.SearchStrategy[Object]:
    return st.builds(
        Object, id=SOME_INT, x=ANY_FLOAT, y=ANY_FLOAT, vx=ANY_FLOAT, vy=ANY_FLOAT, heading=ANY_FLOAT,
        length=ANY_FLOAT, width=ANY_FLOAT, world_x=ANY_FLOAT, world_y=ANY_FLOAT, speed=ANY_FLOAT,
        lane_index=SOME_INT, score=ANY_FLOAT, in_view=st.booleans(),
    )


def object_arrays(max_size: int = 6) -> st.SearchStrategy[ObjectArray]:
    return st.builds(ObjectArray, header=headers(), objects=st.lists(objects(), max_size=max_size))


def targets() -> st.SearchStrategy[DrivingTarget]:
    return st.builds(DrivingTarget, header=headers(), target_lane=SOME_INT, target_speed=ANY_FLOAT,
                     mode=st.integers(0, 4), max_decel=ANY_FLOAT)


def plans() -> st.SearchStrategy[Plan]:
    """Plans with a valid action (an action outside the enum is refused by name: tests/decision)."""
    return st.builds(Plan, header=headers(), action=st.integers(0, 4), q_values=st.lists(ANY_FLOAT, max_size=5),
                     replanned=st.booleans(), plan_tick=SOME_INT)


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)
