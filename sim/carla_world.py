"""Reading a CARLA map's lanes: the driving lanes beside a waypoint, where to start, where to spawn traffic.

Duck-typed over CARLA's Map (get_waypoint) and Waypoint (road_id, lane_id, lane_type, lane_width, transform,
is_junction, get_left_lane, get_right_lane, next, previous), so it runs against a real map (a server's, or one
built client-side with `carla.Map(name, opendrive_text)`) or the tests' stand-in alike.

Lanes beside. Within one road, OpenDRIVE numbers lanes outward from the reference line and a lane runs the ego's
way when its lane_id has the same sign (stepping left from lane +-1 crosses to the other carriageway). But on a
real map a carriageway's lanes are not always one road: in Town04's junctions the rightmost lane is a road of its
own, beside a lane of type NONE, so `get_right_lane()` finds no driving lane there. So a neighbour is taken from
the road's own lanes when it has one, else (no lane there, or a lane of type NONE) from the map at one lane width
to that side: a driving lane whose centre sits there and which runs the same way (by direction, not lane_id, as the
lane ids of two roads are unrelated). A shoulder ends the carriageway: the ramp lane that runs beyond it for a
while at an exit is not one of the highway's lanes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_LANES = 16  # a guard against walking a malformed map forever
SAME_WAY_COS = math.cos(math.radians(30.0))  # two lanes run the same way if their directions differ by < 30 deg
LANE_FIT = 0.25  # a lane found by position must have its centre within this share of a lane width of the probe


def _unit(yaw_deg: float) -> tuple[float, float]:
    yaw = math.radians(yaw_deg)
    return math.cos(yaw), math.sin(yaw)


def same_way(yaw_a_deg: float, yaw_b_deg: float) -> bool:
    """True if two directions [deg] differ by less than 30 degrees."""
    return math.cos(math.radians(yaw_a_deg - yaw_b_deg)) > SAME_WAY_COS


def is_hole(lane_type: Any) -> bool:
    """True for OpenDRIVE's lane type "none": a lane of no kind, where another road's lane may lie."""
    return str(getattr(lane_type, "name", lane_type)) == "NONE"


def beside(world_map: Any, wp: Any, side: int, driving: Any) -> Any:
    """The driving lane running `wp`'s way next to it on `side` (-1 left, +1 right), as a waypoint at the same
    station, or None. From `wp`'s road when it has one there, else found on the map by position (see above)."""
    lane = wp.get_left_lane() if side < 0 else wp.get_right_lane()
    if lane is not None and lane.lane_id * wp.lane_id > 0:
        if lane.lane_type == driving:
            return lane
        if not is_hole(lane.lane_type):
            return None  # a shoulder, a border, a sidewalk: the carriageway's edge (a ramp may lie beyond it)
    c, yaw = wp.transform.location, wp.transform.rotation.yaw
    fx, fy = _unit(yaw)
    rx, ry = -fy, fx  # to the right (CARLA's plan: y to the right of x)
    width = float(wp.lane_width)
    probe = type(c)(x=c.x + side * width * rx, y=c.y + side * width * ry, z=c.z)
    found = world_map.get_waypoint(probe, project_to_road=False, lane_type=driving)
    if found is not None and (found.road_id, found.lane_id) != (wp.road_id, wp.lane_id) \
            and same_way(found.transform.rotation.yaw, yaw):
        f = found.transform.location
        across = (f.x - c.x) * rx + (f.y - c.y) * ry
        along = (f.x - c.x) * fx + (f.y - c.y) * fy
        expected = side * 0.5 * (width + float(found.lane_width))
        if abs(across - expected) <= LANE_FIT * width and abs(along) <= LANE_FIT * width:
            return found
    # Town04's junctions where the rightmost lane only exits: the through lane is a paved lane of type NONE
    # (no markings, no lane to follow) for some 20 m. It is still one of the carriageway's lanes.
    return lane if lane is not None and wp.is_junction and lane.lane_id * wp.lane_id > 0 else None


def follow(wp: Any, distance: float, driving: Any) -> Any:
    """The driving-lane waypoint `distance` [m] ahead (behind if negative) on `wp`'s lane; where the lane branches,
    the branch that turns least (on a highway, the through lane rather than an exit). None at a dead end."""
    found = wp.next(distance) if distance > 0 else wp.previous(-distance)
    found = [c for c in found if c.lane_type == driving]
    if not found:
        return None
    yaw = wp.transform.rotation.yaw
    return max(found, key=lambda c: math.cos(math.radians(c.transform.rotation.yaw - yaw)))


def lanes_across(world_map: Any, wp: Any, driving: Any) -> list[Any]:
    """The driving lanes running `wp`'s way at its station, leftmost first (one waypoint each; in a junction, a
    lane of type NONE where a through lane has no markings, see `beside`)."""
    leftmost = wp
    for _ in range(MAX_LANES):
        left = beside(world_map, leftmost, -1, driving)
        if left is None:
            break
        leftmost = left
    lanes = [leftmost]
    for _ in range(MAX_LANES):
        right = beside(world_map, lanes[-1], +1, driving)
        if right is None:
            break
        lanes.append(right)
    return lanes


def lane_position(world_map: Any, wp: Any, driving: Any) -> tuple[int, int]:
    """(lane index, lanes count) of `wp` among the driving lanes running its way; index 0 is leftmost."""
    left = 0
    here = wp
    for _ in range(MAX_LANES):
        here = beside(world_map, here, -1, driving)
        if here is None:
            break
        left += 1
    right = 0
    here = wp
    for _ in range(MAX_LANES):
        here = beside(world_map, here, +1, driving)
        if here is None:
            break
        right += 1
    return left, left + 1 + right


def highway_starts(world_map: Any, spawn_points: list[Any], driving: Any, min_lanes: int) -> list[Any]:
    """Waypoints (lane centres) under the map's spawn points that lie on a road with at least `min_lanes`
    lanes running one way and outside junctions: where an ego may start. Map order is kept (determinism)."""
    starts = []
    for transform in spawn_points:
        wp = world_map.get_waypoint(transform.location, project_to_road=True, lane_type=driving)
        if wp is not None and not wp.is_junction and lane_position(world_map, wp, driving)[1] >= min_lanes:
            starts.append(wp)
    return starts


def traffic_slots(world_map: Any, ego_wp: Any, driving: Any, spacing_m: float, reach_m: float) -> list[Any]:
    """Lane-centre waypoints every `spacing_m` ahead of and behind the ego, up to `reach_m`, on every lane
    running its way; none beside the ego (the closest is `spacing_m` away along the road)."""
    slots = []
    steps = int(reach_m // spacing_m)
    for lane in lanes_across(world_map, ego_wp, driving):
        if lane.lane_type != driving:
            continue
        for k in range(1, steps + 1):
            for found in (follow(lane, k * spacing_m, driving), follow(lane, -k * spacing_m, driving)):
                if found is not None:
                    slots.append(found)
    return slots


def pick(rng: np.random.Generator, items: list[Any], n: int) -> list[Any]:
    """`n` distinct items (all if fewer) in the order `rng` draws them."""
    if n <= 0 or not items:
        return []
    return [items[i] for i in rng.choice(len(items), size=min(n, len(items)), replace=False)]
