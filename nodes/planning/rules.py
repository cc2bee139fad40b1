"""A rule planner on the DQN's "lanes" observation: the baseline the learned planner is measured against.

Pure logic (no I/O, no clock): `reset()` at the start of an episode, then `step(obs)` once per replan with
the observation `nodes.planning.observation.build_observation` makes for a "lanes" config (the very input
the DQN gets), returning a meta-action. `act(obs)` is the same behind the planning node's policy interface.

Each replan, in this order:
  1. decode the ego's speed and, for the lanes left of, at and right of the ego, the two vehicles ahead
     and the one behind (gap [m], speed [m/s]);
  2. SLOWER when the own lane's lead is dangerously close for the speed set-point (time headway below
     `urgent_headway` or time-to-collision at the set-point below `urgent_ttc`) and the set-point is above
     the lead's speed: the planner must be safe without the decision layer's following;
  3. a lane change (MOBIL-like) when the ego is not already moving across, and for the better neighbour:
       incentive  progress(new) - progress(own) - politeness * cost(new follower's braking) > change_gain,
                  where progress(lane) = the metres the ego could make in `horizon` seconds behind that
                  lane's leads while keeping `min_gap` + `time_headway` to them (gap + horizon * lead
                  speed - headway: "room and speed ahead"), capped at the top set-point; an optional
                  `edge_penalty` counts a lane at the road's edge as less room (one way out, not two);
       safety     the new leader's gap and the new follower's gap both hold min gap + time gap + the
                  closing term v_close^2 / (2 safe_decel): no one, the ego included, would have to brake
                  harder than `safe_decel` (MOBIL's b_safe). With `anticipation` > 0 a change that is not
                  safe yet but will be within that time (speeds held) is asked too: decision's gap
                  acceptance holds it until the gap opens (with the overrides OFF it would go at once);
       escape     trapped behind a lead slower than the lowest set-point and closing in (the ladder cannot
                  follow it; with the overrides OFF nothing else will), any better lane is taken with
                  `escape_gap_ratio` of the minimum gaps and no reverse cooldown;
       hysteresis `change_gain` is a threshold on the gain, `cooldown` seconds after the ego moved across
                  before any other change, and `reverse_cooldown` seconds before a change back the other
                  way (no ping-pong); a change decision refused (the ego never moved) is asked again;
  4. SLOWER as in 2. with the wider `slower_headway` / `slower_ttc`, when no lane change is taken;
  5. FASTER when the own lane is free enough for the next set-point, else IDLE.

The planner keeps its own copy of decision's set-point ladder (`speed_setpoints`, started at the one nearest
the ego's speed, as `DecisionParams.initial_speed = None` does), moved by its own FASTER / SLOWER; keep the two
ladders equal. Nothing of it is learned; its parameters were chosen on the model-selection episodes only
(`bench/planner.py --selection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import numpy as np

from msgs import Action
from nodes.planning.observation import (
    LANE_FEATURES,
    LANE_ROWS,
    LEAD_GAP_RANGE,
    MAX_SPEED,
    REAR_GAP_RANGE,
    REL_SPEED_RANGE,
)

OBSERVATION_SHAPE = (LANE_ROWS, len(LANE_FEATURES))
_LEFT, _OWN, _RIGHT = 1, 2, 3  # observation rows
_FAR = 0.999  # a normalised gap at or above this is "nothing seen"
LANE_WIDTH = 4.0  # [m] highway-env's; the observation gives the lateral offset in lane widths


class RuleParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Thresholds of `RulePlanner`. Gaps are bumper to bumper."""

    speed_setpoints: tuple[float, ...] = (20.0, 25.0, 30.0)  # [m/s] decision's FASTER/SLOWER ladder (the same)
    horizon: float = 8.0  # [s] look-ahead of a lane's progress (the weight of a lead's speed against its gap)
    min_gap: float = 3.0  # [m] gap kept to a lead at standstill, in the progress estimate
    time_headway: float = 1.0  # [s] headway kept to a lead, in the progress estimate
    second_lead_gap: float = 8.0  # [m] room the first lead takes up in front of the second (length + s0)
    change_gain: float = 20.0  # [m] progress a lane change must gain over staying
    edge_penalty: float = 0.0  # [m] progress taken off a lane at the road's edge (one way out instead of two)
    lanes_count: int = 4  # lanes of the road (highway-v0's): tells from the ego's lane feature where the edges are
    politeness: float = 0.2  # [-] MOBIL p: weight of the new follower's braking, as metres over the horizon
    safe_decel: float = 3.0  # [m/s^2] most braking a change may impose on the new follower or the ego (b_safe)
    front_min_gap: float = 5.0  # [m] gap to the new leader, plus front_time_gap at the ego's speed
    front_time_gap: float = 0.5  # [s]
    rear_min_gap: float = 5.0  # [m] gap to the new follower, plus rear_time_gap at its speed
    rear_time_gap: float = 0.3  # [s]
    # [s] also ask for a change that is not safe yet but will be in this time at the speeds seen: decision's gap
    # acceptance holds it until the gap opens (overrides ON); with the overrides OFF it would be made at once
    anticipation: float = 0.0
    moving_lateral_speed: float = 0.4  # [m/s] above this the ego is moving across (a change under way)
    moving_offset: float = 1.0  # [m] or this far off its lane centre
    escape_ttc: float = 20.0  # [s] trapped: the own lead is slower than the lowest set-point, closing in this soon ...
    escape_gap_ratio: float = 0.25  # [-] ... then any better lane is taken, keeping this share of the minimum gaps
    cooldown: float = 1.0  # [s] after the ego last moved across, before any other lane change
    reverse_cooldown: float = 3.0  # [s] before a lane change opposite to the last one
    urgent_headway: float = 0.5  # [s] SLOWER before any lane change when the own lead is closer than this ...
    urgent_ttc: float = 2.0  # [s] ... or closing in faster than this (time-to-collision at the set-point)
    slower_headway: float = 0.8  # [s] SLOWER, when no lane change is better, below this time headway ...
    slower_ttc: float = 4.0  # [s] ... or this time-to-collision
    faster_headway: float = 1.5  # [s] FASTER only when the own lead is at least this far at the next set-point

    def check(self) -> RuleParams:
        """ValueError naming the first bad field; returns self so it chains. Run by `RulePlanner` and by the
        planning node's `check` (so by `launch --check`)."""
        sp = self.speed_setpoints
        if not sp or sp[0] < 0 or any(b <= a for a, b in zip(sp, sp[1:], strict=False)):
            raise ValueError(f"RuleParams.speed_setpoints must be >= 0 and strictly ascending, got {sp}")
        if self.lanes_count < 1:
            raise ValueError(f"RuleParams.lanes_count must be >= 1, got {self.lanes_count}")
        for name in ("horizon", "safe_decel", "slower_ttc", "urgent_ttc", "escape_ttc", "escape_gap_ratio"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RuleParams.{name} must be finite and > 0, got {value}")
        for name in ("min_gap", "time_headway", "second_lead_gap", "change_gain", "edge_penalty", "politeness",
                     "front_min_gap", "front_time_gap", "rear_min_gap", "rear_time_gap", "anticipation",
                     "moving_lateral_speed", "moving_offset", "cooldown", "reverse_cooldown", "urgent_headway",
                     "slower_headway", "faster_headway"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RuleParams.{name} must be finite and >= 0, got {value}")
        return self


@dataclass(frozen=True)
class Lane:
    """One lane of the observation, in SI units; a vehicle not seen is None."""

    exists: bool
    leads: tuple[tuple[float, float], ...]  # (gap [m], speed [m/s]) of up to two vehicles ahead, nearest first
    rear: tuple[float, float] | None  # (gap [m], speed [m/s]) of the nearest vehicle behind


@dataclass(frozen=True)
class Scene:
    speed: float  # [m/s] the ego's
    lane: float  # the ego's lane index, read back with `lanes_count` lanes
    lateral_offset: float  # [m] from its lane centre
    lateral_speed: float  # [m/s]
    left: Lane
    own: Lane
    right: Lane


def _unit(value: float, low: float, high: float) -> float:
    """The inverse of observation._normalise: [-1, 1] -> [low, high]."""
    return low + (float(value) + 1.0) * (high - low) / 2.0


def decode(obs: np.ndarray, lanes_count: int = 4) -> Scene:
    """The "lanes" observation (see nodes/planning/observation.py) in SI units, on a road of `lanes_count`."""
    obs = np.asarray(obs, dtype=np.float64)
    if obs.shape != OBSERVATION_SHAPE:
        raise ValueError(f"the rule planner reads the 'lanes' observation {OBSERVATION_SHAPE}, got {obs.shape}")
    # Every feature of the observation lies in [-1, 1] by construction; a value beyond (any finite array can be
    # passed in) is clipped to the range rather than decoded into a speed whose square overflows.
    obs = np.clip(obs, -1.0, 1.0)
    speed = _unit(obs[0, 1], 0.0, MAX_SPEED)

    def lane(row: np.ndarray) -> Lane:
        if row[0] <= 0.0:
            return Lane(exists=False, leads=(), rear=None)
        leads = []
        for gap_i, dv_i in ((1, 2), (3, 4)):
            if row[gap_i] >= _FAR:
                break
            leads.append((_unit(row[gap_i], 0.0, LEAD_GAP_RANGE),
                          max(0.0, speed + float(row[dv_i]) * REL_SPEED_RANGE)))
        rear = None
        if row[5] < _FAR:
            rear = (_unit(row[5], 0.0, REAR_GAP_RANGE), max(0.0, speed + float(row[6]) * REL_SPEED_RANGE))
        return Lane(exists=True, leads=tuple(leads), rear=rear)

    # the lateral features' scales are the observation's: offset over +-a lane width, vy over +-REL_SPEED_RANGE / 2
    return Scene(speed=speed, lane=_unit(obs[0, 2], 0.0, max(lanes_count - 1, 1)),
                 lateral_offset=float(obs[0, 3]) * LANE_WIDTH,
                 lateral_speed=float(obs[0, 4]) * REL_SPEED_RANGE / 2.0,
                 left=lane(obs[_LEFT]), own=lane(obs[_OWN]), right=lane(obs[_RIGHT]))


class RulePlanner:
    """Meta-actions from the "lanes" observation by fixed rules (module docstring).

    Args:
        params: thresholds, see `RuleParams`.
        period: [s] time between two `step` calls (the plan period), for the cooldowns.
    """

    observation_shape: tuple[int, ...] = OBSERVATION_SHAPE

    def __init__(self, params: RuleParams | None = None, period: float = 1.0) -> None:
        if not (math.isfinite(period) and period > 0):
            raise ValueError(f"RulePlanner: period must be > 0 s, got {period}")
        self.params = (params or RuleParams()).check()
        self.period = period
        self.reset()

    def reset(self) -> None:
        """Forget the episode: call before its first step."""
        self._setpoint: int | None = None  # index into params.speed_setpoints
        self._since_moved = math.inf  # [s] since the ego was last seen moving across
        self._last_direction = 0  # -1 left, +1 right: the last lane change seen under way
        self._since_direction = math.inf  # [s] since that change was last seen under way
        self.last_reason = ""  # why the last action was chosen (for logs and tests)

    # --- the policy ----------------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        """The planning node's policy interface: (meta-action, no Q-values)."""
        return int(self.step(obs)), []

    def step(self, obs: np.ndarray) -> Action:
        """The meta-action for this replan."""
        p = self.params
        scene = decode(obs, p.lanes_count)
        if self._setpoint is None:
            sp = p.speed_setpoints
            self._setpoint = min(range(len(sp)), key=lambda i: abs(sp[i] - scene.speed))
        self._track_lateral(scene)
        action, self.last_reason = self._choose(scene)
        if action == Action.FASTER:
            self._setpoint = min(self._setpoint + 1, len(p.speed_setpoints) - 1)
        elif action == Action.SLOWER:
            self._setpoint = max(self._setpoint - 1, 0)
        return action

    @property
    def setpoint(self) -> float | None:
        """[m/s] the speed set-point the planner believes decision holds (None before the first step)."""
        return None if self._setpoint is None else self.params.speed_setpoints[self._setpoint]

    def _track_lateral(self, scene: Scene) -> None:
        p = self.params
        self._since_moved += self.period
        self._since_direction += self.period
        if abs(scene.lateral_speed) > p.moving_lateral_speed:
            self._since_moved = 0.0
            self._last_direction = 1 if scene.lateral_speed > 0 else -1
            self._since_direction = 0.0
        elif abs(scene.lateral_offset) > p.moving_offset:
            self._since_moved = 0.0

    def _choose(self, scene: Scene) -> tuple[Action, str]:
        p = self.params
        setpoint = p.speed_setpoints[self._setpoint]
        lead = scene.own.leads[0] if scene.own.leads else None
        slower = (Action.SLOWER, f"lead {lead[0]:.0f} m ahead at {lead[1]:.1f} m/s" if lead else "")
        can_slow = lead is not None and self._setpoint > 0
        if can_slow and self._too_close(scene.speed, setpoint, lead, p.urgent_headway, p.urgent_ttc):
            return slower  # first brake, then look for a way out
        change = self._lane_change(scene)
        if change is not None:
            return change
        if can_slow and self._too_close(scene.speed, setpoint, lead, p.slower_headway, p.slower_ttc):
            return slower
        top = len(p.speed_setpoints) - 1
        if self._setpoint < top:
            nxt = p.speed_setpoints[self._setpoint + 1]
            if lead is None or (lead[1] >= nxt or lead[0] >= p.min_gap + p.faster_headway * nxt):
                return Action.FASTER, f"free ahead for {nxt:.0f} m/s"
        return Action.IDLE, "keep lane and speed"

    @staticmethod
    def _too_close(speed: float, setpoint: float, lead: tuple[float, float], headway: float, ttc: float) -> bool:
        """The set-point would run into the lead: it is above the lead's speed and the gap is short (time
        headway at the ego's speed below `headway` [s], or time-to-collision at the set-point below `ttc` [s])."""
        gap, lead_speed = lead
        if setpoint <= lead_speed:
            return False
        closing = max(speed, setpoint) - lead_speed
        return gap < headway * max(speed, 1.0) or gap < ttc * closing

    # --- lane choice -----------------------------------------------------------------------------------
    def progress(self, lane: Lane, speed: float) -> float:
        """[m] how far the ego could get in `horizon` seconds in `lane`, kept behind its leads."""
        p = self.params
        h = p.horizon
        top = p.speed_setpoints[-1]
        reach = top * h
        for k, (gap, lead_speed) in enumerate(lane.leads):
            behind = gap + lead_speed * h - p.min_gap - p.time_headway * lead_speed - k * p.second_lead_gap
            reach = min(reach, behind)
        return reach

    def follower_braking(self, lane: Lane, speed: float, after: float = 0.0, ratio: float = 1.0) -> float:
        """[m/s^2] how hard the new follower must brake to keep its gap if the ego cut in `after` seconds from
        now, all speeds held, keeping `ratio` times the minimum gap (inf: no room)."""
        p = self.params
        if lane.rear is None:
            return 0.0
        gap, rear_speed = lane.rear
        gap += (speed - rear_speed) * after
        room = gap - ratio * (p.rear_min_gap + p.rear_time_gap * rear_speed)
        if room <= 0:
            return math.inf
        closing = max(0.0, rear_speed - speed)
        return closing**2 / (2.0 * room)

    def ego_braking(self, lane: Lane, speed: float, after: float = 0.0, ratio: float = 1.0) -> float:
        """[m/s^2] how hard the ego must brake behind the new leader if it cut in `after` seconds from now, all
        speeds held, keeping `ratio` times the minimum gap (inf: no room)."""
        p = self.params
        if not lane.leads:
            return 0.0
        gap, lead_speed = lane.leads[0]
        gap += (lead_speed - speed) * after
        room = gap - ratio * (p.front_min_gap + p.front_time_gap * speed)
        if room <= 0:
            return math.inf
        closing = max(0.0, speed - lead_speed)
        return closing**2 / (2.0 * room)

    def incentive(self, lane: Lane, scene: Scene, direction: int, ratio: float = 1.0) -> float:
        """[m] the gain of moving to `lane` (`direction` -1: left, +1: right) over staying, less the politeness
        cost and the edge penalty's change; -inf when unsafe (gaps kept: `ratio` times the minimum ones)."""
        p = self.params
        if not lane.exists:
            return -math.inf
        follower = self.follower_braking(lane, scene.speed, 0.0, ratio)
        if follower > p.safe_decel or self.ego_braking(lane, scene.speed, 0.0, ratio) > p.safe_decel:
            # not safe now; with `anticipation`, asked anyway if it is in that time (decision holds it until then)
            later = p.anticipation
            if later <= 0 or self.follower_braking(lane, scene.speed, later, ratio) > p.safe_decel \
                    or self.ego_braking(lane, scene.speed, later, ratio) > p.safe_decel:
                return -math.inf
            follower = self.follower_braking(lane, scene.speed, later, ratio)
        cost = p.politeness * 0.5 * follower * p.horizon**2
        return self.progress(lane, scene.speed) - self.progress(scene.own, scene.speed) - cost \
            - p.edge_penalty * (self._at_edge(scene.lane + direction) - self._at_edge(scene.lane))

    def _at_edge(self, lane: float) -> bool:
        return round(lane) <= 0 or round(lane) >= self.params.lanes_count - 1

    def trapped(self, scene: Scene) -> bool:
        """The own lead is slower than the lowest set-point and closing in: staying ends in a collision unless
        decision's following brakes for it (not there with the overrides OFF)."""
        p = self.params
        if not scene.own.leads:
            return False
        gap, lead_speed = scene.own.leads[0]
        floor = p.speed_setpoints[0]
        return lead_speed < floor and gap < p.escape_ttc * (floor - lead_speed)

    def _lane_change(self, scene: Scene) -> tuple[Action, str] | None:
        p = self.params
        if self._since_moved < p.cooldown:
            return None
        trapped = self.trapped(scene)
        ratio, threshold = (p.escape_gap_ratio, 0.0) if trapped else (1.0, p.change_gain)
        best: tuple[float, Action, int] | None = None
        for lane, action, direction in ((scene.left, Action.LANE_LEFT, -1), (scene.right, Action.LANE_RIGHT, +1)):
            if direction == -self._last_direction and self._since_direction < p.reverse_cooldown and not trapped:
                continue
            gain = self.incentive(lane, scene, direction, ratio)
            if gain > threshold and (best is None or gain > best[0]):
                best = (gain, action, direction)
        if best is None:
            return None
        return best[1], f"{best[1].name}: {best[0]:.0f} m more progress in {p.horizon:.0f} s"
