"""LaneSpeedController's loops pinned tick by tick, from simple-pid's update rule and the documented
anti-windup: P = kp e, I += ki e dt (frozen on a tick whose previous output was held back in the direction
the error pushes), D = -kd d(measured)/dt (on measurement), every tick computed (no sample-time skipping).
The ego state is fed directly (no plant), so each expected command is a closed form."""

from __future__ import annotations

import math

import msgspec
import pytest

from msgs import DrivingTarget, EgoState, Header
from nodes.control.pid import ACCEL_RANGE, STEER_RANGE, ControlParams, LaneSpeedController

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


def test_a_negative_target_speed_means_stop():
    # the set-point is max(target, 0): at 0.5 m/s a -5 m/s target brakes (the first tick's jerk step)
    ctl = LaneSpeedController()
    cmd = ctl.step(ego(0.5), DrivingTarget(target_lane=0, target_speed=-5.0))
    assert accel(cmd) == pytest.approx(-P.jerk_max * P.dt, abs=1e-12)


def test_any_positive_max_decel_brakes_at_once():
    # 0.5 m/s^2 is more than one jerk step (0.27 m/s^2): only the emergency path gives it on the first tick
    ctl = LaneSpeedController()
    cmd = ctl.step(ego(25.0), DrivingTarget(target_lane=0, target_speed=25.0, max_decel=0.5))
    assert accel(cmd) == pytest.approx(-0.5, abs=1e-12)


def test_on_a_one_lane_road_every_target_lane_is_lane_zero():
    ctl = LaneSpeedController()
    state = msgspec.structs.replace(ego(25.0, offset=0.3), lanes_count=1)
    ctl.step(state, DrivingTarget(target_lane=1, target_speed=25.0))
    assert ctl.lateral_error == pytest.approx(0.3)


def cascade(offset: float, heading: float, speed: float, *, i_lat: float = 0.0, i_head: float = 0.0,
            length: float = 5.0) -> float:
    """[rad] the steering the module docstring's cascade asks for (before the steering rate limit): offset
    -> lateral speed (limited) -> heading reference asin(v_lat / speed) (limited) -> yaw rate on the heading
    error (limited to lateral_accel_max / speed) -> the bicycle model inverted. `i_lat` / `i_head`: the
    loops' integral terms, in their output units."""
    def clip(v: float, lim: float) -> float:
        return max(-lim, min(lim, v))
    v_lat = clip(-P.kp_lateral * offset + i_lat, P.lateral_speed_max)
    heading_ref = clip(math.asin(clip(v_lat / speed, 1.0)), P.heading_max)
    yaw = clip(P.kp_heading * (heading_ref - heading) + i_head, P.lateral_accel_max / speed)
    slip = math.asin(clip(0.5 * length * yaw / speed, 1.0))
    return clip(math.atan(2.0 * math.tan(slip)), P.steering_max)


def settled_steering(ctl: LaneSpeedController, state: EgoState, ticks: int = 90) -> float:
    """[rad] the steering once the steering rate limit has let the command reach what the loops ask for
    (the same state every tick: constant demand, no integral with the default gains)."""
    target = DrivingTarget(target_lane=0, target_speed=state.speed)
    for _ in range(ticks):
        cmd = ctl.step(state, target)
    return cmd.steering * STEER_RANGE


# the last two: 8 m off the lane, so the lateral speed is at its limit (2.6 m/s, not kp 8 m = 6.4 m/s) and the
# heading reference asin(2.6 / 25) = 0.104 rad stays under heading_max; headed nearly that way, the yaw rate
# stays under its own limit, so the lateral speed limit is what the steering shows
@pytest.mark.parametrize("offset,heading,speed", [(0.01, 0.02, 25.0), (-0.3, -0.01, 12.0), (0.5, 0.0, 30.0),
                                                  (8.0, -0.09, 25.0), (-8.0, 0.09, 25.0)])
def test_the_lateral_cascade_in_closed_form(offset, heading, speed):
    state = msgspec.structs.replace(ego(speed, offset=offset), heading=heading)
    assert settled_steering(LaneSpeedController(), state) == pytest.approx(cascade(offset, heading, speed),
                                                                          rel=1e-9, abs=1e-15)


def test_the_yaw_rate_is_limited_by_the_lateral_acceleration():
    # 30 m/s, heading 0.1 rad away from the lane while 3 m off it: the heading loop asks for 0.75 rad/s, the
    # limit is lateral_accel_max / speed = 0.1 rad/s (3 m/s^2 of centripetal acceleration)
    state = msgspec.structs.replace(ego(30.0, offset=3.0), heading=0.1)
    yaw = -P.lateral_accel_max / 30.0
    want = math.atan(2.0 * math.tan(math.asin(0.5 * 5.0 * yaw / 30.0)))
    assert settled_steering(LaneSpeedController(), state) == pytest.approx(want, rel=1e-9)


def test_the_lateral_and_heading_integrals_run_every_tick():
    # ki on both loops, a constant small offset on a straight heading: tick k's integrals are
    # ki_lat * (-offset) * dt * k (lateral speed) and ki_head * dt * sum of the heading errors so far
    params = msgspec.structs.replace(P, ki_lateral=0.2, ki_heading=0.5)
    ctl = LaneSpeedController(params)
    offset, speed = 0.01, 25.0
    state = ego(speed, offset=offset)
    target = DrivingTarget(target_lane=0, target_speed=speed)
    i_lat = i_head = 0.0
    for k in range(1, 6):
        i_lat += 0.2 * -offset * P.dt
        v_lat = -P.kp_lateral * offset + i_lat
        i_head += 0.5 * math.asin(v_lat / speed) * P.dt
        steer = ctl.step(state, target).steering * STEER_RANGE  # small: within one steering-rate step
        assert steer == pytest.approx(cascade(offset, 0.0, speed, i_lat=i_lat, i_head=i_head), rel=1e-9), k


@pytest.mark.parametrize("offset", [8.0, -8.0])
def test_far_from_the_lane_at_walking_pace_the_command_is_finite_and_steers_back(offset):
    # 0.5 m/s (steered as 1 m/s) and 8 m off: v_lat / speed is 2.6, beyond asin's domain, so it is clipped;
    # so is the slip's argument. The first tick steers towards the lane at the steering rate limit.
    ctl = LaneSpeedController()
    cmd = ctl.step(ego(0.5, offset=offset), DrivingTarget(target_lane=0, target_speed=0.5))
    assert cmd.is_finite()
    assert cmd.steering * STEER_RANGE == pytest.approx(-math.copysign(P.steering_rate_max * P.dt, offset),
                                                       rel=1e-9)


def test_params_at_nuplans_comfort_bounds_are_accepted_and_an_infinite_gain_is_not():
    at_bounds = msgspec.structs.replace(P, accel_max=2.40, decel_max=4.05, jerk_max=4.13)
    assert at_bounds.check() is at_bounds  # the bounds are inclusive ("<= COMFORT_ACCEL_MAX")
    for name in ("kp_speed", "ki_speed", "kd_speed", "ki_lateral", "ki_heading"):
        with pytest.raises(ValueError, match=name):
            msgspec.structs.replace(P, **{name: math.inf}).check()


@pytest.mark.parametrize(("name", "value", "unit"), [("accel_max", 2.5, "m/s^2"), ("decel_max", 4.1, "m/s^2"),
                                                    ("jerk_max", 4.2, "m/s^3")])
def test_a_param_beyond_nuplans_bound_is_refused_with_its_unit(name, value, unit):
    with pytest.raises(ValueError) as err:
        msgspec.structs.replace(P, **{name: value}).check()
    assert name in str(err.value) and f"{value} {unit}" in str(err.value)
