"""The controller's step on any finite input: no exception, a finite command in [-1, 1], and the physical
clamp leaves normal inputs untouched."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from msgs import DrivingTarget, EgoState
from msgs.limits import MAX_SPEED
from nodes.control.pid import LaneSpeedController
from tests.finite_inputs import FINITE_SETTINGS, egos, finite, targets


@FINITE_SETTINGS
@given(st.lists(st.tuples(egos(), targets()), min_size=1, max_size=6))
def test_any_finite_ego_and_target_give_a_finite_command_in_range(ticks):
    ctrl = LaneSpeedController()
    for ego, target in ticks:  # a sequence: the loops' integrals and the rate limits carry state across ticks
        cmd = ctrl.step(ego, target)
        assert finite(cmd.acceleration, cmd.steering)
        assert -1.0 <= cmd.acceleration <= 1.0 and -1.0 <= cmd.steering <= 1.0
        assert cmd.header == ego.header
        assert finite(ctrl.acceleration, ctrl.steering, ctrl.lateral_error)


def _ego(speed: float, **kw) -> EgoState:
    fields = dict(x=0.0, y=4.0, heading=0.0, speed=speed, vx=speed, vy=0.0, lane_index=1, lateral_offset=0.0)
    return EgoState(**(fields | kw))


def test_an_absurd_speed_is_driven_as_the_physical_maximum():
    """1e308 m/s (speed**2 overflowed) commands what the fastest physical speed does: full braking."""
    absurd, at_max = LaneSpeedController(), LaneSpeedController()
    target = DrivingTarget(target_lane=2, target_speed=25.0)
    for _ in range(5):
        a = absurd.step(_ego(1e308), target)
        b = at_max.step(_ego(MAX_SPEED), target)
        assert (a.acceleration, a.steering) == (b.acceleration, b.steering)
    assert a.acceleration < 0


def test_a_negative_lane_width_gives_a_finite_command():
    cmd = LaneSpeedController().step(_ego(25.0, lane_width=-4.0, lateral_offset=-1e300),
                                     DrivingTarget(target_lane=3, target_speed=1e308))
    assert math.isfinite(cmd.acceleration) and math.isfinite(cmd.steering)


@FINITE_SETTINGS
@given(st.floats(0.0, 40.0), st.floats(-3.0, 3.0), st.floats(-0.3, 0.3), st.integers(0, 3), st.floats(0.0, 35.0))
def test_inside_the_envelope_the_clamp_changes_nothing(speed, offset, heading, lane, target_speed):
    """The same controller code without the clamp (the inputs handed to the loops directly) gives the same bits."""
    ego = _ego(speed, lateral_offset=offset, heading=heading)
    target = DrivingTarget(target_lane=lane, target_speed=target_speed)
    a, b = LaneSpeedController(), LaneSpeedController()
    cmd = a.step(ego, target)
    accel = b._longitudinal(ego, target)
    steer = b._lateral_control(ego, target)
    assert cmd.acceleration == min(max(accel / 5.0, -1.0), 1.0)
    assert cmd.steering == min(max(steer / (math.pi / 4), -1.0), 1.0)
