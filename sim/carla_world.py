"""Reading a CARLA map's lanes: where a waypoint sits among its road's lanes, where to start, where to spawn.

Duck-typed over CARLA's Waypoint (lane_id, lane_type, lane_width, transform, is_junction, get_left_lane,
get_right_lane, next, previous) so it runs against a real map or the tests' stand-in alike. Lanes that run
the ego's way share the sign of its lane_id (OpenDRIVE numbers lanes outward from the reference line, and
stepping left from lane +-1 crosses to the other carriageway); lane 0 of ours is the leftmost of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_LANES = 16  # a guard against walking a malformed map forever


def _same_way(candidate: Any, wp: Any, driving: Any) -> bool:
    return candidate is not None and candidate.lane_type == driving and candidate.lane_id * wp.lane_id > 0


def lanes_across(wp: Any, driving: Any) -> list[Any]:
    """The driving lanes running `wp`'s way at its station, leftmost first (one waypoint each)."""
    leftmost = wp
    for _ in range(MAX_LANES):
        left = leftmost.get_left_lane()
        if not _same_way(left, wp, driving):
            break
        leftmost = left
    lanes = [leftmost]
    for _ in range(MAX_LANES):
        right = lanes[-1].get_right_lane()
        if not _same_way(right, wp, driving):
            break
        lanes.append(right)
    return lanes


def lane_position(wp: Any, driving: Any) -> tuple[int, int]:
    """(lane index, lanes count) of `wp` among the driving lanes running its way; index 0 is leftmost."""
    left = _lanes_beside(wp, driving, "get_left_lane")
    return left, left + 1 + _lanes_beside(wp, driving, "get_right_lane")


def _lanes_beside(wp: Any, driving: Any, step: str) -> int:
    """Driving lanes running `wp`'s way next to it, walking with `step` (get_left_lane / get_right_lane)."""
    count, here = 0, wp
    for _ in range(MAX_LANES):
        beside = getattr(here, step)()
        if not _same_way(beside, wp, driving):
            break
        count += 1
        here = beside
    return count


def highway_starts(world_map: Any, spawn_points: list[Any], driving: Any, min_lanes: int) -> list[Any]:
    """Waypoints (lane centres) under the map's spawn points that lie on a road with at least `min_lanes`
    lanes running one way and outside junctions: where an ego may start. Map order is kept (determinism)."""
    starts = []
    for transform in spawn_points:
        wp = world_map.get_waypoint(transform.location, project_to_road=True, lane_type=driving)
        if wp is not None and not wp.is_junction and lane_position(wp, driving)[1] >= min_lanes:
            starts.append(wp)
    return starts


def traffic_slots(ego_wp: Any, driving: Any, spacing_m: float, reach_m: float) -> list[Any]:
    """Lane-centre waypoints every `spacing_m` ahead of and behind the ego, up to `reach_m`, on every lane
    running its way; none beside the ego (the closest is `spacing_m` away along the road)."""
    slots = []
    steps = int(reach_m // spacing_m)
    for lane in lanes_across(ego_wp, driving):
        for k in range(1, steps + 1):
            for found in (lane.next(k * spacing_m), lane.previous(k * spacing_m)):
                if found and found[0].lane_type == driving:
                    slots.append(found[0])
    return slots


def pick(rng: np.random.Generator, items: list[Any], n: int) -> list[Any]:
    """`n` distinct items (all if fewer) in the order `rng` draws them."""
    if n <= 0 or not items:
        return []
    return [items[i] for i in rng.choice(len(items), size=min(n, len(items)), replace=False)]
