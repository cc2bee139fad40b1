"""LaneSpeedController against highway-env's kinematic bicycle model (Vehicle.step at 15 Hz)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from msgs import DrivingTarget
from nodes.control.pid import (
    ACCEL_RANGE,
    COMFORT_ACCEL_MAX,
    COMFORT_DECEL_MAX,
    COMFORT_JERK_MAX,
    STEER_RANGE,
    ControlParams,
    LaneSpeedController,
)

P = ControlParams()
DT = P.dt


def test_the_plant_is_the_kinematic_bicycle_in_closed_form(plant):
    # Constant steering delta at speed v: slip beta = atan(tan(delta)/2), yaw rate v sin(beta) / (L/2).
    p = plant(y=0.0, speed=20.0)
    p.vehicle.act({"acceleration": 0.0, "steering": 0.02})
    for _ in range(15):
        p.vehicle.step(DT)
    beta = math.atan(0.5 * math.tan(0.02))
    assert p.vehicle.heading == pytest.approx(15 * DT * 20.0 * math.sin(beta) / 2.5, rel=1e-12)
    assert p.vehicle.speed == 20.0


def test_on_centre_at_target_speed_the_command_is_exactly_zero(plant):
    ctl = LaneSpeedController()
    p = plant(y=8.0, speed=25.0)
    for _ in range(30):
        cmd = ctl.step(p.ego(), DrivingTarget(target_lane=2, target_speed=25.0))
        assert cmd.acceleration == 0.0 and cmd.steering == 0.0
        p.apply(cmd)
    assert p.vehicle.position[0] == pytest.approx(30 * DT * 25.0)  # x = v t
    assert p.vehicle.position[1] == 8.0


@pytest.mark.parametrize("speed", [20.0, 25.0, 30.0])
def test_lane_change_settles_fast_without_overshoot_within_comfort(run, settle, speed):
    tr = run(DrivingTarget(target_lane=1, target_speed=speed), 8.0, y0=0.0, speed0=speed)
    assert settle(tr.t, tr.y, 4.0, 0.2) <= 3.5
    assert tr.y.max() - 4.0 <= 0.15
    assert np.abs(tr.lateral_accel()).max() <= 4.89
    assert abs(tr.y[-1] - 4.0) < 0.01 and abs(tr.heading[-1]) < 1e-3
    # lateral speed never above its limit (plus the slip the steering adds)
    assert np.abs(np.diff(tr.y) / DT).max() <= P.lateral_speed_max + 0.3


@pytest.mark.parametrize("speed", [3.0, 5.0, 10.0, 40.0])
def test_lane_change_is_stable_from_walking_pace_to_top_speed(run, speed):
    # the heading reference is capped, so at low speed the change is slower, never oscillatory
    tr = run(DrivingTarget(target_lane=1, target_speed=speed), 14.0, y0=0.0, speed0=speed)
    assert tr.y.max() - 4.0 <= 0.15
    assert abs(tr.y[-1] - 4.0) < 0.05
    assert np.abs(tr.heading).max() <= P.heading_max + 0.02
    assert np.abs(tr.lateral_accel()).max() <= 4.89


def test_lane_change_to_lower_lane_mirrors_the_higher_one(run):
    up = run(DrivingTarget(target_lane=2, target_speed=25.0), 6.0, y0=4.0)
    down = run(DrivingTarget(target_lane=0, target_speed=25.0), 6.0, y0=4.0)
    np.testing.assert_allclose(up.y - 4.0, 4.0 - down.y, atol=1e-9)


def test_speed_step_up_meets_the_comfort_envelope(run, settle):
    tr = run(DrivingTarget(target_lane=0, target_speed=30.0), 10.0, speed0=20.0)
    assert settle(tr.t, tr.speed, 30.0, 0.5) <= 6.0
    assert tr.speed.max() - 30.0 <= 0.5
    assert tr.accel.max() <= min(P.accel_max, 2.40) + 1e-12
    assert tr.accel.min() >= -4.05
    assert np.abs(np.diff(tr.accel, prepend=0.0)).max() <= P.jerk_max * DT + 1e-9  # jerk limit, first tick too


def test_speed_step_down_brakes_within_the_comfort_limit(run, settle):
    tr = run(DrivingTarget(target_lane=0, target_speed=15.0), 10.0, speed0=30.0)
    assert tr.accel.min() >= -P.decel_max - 1e-12
    assert settle(tr.t, tr.speed, 15.0, 0.5) <= 8.0
    assert tr.speed.min() >= 15.0 - 0.5


def test_defaults_are_inside_nuplans_longitudinal_comfort_bounds():
    assert (COMFORT_ACCEL_MAX, COMFORT_DECEL_MAX, COMFORT_JERK_MAX) == (2.40, 4.05, 4.13)
    assert P.accel_max <= COMFORT_ACCEL_MAX and P.decel_max <= COMFORT_DECEL_MAX
    assert P.jerk_max < COMFORT_JERK_MAX


def test_jerk_from_a_standing_start_is_limited_from_the_first_tick(run):
    # The command starts from 0 m/s^2 (a reset vehicle's) and ramps at exactly jerk_max to accel_max:
    # a_k = min((k + 1) * jerk_max * dt, accel_max), the speed loop asking for far more all along.
    tr = run(DrivingTarget(target_lane=0, target_speed=30.0), 3.0, speed0=0.0)
    k = np.arange(len(tr.accel))
    np.testing.assert_allclose(tr.accel, np.minimum((k + 1) * P.jerk_max * DT, P.accel_max), atol=1e-12)
    jerk = np.diff(tr.accel, prepend=0.0) / DT
    assert np.abs(jerk).max() <= P.jerk_max + 1e-9 < COMFORT_JERK_MAX


def test_jerk_from_a_held_command_ramps_to_the_other_limit(run):
    # Held at accel_max (20 -> 30 m/s demand), then the target drops to 10 m/s: the command walks from
    # +accel_max to -decel_max by jerk_max * dt a tick, never jumping, in ceil(range / (jerk_max dt)) ticks.
    hold = round(1.0 / DT)
    targets = [DrivingTarget(target_lane=0, target_speed=30.0)] * hold \
        + [DrivingTarget(target_lane=0, target_speed=10.0)] * round(3.0 / DT)
    tr = run(targets, len(targets) * DT, speed0=20.0)
    assert tr.accel[hold - 1] == pytest.approx(P.accel_max)
    steps = np.diff(tr.accel, prepend=0.0)
    assert np.abs(steps).max() <= P.jerk_max * DT + 1e-9
    ramp = math.ceil((P.accel_max + P.decel_max) / (P.jerk_max * DT) - 1e-9)
    assert tr.accel[hold + ramp - 2] > -P.decel_max + 1e-9
    assert tr.accel[hold + ramp - 1] == pytest.approx(-P.decel_max)
    np.testing.assert_allclose(steps[hold:hold + ramp - 1], -P.jerk_max * DT, atol=1e-9)


def test_emergency_is_the_only_step_beyond_the_jerk_limit_and_its_release_ramps(run):
    # max_decel: full braking at once (nuPlan allows leaving comfort for safety); once it is lifted the
    # command comes back at jerk_max, never in a step.
    on, off = round(0.5 / DT), round(3.0 / DT)
    targets = [DrivingTarget(target_lane=0, target_speed=25.0, max_decel=4.5)] * on \
        + [DrivingTarget(target_lane=0, target_speed=25.0)] * off
    tr = run(targets, len(targets) * DT, speed0=25.0)
    steps = np.diff(tr.accel, prepend=0.0)
    assert steps[0] == pytest.approx(-4.5)
    assert np.abs(steps[1:]).max() <= P.jerk_max * DT + 1e-9
    assert tr.accel[on] == pytest.approx(-4.5 + P.jerk_max * DT)


def test_max_decel_brakes_at_least_that_hard_at_once_and_stops_without_reversing(run):
    tr = run(DrivingTarget(target_lane=0, target_speed=25.0, max_decel=4.5), 8.0, speed0=25.0)
    stopped = tr.speed <= 1e-9
    assert tr.accel[0] == pytest.approx(-4.5)  # no jerk ramp in an emergency
    assert np.all(tr.accel[~stopped][:-1] <= -4.5 + 1e-12)
    assert stopped.any() and tr.speed.min() >= 0.0
    # closed form: v(t) = 25 - 4.5 t until the stop, about 5.56 s
    assert tr.t[np.argmax(stopped)] == pytest.approx(25.0 / 4.5, abs=DT)


def test_integral_does_not_wind_up_while_the_output_is_saturated(plant):
    ctl = LaneSpeedController()
    p = plant(y=0.0, speed=10.0)
    target = DrivingTarget(target_lane=0, target_speed=30.0)
    for _ in range(300):  # 20 s at full acceleration demand with the car held at 10 m/s
        ctl.step(p.ego(), target)
    p.vehicle.speed = 30.0
    for _ in range(10):  # let the jerk limit ramp the command down to what the loop wants
        cmd = ctl.step(p.ego(), target)
    # only the first tick (before the limit was seen) integrated: ki * 20 m/s * dt
    assert abs(cmd.acceleration * ACCEL_RANGE) <= P.ki_speed * 20.0 * DT + 1e-9


def test_steering_rate_and_range_are_limited(run):
    tr = run(DrivingTarget(target_lane=3, target_speed=25.0), 6.0, y0=0.0)
    rate = np.abs(np.diff(np.concatenate([[0.0], tr.steer]))) / DT
    assert rate.max() <= min(P.steering_rate_max, P.lateral_jerk_max * 5.0 / 25.0**2) * 1.05
    assert all(-1.0 <= c.steering <= 1.0 and -1.0 <= c.acceleration <= 1.0 for c in tr.commands)
    assert np.abs(tr.steer).max() <= STEER_RANGE


def test_target_lane_beyond_the_road_is_clamped_to_the_last_lane(run):
    tr = run(DrivingTarget(target_lane=9, target_speed=25.0), 12.0, y0=8.0)
    assert tr.y[-1] == pytest.approx(12.0, abs=0.01)


def test_recovers_from_a_heading_error_on_the_lane_centre(run):
    tr = run(DrivingTarget(target_lane=1, target_speed=25.0), 8.0, y0=4.0, heading0=0.05)
    assert abs(tr.y[-1] - 4.0) < 0.02
    assert tr.y.max() - 4.0 < 1.0
    assert np.abs(tr.lateral_accel()).max() <= 4.89


def test_reset_forgets_state(plant):
    ctl = LaneSpeedController()
    p = plant(y=0.0, speed=20.0)
    target = DrivingTarget(target_lane=1, target_speed=30.0)
    first = ctl.step(p.ego(), target)
    for _ in range(10):
        ctl.step(p.ego(), target)
    ctl.reset()
    assert ctl.step(p.ego(), target) == first


@pytest.mark.parametrize("field,value", [("dt", 0.0), ("kp_heading", -1.0), ("steering_max", 1.0),
                                         ("accel_max", 6.0), ("ki_speed", math.nan), ("accel_max", 2.41),
                                         ("decel_max", 4.06), ("jerk_max", 4.14), ("jerk_max", 0.0)])
def test_bad_params_are_rejected_with_the_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        LaneSpeedController(msgspec.structs.replace(ControlParams(), **{field: value}))
