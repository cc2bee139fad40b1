"""Per-episode metrics and aggregates on hand-built traces with answers known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    MetricParams,
    aggregate,
    collision_partner,
    count_lane_changes,
    episode_metrics,
    score_detections,
)
from evaluation.stats import mean_ci95, savgol_derivative, t_975, wilson_ci95
from evaluation.trace import DT_S, EpisodeTrace
from msgs import DrivingTarget, EgoState, Header, Mode, Object, ObjectArray, Plan

NS = 1_000_000_000


def header(tick: int, episode: int = 0) -> Header:
    return Header(episode=episode, tick=tick, stamp_ns=tick * NS // 15, frame_id="world")


def ego_at(tick: int, **kw) -> EgoState:
    fields = dict(x=0.0, y=4.0, heading=0.0, speed=20.0, vx=20.0, vy=0.0, lane_index=1, lateral_offset=0.0)
    return EgoState(header=header(tick), **(fields | kw))


def car(id: int, x: float, y: float = 0.0, vx: float = 0.0, lane: int = 1, in_view: bool = True,
        score: float = 1.0) -> Object:
    return Object(id=id, x=x, y=y, vx=vx, vy=0.0, lane_index=lane, in_view=in_view, score=score)


def make_trace(egos: list[EgoState], objects: list[list[Object]] | None = None, **per_tick) -> EpisodeTrace:
    n = len(egos)
    scenes = [ObjectArray(header=e.header, objects=o) for e, o in zip(egos, objects or [[]] * n, strict=True)]
    fields = {name: per_tick.get(name, [None] * n) for name in ("perception", "target", "plan", "cmd")}
    return EpisodeTrace(episode=0, seed=7, end_reason=per_tick.get("end_reason", "time_limit"), ego=egos,
                        objects_gt=scenes, ego_recv_ns=per_tick.get("ego_recv_ns", [None] * n),
                        cmd_recv_ns=per_tick.get("cmd_recv_ns", [None] * n), **fields)


def cruise(n: int, speed: float = 20.0, **kw) -> list[EgoState]:
    return [ego_at(k, x=speed * k * DT_S, speed=speed, vx=speed, **kw) for k in range(n)]


# --- driving ---------------------------------------------------------------------------------------------

def test_distance_speed_reward_and_right_lane_on_a_straight_cruise():
    egos = [ego_at(k, x=100 + 20.0 * k * DT_S, reward=0.0 if k == 0 else 0.6, lane_index=3 if k < 30 else 2,
                   lanes_count=4) for k in range(46)]
    row = episode_metrics(make_trace(egos))
    assert row["ticks"] == 45 and row["duration_s"] == pytest.approx(3.0)
    assert row["distance_m"] == pytest.approx(60.0)
    assert row["mean_speed_mps"] == pytest.approx(20.0)
    assert row["reward_per_s"] == pytest.approx(45 * 0.6 / 3.0)  # the reward of every step, per second
    assert row["reward_mean_ratio"] == pytest.approx(0.6)
    assert row["right_lane_ratio"] == pytest.approx(30 / 46)
    assert row["collision"] is False and row["collision_with"] == -1


@pytest.mark.parametrize(("lanes", "changes"), [
    ([1] * 20 + [0] * 30, 1),  # one change that holds
    ([1] * 20 + [0] * 3 + [1] * 20, 0),  # wobble over the lane line for 0.2 s: no change
    ([2] * 20 + [1] * 10 + [0] * 20, 2),  # two lanes to the left
    ([2] * 20 + [1] * 3 + [0] * 20, 2),  # across two lanes in one go: the lane in between is brief
    ([1] * 20 + [0] * 2, 1),  # a change at the very end (the episode ends in the new lane)
    ([1] * 20 + [0] * 10 + [1] * 10, 2),  # there and back
])
def test_lane_changes_count_only_lanes_that_hold(lanes, changes):
    assert count_lane_changes(lanes, hold_ticks=8) == changes
    egos = [ego_at(k, lane_index=lane) for k, lane in enumerate(lanes)]
    assert episode_metrics(make_trace(egos))["lane_changes"] == changes


def test_lateral_error_rms_and_max():
    offsets = [0.3, -0.4] * 10
    row = episode_metrics(make_trace([ego_at(k, lateral_offset=o) for k, o in enumerate(offsets)]))
    assert row["lateral_error_rms_m"] == pytest.approx(math.sqrt((0.09 + 0.16) / 2))
    assert row["lateral_error_max_m"] == pytest.approx(0.4)


# --- collision -------------------------------------------------------------------------------------------

def test_collision_names_the_vehicle_hit_and_how():
    n = 10
    egos = cruise(n)
    egos[-1] = ego_at(n - 1, crashed=True)
    scenes = [[car(7, x=20.0 - 2.0 * k, vx=-6.0), car(3, x=-8.0, y=4.0, lane=2)] for k in range(n)]
    scenes[-1] = [car(7, x=4.2, y=0.3, vx=-6.0), car(3, x=-8.0, y=4.0, lane=2), car(5, x=30.0)]
    row = episode_metrics(make_trace(egos, scenes, end_reason="collision"))
    assert row["collision"] is True
    assert row["collision_with"] == 7
    assert row["collision_kind"] == "rear_end"
    assert row["collision_rel_speed_mps"] == pytest.approx(6.0)
    assert row["min_ttc_s"] == 0.0  # the boxes touch at the crash tick


@pytest.mark.parametrize(("others", "who", "kind"), [
    ([car(9, x=1.0, y=1.8), car(4, x=12.0)], 9, "side"),  # alongside, overlapping across the road
    ([car(2, x=-4.6, y=0.1), car(4, x=9.0)], 2, "rear_ended"),  # from behind
    ([car(1, x=4.9, y=1.5), car(4, x=-3.0, y=-4.0)], 1, "rear_end"),  # a corner of the car ahead
    ([car(6, x=5.3, y=0.0), car(4, x=-9.0)], 6, "rear_end"),  # no overlap left: the nearest box
])
def test_collision_partner_and_kind(others, who, kind):
    other, got = collision_partner(ego_at(0, crashed=True), others)
    assert (other.id, got) == (who, kind)


def test_offroad_is_not_a_collision():
    egos = cruise(5)
    egos[-1] = ego_at(4, on_road=False)
    row = episode_metrics(make_trace(egos, end_reason="offroad"))
    assert row["offroad"] is True and row["collision"] is False


# --- time to collision and headway -----------------------------------------------------------------------

def test_ttc_and_headway_to_a_closing_lead_in_closed_form():
    # Ego at 20 m/s; the lead 31 m ahead bumper to bumper, 5 m/s slower: gap(t) = 31 - 5 t,
    # TTC(t) = 6.2 - t, headway(t) = gap / 20. Ticks 0..82 (t = k / 15).
    n = 83
    scenes = [[car(1, x=31.0 + 5.0 - 5.0 * k / 15, vx=-5.0),  # 5 m = both half lengths
               car(2, x=8.0, y=4.0, vx=-10.0, lane=2),  # closer and closing faster, but in the next lane
               car(3, x=-7.0, vx=3.0)]  # behind
              for k in range(n)]
    row = episode_metrics(make_trace(cruise(n), scenes))
    assert row["min_ttc_s"] == pytest.approx(6.2 - 82 / 15)
    # TTC < 1.5 s once t > 4.7 s: ticks 71..82
    assert row["time_ttc_below_s"] == pytest.approx(12 / 15)
    # headway < 1 s once gap < 20 m, t > 2.2 s: ticks 34..82
    assert row["time_headway_below_s"] == pytest.approx(49 / 15)
    assert row["min_headway_s"] == pytest.approx((31 - 5 * 82 / 15) / 20)


def test_no_closing_lead_caps_ttc_at_the_horizon():
    scenes = [[car(1, x=30.0, vx=+2.0)] for _ in range(20)]  # pulling away
    row = episode_metrics(make_trace(cruise(20), scenes), MetricParams(ttc_horizon_s=8.0))
    assert row["min_ttc_s"] == 8.0 and row["time_ttc_below_s"] == 0.0
    assert row["min_headway_s"] == pytest.approx(25.0 / 20.0)


# --- comfort ---------------------------------------------------------------------------------------------

def test_gentle_constant_acceleration_is_comfortable():
    egos = [ego_at(k, speed=20.0 + 1.0 * k * DT_S) for k in range(60)]
    row = episode_metrics(make_trace(egos))
    assert row["lon_accel_max_mps2"] == pytest.approx(1.0, abs=1e-6)
    assert row["lon_accel_min_mps2"] == pytest.approx(1.0, abs=1e-6)
    assert row["lon_jerk_max_abs_mps3"] == pytest.approx(0.0, abs=1e-6)
    assert row["comfort_ratio"] == 1.0 and row["comfortable"] is True


def test_hard_braking_breaks_the_longitudinal_bounds():
    # 25 m/s for 2 s, then -6 m/s^2 for 1 s (below nuPlan's -4.05), then 19 m/s to 6 s.
    speeds = [25.0 - 6.0 * min(max(k - 30, 0), 15) / 15 for k in range(91)]
    row = episode_metrics(make_trace([ego_at(k, speed=v) for k, v in enumerate(speeds)]))
    assert row["lon_accel_min_mps2"] == pytest.approx(-6.0, abs=1e-6)  # the middle of the braking
    assert row["comfortable"] is False
    # At least the braking ticks clear of the filter window (7) break a bound; at most braking plus a
    # window on each side (the jerk of the onset and end of braking).
    bad = round((1 - row["comfort_ratio"]) * 91)
    assert 15 - 6 <= bad <= 15 + 2 * 7
    assert row["lon_jerk_max_abs_mps3"] > 4.13


def test_lateral_acceleration_is_speed_times_yaw_rate():
    # A steady turn at 10 m/s and 0.3 rad/s: 3 m/s^2 sideways, inside the bounds.
    egos = [ego_at(k, speed=10.0, heading=0.3 * k * DT_S) for k in range(45)]
    row = episode_metrics(make_trace(egos))
    assert row["yaw_rate_max_abs_radps"] == pytest.approx(0.3, abs=1e-6)
    assert row["lat_accel_max_abs_mps2"] == pytest.approx(3.0, abs=1e-6)
    assert row["comfortable"] is True
    # At 1.2 rad/s the yaw rate bound (0.95) and the lateral bound (12 m/s^2 > 4.89) both break.
    fast = [ego_at(k, speed=10.0, heading=1.2 * k * DT_S) for k in range(45)]
    row = episode_metrics(make_trace(fast))
    assert row["yaw_rate_max_abs_radps"] == pytest.approx(1.2, abs=1e-6)
    assert row["comfort_ratio"] == 0.0 and row["comfortable"] is False


def test_heading_wrapping_round_pi_is_no_yaw():
    egos = [ego_at(k, heading=math.pi - 1e-3 if k % 2 else -math.pi + 1e-3) for k in range(30)]
    assert episode_metrics(make_trace(egos))["yaw_rate_max_abs_radps"] < 0.1


def test_savgol_derivative_is_exact_for_quadratics_and_matches_scipy():
    t = np.arange(40) * DT_S
    assert savgol_derivative(3 * t**2 - t + 2, DT_S, 7) == pytest.approx(6 * t - 1)
    signal = pytest.importorskip("scipy.signal")
    y = np.sin(3 * t) + t**2
    expected = signal.savgol_filter(y, 7, 2, deriv=1, delta=DT_S, mode="interp")
    assert savgol_derivative(y, DT_S, 7) == pytest.approx(expected, abs=1e-9)


# --- decision --------------------------------------------------------------------------------------------

def test_override_ratio_modes_and_events():
    modes = [0] * 10 + [1] * 5 + [0] * 10 + [2] * 3 + [3] * 2
    reasons = {0: "", 1: "gap", 2: "ttc", 3: "stale"}
    targets = [DrivingTarget(header=header(k), target_lane=1, target_speed=20.0, mode=m, reason=reasons[m])
               for k, m in enumerate(modes)]
    row = episode_metrics(make_trace(cruise(len(modes)), target=targets))
    assert row["override_ratio"] == pytest.approx(10 / 30)
    assert (row["mode_nominal_ticks"], row["mode_override_ticks"], row["mode_emergency_ticks"],
            row["mode_minimal_risk_ticks"]) == (20, 5, 3, 2)
    assert row["override_events"] == 2  # two stretches away from NOMINAL
    assert row["overridden"] is True
    assert row["override_reasons"] == "gap:5;ttc:3;stale:2"


def test_following_is_not_an_intervention_and_reasons_group_by_kind():
    # 4 plan periods of 15 ticks: following only; a refused lane change in one tick; nominal; an emergency
    # brake while following
    modes = [Mode.FOLLOWING] * 15 + [0] * 7 + [Mode.OVERRIDE] + [0] * 7 + [0] * 15 + [Mode.EMERGENCY] * 2 + \
        [Mode.FOLLOWING] * 13
    reasons = {Mode.FOLLOWING: "speed capped: 30.0 -> {k}.0 m/s, headway, vehicle 3 {k}.5 m ahead",
               Mode.OVERRIDE: "lane change refused: rear gap 6.2 m < 12.5 m",
               Mode.EMERGENCY: "emergency brake: TTC 1.2 s < 1.5 s, vehicle 3 9.0 m ahead; speed capped: 25.0 -> "
                               "20.0 m/s, ttc, vehicle 3 9.0 m ahead"}
    targets = [DrivingTarget(header=header(k), target_lane=1, target_speed=20.0, mode=m,
                             reason=reasons.get(m, "").format(k=k)) for k, m in enumerate(modes)]
    plans = [Plan(header=header(k), action=1, replanned=k % 15 == 0, plan_tick=k - k % 15) for k in range(60)]
    row = episode_metrics(make_trace(cruise(60), target=targets, plan=plans))
    assert row["following_ratio"] == pytest.approx(28 / 60)
    assert row["intervention_ratio"] == pytest.approx(3 / 60)
    assert row["intervention_plan_ratio"] == pytest.approx(2 / 4)
    assert row["mode_following_ticks"] == 28 and row["intervened"] is True
    assert row["override_reasons"] == "speed capped:30;emergency brake:2;lane change refused:1"


def test_following_alone_is_no_intervention():
    why = "speed capped: 25.0 -> 20.0 m/s, headway, vehicle 3 20.0 m ahead"
    targets = [DrivingTarget(header=header(k), target_lane=1, target_speed=20.0, mode=Mode.FOLLOWING, reason=why)
               for k in range(30)]
    plans = [Plan(header=header(k), action=1, plan_tick=k - k % 15) for k in range(30)]
    row = episode_metrics(make_trace(cruise(30), target=targets, plan=plans))
    assert (row["intervention_ratio"], row["intervention_plan_ratio"], row["intervened"]) == (0.0, 0.0, False)
    assert row["overridden"] is True and row["following_ratio"] == 1.0


def test_without_decision_stream_the_decision_metrics_are_none():
    row = episode_metrics(make_trace(cruise(5)))
    assert row["override_ratio"] is None and row["overridden"] is None


# --- perception ------------------------------------------------------------------------------------------

def test_perception_precision_and_recall_on_a_hand_made_set():
    truth = [car(1, x=20.0), car(2, x=-10.0, y=4.0), car(3, x=40.0, y=-4.0),
             car(4, x=75.0, in_view=False)]  # partly out of the frame
    detections = [car(11, x=20.4, y=0.1, score=0.9),  # vehicle 1 (IoU ~0.8)
                  car(12, x=-10.2, y=4.2, score=0.8),  # vehicle 2
                  car(13, x=75.3, score=0.7),  # vehicle 4: neither right nor wrong
                  car(14, x=55.0, y=8.0, score=0.6)]  # nothing there
    assert score_detections(detections, truth)[:3] == (2, 1, 1)  # vehicle 3 missed
    # Two ticks: the same scene, then an empty detection list (all three visible vehicles missed).
    perception = [ObjectArray(header=header(0), objects=detections), ObjectArray(header=header(1))]
    row = episode_metrics(make_trace(cruise(2), [truth, truth], perception=perception))
    assert (row["perception_tp"], row["perception_fp"], row["perception_fn"]) == (2, 1, 4)
    assert row["perception_precision_ratio"] == pytest.approx(2 / 3)
    assert row["perception_recall_ratio"] == pytest.approx(2 / 6)
    assert row["perception_pos_err_median_m"] == pytest.approx(
        np.median([math.hypot(0.4, 0.1), math.hypot(0.2, 0.2)]))


def test_a_detection_off_by_half_a_car_does_not_match():
    # 2.5 m along a 5 m car: IoU = 2.5 / 7.5 = 1/3 < 0.5
    assert score_detections([car(1, x=22.5)], [car(9, x=20.0)])[:3] == (0, 1, 1)


def test_without_perception_the_scores_are_none():
    row = episode_metrics(make_trace(cruise(3), [[car(1, x=20.0)]] * 3))
    assert row["perception_precision_ratio"] is None and row["perception_recall_ratio"] is None


# --- loop latency ----------------------------------------------------------------------------------------

def test_loop_latency_percentiles_and_deadline_misses():
    n = 100
    ego_recv = [10**12 + k * 66_666_667 for k in range(n)]
    latency_ms = [5.0] * 95 + [80.0] * 5  # five ticks over the 66.7 ms deadline
    cmd_recv = [e + int(ms * 1e6) for e, ms in zip(ego_recv, latency_ms, strict=True)]
    cmd_recv[3] = None  # a command that never came: not counted
    row = episode_metrics(make_trace(cruise(n), ego_recv_ns=ego_recv, cmd_recv_ns=cmd_recv))
    assert row["latency_p50_ms"] == pytest.approx(5.0)
    assert row["latency_p99_ms"] == pytest.approx(80.0)
    assert row["deadline_misses"] == 5
    assert row["deadline_miss_ratio"] == pytest.approx(5 / 99)


# --- aggregates ------------------------------------------------------------------------------------------

def test_t_quantiles():
    assert t_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_975(30) == pytest.approx(2.0423, abs=1e-4)
    assert t_975(60) == pytest.approx(2.0003, abs=1e-4)
    assert t_975(10_000) == pytest.approx(1.9602, abs=1e-4)
    stats = pytest.importorskip("scipy.stats")
    for df in (2, 7, 29, 31, 45, 200):
        assert t_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-5)


def test_mean_and_wilson_intervals_on_known_numbers():
    mean, lo, hi = mean_ci95([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (mean, lo, hi) == pytest.approx((3.0, 3.0 - half, 3.0 + half), abs=1e-5)
    assert mean_ci95([4.0]) == (4.0, None, None)
    assert wilson_ci95(2, 10) == pytest.approx((0.2, 0.0567, 0.5098), abs=1e-4)
    assert wilson_ci95(0, 20) == pytest.approx((0.0, 0.0, 0.1611), abs=1e-4)
    with pytest.raises(ValueError):
        wilson_ci95(3, 2)


def test_aggregate_rates_means_pooling_and_counts():
    rows = [{"episode": i, "seed": i, "end_reason": "collision" if i in (0, 8) else "time_limit",
             "collision": i in (0, 8), "collision_kind": "rear_end" if i in (0, 8) else "",
             "collision_with": 3, "mean_speed_mps": float(20 + i % 5),
             "right_lane_ratio": 0.1 * (i % 2), "perception_tp": 8, "perception_fp": 2, "perception_fn": 0,
             "perception_precision_ratio": 0.8, "perception_recall_ratio": 1.0,
             "min_ttc_s": None if i == 9 else 5.0} for i in range(10)]
    agg = aggregate(rows)
    assert agg["episodes"] == 10 and agg["collisions"] == 2
    assert (agg["collision_rate"], agg["collision_rate_ci95_lo"], agg["collision_rate_ci95_hi"]) == \
        pytest.approx((0.2, 0.0567, 0.5098), abs=1e-4)
    speeds = [20 + i % 5 for i in range(10)]  # 20..24 twice: mean 22, sd sqrt(20/9)
    half = 2.262157 * math.sqrt(20 / 9) / math.sqrt(10)
    assert agg["mean_speed_mps"] == pytest.approx(np.mean(speeds))
    assert (agg["mean_speed_mps_ci95_lo"], agg["mean_speed_mps_ci95_hi"]) == \
        pytest.approx((22 - half, 22 + half))
    assert agg["right_lane_ratio_ci95_lo"] >= 0.0  # a fraction's interval stays in [0, 1]
    assert agg["min_ttc_s"] == 5.0  # the episode without a value is left out
    assert agg["end_reasons"] == {"collision": 2, "time_limit": 8}
    assert agg["collision_kinds"] == {"rear_end": 2}
    assert "collision_with" not in agg and "episode" not in agg
    assert agg["perception_tp"] == 80 and agg["perception_precision_ratio"] == pytest.approx(0.8)
    assert agg["perception_recall_ratio_ci95_lo"] > 0.95  # pooled over 80 detections, not 10 episodes


def test_aggregate_of_real_rows_keeps_every_metric():
    rows = [episode_metrics(make_trace(cruise(30, speed=s))) for s in (18.0, 20.0, 22.0)]
    agg = aggregate(rows)
    assert agg["mean_speed_mps"] == pytest.approx(20.0)
    assert agg["mean_speed_mps_ci95_lo"] == pytest.approx(20.0 - 4.302653 * 2 / math.sqrt(3))
    assert agg["collision_rate"] == 0.0 and agg["comfortable_rate"] == 1.0
    assert agg["override_ratio"] is None  # no decision stream in any episode


def test_intervals_of_quantities_never_negative_stay_at_or_above_zero() -> None:
    rows = [{"episode": i, "seed": i, "time_ttc_below_s": v, "signed_m": v - 0.2} for i, v in
            enumerate([0.0, 0.0, 0.0, 0.0, 1.0])]
    agg = aggregate(rows)
    assert agg["time_ttc_below_s_ci95_lo"] == 0.0 < agg["time_ttc_below_s_ci95_hi"]
    assert agg["signed_m_ci95_lo"] < -0.2  # a quantity seen below zero keeps its plain t interval
