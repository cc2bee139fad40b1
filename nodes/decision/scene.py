"""The traffic around the ego as the decision layer sees it: pure geometry, no state.

Tracks are kept in world coordinates along the road so that, while perception is stale, the last seen
vehicles can be carried forward at constant speed and re-expressed relative to where the ego is now.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from msgs.types import EgoState, ObjectArray
from nodes.decision.params import DecisionParams


@dataclass(frozen=True)
class Track:
    """One vehicle, in the world frame (x along the road, y across it)."""

    id: int
    x: float  # [m] centre
    y: float  # [m] centre
    vx: float  # [m/s]
    vy: float  # [m/s]
    length: float  # [m]
    width: float  # [m]
    lane_index: int  # -1 when unknown


@dataclass(frozen=True)
class Snapshot:
    """The vehicles of one ObjectArray, fixed in the world at the tick they were received."""

    tick: int
    tracks: tuple[Track, ...]

    @classmethod
    def of(cls, objects: ObjectArray, ego: EgoState, tick: int) -> Snapshot:
        tracks = tuple(
            Track(
                id=o.id, x=ego.x + o.x, y=ego.y + o.y, vx=ego.vx + o.vx, vy=ego.vy + o.vy,
                length=o.length, width=o.width, lane_index=o.lane_index,
            )
            for o in objects.objects
        )
        return cls(tick=tick, tracks=tracks)

    def at(self, tick: int, tick_period: float) -> tuple[Track, ...]:
        """The tracks carried forward to `tick` at constant longitudinal speed (lateral position held)."""
        dt = max(0, tick - self.tick) * tick_period
        if dt == 0:
            return self.tracks
        return tuple(
            Track(t.id, t.x + t.vx * dt, t.y, t.vx, t.vy, t.length, t.width, t.lane_index)
            for t in self.tracks
        )


@dataclass(frozen=True)
class Neighbour:
    """A vehicle relative to the ego: bumper-to-bumper gap and longitudinal speeds."""

    track: Track
    gap: float  # [m] bumper to bumper along the road; negative when overlapping
    speed: float  # [m/s] its longitudinal world speed (>= 0)


def lane_of(track: Track, lane_width: float) -> int:
    """The object's lane: its own lane_index when known, else from its lateral position."""
    if track.lane_index >= 0:
        return track.lane_index
    return int(round(track.y / lane_width))


def in_corridor(track: Track, centre_y: float, ego: EgoState, p: DecisionParams) -> bool:
    """True if the vehicle overlaps (now, or within the cut-in horizon) a corridor as wide as the ego."""
    half = 0.5 * (ego.width + track.width) + p.lateral_margin
    if abs(track.y - centre_y) < half:
        return True
    if abs(track.vy) < p.cut_in_min_lateral_speed:
        return False
    # Moving towards the corridor and reaching it within the horizon.
    y_pred = track.y + track.vy * p.cut_in_horizon
    crosses = (track.y - centre_y) * (y_pred - centre_y) <= 0
    return crosses or abs(y_pred - centre_y) < half


def in_lane(track: Track, lane: int, ego: EgoState, p: DecisionParams) -> bool:
    return lane_of(track, ego.lane_width) == lane or in_corridor(track, lane * ego.lane_width, ego, p)


def neighbour(track: Track, ego: EgoState) -> Neighbour:
    dx = track.x - ego.x
    gap = abs(dx) - 0.5 * (track.length + ego.length)
    return Neighbour(track=track, gap=gap, speed=max(0.0, track.vx))


def leader_and_follower(
    tracks: tuple[Track, ...], ego: EgoState, member: Callable[[Track], bool]
) -> tuple[Neighbour | None, Neighbour | None]:
    """The nearest vehicle ahead (centre at or in front of the ego's) and behind among `member` tracks."""
    ahead = [t for t in tracks if member(t) and t.x >= ego.x]
    behind = [t for t in tracks if member(t) and t.x < ego.x]
    lead = neighbour(min(ahead, key=lambda t: t.x), ego) if ahead else None
    follow = neighbour(max(behind, key=lambda t: t.x), ego) if behind else None
    return lead, follow


def lane_change_refusal(
    lead: Neighbour | None, follow: Neighbour | None, ego: EgoState, p: DecisionParams, ratio: float = 1.0
) -> str | None:
    """Why a lane change with this new leader and follower is unsafe, or None when it is safe.

    Front: gap >= min + v_ego * T_front + max(0, v_ego - v_lead)^2 / (2 b_safe); the rear gap likewise at
    the follower's speed. The last term is what the closing vehicle must brake at b_safe to match speed
    (MOBIL's safe-braking criterion, in closed form). `ratio` scales the requirement (abort checks).
    """
    v = max(0.0, ego.vx)
    if lead is not None:
        closing = max(0.0, v - lead.speed)
        need = ratio * (p.lc_min_front_gap + v * p.lc_front_time_gap + closing**2 / (2 * p.lc_safe_decel))
        if lead.gap < need:
            return f"front gap {lead.gap:.1f} m < {need:.1f} m"
    if follow is not None:
        closing = max(0.0, follow.speed - v)
        headway = follow.speed * p.lc_rear_time_gap
        need = ratio * (p.lc_min_rear_gap + headway + closing**2 / (2 * p.lc_safe_decel))
        if follow.gap < need:
            return f"rear gap {follow.gap:.1f} m < {need:.1f} m"
    return None


@dataclass(frozen=True)
class SpeedCap:
    speed: float  # [m/s] the largest safe target speed behind this lead
    why: str  # which limit binds, for the reason string


def speed_cap(lead: Neighbour, ego: EgoState, p: DecisionParams) -> SpeedCap:
    """The largest target speed that keeps headway, braking distance and TTC to `lead` (IDM-like).

    - headway: v_lead + (gap - s0 - T * v_lead) / tau, which settles at gap = s0 + T * v, and goes no
               lower than v_lead - headway_open_speed (a short headway is opened gently, not by braking
               far below a lead that is not closing in);
    - braking: sqrt(v_lead^2 + 2 b (gap - s0)), stop behind a lead that brakes as hard as we do;
    - TTC:     v_lead + gap / TTC_min.
    """
    s, vl = lead.gap, lead.speed
    headway_error = s - p.min_gap - p.time_headway * vl
    caps = (
        (vl + max(-p.headway_open_speed, headway_error / p.gap_time_constant), "headway"),
        (math.sqrt(max(0.0, vl * vl + 2.0 * p.comfort_decel * max(0.0, s - p.min_gap))), "braking distance"),
        (vl + max(0.0, s) / p.min_ttc, "ttc"),
    )
    v, why = min(caps, key=lambda c: c[0])
    return SpeedCap(speed=max(0.0, v), why=why)


def time_to_collision(lead: Neighbour, ego: EgoState) -> float:
    """[s] gap / closing speed; inf when not closing, 0 when already overlapping."""
    if lead.gap <= 0:
        return 0.0
    closing = ego.vx - lead.speed
    return lead.gap / closing if closing > 1e-6 else math.inf


def required_decel(lead: Neighbour, ego: EgoState, p: DecisionParams) -> float:
    """[m/s^2] constant braking that brings the closing speed to 0 at `emergency_stop_gap`."""
    closing = ego.vx - lead.speed
    if closing <= 0:
        return 0.0
    room = lead.gap - p.emergency_stop_gap
    return math.inf if room <= 1e-3 else closing**2 / (2.0 * room)
