"""Lane and speed control: simple-pid loops that turn a DrivingTarget into a ControlCommand.

Pure logic: no sockets, no clocks (simple-pid is given a constant time function and an explicit dt).

Longitudinal: a PID on the speed error [m/s] gives an acceleration [m/s^2], clipped to the comfort
envelope [-decel_max, accel_max] and rate limited by jerk_max on every tick, the first after `reset()`
included (the last command starts at 0 m/s^2, a freshly reset vehicle's). The envelope is held inside
nuPlan's comfort bounds (`ego_is_comfortable`: longitudinal acceleration in [-4.05, 2.40] m/s^2,
|longitudinal jerk| <= 4.13 m/s^3), which `ControlParams.check` enforces, so the commanded
acceleration changes by at most jerk_max * dt between any two consecutive commands.
The one exception is emergency braking: a target with max_decel > 0 gets at least that much braking at
once, with no jerk ramp and beyond decel_max if asked (nuPlan allows leaving the comfort bounds for
safety); leaving the emergency ramps back at jerk_max. Also exempt: the clamp that stops braking at a
standstill (no reverse).

Lateral, a cascade on highway-env's kinematic bicycle model (the one `Vehicle.step` integrates):
  1. position loop: offset from the target lane centre [m] -> lateral speed command [m/s],
  2. that speed becomes a heading reference: heading_ref = asin(v_lat / speed), within +-heading_max,
  3. heading loop: heading error [rad] -> yaw-rate command [rad/s], limited to lateral_accel_max / speed
     so that the centripetal acceleration speed * yaw_rate never exceeds the comfort limit,
  4. the bicycle model inverted: slip = asin(L/2 * yaw_rate / speed), steering = atan(2 tan(slip)),
     then rate limited by steering_rate_max and by lateral_jerk_max (through speed^2 * steering / length)
     and clipped to steering_max.
The road is assumed straight (lanes along +x, as in highway-v0): lane heading 0.

Anti-windup: simple-pid clamps each integral to its output limits; on top of that the integral is
frozen (conditional integration, through simple-pid's public `Ki`) on any tick whose previous output
was held back by a limit in the direction the error pushes.

The command is highway-env's ContinuousAction: acceleration / 5 m/s^2 and steering / (pi/4) rad, both
clipped to [-1, 1].
"""

from __future__ import annotations

import math

import msgspec
from simple_pid import PID

from msgs import ControlCommand, DrivingTarget, EgoState
from msgs.limits import bounded_ego, bounded_target
from msgs.registry import CONTROL_RATE_HZ

ACCEL_RANGE = 5.0  # [m/s^2] ContinuousAction maps +-1 to +-this
STEER_RANGE = math.pi / 4  # [rad] ContinuousAction maps +-1 to +-this
# nuPlan's longitudinal comfort bounds (nuplan-devkit ego_is_comfortable), the ceiling of the comfort envelope
COMFORT_ACCEL_MAX = 2.40  # [m/s^2]
COMFORT_DECEL_MAX = 4.05  # [m/s^2] (positive number: braking)
COMFORT_JERK_MAX = 4.13  # [m/s^3] |d(acceleration)/dt|
MIN_SPEED_FOR_STEERING = 1.0  # [m/s] below this the bicycle model's inversion is ill-conditioned


class ControlParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Gains and limits of the lane/speed controller. Every gain's unit is output unit per input unit."""

    dt: float = 1.0 / CONTROL_RATE_HZ  # [s] control period (highway-env policy step)
    # longitudinal: speed error [m/s] -> acceleration [m/s^2]
    kp_speed: float = 1.2  # [1/s] acceleration per unit speed error
    ki_speed: float = 0.05  # [1/s^2] acceleration per unit integrated speed error
    kd_speed: float = 0.0  # [-] acceleration per unit rate of change of speed (on measurement)
    accel_max: float = 2.2  # [m/s^2] comfort acceleration limit (<= COMFORT_ACCEL_MAX)
    decel_max: float = 3.5  # [m/s^2] comfort braking limit (positive number, <= COMFORT_DECEL_MAX)
    # [m/s^3] rate limit of the acceleration command (<= COMFORT_JERK_MAX; not applied to max_decel). 4.0 keeps
    # a margin under the bound: evaluation's Savitzky-Golay jerk is a positive-weighted mean of the command's
    # steps / dt away from an episode's first and last 3 ticks, where it can read up to 1.34x that.
    jerk_max: float = 4.0
    # lateral position loop: offset from target lane centre [m] -> lateral speed [m/s]
    kp_lateral: float = 0.8  # [1/s] lateral speed per metre of offset
    ki_lateral: float = 0.0  # [1/s^2] lateral speed per integrated metre of offset
    lateral_speed_max: float = 2.6  # [m/s] limit of the lateral speed command
    heading_max: float = 0.15  # [rad] limit of the heading reference relative to the lane (slow speeds)
    # heading loop: heading error [rad] -> yaw rate [rad/s]
    kp_heading: float = 3.0  # [1/s] yaw rate per radian of heading error
    ki_heading: float = 0.0  # [1/s^2] yaw rate per integrated radian of heading error
    lateral_accel_max: float = 3.0  # [m/s^2] limit of speed * yaw-rate command
    # steering actuator
    steering_max: float = math.pi / 4  # [rad] limit of the steering angle (ContinuousAction's range)
    steering_rate_max: float = 0.5  # [rad/s] rate limit of the steering command
    lateral_jerk_max: float = 5.0  # [m/s^3] also limits the steering rate to jerk * length / speed^2

    def check(self) -> ControlParams:
        """ValueError naming the first bad field; returns self so it chains. Run by `LaneSpeedController`
        and by the control node's `check` (so by `launch --check`)."""
        positive = ("dt", "accel_max", "decel_max", "jerk_max", "lateral_speed_max", "heading_max",
                    "lateral_accel_max", "steering_max", "steering_rate_max", "lateral_jerk_max",
                    "kp_lateral", "kp_heading")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ControlParams.{name} must be finite and > 0, got {value}")
        for name in ("kp_speed", "ki_speed", "kd_speed", "ki_lateral", "ki_heading"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ControlParams.{name} must be finite and >= 0, got {value}")
        if self.steering_max > STEER_RANGE + 1e-12:
            raise ValueError(f"ControlParams.steering_max {self.steering_max} exceeds the actuator's "
                             f"{STEER_RANGE} rad")
        comfort = (("accel_max", COMFORT_ACCEL_MAX, "m/s^2"), ("decel_max", COMFORT_DECEL_MAX, "m/s^2"),
                   ("jerk_max", COMFORT_JERK_MAX, "m/s^3"))
        for name, limit, unit in comfort:
            value = getattr(self, name)
            if value > limit:
                raise ValueError(f"ControlParams.{name} {value} {unit} is outside nuPlan's comfort bound "
                                 f"{limit} {unit}")
        return self


def _rate_limit(value: float, previous: float, max_step: float) -> float:
    return min(max(value, previous - max_step), previous + max_step)


def _clip(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def _pid(kp: float, ki: float, kd: float, limit_lo: float, limit_hi: float) -> PID:
    return PID(kp, ki, kd, setpoint=0.0, sample_time=None, output_limits=(limit_lo, limit_hi),
               time_fn=lambda: 0.0)


class _Loop:
    """One simple-pid loop with conditional integration (freeze Ki while the output is held back)."""

    def __init__(self, kp: float, ki: float, kd: float, lo: float, hi: float) -> None:
        self.ki = ki
        self.pid = _pid(kp, ki, kd, lo, hi)
        self.held = 0.0  # sign of the last hold-back: +1 output wanted more than applied, -1 less
        self.raw = 0.0  # last unclamped output

    def reset(self) -> None:
        self.pid.reset()
        self.held = 0.0

    def __call__(self, setpoint: float, measured: float, dt: float) -> float:
        error = setpoint - measured
        self.pid.Ki = 0.0 if self.held * error > 0 else self.ki
        self.pid.setpoint = setpoint
        out = float(self.pid(measured, dt=dt))
        self.raw = float(sum(self.pid.components))  # before simple-pid's output clamp
        return out

    def applied(self, applied: float) -> None:
        """Tell the loop what was actually applied after every limit (its own clamp included)."""
        gap = self.raw - applied
        self.held = 0.0 if abs(gap) < 1e-9 else math.copysign(1.0, gap)


class LaneSpeedController:
    """Tracks a target lane centre and a target speed; one `step` per control tick."""

    def __init__(self, params: ControlParams | None = None) -> None:
        self.params = (params or ControlParams()).check()
        p = self.params
        self._speed = _Loop(p.kp_speed, p.ki_speed, p.kd_speed, -p.decel_max, p.accel_max)
        self._lateral = _Loop(p.kp_lateral, p.ki_lateral, 0.0, -p.lateral_speed_max, p.lateral_speed_max)
        self._heading = _Loop(p.kp_heading, p.ki_heading, 0.0, -math.inf, math.inf)
        self.reset()

    def reset(self) -> None:
        """Forget integrals and the last command (call at the start of each episode)."""
        for loop in (self._speed, self._lateral, self._heading):
            loop.reset()
        self.acceleration = 0.0  # [m/s^2] last command
        self.steering = 0.0  # [rad] last command
        self.lateral_error = 0.0  # [m] last offset from the target lane centre, + towards higher lanes

    def step(self, ego: EgoState, target: DrivingTarget) -> ControlCommand:
        """The command for this tick; the header is the ego's (the tick it answers).

        Any finite input gives a finite command in [-1, 1]: values beyond the physical envelope (a speed of
        1e308 m/s, a negative lane width) are clamped into it first (msgs.limits), where squaring a speed or
        dividing by a length can neither overflow nor give NaN. Inside the envelope nothing changes."""
        ego, target = bounded_ego(ego), bounded_target(target)
        accel = self._longitudinal(ego, target)
        steer = self._lateral_control(ego, target)
        return ControlCommand(
            header=ego.header,
            acceleration=_clip(accel / ACCEL_RANGE, -1.0, 1.0),
            steering=_clip(steer / STEER_RANGE, -1.0, 1.0),
        )

    def _longitudinal(self, ego: EgoState, target: DrivingTarget) -> float:
        p = self.params
        wanted = self._speed(max(target.target_speed, 0.0), ego.speed, p.dt)
        accel = _rate_limit(wanted, self.acceleration, p.jerk_max * p.dt)
        if target.max_decel > 0:
            # Emergency: at least max_decel of braking, immediately (no jerk limit).
            accel = min(accel, -min(target.max_decel, ACCEL_RANGE))
        # Never brake into reverse: a standstill is the end of braking.
        accel = max(accel, -max(ego.speed, 0.0) / p.dt)
        accel = _clip(accel, -ACCEL_RANGE, ACCEL_RANGE)
        self._speed.applied(accel)
        self.acceleration = accel
        return accel

    def _lateral_control(self, ego: EgoState, target: DrivingTarget) -> float:
        p = self.params
        lane = min(max(target.target_lane, 0), max(ego.lanes_count - 1, 0))
        # Offset from the target lane centre, continuous across lane boundaries on parallel lanes.
        offset = (ego.lane_index - lane) * ego.lane_width + ego.lateral_offset
        self.lateral_error = offset
        speed = max(ego.speed, MIN_SPEED_FOR_STEERING)
        v_lat = self._lateral(0.0, offset, p.dt)
        self._lateral.applied(v_lat)
        heading_ref = _clip(math.asin(_clip(v_lat / speed, -1.0, 1.0)), -p.heading_max, p.heading_max)
        heading_err = math.atan2(math.sin(heading_ref - ego.heading), math.cos(heading_ref - ego.heading))
        yaw_rate_max = p.lateral_accel_max / speed
        yaw_rate_wanted = self._heading(ego.heading + heading_err, ego.heading, p.dt)
        yaw_rate = _clip(yaw_rate_wanted, -yaw_rate_max, yaw_rate_max)
        self._heading.applied(yaw_rate)
        slip = math.asin(_clip(0.5 * ego.length * yaw_rate / speed, -1.0, 1.0))
        steer_wanted = math.atan(2.0 * math.tan(slip))
        # Lateral acceleration ~ speed^2 * steering / length: its rate is bounded through the steering rate.
        rate_max = min(p.steering_rate_max, p.lateral_jerk_max * ego.length / speed**2)
        steer = _rate_limit(steer_wanted, self.steering, rate_max * p.dt)
        steer = _clip(steer, -p.steering_max, p.steering_max)
        self.steering = steer
        return steer
