"""Closed-loop metrics of one episode, from ground truth: pure functions of an `EpisodeTrace`.

`episode_metrics(trace)` gives one flat row (keys carry their unit: _m, _mps, _s, _ms, ...; counts have
none; fractions are *_ratio). `aggregate(rows)` (evaluation.aggregate) turns rows into means with 95% intervals.

Conventions:
- Every tick of the trace (tick 0 included) counts for one control period DT_S in time-based figures
  ("time below", ratios). Rewards: the rewards of ticks 1.. (tick 0 answers no step) over the duration.
- Lead vehicle: the nearest ground-truth vehicle ahead (x > 0) in the ego's lane (its lane_index; or
  |y| < lane_width / 2 when it has none). Gap = bumper to bumper. TTC = gap / closing speed where closing;
  TTC and time headway (gap / ego speed) are capped at `ttc_horizon_s` (also when there is no lead).
- Comfort, as nuPlan computes it: derivatives by a Savitzky-Golay filter (quadratic, `comfort_window`
  ticks). Longitudinal acceleration = d(speed)/dt; yaw rate = d(heading)/dt; lateral acceleration =
  speed * yaw rate (= speed^2 * curvature of the path); jerks and yaw acceleration are the next
  derivative; "jerk" is d|a|/dt of the acceleration magnitude (nuPlan's ego_jerk).
- Lateral error: distance from the centre of the lane the ego is in (EgoState.lateral_offset); a lane
  change adds up to half a lane width while it crosses.
- Perception: detections and ground truth compared per tick as axis-aligned length x width boxes in the
  ego frame, greedy by score at IoU >= iou_min. A vehicle fully in the camera view and missed is a false
  negative; a detection matching nothing is a false positive; one matching a vehicle only partly in view
  is neither. Ticks where either stream is missing are not scored.
- Loop latency: per tick, wall time from /sim/ego of tick k to /control/cmd of tick k as received.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.aggregate import aggregate
from evaluation.stats import savgol_derivative
from evaluation.trace import DT_S, EpisodeTrace
from msgs import EgoState, Mode, Object, ObjectArray
from nodes.perception.metrics import match  # the one greedy IoU matching: perception's


@dataclass(frozen=True)
class ComfortBounds:
    """nuPlan's comfort limits (nuplan-devkit ego_is_comfortable)."""

    lon_accel_min: float = -4.05  # [m/s^2]
    lon_accel_max: float = 2.40  # [m/s^2]
    lon_jerk_max_abs: float = 4.13  # [m/s^3]
    lat_accel_max_abs: float = 4.89  # [m/s^2]
    jerk_max_abs: float = 8.37  # [m/s^3] of the acceleration magnitude
    yaw_rate_max_abs: float = 0.95  # [rad/s]
    yaw_accel_max_abs: float = 1.93  # [rad/s^2]


@dataclass(frozen=True)
class MetricParams:
    """Thresholds of the per-episode metrics."""

    ttc_threshold_s: float = 1.5  # [s] time with TTC below this is counted
    headway_threshold_s: float = 1.0  # [s] time with time headway below this is counted
    ttc_horizon_s: float = 10.0  # [s] cap of TTC and headway (also their value with no closing lead)
    min_speed_headway_mps: float = 0.5  # [m/s] below this ego speed, headway is not defined (not counted)
    lane_hold_s: float = 0.5  # [s] a lane change counts once the ego stays in the new lane this long
    comfort_window: int = 7  # [ticks] Savitzky-Golay window of the comfort derivatives (odd; <3: plain)
    comfort: ComfortBounds = field(default_factory=ComfortBounds)
    iou_min: float = 0.5  # box IoU for a detection to match a ground-truth vehicle
    deadline_s: float = DT_S  # [s] loop latency above this is a deadline miss


DEFAULT_PARAMS = MetricParams()


def episode_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS,
                    series: bool = True) -> dict[str, Any]:
    """One row of metrics for `trace`. With `series`, row["series"] holds per-tick lists for the report's
    over-time plots (t_s, speed_mps, lateral_error_m, ttc_s); tables and aggregates leave it out."""
    if not trace.ego:
        raise ValueError(f"episode {trace.episode}: no /sim/ego ticks, nothing to measure")
    row: dict[str, Any] = {"episode": trace.episode, "seed": trace.seed, "end_reason": trace.end_reason}
    row |= motion_metrics(trace, params)
    row |= collision_metrics(trace)
    leads = lead_series(trace)
    row |= lead_metrics(trace, params, leads)
    row |= comfort_metrics(trace, params)
    row |= decision_metrics(trace)
    row |= perception_metrics(trace, params)
    row |= latency_metrics(trace, params)
    if series:
        ttc = [min(ttc_of(gap, closing), params.ttc_horizon_s) for gap, closing in leads]
        row["series"] = {"t_s": trace.t_s.tolist(), "speed_mps": [e.speed for e in trace.ego],
                         "lateral_error_m": [e.lateral_offset for e in trace.ego], "ttc_s": ttc}
    return row


# --- driving ---------------------------------------------------------------------------------------------

def motion_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS) -> dict[str, Any]:
    ego = trace.ego
    duration = trace.steps * DT_S
    rewards = [e.reward for e in ego[1:]]
    offsets = np.array([e.lateral_offset for e in ego])
    rightmost = ego[0].lanes_count - 1
    return {
        "ticks": trace.steps,
        "duration_s": duration,
        "distance_m": ego[-1].x - ego[0].x,  # progress along the road
        "mean_speed_mps": float(np.mean([e.speed for e in ego])),
        "reward_per_s": sum(rewards) / duration if duration > 0 else None,
        "reward_mean_ratio": float(np.mean(rewards)) if rewards else None,
        "right_lane_ratio": float(np.mean([e.lane_index == rightmost for e in ego])),
        "lane_changes": count_lane_changes([e.lane_index for e in ego],
                                           max(1, round(params.lane_hold_s / DT_S))),
        "lateral_error_rms_m": float(np.sqrt(np.mean(offsets**2))),
        "lateral_error_max_m": float(np.abs(offsets).max()),
    }


def count_lane_changes(lanes: list[int], hold_ticks: int) -> int:
    """Lanes moved across, counting a move once the new lane has held for `hold_ticks` ticks (or until the
    episode ends): wobbling over a lane line is not a lane change; a double change counts 2."""
    runs: list[tuple[int, int]] = []  # (lane, length)
    for lane in lanes:
        if runs and runs[-1][0] == lane:
            runs[-1] = (lane, runs[-1][1] + 1)
        else:
            runs.append((lane, 1))
    if not runs:
        return 0
    settled, changes = runs[0][0], 0
    for k, (lane, length) in enumerate(runs[1:], start=1):
        if lane != settled and (length >= hold_ticks or k == len(runs) - 1):
            changes += abs(lane - settled)
            settled = lane
    return changes


def collision_metrics(trace: EpisodeTrace) -> dict[str, Any]:
    """Whether the ego crashed, into whom (ground-truth id, -1 for none or unknown) and how:
    "rear_end" (into a vehicle ahead), "rear_ended" (hit from behind) or "side"."""
    crash = next((i for i, e in enumerate(trace.ego) if e.crashed), None)
    collision = crash is not None or trace.end_reason == "collision"
    out: dict[str, Any] = {"collision": collision, "offroad": trace.end_reason == "offroad"
                           or not trace.ego[-1].on_road, "collision_with": -1, "collision_kind": "",
                           "collision_rel_speed_mps": None}
    if not collision:
        return out
    i = len(trace.ego) - 1 if crash is None else crash
    scene = trace.objects_gt[i]
    if scene is None or not scene.objects:
        return out
    ego = trace.ego[i]
    other, kind = collision_partner(ego, scene.objects)
    out["collision_with"], out["collision_kind"] = other.id, kind
    before = trace.objects_gt[i - 1] if i > 0 else None  # relative speed just before the impact
    prior = next((o for o in before.objects if o.id == other.id), other) if before is not None else other
    out["collision_rel_speed_mps"] = math.hypot(prior.vx, prior.vy)
    return out


def collision_partner(ego: EgoState, objects: list[Object]) -> tuple[Object, str]:
    """The vehicle the ego hit: the one whose box overlaps the ego's most, else the nearest box. The contact
    is longitudinal (rear end) when the overlap along the road is no deeper than across it, relative to
    the combined half sizes (an exact tie counts as rear end), else a side impact."""
    best: tuple[float, float, Object, float, float] | None = None
    for o in objects:
        half_l, half_w = (ego.length + o.length) / 2, (ego.width + o.width) / 2
        ox, oy = half_l - abs(o.x), half_w - abs(o.y)  # overlap (negative: gap) along and across the road
        if ox > 0 and oy > 0:
            key = (0.0, -ox * oy)  # overlapping first, most overlap first
        else:
            key = (math.hypot(max(-ox, 0.0), max(-oy, 0.0)), math.hypot(o.x, o.y))
        if best is None or key < best[:2]:
            best = (*key, o, ox / half_l, oy / half_w)
    assert best is not None
    _, _, other, px, py = best
    if px <= py:
        return other, "rear_end" if other.x > 0 else "rear_ended"
    return other, "side"


# --- lead vehicle: time to collision and headway ---------------------------------------------------------

def lead_gap(ego: EgoState, scene: ObjectArray | None) -> tuple[float, float] | None:
    """(gap [m] bumper to bumper, closing speed [m/s], > 0 when closing) to the lead in the ego's lane."""
    if scene is None:
        return None
    best: tuple[float, float] | None = None
    for o in scene.objects:
        same_lane = o.lane_index == ego.lane_index if o.lane_index >= 0 else abs(o.y) < ego.lane_width / 2
        if o.x <= 0 or not same_lane:
            continue
        gap = o.x - (ego.length + o.length) / 2
        if best is None or gap < best[0]:
            best = (gap, -o.vx)
    return best


def ttc_of(gap: float, closing: float) -> float:
    """[s] time to collision: 0 when the boxes touch, inf when not closing."""
    if gap <= 0:
        return 0.0
    return gap / closing if closing > 0 else math.inf


def lead_series(trace: EpisodeTrace) -> list[tuple[float, float]]:
    """Per tick (gap, closing speed); (inf, 0) with no lead or no ground truth."""
    return [lead_gap(e, s) or (math.inf, 0.0) for e, s in zip(trace.ego, trace.objects_gt, strict=True)]


def lead_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS,
                 leads: list[tuple[float, float]] | None = None) -> dict[str, Any]:
    leads = lead_series(trace) if leads is None else leads
    cap = params.ttc_horizon_s
    ttc = np.array([min(ttc_of(g, c), cap) for g, c in leads])
    headway = np.array([min(max(g, 0.0) / e.speed, cap) if e.speed >= params.min_speed_headway_mps else np.nan
                        for e, (g, _) in zip(trace.ego, leads, strict=True)])
    has_headway = np.isfinite(headway)
    return {
        "min_ttc_s": float(ttc.min()),
        "time_ttc_below_s": int((ttc < params.ttc_threshold_s).sum()) * DT_S,
        "min_headway_s": float(headway[has_headway].min()) if has_headway.any() else cap,
        "time_headway_below_s": int((headway[has_headway] < params.headway_threshold_s).sum()) * DT_S,
    }


# --- comfort -------------------------------------------------------------------------------------------

def comfort_series(trace: EpisodeTrace, window: int = DEFAULT_PARAMS.comfort_window) -> dict[str, np.ndarray]:
    """Per-tick kinematics by Savitzky-Golay derivatives (see the module docstring)."""
    speed = np.array([e.speed for e in trace.ego])
    heading = np.unwrap(np.array([e.heading for e in trace.ego]))

    def d(y: np.ndarray) -> np.ndarray:  # rounded like nuPlan, so a constant series reads exactly 0
        return np.round(savgol_derivative(y, DT_S, window), 8) + 0.0  # + 0.0: no -0.0 in the tables

    lon_accel, yaw_rate = d(speed), d(heading)
    lat_accel = speed * yaw_rate
    return {"lon_accel": lon_accel, "lon_jerk": d(lon_accel), "lat_accel": lat_accel,
            "lat_jerk": d(lat_accel), "jerk": d(np.hypot(lon_accel, lat_accel)), "yaw_rate": yaw_rate,
            "yaw_accel": d(yaw_rate)}


def comfort_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Extremes of each comfort quantity; comfort_ratio: fraction of ticks within every bound;
    comfortable: every tick within every bound."""
    s, b = comfort_series(trace, params.comfort_window), params.comfort
    within = ((s["lon_accel"] >= b.lon_accel_min) & (s["lon_accel"] <= b.lon_accel_max)
              & (np.abs(s["lon_jerk"]) <= b.lon_jerk_max_abs)
              & (np.abs(s["lat_accel"]) <= b.lat_accel_max_abs)
              & (np.abs(s["jerk"]) <= b.jerk_max_abs) & (np.abs(s["yaw_rate"]) <= b.yaw_rate_max_abs)
              & (np.abs(s["yaw_accel"]) <= b.yaw_accel_max_abs))

    def peak(name: str) -> float:
        return float(np.abs(s[name]).max())

    return {
        "lon_accel_min_mps2": float(s["lon_accel"].min()),
        "lon_accel_max_mps2": float(s["lon_accel"].max()),
        "lon_jerk_max_abs_mps3": peak("lon_jerk"),
        "lat_accel_max_abs_mps2": peak("lat_accel"),
        "lat_jerk_max_abs_mps3": peak("lat_jerk"),
        "jerk_max_abs_mps3": peak("jerk"),
        "yaw_rate_max_abs_radps": peak("yaw_rate"),
        "yaw_accel_max_abs_radps2": peak("yaw_accel"),
        "comfort_ratio": float(within.mean()),
        "comfortable": bool(within.all()),
    }


# --- decision --------------------------------------------------------------------------------------------

MODE_KEYS = {Mode.NOMINAL: "mode_nominal_ticks", Mode.FOLLOWING: "mode_following_ticks",
             Mode.OVERRIDE: "mode_override_ticks", Mode.EMERGENCY: "mode_emergency_ticks",
             Mode.MINIMAL_RISK: "mode_minimal_risk_ticks"}


def reason_kinds(reason: str) -> list[str]:
    """The fixed kinds of a DrivingTarget reason ("kind: details; kind: details"), without their numbers."""
    return [part.split(":", 1)[0].strip() for part in reason.split("; ") if part.strip()]


def _is_intervention(mode: int) -> bool:
    return mode in Mode._value2member_map_ and Mode(mode).is_intervention


def decision_metrics(trace: EpisodeTrace) -> dict[str, Any]:
    """What the decision layer did. Per tick: ticks per mode; override_ratio, the fraction not NOMINAL;
    following_ratio, the fraction in FOLLOWING (adaptive cruise, part of normal driving);
    intervention_ratio, the fraction in an intervention (OVERRIDE, EMERGENCY, MINIMAL_RISK). Per plan
    period (ticks sharing the plan's `plan_tick`): intervention_plan_ratio, the fraction of plan periods
    with at least one intervention tick (None without plans). override_events: entries into a non-NOMINAL
    mode; overridden / intervened: any; override_reasons: "kind:ticks;..." most frequent first, each reason
    counted by its kind ("speed capped", "lane change refused", ...). All None when the run had no
    /decision/target."""
    targets = [t for t in trace.target if t is not None]
    if not targets:
        return {"override_ratio": None, "following_ratio": None, "intervention_ratio": None,
                "intervention_plan_ratio": None, **dict.fromkeys(MODE_KEYS.values()), "override_events": None,
                "overridden": None, "intervened": None, "override_reasons": ""}
    modes = [t.mode for t in targets]
    counts = Counter(modes)
    off = [m != Mode.NOMINAL for m in modes]
    events = sum(1 for k, o in enumerate(off) if o and (k == 0 or not off[k - 1]))
    reasons = Counter(kind for t in targets if t.mode != Mode.NOMINAL for kind in reason_kinds(t.reason or "?"))
    periods: dict[int, bool] = {}
    for plan, target in zip(trace.plan, trace.target, strict=False):
        if plan is not None and target is not None:
            periods[plan.plan_tick] = periods.get(plan.plan_tick, False) or _is_intervention(target.mode)
    intervening = [_is_intervention(m) for m in modes]
    return {
        "override_ratio": sum(off) / len(modes),
        "following_ratio": counts.get(Mode.FOLLOWING, 0) / len(modes),
        "intervention_ratio": sum(intervening) / len(modes),
        "intervention_plan_ratio": sum(periods.values()) / len(periods) if periods else None,
        **{key: counts.get(mode, 0) for mode, key in MODE_KEYS.items()},
        "override_events": events,
        "overridden": any(off),
        "intervened": any(intervening),
        "override_reasons": ";".join(f"{r}:{n}" for r, n in reasons.most_common()),
    }


# --- perception ------------------------------------------------------------------------------------------

def score_detections(detections: list[Object], truth: list[Object], iou_min: float = 0.5
                     ) -> tuple[int, int, int, list[float]]:
    """(true positives, false positives, false negatives, centre errors [m] of the true positives) of one
    tick; rules in the module docstring."""
    visible = np.array([o.in_view for o in truth], bool)
    if not detections:
        return 0, 0, int(visible.sum()), []
    if not truth:
        return 0, len(detections), 0, []
    boxes = np.array([(o.x, o.y, o.length, o.width) for o in detections])
    labels = np.array([(o.x, o.y, o.length, o.width) for o in truth])
    matched = match(boxes, np.array([o.score for o in detections]), labels, iou_min)
    tp = fp = 0
    errors: list[float] = []
    for i in sorted(range(len(detections)), key=lambda k: -detections[k].score):
        j = int(matched[i])
        if j < 0:
            fp += 1
            continue
        if visible[j]:
            tp += 1
            errors.append(math.hypot(boxes[i, 0] - labels[j, 0], boxes[i, 1] - labels[j, 1]))
    return tp, fp, int(visible.sum()) - tp, errors


def perception_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS) -> dict[str, Any]:
    """Precision and recall pooled over the episode's ticks; None when the run had no perception."""
    tp = fp = fn = 0
    errors: list[float] = []
    scored = 0
    for det, gt in zip(trace.perception, trace.objects_gt, strict=True):
        if det is None or gt is None:
            continue
        scored += 1
        t, f, n, e = score_detections(det.objects, gt.objects, params.iou_min)
        tp, fp, fn = tp + t, fp + f, fn + n
        errors += e
    if not scored:
        return {"perception_tp": None, "perception_fp": None, "perception_fn": None,
                "perception_precision_ratio": None, "perception_recall_ratio": None,
                "perception_pos_err_median_m": None}
    return {
        "perception_tp": tp, "perception_fp": fp, "perception_fn": fn,
        "perception_precision_ratio": tp / (tp + fp) if tp + fp else None,
        "perception_recall_ratio": tp / (tp + fn) if tp + fn else None,
        "perception_pos_err_median_m": float(np.median(errors)) if errors else None,
    }


# --- loop latency ----------------------------------------------------------------------------------------

def loop_latencies_ms(trace: EpisodeTrace) -> np.ndarray:
    """[ms] per tick with both receive times: /sim/ego of tick k to /control/cmd of tick k."""
    return np.array([(c - e) * 1e-6 for e, c in zip(trace.ego_recv_ns, trace.cmd_recv_ns, strict=True)
                     if e is not None and c is not None], np.float64)


def latency_metrics(trace: EpisodeTrace, params: MetricParams = DEFAULT_PARAMS) -> dict[str, Any]:
    lat = loop_latencies_ms(trace)
    if lat.size == 0:
        return {"latency_p50_ms": None, "latency_p99_ms": None, "deadline_misses": None,
                "deadline_miss_ratio": None}
    misses = int((lat > params.deadline_s * 1e3).sum())
    return {"latency_p50_ms": float(np.percentile(lat, 50)), "latency_p99_ms": float(np.percentile(lat, 99)),
            "deadline_misses": misses, "deadline_miss_ratio": misses / lat.size}


__all__ = ["DEFAULT_PARAMS", "ComfortBounds", "MetricParams", "aggregate", "episode_metrics"]
