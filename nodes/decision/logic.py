"""The decision layer's pure logic: meta-action -> safe driving target. No I/O, no clock.

Call `step` once per control tick with the ego state and whatever arrived for that tick:

    logic = DecisionLogic(DecisionParams())
    target = logic.step(tick, ego, objects, plan)              # lockstep / in-process: everything fresh
    target = logic.step(tick, ego, None, None, objects_tick=k1, plan_tick=k2)   # real time, nothing new

Pass each received message once; pass None when nothing new arrived and give the tick of the last one
received (`objects_tick`, `plan_tick`), so that the watchdog can age it. When a message is passed without
its tick, it counts as received at `tick`. An empty road is `ObjectArray(objects=[])`, not None.

A new meta-action is applied only when `plan.replanned` is True (once per replan); the plan republished
between replans only keeps the watchdog fed. Lane changes move the target lane by one (lane 0 is the
left/top lane), at most one lane away from the ego's, and hold it until reached; FASTER / SLOWER step
through `speed_setpoints`.

Safety, when `params.overrides` is on (modes in priority order, `msgs.MODE_PRIORITY`, highest first):
  MINIMAL_RISK  (watchdog, on even without overrides) perception or plan stale: hold the current lane and
                ramp the target speed down at `mrm_decel`; back to normal when both are fresh again;
  EMERGENCY     TTC to a vehicle in the ego's path below `emergency_ttc` (or avoiding it needs more than
                `emergency_required_decel`): target speed <= the lead's, `max_decel` > 0;
  OVERRIDE      lane change refused or aborted (gap acceptance);
  FOLLOWING     speed capped behind a slower lead (adaptive cruise: part of normal driving);
  NOMINAL       the plan as asked.
MINIMAL_RISK, EMERGENCY and OVERRIDE are interventions; `params.interventions = False` turns the last two
off and keeps FOLLOWING (the planner then drives on its own, with adaptive cruise). Each reason is
"kind: details" with a fixed kind ("lane change refused", "lane change aborted", "emergency brake",
"speed capped", "minimal risk"), so reasons group by kind.
"""

from __future__ import annotations

import math

import msgspec

from msgs.limits import bounded_ego, bounded_objects
from msgs.types import MODE_PRIORITY, Action, DrivingTarget, EgoState, Mode, ObjectArray, Plan
from nodes.decision.params import DecisionParams
from nodes.decision.scene import (
    Snapshot,
    Track,
    in_corridor,
    in_lane,
    lane_change_refusal,
    leader_and_follower,
    neighbour,
    required_decel,
    speed_cap,
    time_to_collision,
)

__all__ = ["DecisionLogic", "DecisionParams"]

_LANE_DELTA = {Action.LANE_LEFT: -1, Action.LANE_RIGHT: +1}


class DecisionLogic:
    """Turns the planner's meta-actions into a safe `DrivingTarget`, one control tick at a time.

    Args:
        params: every threshold, see `DecisionParams`.
    """

    def __init__(self, params: DecisionParams | None = None) -> None:
        self.params = (params if params is not None else DecisionParams()).check()  # a field set after it was made
        self.reset()

    def reset(self) -> None:
        """Forget everything: call at the start of each episode."""
        self._lane: int | None = None  # target lane
        self._speed_index: int | None = None  # into params.speed_setpoints
        self._lc_source: int | None = None  # lane an accepted, unfinished lane change started from
        self._pending_lane: int | None = None  # refused lane change of the held plan
        self._plan_action: int = Action.IDLE
        self._snapshot: Snapshot | None = None
        self._objects_tick: int | None = None
        self._plan_tick: int | None = None
        self._mrm_speed: float | None = None  # minimal-risk target speed; None outside MINIMAL_RISK
        self._emergency = False

    # ------------------------------------------------------------------------------------------------
    def step(
        self,
        tick: int,
        ego: EgoState,
        objects: ObjectArray | None,
        plan: Plan | None,
        objects_tick: int | None = None,
        plan_tick: int | None = None,
    ) -> DrivingTarget:
        """The driving target for control tick `tick`.

        Args:
            tick: the current control tick.
            ego: the ego state of this tick.
            objects: vehicles relative to the ego received this tick, or None when nothing new arrived.
            plan: the plan received this tick, or None when nothing new arrived.
            objects_tick: tick the latest objects were received at (None: `tick` if `objects` is given,
                else the last one this logic saw; never received at all means stale).
            plan_tick: the same for the plan.
        """
        p = self.params
        # Physically meaningless values (a speed of 1e308 m/s, a lane width <= 0) are clamped into the
        # envelope of msgs.limits first, so that no gap, TTC or speed cap overflows or turns NaN; values
        # inside it pass unchanged.
        ego = bounded_ego(ego)
        if objects is not None:
            bounded = bounded_objects(objects.objects)
            if bounded is not objects.objects:
                objects = msgspec.structs.replace(objects, objects=bounded)
        if self._lane is not None and self._lane > ego.lanes_count - 1:  # the road has fewer lanes than it had
            self._lane = ego.lanes_count - 1
            self._pending_lane = None
        if self._lane is None:
            self._lane = min(max(ego.lane_index, 0), ego.lanes_count - 1)
            self._speed_index = self._nearest_setpoint(p.initial_speed if p.initial_speed is not None
                                                       else ego.speed)
        if objects is not None:
            self._snapshot = Snapshot.of(objects, ego, tick)
            self._objects_tick = objects_tick if objects_tick is not None else tick
        elif objects_tick is not None and self._snapshot is not None:
            self._objects_tick = objects_tick
        if plan is not None:
            self._plan_tick = plan_tick if plan_tick is not None else tick
        elif plan_tick is not None and self._plan_tick is not None:
            self._plan_tick = plan_tick
        tracks = self._snapshot.at(tick, p.tick_period) if self._snapshot is not None else ()

        reasons: list[tuple[Mode, str]] = []
        stale = self._stale(tick) if p.watchdog else ""
        if plan is not None:
            if plan.action not in Action._value2member_map_:
                raise ValueError(f"plan.action {plan.action} is not an Action (0..{len(Action) - 1})")
            self._plan_action = plan.action
            if plan.replanned:
                self._apply(Action(plan.action), ego, minimal_risk=bool(stale))
        if self._lane == ego.lane_index:
            self._lc_source = None
        elif self._lc_source is None:
            # Out of the target lane with no change under way: a lane change reversed (or aborted) late,
            # which the lateral controller's rate limits carry over the lane line before turning back.
            # Heading back is a lane change from here, and its gap can close like any other.
            self._lc_source = ego.lane_index
        if stale:
            self._enter_minimal_risk(ego)
            reasons.append((Mode.MINIMAL_RISK, f"minimal risk: {stale}"))
        else:
            self._mrm_speed = None
            if p.overrides and p.interventions:
                reasons += self._check_lane_change(ego, tracks)
            elif self._pending_lane is not None:
                self._accept(self._pending_lane, ego)

        target = p.speed_setpoints[self._speed_index]
        if self._mrm_speed is not None:
            target = min(target, self._mrm_speed)
        max_decel = 0.0
        if p.overrides:
            target, max_decel, more = self._longitudinal(ego, tracks, target)
            reasons += more
        else:
            self._emergency = False

        reasons.sort(key=lambda r: -MODE_PRIORITY.index(r[0]))
        return DrivingTarget(
            header=ego.header,
            target_lane=self._lane,
            target_speed=float(target),
            mode=int(reasons[0][0]) if reasons else int(Mode.NOMINAL),
            reason="; ".join(r for _, r in reasons),
            plan_action=int(self._plan_action),
            max_decel=float(max_decel),
        )

    # --- meta-actions --------------------------------------------------------------------------------
    def _nearest_setpoint(self, speed: float) -> int:
        sp = self.params.speed_setpoints
        return min(range(len(sp)), key=lambda i: abs(sp[i] - speed))

    def _apply(self, action: Action, ego: EgoState, minimal_risk: bool) -> None:
        """A freshly chosen meta-action: applied once, here."""
        self._pending_lane = None
        n = len(self.params.speed_setpoints)
        if action == Action.FASTER:
            self._speed_index = min(self._speed_index + 1, n - 1)
        elif action == Action.SLOWER:
            self._speed_index = max(self._speed_index - 1, 0)
        elif action in _LANE_DELTA and not minimal_risk:
            new = min(max(self._lane + _LANE_DELTA[action], 0), ego.lanes_count - 1)
            # At the road's edge the action does nothing (as in highway-env); one lane at a time: a second
            # change the same way waits until the ego has crossed into the lane it is heading for.
            if new != self._lane and abs(new - ego.lane_index) <= 1:
                self._pending_lane = new  # checked (or accepted) by the per-tick lane-change logic

    def _accept(self, lane: int, ego: EgoState) -> None:
        self._lane = lane
        self._lc_source = ego.lane_index if ego.lane_index != lane else None
        self._pending_lane = None

    # --- lane changes --------------------------------------------------------------------------------
    def _gap_refusal(self, lane: int, ego: EgoState, tracks: tuple[Track, ...], ratio: float) -> str | None:
        p = self.params
        lead, follow = leader_and_follower(tracks, ego, lambda t: in_lane(t, lane, ego, p))
        return lane_change_refusal(lead, follow, ego, p, ratio)

    def _check_lane_change(self, ego: EgoState, tracks: tuple[Track, ...]) -> list[tuple[Mode, str]]:
        p = self.params
        if self._pending_lane is not None:
            why = self._gap_refusal(self._pending_lane, ego, tracks, 1.0)
            if why is None:
                self._accept(self._pending_lane, ego)
                return []
            if not p.lc_retry:
                self._pending_lane = None
            return [(Mode.OVERRIDE, f"lane change refused: {why}")]
        if p.lc_abort and self._lc_source is not None and ego.lane_index == self._lc_source:
            why = self._gap_refusal(self._lane, ego, tracks, p.lc_abort_gap_ratio)
            if why is not None:
                self._lane, self._lc_source = ego.lane_index, None
                return [(Mode.OVERRIDE, f"lane change aborted: {why}")]
        return []

    # --- watchdog ------------------------------------------------------------------------------------
    def _stale(self, tick: int) -> str:
        """Why the inputs are stale ('' when fresh)."""
        p = self.params
        why = []
        for name, last, limit in (
            ("perception", self._objects_tick, p.objects_stale_ticks),
            ("plan", self._plan_tick, p.plan_stale_ticks),
        ):
            if last is None:
                why.append(f"no {name}")
            elif tick - last > limit:
                why.append(f"{name} stale {tick - last} ticks > {limit}")
        return ", ".join(why)

    def _enter_minimal_risk(self, ego: EgoState) -> None:
        p = self.params
        if self._mrm_speed is None:  # entering: hold the lane the ego is in, start from its speed
            self._lane = ego.lane_index
            self._lc_source = None
            self._pending_lane = None
            self._mrm_speed = min(max(ego.speed, 0.0), p.speed_setpoints[self._speed_index])
        self._mrm_speed = max(p.mrm_min_speed, self._mrm_speed - p.mrm_decel * p.tick_period)

    # --- longitudinal --------------------------------------------------------------------------------
    def _longitudinal(
        self, ego: EgoState, tracks: tuple[Track, ...], target: float
    ) -> tuple[float, float, list[tuple[Mode, str]]]:
        """Cap `target` behind every vehicle in the ego's path; brake hard when one is too close."""
        p = self.params

        def in_path(t: Track) -> bool:
            return (
                in_corridor(t, ego.y, ego, p)
                or in_lane(t, ego.lane_index, ego, p)
                or in_lane(t, self._lane, ego, p)
            )

        leads = [neighbour(t, ego) for t in tracks if t.x >= ego.x and in_path(t)]
        reasons: list[tuple[Mode, str]] = []
        if not leads:
            self._emergency = False
            return target, 0.0, reasons

        caps = [(speed_cap(lead, ego, p), lead) for lead in leads]
        cap, capped_by = min(caps, key=lambda c: c[0].speed)
        if cap.speed < target:
            if cap.speed < target - p.speed_cap_tolerance:
                reasons.append((
                    Mode.FOLLOWING,
                    f"speed capped: {target:.1f} -> {cap.speed:.1f} m/s, {cap.why}, "
                    f"vehicle {capped_by.track.id} {capped_by.gap:.1f} m ahead",
                ))
            target = cap.speed

        if not p.interventions:
            self._emergency = False
            return target, 0.0, reasons
        ttc_limit = p.emergency_ttc_exit if self._emergency else p.emergency_ttc
        decel_limit = p.emergency_exit_decel if self._emergency else p.emergency_required_decel
        worst, worst_ttc, worst_decel = None, math.inf, 0.0
        for lead in leads:
            ttc, need = time_to_collision(lead, ego), required_decel(lead, ego, p)
            if (ttc < ttc_limit or need > decel_limit) and (worst is None or ttc < worst_ttc):
                worst, worst_ttc, worst_decel = lead, ttc, need
        self._emergency = worst is not None
        if worst is None:
            return target, 0.0, reasons
        asked = worst_decel * p.emergency_decel_margin
        max_decel = min(p.emergency_max_decel, max(p.emergency_min_decel, asked))
        why = (
            f"TTC {worst_ttc:.1f} s < {ttc_limit:.1f} s" if worst_ttc < ttc_limit
            else f"needs {worst_decel:.1f} m/s^2 > {decel_limit:.1f}"
        )
        where = f"vehicle {worst.track.id} {worst.gap:.1f} m ahead"
        reasons.append((Mode.EMERGENCY, f"emergency brake: {why}, {where}"))
        return min(target, worst.speed), max_decel, reasons
