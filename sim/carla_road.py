"""The road frame on a real CARLA map: a chain of waypoints along the leftmost lane of the ego's carriageway.

drivestack's nodes expect a straight road: x along it, y across it, lane centres at lane_index * lane_width. On a
CARLA map the bridge makes one around the ego each tick (a Frenet-like frame):

- the *reference* is the centre line of the leftmost driving lane running the ego's way, followed waypoint by
  waypoint (`next()` / `previous()` every STEP_M) from the ego's station up to `reach_m` ahead and behind. It runs
  on through junctions whatever road each lane belongs to, so lane indices never collapse where a lane is a road
  of its own (sim.carla_world.beside);
- a point is projected onto that chain: its station (arc length along the chain), the lane direction there and
  its offset to the right of the leftmost lane's centre; its lane is the nearest of the lane centres measured
  across the carriageway at the ego's station;
- distances along the road (x) are arc lengths on the line parallel to the reference through the ego, so a gap
  is what the ego would drive to close it, on a curve too;
- a vehicle's velocity and heading are taken along the road's direction at its *own* station (the lanes of one
  carriageway run parallel), so a car keeping its lane reads vy = 0 wherever it is, on a 54 m curve as on a
  straight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.carla_world import beside, follow, lanes_across

STEP_M = 2.0  # [m] between the chain's waypoints (a 54 m curve turns 2.1 deg in that; positions and directions are
#               interpolated between them, so the chord's error is under 1 cm)
MIN_ADVANCE_M = 1e-3  # [m] CARLA's next()/previous() want a positive distance
RUNS_ALONG_COS = 0.5  # a vehicle's lane runs along the road if their directions differ by less than 60 degrees
LEVEL_M = 4.0  # [m] a point this far above or below the road is on another level (Town04's loop crosses itself
#                on a bridge 11 m above)


@dataclass(frozen=True)
class Station:
    """A point projected onto the road frame."""

    s: float  # [m] arc length along the reference from the chain's first point
    across: float  # [m] offset to the right of the leftmost lane's centre line
    yaw_deg: float  # [deg] the road's direction there (CARLA yaw, unwrapped)


class RoadFrame:
    """The road frame around the ego (see the module's docstring). `update()` once per tick with the ego's position,
    then `station()` for any vehicle."""

    def __init__(self, world_map: Any, driving: Any, start_wp: Any, reach_m: float) -> None:
        """world_map: the CARLA map; driving: carla.LaneType.Driving; start_wp: a waypoint on any lane of the ego's
        carriageway at the ego's station; reach_m: [m] how far ahead and behind the chain runs (vehicles beyond
        are out of the frame)."""
        self.map, self.driving, self.reach_m = world_map, driving, reach_m
        self.anchor = lanes_across(world_map, start_wp, driving)[0]
        self._build()

    # -- the chain ---------------------------------------------------------------------------------------------
    def _build(self) -> None:
        steps = int(math.ceil(self.reach_m / STEP_M))
        ahead, behind = [self.anchor], []
        for chain, sign in ((ahead, 1.0), (behind, -1.0)):
            here = self.anchor
            for _ in range(steps):
                here = follow(here, sign * STEP_M, self.driving)
                if here is None:
                    break
                chain.append(here)
        wps = behind[::-1] + ahead
        self._index0 = len(behind)  # the anchor's place in the chain
        xy = np.array([(w.transform.location.x, w.transform.location.y) for w in wps], dtype=float)
        self.z = np.array([w.transform.location.z for w in wps], dtype=float)
        yaw = np.unwrap(np.radians([w.transform.rotation.yaw for w in wps]))
        seg = np.hypot(*np.diff(xy, axis=0).T)
        self.xy, self.yaw = xy, yaw
        self._line: tuple[float, np.ndarray] | None = None
        self.s = np.concatenate([[0.0], np.cumsum(seg)])
        self.lanes = lanes_across(self.map, self.anchor, self.driving)
        # lane centres right of the leftmost one: the lanes of a carriageway lie side by side (measuring positions
        # instead would take in a ramp lane found overlapping a lane of type NONE, see carla_world.beside)
        widths = np.array([float(w.lane_width) for w in self.lanes])
        self.centres = np.concatenate([[0.0], np.cumsum(0.5 * (widths[:-1] + widths[1:]))])
        self.lane_width = float(self.anchor.lane_width)

    def _along_line(self, across: float) -> np.ndarray:
        """Arc length at every chain point along the line `across` [m] right of the reference (the last one kept:
        a tick asks for the ego's line once per vehicle)."""
        if self._line is not None and self._line[0] == across:
            return self._line[1]
        right = np.stack([-np.sin(self.yaw), np.cos(self.yaw)], axis=1)
        line = self.xy + across * right
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])
        self._line = (across, arc)
        return arc

    def station(self, x: float, y: float, z: float | None = None) -> Station | None:
        """The point (x, y) [m, CARLA plan] on the road frame, or None beyond the chain's ends or, given its height
        z [m], on another level (a bridge above or a road below)."""
        if len(self.s) < 2:
            return None
        q = np.array([x, y])
        i = int(np.argmin(np.sum((self.xy - q) ** 2, axis=1)))
        # the signed distance along the road from chain point k, in its own direction; the foot lies where it
        # crosses zero between two points (exact for the chain's interpolated directions, on curves too)
        u = [float((q - self.xy[k]) @ (math.cos(self.yaw[k]), math.sin(self.yaw[k]))) if 0 <= k < len(self.s)
             else math.nan for k in (i - 1, i, i + 1)]
        a = i if u[1] >= 0 else i - 1
        ua, ub = (u[1], u[2]) if a == i else (u[0], u[1])
        if not (ua >= 0 > ub):  # beyond the chain's ends (or NaN there)
            return None
        t = ua / (ua - ub)
        d = self.xy[a + 1] - self.xy[a]
        foot = self.xy[a] + t * d
        if z is not None and abs(z - (self.z[a] + t * (self.z[a + 1] - self.z[a]))) > LEVEL_M:
            return None
        yaw = self.yaw[a] + t * (self.yaw[a + 1] - self.yaw[a])
        across = float((q - foot) @ np.array([-math.sin(yaw), math.cos(yaw)]))
        return Station(s=float(self.s[a] + t * (self.s[a + 1] - self.s[a])), across=across,
                       yaw_deg=math.degrees(yaw))

    def distance_along(self, start: Station, end: Station, across: float) -> float:
        """[m] from `start` to `end` along the line `across` [m] right of the reference (negative if behind)."""
        line = self._along_line(across)
        return float(np.interp(end.s, self.s, line) - np.interp(start.s, self.s, line))

    def lane_of(self, across: float) -> tuple[int, float, bool]:
        """(lane index, offset [m] from that lane's centre, inside the carriageway) for an offset `across` [m]."""
        k = int(np.argmin(np.abs(self.centres - across)))
        offset = across - float(self.centres[k])
        inside = abs(offset) <= 0.5 * max(float(self.lanes[k].lane_width), 1e-9)
        return k, offset, inside

    def road_y(self, across: float) -> float:
        """[m] drivestack's y for an offset `across`: lane centres at lane_index * lane_width."""
        k, offset, _ = self.lane_of(across)
        return k * self.lane_width + offset

    # -- each tick -----------------------------------------------------------------------------------------------
    def update(self, x: float, y: float, z: float | None = None) -> float:
        """Move the frame to the ego at (x, y) [m, CARLA plan]; returns how far [m] the ego advanced along its own
        line since the last update (the odometer's step). Re-anchors from the ego's own lane when it has left the
        chain or the carriageway (an exit), then the step is measured along the old anchor's direction."""
        last, self._last_xy = getattr(self, "_last_xy", None), (x, y)
        here = self.station(x, y, z)
        if here is not None and abs(self.lane_of(here.across)[1]) <= 1.5 * self.lane_width:
            old = Station(s=float(self.s[self._index0]), across=here.across, yaw_deg=0.0)
            advance = self.distance_along(old, here, here.across)
            ds = here.s - float(self.s[self._index0])
            moved = follow(self.anchor, ds, self.driving) if abs(ds) > MIN_ADVANCE_M else self.anchor
            if moved is not None:
                self.anchor = moved
                left = beside(self.map, self.anchor, -1, self.driving)  # a lane added on the left: anchor on it
                if left is not None:
                    self.anchor = lanes_across(self.map, self.anchor, self.driving)[0]
                self._build()
                return advance
        a = self.anchor.transform
        yaw = math.radians(a.rotation.yaw)
        step = 0.0 if last is None else (x - last[0]) * math.cos(yaw) + (y - last[1]) * math.sin(yaw)
        wp = self.map.get_waypoint(_location(self.anchor, x, y, z), project_to_road=True, lane_type=self.driving)
        if wp is not None:
            self.anchor = lanes_across(self.map, wp, self.driving)[0]
            self._build()
        return step

    def runs_along(self, station: Station, yaw_deg: float) -> bool:
        """True if a lane of direction `yaw_deg` [deg] runs the ego's way at `station`: within 60 degrees of the road
        (a ramp joining it), not the other carriageway nor a road crossing it."""
        return math.cos(math.radians(yaw_deg - station.yaw_deg)) > RUNS_ALONG_COS


def _location(wp: Any, x: float, y: float, z: float | None) -> Any:
    return type(wp.transform.location)(x=x, y=y, z=wp.transform.location.z if z is None else z)
