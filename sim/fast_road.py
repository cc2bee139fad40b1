"""A faster highway-env road for straight multi-lane highways that moves every vehicle exactly as stock does.

highway-env's `Road` spends most of a step in two O(N^2) loops: every vehicle's IDM/MOBIL asks
`Road.neighbour_vehicles`, which projects every other vehicle on the lane, and `Road.step` runs the
collision test on every pair. `FastRoad` keeps highway-env's code for everything that decides a result and
only avoids work whose outcome is known:

- `neighbour_vehicles`: during `act()` (positions cannot change while vehicles decide) each lane's
  vehicles are sorted by longitudinal position once; a query is then a bisection. The tie-breaks are
  stock's: among vehicles at the same distance ahead the last in the road's list wins, behind the first.
- `step`: a vectorised broad phase keeps the pairs that could pass highway-env's own distance pre-check
  (with a margin), and stock's `handle_collisions` runs on those pairs, in stock's pair order, so the
  impacts and crash flags (whose assignment depends on that order) come out the same.
- `FastRoadNetwork.get_closest_lane_index`: the lanes' distances from one projection, in stock's formula.

Exactness rests on the lanes being `StraightLane`s along +x (direction exactly (1, 0)): a projection on
such a lane is then a plain difference of coordinates, the same double stock's `np.dot` gives. Any other
road, road objects, non-finite values or `neighbour_vehicles_connected_lanes` fall back to stock's code.
tests/sim/test_fast_road.py holds both roads to the same trajectories bit for bit.

`install(env)` makes a highway-env env build a `FastRoad` on every reset.
"""

from __future__ import annotations

import math
import types
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from highway_env import utils
from highway_env.envs.highway_env import HighwayEnv
from highway_env.road.lane import StraightLane
from highway_env.road.road import LaneIndex, Road, RoadNetwork
from highway_env.vehicle.objects import Landmark

from sim import fast_render
from sim.fast_idm import IDMActs, idm_step, steps_like_stock, stock_methods_unchanged, stock_step_unchanged

ROADS = ("fast", "stock")
# [m] added to highway-env's collision pre-check distance in the broad phase: far above the rounding of
# a distance between two positions, so a pair the broad phase drops always fails the exact pre-check too.
BROAD_PHASE_MARGIN = 0.5


class _Lanes:
    """The geometry of one road of parallel straight lanes along +x, or why the fast path does not apply."""

    def __init__(self, network: RoadNetwork) -> None:
        self.ok = False
        graph = network.graph
        if len(graph) != 1:
            return
        (_from, to_dict), = graph.items()
        if len(to_dict) != 1:
            return
        (_to, lanes), = to_dict.items()
        if not lanes or any(type(lane) is not StraightLane for lane in lanes):
            return
        for lane in lanes:
            if not (lane.direction[0] == 1.0 and lane.direction[1] == 0.0
                    and lane.direction_lateral[0] == 0.0 and lane.direction_lateral[1] == 1.0):
                return
            if not all(math.isfinite(float(v)) for v in (*lane.start, lane.length, lane.width, lane.heading)):
                return
        first = lanes[0]
        # The closest-lane search shares one projection between lanes: same start, length and heading.
        self.shared_projection = all(lane.start[0] == first.start[0] and lane.length == first.length
                                     and lane.heading == first.heading for lane in lanes)
        self.road = (_from, _to)
        self.lanes = list(lanes)
        self.indexes = [(_from, _to, i) for i in range(len(lanes))]
        self.number = {index: i for i, index in enumerate(self.indexes)}  # lane index -> position, for ints
        self.start_x = np.array([lane.start[0] for lane in lanes], dtype=np.float64)
        self.start_y = np.array([lane.start[1] for lane in lanes], dtype=np.float64)
        self.start_x_by_lane = {id(lane): float(lane.start[0]) for lane in lanes}
        self.start_y_list = [float(lane.start[1]) for lane in lanes]
        self.x0, self.length, self.heading = float(first.start[0]), first.length, first.heading
        self.ok = True

    def lane_number(self, lane_index: Any) -> int | None:
        """The lane's position in the road, or None where stock's lookup must decide."""
        if not (isinstance(lane_index, tuple) and len(lane_index) == 3 and lane_index[:2] == self.road):
            return None
        k = lane_index[2]
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 0 <= k < len(self.lanes):
            return None
        return int(k)


class FastRoadNetwork(RoadNetwork):
    """RoadNetwork with a closest-lane search that projects once for a road of straight lanes along +x."""

    _geometry: _Lanes | None = None

    @classmethod
    def from_network(cls, network: RoadNetwork) -> FastRoadNetwork:
        fast = cls()
        fast.graph = network.graph
        return fast

    @property
    def geometry(self) -> _Lanes:
        if self._geometry is None:
            self._geometry = _Lanes(self)
        return self._geometry

    def add_lane(self, _from: str, _to: str, lane: Any) -> None:
        super().add_lane(_from, _to, lane)
        self._geometry = None

    def get_closest_lane_index(self, position: np.ndarray, heading: float | None = None) -> LaneIndex:
        g = self.geometry
        if not (g.ok and g.shared_projection) or heading is None:
            return super().get_closest_lane_index(position, heading)
        x, y = float(position[0]), float(position[1])
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(heading)):
            return super().get_closest_lane_index(position, heading)
        # Stock: for each lane, lane.distance_with_heading(position, heading), then the first argmin. With one
        # start x, length and heading for all lanes, only |lateral| differs between them.
        s = x - g.x0
        angle = abs(utils.wrap_to_pi(heading - g.heading))  # lane.local_angle; abs is exact, like np.abs
        along = max(s - g.length, 0)
        behind = max(0 - s, 0)
        best, best_d = 0, None
        for i, y0 in enumerate(g.start_y_list):
            d = abs(y - y0) + along + behind + 1.0 * angle
            if best_d is None or d < best_d:
                best, best_d = i, d
        return g.indexes[best]


class FastRoad(Road):
    """highway-env's Road with sorted neighbour search and a collision broad phase (same results)."""

    network: FastRoadNetwork

    @classmethod
    def from_road(cls, road: Road) -> FastRoad:
        """A FastRoad on `road`'s lanes, vehicles, objects and random generator."""
        fast = cls(network=FastRoadNetwork.from_network(road.network), vehicles=road.vehicles,
                   road_objects=road.objects, np_random=road.np_random, record_history=road.record_history,
                   neighbour_vehicles_connected_lanes=road.neighbour_vehicles_connected_lanes)
        if fast.network.geometry.ok:
            fast_render.register(fast.network.geometry.lanes)  # their markings: sim/fast_render.py
        return fast

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lane_xs: list[list[float]] | None = None  # per lane: sorted longitudinal positions, during act()
        self._lane_vehicles: list[list[Any]] = []
        self._lane_position: list[dict[int, int]] = []  # per lane: id(vehicle) -> its index in _lane_vehicles

    def act(self) -> None:
        """Decide the actions of each entity on the road (stock), with the lanes sorted once for the lot."""
        g = self.network.geometry
        idm = IDMActs(g.start_x_by_lane) if g.ok and stock_methods_unchanged() else None
        with self.frozen():
            following, fronts = [], []
            for vehicle in self.vehicles:
                if idm is None or not idm.applies_to(vehicle):
                    vehicle.act()
                elif idm.following(vehicle):  # its act writes only its own action: done below, as one batch
                    following.append(vehicle)
                    fronts.append(self.front_vehicle(vehicle, vehicle.lane_index))
                else:
                    idm.act(vehicle)
            if idm is not None:
                idm.act_following(following, fronts)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Within: no vehicle moves, so `neighbour_vehicles` searches lanes sorted once on entry."""
        self._lane_xs = self._sorted_lanes()
        try:
            yield
        finally:
            self._lane_xs, self._lane_vehicles, self._lane_position = None, [], []

    def _sorted_lanes(self) -> list[list[float]] | None:
        g = self.network.geometry
        if not g.ok or self.objects or self.neighbour_vehicles_connected_lanes:
            return None
        vehicles = [v for v in self.vehicles if not isinstance(v, Landmark)]
        if not vehicles:
            self._lane_vehicles = [[] for _ in g.lanes]
            self._lane_position = [{} for _ in g.lanes]
            return [[] for _ in g.lanes]
        xy = np.array([v.position for v in vehicles], dtype=np.float64)
        if xy.shape != (len(vehicles), 2) or not np.isfinite(xy).all():
            return None
        lane_xs, lane_vehicles = [], []
        if g.shared_projection:  # one start x: every lane's longitudinal is the same, so is its sorted order
            s = xy[:, 0] - g.start_x[0]
            order = np.argsort(s, kind="stable")  # ties stay in the road's list order
            s_sorted, y_sorted = s[order], xy[order, 1]
        for k, lane in enumerate(g.lanes):
            # Stock's on_lane(margin=1) on the projection (longitudinal, lateral) = (x - x0, y - y0).
            if g.shared_projection:
                on = ((np.abs(y_sorted - g.start_y[k]) <= lane.width_at(0) / 2 + 1)
                      & (-lane.VEHICLE_LENGTH <= s_sorted) & (s_sorted < lane.length + lane.VEHICLE_LENGTH))
                lane_xs.append(s_sorted[on].tolist())
                lane_vehicles.append([vehicles[i] for i in order[on].tolist()])
                continue
            s = xy[:, 0] - g.start_x[k]
            lateral = xy[:, 1] - g.start_y[k]
            on = ((np.abs(lateral) <= lane.width_at(0) / 2 + 1)
                  & (-lane.VEHICLE_LENGTH <= s) & (s < lane.length + lane.VEHICLE_LENGTH))
            members = np.flatnonzero(on)
            lane_order = members[np.argsort(s[members], kind="stable")]  # ties stay in the road's list order
            lane_xs.append(s[lane_order].tolist())
            lane_vehicles.append([vehicles[i] for i in lane_order.tolist()])
        self._lane_vehicles = lane_vehicles
        self._lane_position = [{id(v): p for p, v in enumerate(members)} for members in lane_vehicles]
        return lane_xs

    def front_vehicle(self, vehicle: Any, lane_index: LaneIndex) -> Any:
        """`neighbour_vehicles(vehicle, lane_index)[0]`; where `vehicle` is on that lane with no one level with
        it or with the next one ahead, that is simply the next vehicle in the sorted lane."""
        lane_xs = self._lane_xs
        k = None
        if lane_xs is not None and type(lane_index) is tuple and len(lane_index) == 3 and type(lane_index[2]) is int:
            k = self.network.geometry.number.get(lane_index)
        p = self._lane_position[k].get(id(vehicle)) if k is not None else None
        if p is not None:
            xs = lane_xs[k]
            n = len(xs)
            if p == 0 or xs[p - 1] != xs[p]:
                if p + 1 == n:
                    return None
                ahead = xs[p + 1]
                if ahead != xs[p] and (p + 2 == n or xs[p + 2] != ahead):
                    return self._lane_vehicles[k][p + 1]
        return self.neighbour_vehicles(vehicle, lane_index)[0]

    def neighbour_vehicles(self, vehicle: Any, lane_index: LaneIndex = None) -> tuple[Any, Any]:
        """Stock's preceding and following vehicle of `vehicle` on `lane_index` (its own lane by default)."""
        lane_xs = self._lane_xs
        if lane_xs is None:
            return super().neighbour_vehicles(vehicle, lane_index)
        lane_index = lane_index or vehicle.lane_index
        if not lane_index:
            return None, None
        g = self.network.geometry
        k = g.lane_number(lane_index)
        x = float(vehicle.position[0])
        if k is None or not math.isfinite(x) or not math.isfinite(float(vehicle.position[1])):
            return super().neighbour_vehicles(vehicle, lane_index)
        s = x - float(g.start_x[k])
        xs, vehicles = lane_xs[k], self._lane_vehicles[k]
        # Ahead: the smallest s_v >= s; stock keeps the last such vehicle in the road's list.
        front = None
        i = bisect_left(xs, s)
        while i < len(xs) and front is None:
            end = bisect_right(xs, xs[i], i)
            for j in range(end - 1, i - 1, -1):
                if vehicles[j] is not vehicle:
                    front = vehicles[j]
                    break
            i = end
        # Behind: the largest s_v < s; stock keeps the first such vehicle in the road's list.
        rear = None
        i = bisect_left(xs, s) - 1
        if i >= 0:
            rear = vehicles[bisect_left(xs, xs[i])]
        return front, rear

    def step(self, dt: float) -> None:
        """Step every vehicle (stock's step; sim.fast_idm.idm_step for plain IDM vehicles), then stock's
        collision test on the pairs the broad phase keeps."""
        fast_idm_step = stock_step_unchanged()
        for vehicle in self.vehicles:
            if fast_idm_step and steps_like_stock(vehicle):
                idm_step(vehicle, dt)
            else:
                vehicle.step(dt)
        pairs = None if self.objects else self._collision_candidates(dt)
        if pairs is None:
            self._all_collisions(dt)
            return
        vehicles = self.vehicles
        for i, j in pairs:
            vehicles[i].handle_collisions(vehicles[j], dt)

    def _collision_candidates(self, dt: float) -> list[tuple[int, int]] | None:
        """Pairs (i < j, in stock's order) that may pass highway-env's collision pre-check
        `|p_j - p_i| <= (diagonal_i + diagonal_j) / 2 + speed_i * dt`; None: test every pair."""
        vehicles = self.vehicles
        n = len(vehicles)
        if n < 2:
            return []
        xy = np.array([v.position for v in vehicles], dtype=np.float64)
        speed = np.array([v.speed for v in vehicles], dtype=np.float64)
        diagonal = np.array([v.diagonal for v in vehicles], dtype=np.float64)
        if (xy.shape != (n, 2) or not np.isfinite(xy).all() or not np.isfinite(speed).all()
                or not np.isfinite(diagonal).all() or not math.isfinite(dt)):
            return None  # stock's pre-check lets NaN distances through: leave those to the full loop
        # Sort and sweep along x: only pairs closer in x than the largest possible reach can collide.
        reach = float(diagonal.max() + max(float(np.abs(speed).max()) * abs(dt), 0.0) + BROAD_PHASE_MARGIN)
        order = np.argsort(xy[:, 0], kind="stable")
        xs = xy[order, 0]
        ends = np.searchsorted(xs, xs + reach, side="right")
        counts = ends - np.arange(n) - 1
        if not counts.any():
            return []
        a = np.repeat(np.arange(n), counts)
        b = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + a + 1
        i, j = order[a], order[b]
        i, j = np.minimum(i, j), np.maximum(i, j)
        d = xy[j] - xy[i]
        limit = (diagonal[i] + diagonal[j]) / 2 + speed[i] * dt + BROAD_PHASE_MARGIN
        keep = (limit >= 0) & (d[:, 0] ** 2 + d[:, 1] ** 2 <= limit * limit)
        i, j = i[keep], j[keep]
        pairs = sorted(zip(i.tolist(), j.tolist(), strict=True))
        return pairs

    def _all_collisions(self, dt: float) -> None:
        """Stock Road.step's collision loop."""
        for i, vehicle in enumerate(self.vehicles):
            for other in self.vehicles[i + 1:]:
                vehicle.handle_collisions(other, dt)
            for other in self.objects:
                vehicle.handle_collisions(other, dt)


def _create_fast_road(env: HighwayEnv) -> None:
    type(env)._create_road(env)
    env.road = FastRoad.from_road(env.road)


def install(env: Any, road: str = "fast") -> Any:
    """Make `env` (a highway-env HighwayEnv, wrapped or not) build a FastRoad on every reset; returns env.

    road: "fast" installs it, "stock" leaves highway-env as it is.
    """
    if road not in ROADS:
        raise ValueError(f"road must be one of {ROADS}, got {road!r}")
    if road == "stock":
        return env
    base = env.unwrapped
    if not isinstance(base, HighwayEnv):
        raise ValueError(f"the fast road is for highway-env's straight-road HighwayEnv, not {type(base).__name__}")
    base._create_road = types.MethodType(_create_fast_road, base)
    return env
