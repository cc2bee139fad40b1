"""LaneSpeedController's loops pinned tick by tick, from simple-pid's update rule and the documented
anti-windup: P = kp e, I += ki e dt (frozen on a tick whose previous output was held back in the direction
the error pushes), D = -kd d(measured)/dt (on measurement), every tick computed (no sample-time skipping).
The ego state is fed directly (no plant), so each expected command is a closed form."""

from __future__ import annotations

import msgspec
import pytest

from msgs import DrivingTarget, EgoState, Header
from nodes.control.pid import ACCEL_RANGE, ControlParams, LaneSpeedController

P = ControlParams()


def ego(speed: float, *, lane: int = 0, offset: float = 0.0, tick: int = 0) -> EgoState:
    return EgoState(header=Header(episode=3, tick=tick, stamp_ns=tick * 66_666_667, frame_id="world"),
                    x=0.0, y=lane * 4.0 + offset, heading=0.0, speed=speed, vx=speed, vy=0.0, lane_index=lane,
                    lateral_offset=offset)


def accel(cmd) -> float:  # [m/s^2]
    return cmd.acceleration * ACCEL_RANGE


def test_the_speed_integral_runs_except_on_ticks_after_a_held_output():
    # A constant 0.5 m/s error: kp e = 0.6 m/s^2 is reached through the jerk limit (jerk_max dt = 0.267 a
    # tick), so ticks 1 and 2 are held back and ticks 2 and 3 do not integrate; from tick 3 on nothing holds
    # the output, and tick k (>= 3) has integrated on k - 2 ticks.
    ctl = LaneSpeedController()
    e, step = 0.5, P.jerk_max * P.dt
    target = DrivingTarget(target_lane=0, target_speed=25.0 + e)
    got = [accel(ctl.step(ego(25.0, tick=k), target)) for k in range(1, 31)]
    assert got[0] == pytest.approx(step, abs=1e-12)
    assert got[1] == pytest.approx(2 * step, abs=1e-12)
    for k in range(3, 31):
        assert got[k - 1] == pytest.approx(P.kp_speed * e + P.ki_speed * e * P.dt * (k - 2), abs=1e-12), k
    # and after reset() the same sequence again (the hold-back sign is forgotten too)
    ctl.reset()
    again = [accel(ctl.step(ego(25.0, tick=k), target)) for k in range(1, 31)]
    assert again == pytest.approx(got, abs=1e-12)


def test_every_tick_is_computed_even_at_a_short_period():
    # dt = 5 ms (under simple-pid's default 10 ms sample time): the second tick must see the new error.
    params = msgspec.structs.replace(P, dt=0.005)
    ctl = LaneSpeedController(params)
    target = DrivingTarget(target_lane=0, target_speed=20.0)
    e1, e2 = 0.01, 0.005  # small enough that kp e stays under the jerk step (0.02 m/s^2 a tick)
    a1 = accel(ctl.step(ego(20.0 - e1), target))
    a2 = accel(ctl.step(ego(20.0 - e2), target))
    assert a1 == pytest.approx(P.kp_speed * e1 + P.ki_speed * e1 * 0.005, abs=1e-12)
    assert a2 == pytest.approx(P.kp_speed * e2 + P.ki_speed * (e1 + e2) * 0.005, abs=1e-12)


def test_the_speed_derivative_acts_on_the_measurement():
    params = msgspec.structs.replace(P, ki_speed=0.0, kd_speed=0.1)
    ctl = LaneSpeedController(params)
    target = DrivingTarget(target_lane=0, target_speed=20.01)
    a1 = accel(ctl.step(ego(20.0), target))
    a2 = accel(ctl.step(ego(20.002), target))
    assert a1 == pytest.approx(1.2 * 0.01, abs=1e-12)  # no derivative on the first tick
    assert a2 == pytest.approx(1.2 * 0.008 - 0.1 * 0.002 / P.dt, abs=1e-12)


def test_the_command_carries_the_ego_header():
    ctl = LaneSpeedController()
    state = ego(25.0, tick=41)
    assert ctl.step(state, DrivingTarget(target_lane=0, target_speed=25.0)).header == state.header


def test_reset_zeroes_the_reported_lateral_error():
    ctl = LaneSpeedController()
    ctl.step(ego(25.0, lane=1, offset=0.7), DrivingTarget(target_lane=0, target_speed=25.0))
    assert ctl.lateral_error == pytest.approx(4.0 + 0.7)  # (lane 1 - lane 0) * 4 m + 0.7 m
    ctl.reset()
    assert ctl.lateral_error == 0.0
