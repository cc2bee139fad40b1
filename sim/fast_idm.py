"""highway-env's IDMVehicle.act, the same doubles in fewer Python and numpy calls (used by sim.fast_road).

Each function below is the stock method it names, with the same operations in the same order; what changed
is only how a value is reached: a projection on a straight lane along +x is a difference of coordinates
(what stock's `np.dot` with the direction (1, 0) gives), `np.clip` on a scalar is the comparison numpy's
clip makes, and per-vehicle values that cannot change during `Road.act` (direction, velocity) are computed
once per act. Transcendental functions stay numpy's, as in stock: numpy's SIMD arcsin or power can differ
from `math`'s in the last bit. Any case outside these conditions runs stock's own method.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from highway_env import utils
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import ControlledVehicle
from highway_env.vehicle.kinematics import Vehicle
from highway_env.vehicle.objects import RoadObject

# The stock methods the fast act replays; a vehicle or class that overrides any of them runs stock's act.
_REPLAYED = ("act", "follow_road", "change_lane_policy", "mobil", "steering_control", "acceleration",
             "desired_gap", "lane_distance_to")
_STOCK = {name: getattr(IDMVehicle, name) for name in _REPLAYED}
_VEHICLE_ACT = Vehicle.act


_STEPPED = ("step", "clip_actions", "on_state_update")
_STOCK_STEP = {name: getattr(IDMVehicle, name) for name in _STEPPED}


def stock_step_unchanged() -> bool:
    """True while IDMVehicle's step, clip_actions and on_state_update are highway-env's own."""
    return all(getattr(IDMVehicle, name) is method for name, method in _STOCK_STEP.items())


def steps_like_stock(vehicle: Any) -> bool:
    """True for a plain IDMVehicle with no step of its own (given stock_step_unchanged())."""
    return type(vehicle) is IDMVehicle and vehicle.__dict__.keys().isdisjoint(_STEPPED)


def idm_step(v: IDMVehicle, dt: float) -> None:
    """IDMVehicle.step: the timer, then Vehicle.step, whose trigonometry is skipped where its arguments are
    +-0 (a vehicle going straight along the road): arctan(tan(+-0) / 2) and sin(+-0) are that zero, cos(+-0) is 1.
    """
    v.timer += dt
    v.clip_actions()
    delta_f = v.action["steering"]
    beta = np.float64(0.5 * delta_f) if delta_f == 0 else np.arctan(1 / 2 * np.tan(delta_f))
    angle = v.heading + beta
    if angle == 0:
        cos, sin = 1.0, angle
    else:
        cos, sin = np.cos(angle), np.sin(angle)
    position = v.position
    if type(position) is np.ndarray and position.shape == (2,) and position.dtype == np.float64:
        # position += (speed * [cos, sin]) * dt, one element at a time: the same three roundings per element
        speed = v.speed
        position[0] = position[0] + (speed * cos) * dt
        position[1] = position[1] + (speed * sin) * dt
    else:
        position += v.speed * np.array([cos, sin]) * dt
    if v.impact is not None:
        v.position += v.impact
        v.crashed = True
        v.impact = None
    v.heading += v.speed * (beta if beta == 0 else np.sin(beta)) / (v.LENGTH / 2) * dt
    v.speed += v.action["acceleration"] * dt
    v.on_state_update()


def _not_zero(x: Any) -> Any:
    """utils.not_zero(x) with its default eps."""
    return x if abs(x) > 1e-2 else (1e-2 if x >= 0 else -1e-2)


def np_clip(x: Any, lo: Any, hi: Any) -> np.float64:
    """`np.clip(x, lo, hi)` for a scalar x and scalar bounds lo <= hi: numpy's max-then-min, NaN kept."""
    if x != x:
        return np.float64(x)
    m = x if x > lo else lo
    return np.float64(m if m < hi else hi)


def stock_methods_unchanged() -> bool:
    """True while IDMVehicle's replayed methods are highway-env's own (nobody patched the class)."""
    return all(getattr(IDMVehicle, name) is method for name, method in _STOCK.items())


# Class parameters a vehicle could override on itself; the batched act needs the class's for every vehicle
# (DELTA excepted: highway-env draws it per vehicle, and the batch reads each vehicle's own).
_PARAMETERS = frozenset({"COMFORT_ACC_MAX", "COMFORT_ACC_MIN", "DISTANCE_WANTED", "TIME_WANTED", "ACC_MAX",
                         "MAX_STEERING_ANGLE", "LANE_CHANGE_DELAY"})


# RoadObject.direction at heading +-0 is (cos, sin) = (1, +-0) wherever numpy's cos and sin give those.
_ALONG_X = bool(np.cos(0.0) == 1.0 and np.sin(0.0) == 0.0 and np.cos(-0.0) == 1.0 and np.sin(-0.0) == 0.0)


def _not_zero_array(x: np.ndarray) -> np.ndarray:
    """_not_zero on every element."""
    return np.where(np.abs(x) > 1e-2, x, np.where(x >= 0, 1e-2, -1e-2))


class IDMActs:
    """Runs `act()` for every plain IDMVehicle of one road during one Road.act.

    lane_start_x: id(lane) -> the lane's start x, for every lane of the road (all straight along +x).
    """

    def __init__(self, lane_start_x: dict[int, float]) -> None:
        self.lane_start_x = lane_start_x
        self._direction: dict[int, np.ndarray] = {}
        self._velocity: dict[int, np.ndarray] = {}
        self._two_sqrt: dict[float, float] = {}

    def applies_to(self, vehicle: Any) -> bool:
        return type(vehicle) is IDMVehicle and vehicle.__dict__.keys().isdisjoint(_REPLAYED)

    def direction(self, v: Any) -> np.ndarray:
        d = self._direction.get(id(v))
        if d is None:
            if type(v).direction is not RoadObject.direction:
                return v.direction
            d = self._direction[id(v)] = v.direction
        return d

    def velocity(self, v: Any) -> np.ndarray:
        u = self._velocity.get(id(v))
        if u is None:
            if type(v).velocity is not Vehicle.velocity:
                return v.velocity
            u = self._velocity[id(v)] = v.speed * self.direction(v)
        return u

    def act(self, v: IDMVehicle) -> None:
        """IDMVehicle.act."""
        if v.crashed:
            return
        action = {}
        self.follow_road(v)
        if v.enable_lane_change:
            self.change_lane_policy(v)
        action["steering"] = self.steering_control(v, v.target_lane_index)
        action["steering"] = np_clip(action["steering"], -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE)
        front_vehicle, rear_vehicle = v.road.neighbour_vehicles(v, v.lane_index)
        action["acceleration"] = self.acceleration(v, v, front_vehicle)
        if v.lane_index != v.target_lane_index:
            front_vehicle, rear_vehicle = v.road.neighbour_vehicles(v, v.target_lane_index)
            target_idm_acceleration = self.acceleration(v, v, front_vehicle)
            action["acceleration"] = min(action["acceleration"], target_idm_acceleration)
        action["acceleration"] = np_clip(action["acceleration"], -v.ACC_MAX, v.ACC_MAX)
        _VEHICLE_ACT(v, action)

    def following(self, v: IDMVehicle) -> bool:
        """True when `act(v)` reduces to following: not crashed, no lane change under way or due (MOBIL's timer
        not run out), inside its lane. Its action is then the steering towards its lane's centre line and
        IDM's acceleration behind its lane's front vehicle, and it writes nothing but `v.action`:
        `act_following` computes a whole batch of them at once."""
        if v.crashed or v.lane_index != v.target_lane_index:
            return False
        if v.enable_lane_change and utils.do_every(v.LANE_CHANGE_DELAY, v.timer):
            return False
        if not v.__dict__.keys().isdisjoint(_PARAMETERS):
            return False
        lane = v.road.network.get_lane(v.target_lane_index)
        x0 = self._x0(lane)
        if x0 is None or lane is not v.lane or lane.speed_limit is None:
            return False
        return not float(v.position[0]) - x0 > lane.length - lane.VEHICLE_LENGTH / 2

    def act_following(self, vehicles: list[IDMVehicle], fronts: list[Any]) -> None:
        """`act(v)` for vehicles that `following(v)` accepted, `fronts` their lanes' front vehicles: stock's
        acceleration formula evaluated as arrays, element by element the same operations on the same doubles
        (numpy's power gives an array element the value it gives the same numbers alone: one inner loop,
        chosen once for the CPU, serves both)."""
        n = len(vehicles)
        if n == 0:
            return
        cls = IDMVehicle
        comfort, d0, tau = cls.COMFORT_ACC_MAX, cls.DISTANCE_WANTED, cls.TIME_WANTED
        two_sqrt_ab = 2 * np.sqrt(-cls.COMFORT_ACC_MAX * cls.COMFORT_ACC_MIN)
        ratio = np.empty(n)
        target = np.empty(n)
        delta = np.empty(n)
        with_front, gap_d, speed_f, dv_f = [], [], [], []
        for i, (v, front) in enumerate(zip(vehicles, fronts, strict=True)):
            lane = v.lane
            t = np_clip(getattr(v, "target_speed", 0), 0, lane.speed_limit)
            target[i] = t
            ratio[i] = max(v.speed, 0)
            delta[i] = v.DELTA
            if front:
                x0 = self.lane_start_x[id(lane)]
                if _ALONG_X and v.heading == 0.0 and type(front) is IDMVehicle and front.heading == 0.0:
                    # both headings +-0: directions (1, +-0), velocities (speed, +-0): desired_gap's dv
                    dv = v.speed * 1.0 - front.speed * 1.0 if math.isfinite(v.speed - front.speed) else math.nan
                else:
                    dv = math.nan
                if dv != dv:
                    ue, uf, direction = self.velocity(v), self.velocity(front), self.direction(v)
                    if direction[0] == 1.0 and direction[1] == 0.0 and math.isfinite(ue[1] - uf[1]):
                        dv = ue[0] - uf[0]
                    else:
                        dv = np.dot(ue - uf, direction)
                with_front.append(i)
                gap_d.append((float(front.position[0]) - x0) - (float(v.position[0]) - x0))
                speed_f.append(v.speed)
                dv_f.append(dv)
        acceleration = comfort * (1 - np.power(ratio / np.abs(_not_zero_array(target)), delta))
        if with_front:
            s = np.array(speed_f, dtype=np.float64)
            gap = d0 + s * tau + s * np.array(dv_f, dtype=np.float64) / two_sqrt_ab
            rows = np.array(with_front)
            acceleration[rows] -= comfort * np.power(gap / _not_zero_array(np.array(gap_d, dtype=np.float64)), 2)
        limit = cls.ACC_MAX
        clipped = np.minimum(np.maximum(acceleration, -limit), limit)
        acceleration = np.where(acceleration != acceleration, acceleration, clipped)  # np_clip keeps NaN
        max_steering = cls.MAX_STEERING_ANGLE
        for v, a in zip(vehicles, acceleration, strict=True):
            steering = np_clip(self.steering_control(v, v.target_lane_index), -max_steering, max_steering)
            v.action = {"steering": steering, "acceleration": a}  # Vehicle.act(v, action)

    def _x0(self, lane: Any) -> float | None:
        return self.lane_start_x.get(id(lane))

    def follow_road(self, v: IDMVehicle) -> None:
        """ControlledVehicle.follow_road: only past a lane's end (stock's code then)."""
        lane = v.road.network.get_lane(v.target_lane_index)
        x0 = self._x0(lane)
        if x0 is None:
            v.follow_road()
            return
        longitudinal = float(v.position[0]) - x0
        # AbstractLane.after_end(position): `if not longitudinal` re-projects, which gives the same value.
        if longitudinal > lane.length - lane.VEHICLE_LENGTH / 2:
            v.follow_road()

    def change_lane_policy(self, v: IDMVehicle) -> None:
        """IDMVehicle.change_lane_policy."""
        if v.lane_index != v.target_lane_index:
            if v.lane_index[:2] == v.target_lane_index[:2]:
                for o in v.road.vehicles:
                    if (o is not v and o.lane_index != v.target_lane_index and isinstance(o, ControlledVehicle)
                            and o.target_lane_index == v.target_lane_index):
                        d = self.lane_distance_to(v, o)
                        d_star = self.desired_gap(v, v, o)
                        if 0 < d < d_star:
                            v.target_lane_index = v.lane_index
                            break
            return
        if not utils.do_every(v.LANE_CHANGE_DELAY, v.timer):
            return
        v.timer = 0
        for lane_index in v.road.network.side_lanes(v.lane_index):
            if not v.road.network.get_lane(lane_index).is_reachable_from(v.position):
                continue
            if np.abs(v.speed) < 1:
                continue
            if self.mobil(v, lane_index):
                v.target_lane_index = lane_index

    def mobil(self, v: IDMVehicle, lane_index: Any) -> bool:
        """IDMVehicle.mobil."""
        new_preceding, new_following = v.road.neighbour_vehicles(v, lane_index)
        new_following_a = self.acceleration(v, new_following, new_preceding)
        new_following_pred_a = self.acceleration(v, new_following, v)
        if new_following_pred_a < -v.LANE_CHANGE_MAX_BRAKING_IMPOSED:
            return False
        old_preceding, old_following = v.road.neighbour_vehicles(v)
        self_pred_a = self.acceleration(v, v, new_preceding)
        if v.route and v.route[0][2] is not None:
            if np.sign(lane_index[2] - v.target_lane_index[2]) != np.sign(v.route[0][2] - v.target_lane_index[2]):
                return False
            elif self_pred_a < -v.LANE_CHANGE_MAX_BRAKING_IMPOSED:
                return False
        else:
            self_a = self.acceleration(v, v, old_preceding)
            old_following_a = self.acceleration(v, old_following, v)
            old_following_pred_a = self.acceleration(v, old_following, old_preceding)
            jerk = (self_pred_a - self_a + v.POLITENESS * (
                new_following_pred_a - new_following_a + old_following_pred_a - old_following_a))
            if jerk < v.LANE_CHANGE_MIN_ACC_GAIN:
                return False
        return True

    def steering_control(self, v: IDMVehicle, target_lane_index: Any) -> float:
        """ControlledVehicle.steering_control on a straight lane along +x."""
        target_lane = v.road.network.get_lane(target_lane_index)
        x0 = self._x0(target_lane)
        if x0 is None:
            return v.steering_control(target_lane_index)
        lateral = float(v.position[1]) - float(target_lane.start[1])
        lane_future_heading = target_lane.heading  # StraightLane.heading_at, whatever the longitudinal
        if lateral == 0.0 and v.heading == 0.0 and lane_future_heading == 0.0 and v.speed > 0:
            # On the lane's centre line, heading along it (every vehicle that never changed lanes): each
            # term below is an exact zero (arcsin, tan and arctan of +-0 are +-0; wrap_to_pi(0) is 0).
            return 0.0
        lateral_speed_command = -v.KP_LATERAL * lateral
        heading_command = np.arcsin(np_clip(lateral_speed_command / utils.not_zero(v.speed), -1, 1))
        heading_ref = lane_future_heading + np_clip(heading_command, -np.pi / 4, np.pi / 4)
        heading_rate_command = v.KP_HEADING * utils.wrap_to_pi(heading_ref - v.heading)
        slip_angle = np.arcsin(np_clip(v.LENGTH / 2 / utils.not_zero(v.speed) * heading_rate_command, -1, 1))
        steering_angle = np.arctan(2 * np.tan(slip_angle))
        steering_angle = np_clip(steering_angle, -v.MAX_STEERING_ANGLE, v.MAX_STEERING_ANGLE)
        return float(steering_angle)

    def acceleration(self, v: IDMVehicle, ego_vehicle: Any, front_vehicle: Any = None) -> float:
        """IDMVehicle.acceleration with `v`'s parameters (stock: self is v)."""
        if not ego_vehicle or not isinstance(ego_vehicle, Vehicle):
            return 0
        ego_target_speed = getattr(ego_vehicle, "target_speed", 0)
        lane = ego_vehicle.lane
        if lane and lane.speed_limit is not None:
            ego_target_speed = np_clip(ego_target_speed, 0, lane.speed_limit)
        comfort = v.COMFORT_ACC_MAX
        acceleration = comfort * (1 - np.power(max(ego_vehicle.speed, 0) / abs(_not_zero(ego_target_speed)), v.DELTA))
        if front_vehicle:
            # lane_distance_to, inlined
            x0 = self.lane_start_x.get(id(lane)) if lane else None
            if x0 is None or type(ego_vehicle).lane_distance_to is not _STOCK["lane_distance_to"]:
                d = ego_vehicle.lane_distance_to(front_vehicle)
            else:
                d = (float(front_vehicle.position[0]) - x0) - (float(ego_vehicle.position[0]) - x0)
            acceleration -= comfort * np.power(self.desired_gap(v, ego_vehicle, front_vehicle) / _not_zero(d), 2)
        return acceleration

    def lane_distance_to(self, ego: Any, other: Any) -> float:
        """RoadObject.lane_distance_to(other) along ego's lane."""
        lane = ego.lane
        x0 = self._x0(lane) if lane else None
        if x0 is None or type(ego).lane_distance_to is not _STOCK["lane_distance_to"]:
            return ego.lane_distance_to(other)
        return (float(other.position[0]) - x0) - (float(ego.position[0]) - x0)

    def desired_gap(self, v: IDMVehicle, ego_vehicle: Any, front_vehicle: Any) -> float:
        """IDMVehicle.desired_gap(ego, front, projected=True) with `v`'s parameters."""
        d0 = v.DISTANCE_WANTED
        tau = v.TIME_WANTED
        ab = -v.COMFORT_ACC_MAX * v.COMFORT_ACC_MIN
        ue, uf, direction = self.velocity(ego_vehicle), self.velocity(front_vehicle), self.direction(ego_vehicle)
        if direction[0] == 1.0 and direction[1] == 0.0 and math.isfinite(ue[1] - uf[1]):
            dv = ue[0] - uf[0]  # np.dot(ue - uf, (1, 0)): the y term is an exact zero
        else:
            dv = np.dot(ue - uf, direction)
        two_sqrt_ab = self._two_sqrt.get(ab)
        if two_sqrt_ab is None:
            two_sqrt_ab = self._two_sqrt[ab] = 2 * np.sqrt(ab)
        return d0 + ego_vehicle.speed * tau + ego_vehicle.speed * dv / two_sqrt_ab


__all__ = ["IDMActs", "idm_step", "np_clip", "steps_like_stock", "stock_methods_unchanged", "stock_step_unchanged"]
