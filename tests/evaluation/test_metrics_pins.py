"""Evaluation's metrics, aggregates and statistics pinned to their documented rules where the suite's
closed-form tests leave a rule unchecked: which box the ego hit (most overlap, else the nearest box, every
distance computed here by hand for 5 x 2 m boxes), the rear-end / side split, perception counting, the
aggregate's key rules and clipping, and the t quantiles to the accuracy their docstring states."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from evaluation.aggregate import aggregate
from evaluation.metrics import (
    ComfortBounds,
    MetricParams,
    collision_metrics,
    collision_partner,
    comfort_metrics,
    comfort_series,
    count_lane_changes,
    decision_metrics,
    episode_metrics,
    latency_metrics,
    lead_gap,
    lead_metrics,
    motion_metrics,
    perception_metrics,
    reason_kinds,
    score_detections,
    ttc_of,
)
from evaluation.stats import mean_ci95, savgol_derivative, t_975, wilson_ci95
from evaluation.trace import DT_S, EpisodeTrace
from msgs import DrivingTarget, EgoState, Header, Mode, Object, ObjectArray, Plan

EGO = EgoState(x=0.0, y=4.0, heading=0.0, speed=20.0, vx=20.0, vy=0.0, lane_index=1, lateral_offset=0.0,
               crashed=True)  # 5 x 2 m: with another 5 x 2 m box the combined half sizes are 5 m and 2 m


def box(id: int, x: float, y: float, length: float = 5.0, width: float = 2.0, score: float = 1.0,
        in_view: bool = True) -> Object:
    return Object(id=id, x=x, y=y, vx=0.0, vy=0.0, length=length, width=width, score=score, in_view=in_view)


@pytest.mark.parametrize(("others", "who"), [
    # overlaps (along, across) and areas: 1 (4, 0) -> 1 x 2 = 2; 2 (1, 1.9) -> 4 x 0.1 = 0.4, though its centre
    # is nearer; 3 (5.5, 0) does not overlap (0.5 m apart): the most overlap wins
    ([box(2, 1.0, 1.9), box(1, 4.0, 0.0), box(3, 5.5, 0.0)], 1),
    # no overlap: 4 is 0.5 m away along the road; 5 (7, 1.9) is 2 m away along though it "overlaps" across
    ([box(5, 7.0, 1.9), box(4, 5.5, 0.0)], 4),
    # boxes touching: 6 along the road (5 m between centres), 7 across it (2 m): both 0 m apart, the nearer
    # centre wins; then 8, 10 m wide, touching across 6 m away, loses to 6
    ([box(6, 5.0, 0.0), box(7, 0.0, 2.0)], 7),
    ([box(8, 0.0, 6.0, width=10.0), box(6, 5.0, 0.0)], 6),
    # 9 overlaps 0.5 m along (x = 4.5): it beats 10, which touches across 2 m from the centre
    ([box(10, 0.0, 2.0), box(9, 4.5, 0.0)], 9),
    # 11 overlaps 0.5 m across (y = 1.5): it beats 12, a 1 x 0.2 m box touching across 1.1 m from the centre
    ([box(12, 0.0, 1.1, length=1.0, width=0.2), box(11, 0.0, 1.5)], 11),
    # gaps by both axes: 13 is 1 m away along; 14 (5.5, 2.5) is hypot(0.5, 0.5) = 0.71 m away diagonally
    ([box(13, 6.0, 0.0), box(14, 5.5, 2.5)], 14),
    # 15 is 1 m away across; 14 again 0.71 m
    ([box(15, 0.0, 3.0), box(14, 5.5, 2.5)], 14),
])
def test_the_partner_is_the_most_overlapping_box_else_the_nearest(others, who):
    assert collision_partner(EGO, others)[0].id == who


@pytest.mark.parametrize(("x", "y", "kind"), [
    (2.0, 1.0, "side"),  # overlap 3/5 = 0.6 of the half sizes along, 1/2 = 0.5 across: deeper along
    (3.0, 1.0, "rear_end"),  # 0.4 along, 0.5 across: shallower along, the other ahead
    (0.5, 0.0, "rear_end"),  # 0.9 along, 1.0 across, the other's centre 0.5 m ahead
    (-0.5, 0.0, "rear_ended"),  # the same from behind
])
def test_the_kind_of_contact(x, y, kind):
    assert collision_partner(EGO, [box(1, x, y)])[1] == kind


def test_detections_without_any_truth_are_all_false_positives():
    assert score_detections([box(1, 10.0, 0.0), box(2, 30.0, 0.0)], []) == (0, 2, 0, [])


def test_every_unmatched_detection_counts_and_the_rest_still_match():
    # the most confident detection matches nothing; the next two (lower scores) each match a vehicle
    truth = [box(1, 20.0, 0.0), box(2, 40.0, 4.0)]
    dets = [box(11, -30.0, 0.0, score=0.9), box(12, 20.0, 0.0, score=0.5), box(13, 40.0, 4.0, score=0.4),
            box(14, 60.0, -4.0, score=0.3)]
    tp, fp, fn, errors = score_detections(dets, truth)
    assert (tp, fp, fn) == (2, 2, 0) and errors == [0.0, 0.0]


def test_the_iou_threshold_is_the_one_asked():
    # 2.5 m along a 5 m car: IoU = 2.5 / 7.5 = 1/3: a match at 0.3, not at 0.5
    assert score_detections([box(1, 22.5, 0.0)], [box(9, 20.0, 0.0)], iou_min=0.3)[:3] == (1, 0, 0)
    assert score_detections([box(1, 22.5, 0.0)], [box(9, 20.0, 0.0)], iou_min=0.5)[:3] == (0, 1, 1)


def test_aggregate_takes_keys_from_every_row_and_names_rates():
    rows = [{"episode": 0, "seed": 0, "only_first_m": 2.0, "overridden": True, "stopped": False},
            {"episode": 1, "seed": 1, "overridden": False, "stopped": True},
            {"episode": 2, "seed": 2, "overridden": True, "stopped": True}]
    agg = aggregate(rows)
    assert agg["only_first_m"] == 2.0 and agg["only_first_m_ci95_lo"] is None  # one episode: no interval
    assert agg["override_episode_rate"] == pytest.approx(2 / 3) and agg["override_episodes"] == 2
    assert agg["stopped_rate"] == pytest.approx(2 / 3)  # a yes/no metric without a name of its own
    assert "overridden_rate" not in agg and "stopped_episodes" not in agg


def test_summed_counts_absent_everywhere_stay_none():
    agg = aggregate([{"episode": 0, "perception_tp": None}, {"episode": 1, "perception_tp": None}])
    assert agg["perception_tp"] is None


def test_a_ratio_interval_is_clipped_to_zero_and_one():
    # [1, 1, 0]: mean 2/3, t(2) * sd / sqrt(3) = 4.3027 * 0.57735 / 1.732 = 1.434: the plain interval is
    # [-0.77, 2.10]; a fraction's is [0, 1]
    agg = aggregate([{"episode": i, "right_lane_ratio": v} for i, v in enumerate([1.0, 1.0, 0.0])])
    assert agg["right_lane_ratio"] == pytest.approx(2 / 3)
    assert (agg["right_lane_ratio_ci95_lo"], agg["right_lane_ratio_ci95_hi"]) == (0.0, 1.0)


def test_two_values_have_an_interval():
    mean, lo, hi = mean_ci95([1, 3])  # sd sqrt(2), t(1) = 12.706205: half = 12.706205 * sqrt(2) / sqrt(2)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - 12.706205, 2.0 + 12.706205), abs=1e-9)


def test_t_quantiles_from_the_table_and_beyond_it_to_1e_7():
    assert t_975(30) == 2.042272  # the table's entry (standard tables, 7 significant digits)
    with pytest.raises(ValueError, match="1 degree of freedom"):
        t_975(0)
    stats = pytest.importorskip("scipy.stats")
    for df in (31, 33, 36, 40, 50):  # Cornish-Fisher: "error below 1e-7 there"
        assert abs(t_975(df) - stats.t.ppf(0.975, df)) < 1e-7, df
    assert math.isclose(t_975(10**6), 1.959963984540054, abs_tol=1e-5)


def test_wilson_for_one_trial_and_for_all_successes():
    z2 = 1.959963984540054**2
    # n = 1, p = 1: centre (1 + z2/2) / (1 + z2), half z2 / 2 / (1 + z2): the interval is [1 / (1 + z2), 1]
    rate, lo, hi = wilson_ci95(1, 1)
    assert rate == 1.0 and lo == pytest.approx(1 / (1 + z2), rel=1e-12) and hi == pytest.approx(1.0, rel=1e-12)
    for n in range(1, 60):
        assert 0.0 <= wilson_ci95(n, n)[1] and wilson_ci95(n, n)[2] <= 1.0
        assert wilson_ci95(0, n)[1] >= 0.0
    with pytest.raises(ValueError, match="successes must be in"):
        wilson_ci95(-1, 5)
    assert wilson_ci95(0, 0) == (None, None, None)


def trace_of(egos: list[EgoState]) -> EpisodeTrace:
    n = len(egos)
    return EpisodeTrace(episode=0, ego=egos, objects_gt=[None] * n, perception=[None] * n, target=[None] * n,
                        plan=[None] * n, cmd=[None] * n, ego_recv_ns=[None] * n, cmd_recv_ns=[None] * n)


def test_a_single_tick_has_no_reward_mean():
    row = motion_metrics(trace_of([EGO]))
    assert row["reward_mean_ratio"] is None  # tick 0 answers no step: no reward to average


def test_a_lane_hold_shorter_than_a_tick_counts_every_move():
    # hold 0.05 s is under one 1/15 s tick: each new lane counts at once (wobbles included)
    lanes = [1, 1, 0, 1, 1]
    egos = [msgspec.structs.replace(EGO, lane_index=lane, crashed=False) for lane in lanes]
    assert motion_metrics(trace_of(egos), MetricParams(lane_hold_s=0.05))["lane_changes"] == 2


def test_reason_kinds_keep_only_the_text_before_the_first_colon():
    assert reason_kinds("emergency brake: TTC 1.2 s < 1.5 s: at 12:30; speed capped: 30.0 -> 20.0 m/s") == \
        ["emergency brake", "speed capped"]


# --- whole rows ----------------------------------------------------------------------------------------------

def cruise(n: int, speed: float = 20.0, **kw) -> list[EgoState]:
    return [msgspec.structs.replace(EGO, header=Header(tick=k, stamp_ns=k * 50_000_000), x=speed * k * DT_S,
                                    speed=speed, vx=speed, crashed=False, **kw) for k in range(n)]


def full_trace(egos: list[EgoState], scenes: list[list[Object]] | None = None, **streams) -> EpisodeTrace:
    n = len(egos)
    objects = [ObjectArray(objects=s) for s in scenes] if scenes is not None else [None] * n
    fields = {name: streams.get(name, [None] * n) for name in
              ("perception", "target", "plan", "cmd", "ego_recv_ns", "cmd_recv_ns")}
    return EpisodeTrace(episode=streams.get("episode", 0), seed=streams.get("seed", 0),
                        end_reason=streams.get("end_reason", "time_limit"), ego=egos, objects_gt=objects, **fields)


def test_a_row_has_the_same_keys_with_or_without_each_stream_and_none_for_the_missing():
    n = 4
    egos = cruise(n)
    rich = full_trace(egos, [[]] * n, perception=[ObjectArray(objects=[])] * n,
                      target=[DrivingTarget(target_lane=1, target_speed=20.0)] * n,
                      plan=[Plan(action=1)] * n, ego_recv_ns=[k * 10**8 for k in range(n)],
                      cmd_recv_ns=[k * 10**8 + 10**6 for k in range(n)])
    bare = full_trace(egos, episode=4, seed=9, end_reason="shutdown")
    full, row = episode_metrics(rich), episode_metrics(bare)
    assert set(row) == set(full)
    assert (row["episode"], row["seed"], row["end_reason"]) == (4, 9, "shutdown")
    missing = [k for k in full if k.startswith(("perception_", "latency_", "deadline_", "mode_", "override_",
                                               "intervention_", "following_"))] + ["overridden", "intervened"]
    assert all(row[k] is None for k in missing if k != "override_reasons") and row["override_reasons"] == ""
    assert (row["collision"], row["offroad"], row["collision_with"], row["collision_kind"],
            row["collision_rel_speed_mps"]) == (False, False, -1, "", None)
    # the series (on by default): time, speed, lateral error and TTC (capped at the horizon: no lead)
    assert row["series"] == {"t_s": pytest.approx([0.0, 0.05, 0.1, 0.15]), "speed_mps": [20.0] * n,
                             "lateral_error_m": [0.0] * n, "ttc_s": [10.0] * n}
    assert "series" not in episode_metrics(bare, series=False)
    with pytest.raises(ValueError, match="no /sim/ego ticks"):
        episode_metrics(full_trace([]))


def test_collision_from_the_crash_flag_alone_at_its_own_tick():
    # crashed at tick 3 of 6 (the episode ran on, ended by time): the partner is the one at tick 3, its speed
    # relative to the ego at tick 2 (3, 4 m/s -> 5 m/s)
    egos = cruise(6)
    egos[3] = msgspec.structs.replace(egos[3], crashed=True)
    hit = Object(id=7, x=4.0, y=0.0, vx=-1.0, vy=0.0)
    scenes = [[], [], [Object(id=7, x=9.0, y=0.0, vx=-3.0, vy=-4.0)], [hit], [], [Object(id=9, x=4.0, y=0.0,
                                                                                           vx=0.0, vy=0.0)]]
    row = collision_metrics(full_trace(egos, scenes))
    assert (row["collision"], row["collision_with"], row["collision_kind"]) == (True, 7, "rear_end")
    assert row["collision_rel_speed_mps"] == pytest.approx(5.0)


def test_collision_from_the_end_reason_alone_uses_the_last_tick():
    egos = cruise(3)
    scenes = [[Object(id=5, x=-12.0, y=0.0, vx=0.0, vy=3.0)], [Object(id=5, x=-8.0, y=0.0, vx=6.0, vy=8.0)],
              [Object(id=5, x=-4.5, y=0.0, vx=1.0, vy=0.0)]]
    row = collision_metrics(full_trace(egos, scenes, end_reason="collision"))
    assert (row["collision"], row["collision_with"], row["collision_kind"]) == (True, 5, "rear_ended")
    assert row["collision_rel_speed_mps"] == pytest.approx(10.0)


def test_a_crash_at_the_first_tick_and_a_crash_into_nothing():
    egos = cruise(3)
    egos[0] = msgspec.structs.replace(egos[0], crashed=True)
    side = Object(id=2, x=0.0, y=1.5, vx=0.0, vy=-3.0)
    later = Object(id=2, x=0.0, y=1.5, vx=9.0, vy=0.0)
    row = collision_metrics(full_trace(egos, [[side], [later], [later]]))  # no tick before the first
    assert (row["collision_with"], row["collision_kind"], row["collision_rel_speed_mps"]) == (2, "side", 3.0)
    egos = cruise(3)
    egos[1] = msgspec.structs.replace(egos[1], crashed=True)
    row = collision_metrics(full_trace(egos, [[later], [side], []]))  # at tick 1: the speed of tick 0
    assert row["collision_rel_speed_mps"] == 9.0
    row = collision_metrics(full_trace(egos, [[], [side], []]))  # not seen before: its speed at the crash
    assert row["collision_rel_speed_mps"] == 3.0
    egos = cruise(2)
    egos[0] = msgspec.structs.replace(egos[0], crashed=True)
    row = collision_metrics(full_trace(egos, [[], []]))  # nobody in the scene: a collision with no partner
    assert (row["collision"], row["collision_with"], row["collision_kind"]) == (True, -1, "")
    assert row["collision_rel_speed_mps"] is None


def test_offroad_from_the_last_tick_off_the_road_alone():
    egos = cruise(3)
    egos[2] = msgspec.structs.replace(egos[2], on_road=False)
    assert collision_metrics(full_trace(egos))["offroad"] is True
    assert collision_metrics(full_trace(cruise(3), end_reason="offroad"))["offroad"] is True  # the end reason alone
    egos = cruise(3)
    egos[1] = msgspec.structs.replace(egos[1], on_road=False)  # back on the road at the end
    assert collision_metrics(full_trace(egos))["offroad"] is False


def test_decision_counts_from_the_first_tick_and_for_empty_reasons():
    modes = [Mode.OVERRIDE, Mode.NOMINAL, Mode.OVERRIDE, Mode.OVERRIDE]
    targets = [DrivingTarget(target_lane=1, target_speed=20.0, mode=m, reason="") for m in modes]
    row = decision_metrics(full_trace(cruise(4), target=targets))
    assert row["override_events"] == 2  # an intervention from tick 0 is an entry too
    assert row["override_reasons"] == "?:3"  # a reason-less tick counts under "?"
    assert row["following_ratio"] == 0.0 and row["mode_emergency_ticks"] == 0 and row["mode_following_ticks"] == 0


def test_latency_percentiles_and_the_deadline_boundary():
    n = 4
    ego_ns = [k * 10**9 for k in range(n)]
    lat_ms = [50.0, 50.02, 10.0, 30.0]  # 50.0 is at the deadline (not a miss), 50.02 is past it
    cmd_ns = [e + round(ms * 10**6) for e, ms in zip(ego_ns, lat_ms, strict=True)]
    row = latency_metrics(full_trace(cruise(n), ego_recv_ns=ego_ns, cmd_recv_ns=cmd_ns), MetricParams(deadline_s=0.05))
    assert row["deadline_misses"] == 1
    assert row["latency_p50_ms"] == pytest.approx(40.0)  # the median of 10, 30, 50, 50.02
    many = list(range(1, 101))  # 1..100 ms: numpy's linear p99 = 1 + 0.99 * 99
    row = latency_metrics(full_trace(cruise(100), ego_recv_ns=[0] * 100, cmd_recv_ns=[m * 10**6 for m in many]))
    assert row["latency_p99_ms"] == pytest.approx(99.01)


@pytest.mark.parametrize(("obj", "lead"), [
    (Object(id=1, x=20.0, y=3.0, vx=0.0, vy=0.0, lane_index=1), True),  # labelled in the ego's lane
    (Object(id=1, x=20.0, y=0.0, vx=0.0, vy=0.0, lane_index=2), False),  # labelled in another lane
    (Object(id=1, x=20.0, y=1.9, vx=0.0, vy=0.0, lane_index=-1), True),  # unlabelled: |y| < 2 m
    (Object(id=1, x=20.0, y=2.0, vx=0.0, vy=0.0, lane_index=-1), False),
    (Object(id=1, x=20.0, y=3.0, vx=0.0, vy=0.0, lane_index=-1), False),
    (Object(id=1, x=0.0, y=0.0, vx=0.0, vy=0.0, lane_index=1), False),  # alongside: not ahead
    (Object(id=1, x=0.8, y=0.0, vx=0.0, vy=0.0, lane_index=1), True),
])
def test_which_vehicle_is_the_lead(obj, lead):
    assert (lead_gap(cruise(1)[0], ObjectArray(objects=[obj])) is not None) == lead


def test_the_lead_is_the_nearest_in_lane_after_others():
    ego = cruise(1)[0]
    scene = ObjectArray(objects=[Object(id=1, x=10.0, y=4.0, vx=0.0, vy=0.0, lane_index=2),
                                 Object(id=2, x=35.0, y=0.0, vx=0.0, vy=0.0, lane_index=1),
                                 Object(id=3, x=15.0, y=0.0, vx=5.0, vy=0.0, lane_index=1)])
    assert lead_gap(ego, scene) == (10.0, -5.0)  # 15 - 5 m (half lengths); pulling away at 5 m/s


def test_lead_metrics_alone_headway_definitions_and_ttc_boundary():
    # lead 15 m ahead bumper to bumper (x = 20), closing at 10 m/s: TTC exactly 1.5 s (not below 1.5 s)
    egos = cruise(3)
    scenes = [[Object(id=1, x=20.0, y=0.0, vx=-10.0, vy=0.0, lane_index=1)]] * 3
    row = lead_metrics(full_trace(egos, scenes))  # leads computed inside
    assert row["min_ttc_s"] == pytest.approx(1.5) and row["time_ttc_below_s"] == 0.0
    # headway at 0.5 m/s (the lowest speed it is defined at) of a 0.5 m gap: 1 s; below 0.5 m/s: not defined
    slow = cruise(2, speed=0.5)
    near = [[Object(id=1, x=5.5, y=0.0, vx=0.0, vy=0.0, lane_index=1)]] * 2
    assert lead_metrics(full_trace(slow, near))["min_headway_s"] == pytest.approx(1.0)
    assert lead_metrics(full_trace(cruise(2, speed=0.3), near))["min_headway_s"] == 10.0  # the cap


def test_perception_scores_none_without_a_stream_and_on_empty_ticks():
    truth = [Object(id=1, x=20.0, y=0.0, vx=0.0, vy=0.0)]
    row = perception_metrics(full_trace(cruise(2), [truth, truth]))
    assert all(v is None for v in row.values())
    empty = [ObjectArray(objects=[])] * 2
    row = perception_metrics(full_trace(cruise(2), [[], []], perception=empty))  # scored, nothing there
    assert (row["perception_tp"], row["perception_precision_ratio"], row["perception_recall_ratio"],
            row["perception_pos_err_median_m"]) == (0, None, None, None)
    one_each = [ObjectArray(objects=[Object(id=5, x=20.0, y=0.0, vx=0.0, vy=0.0),
                                     Object(id=6, x=60.0, y=0.0, vx=0.0, vy=0.0)])]
    row = perception_metrics(full_trace(cruise(1), [truth], perception=one_each))
    assert row["perception_precision_ratio"] == 0.5 and row["perception_recall_ratio"] == 1.0
    off = [ObjectArray(objects=[Object(id=5, x=22.5, y=0.0, vx=0.0, vy=0.0)])]  # IoU 1/3
    assert perception_metrics(full_trace(cruise(1), [truth], perception=off),
                              MetricParams(iou_min=0.3))["perception_tp"] == 1


# --- comfort and the derivatives --------------------------------------------------------------------------

def turning(n: int, speed: float, yaw_rate: float, yaw_accel: float = 0.0) -> list[EgoState]:
    return [msgspec.structs.replace(EGO, crashed=False, speed=speed, vx=speed,
                                    heading=yaw_rate * k * DT_S + 0.5 * yaw_accel * (k * DT_S) ** 2)
            for k in range(n)]


def test_every_comfort_bound_is_inclusive():
    # a steady turn at 10 m/s and 0.25 rad/s: lateral 2.5 m/s^2, every other quantity 0; bounds set exactly there
    bounds = ComfortBounds(lon_accel_min=0.0, lon_accel_max=0.0, lon_jerk_max_abs=0.0, lat_accel_max_abs=2.5,
                           jerk_max_abs=0.0, yaw_rate_max_abs=0.25, yaw_accel_max_abs=0.0)
    row = comfort_metrics(trace_of(turning(30, 10.0, 0.25)), MetricParams(comfort=bounds))
    assert row["comfortable"] is True and row["comfort_ratio"] == 1.0
    tighter = ComfortBounds(lon_accel_min=0.0, lon_accel_max=0.0, lon_jerk_max_abs=0.0, lat_accel_max_abs=2.0,
                            jerk_max_abs=0.0, yaw_rate_max_abs=0.25, yaw_accel_max_abs=0.0)
    assert comfort_metrics(trace_of(turning(30, 10.0, 0.25)), MetricParams(comfort=tighter))["comfort_ratio"] == 0.0


def test_the_second_derivatives_in_closed_form():
    # heading = w0 t + a t^2 / 2 at 10 m/s: yaw acceleration a, lateral acceleration 10 (w0 + a t), so lateral
    # jerk and the jerk of the acceleration's magnitude are both 10 a; every derivative exact (quadratic)
    row = comfort_metrics(trace_of(turning(40, 10.0, 0.05, yaw_accel=0.1)))
    assert row["yaw_accel_max_abs_radps2"] == pytest.approx(0.1, abs=1e-6)
    assert row["lat_jerk_max_abs_mps3"] == pytest.approx(1.0, abs=1e-6)
    assert row["jerk_max_abs_mps3"] == pytest.approx(1.0, abs=1e-6)
    assert set(row) == {"lon_accel_min_mps2", "lon_accel_max_mps2", "lon_jerk_max_abs_mps3", "lat_accel_max_abs_mps2",
                        "lat_jerk_max_abs_mps3", "jerk_max_abs_mps3", "yaw_rate_max_abs_radps",
                        "yaw_accel_max_abs_radps2", "comfort_ratio", "comfortable"}


def test_a_constant_speed_reads_plus_zero_and_the_window_is_the_one_asked():
    series = comfort_series(trace_of(cruise(10)))
    assert all(math.copysign(1.0, v) == 1.0 for v in series["lon_accel"])  # no -0.0 in the tables
    # window 1 (< 3 samples): plain differences of speed = t^3 (np.gradient), not the 7-sample fit
    speeds = [(k * DT_S) ** 3 for k in range(12)]
    egos = [msgspec.structs.replace(EGO, crashed=False, speed=v, vx=v) for v in speeds]
    row = comfort_metrics(trace_of(egos), MetricParams(comfort_window=1))
    assert row["lon_accel_max_mps2"] == pytest.approx(float(np.gradient(speeds, DT_S).max()), abs=1e-7)


def fit_derivative(y: np.ndarray, dt: float, w: int, order: int) -> np.ndarray:
    """The documented rule by np.polyfit: per sample, a least-squares polynomial over its window (shifted inwards
    at the ends), differentiated there."""
    n, t = len(y), np.arange(len(y)) * dt
    out = []
    for j in range(n):
        start = min(max(j - w // 2, 0), n - w)
        poly = np.polyfit(t[start:start + w], y[start:start + w], order)
        out.append(np.polyval(np.polyder(poly), t[j]))
    return np.array(out)


@pytest.mark.parametrize(("n", "w"), [(3, 3), (5, 5), (6, 5), (7, 7), (12, 7)])
def test_savgol_against_least_squares_fits(n, w):
    # a window of 7 over a series of n samples: the odd window that fits (n if odd, else n - 1)
    y = np.sin(np.arange(n) * 0.7) + (np.arange(n) * 0.1) ** 3
    assert savgol_derivative(y, 0.1, 7) == pytest.approx(fit_derivative(y, 0.1, w, 2), abs=1e-9)


def test_savgol_of_other_orders_and_short_series():
    t = np.arange(9) * 0.2
    assert savgol_derivative(t**3 - 2 * t, 0.2, 5, order=3) == pytest.approx(3 * t**2 - 2, abs=1e-9)
    assert savgol_derivative([0, 1], 0.5, 7).tolist() == [2.0, 2.0]  # below order + 1 samples: differences
    assert savgol_derivative([3.0], 0.1, 7).tolist() == [0.0]
    assert savgol_derivative([], 0.1, 7).tolist() == []


# --- lane changes, rewards, ttc ---------------------------------------------------------------------------

@pytest.mark.parametrize(("lanes", "changes"), [
    ([], 0),
    ([1] * 20 + [0] * 4 + [1] * 20, 0),  # 4 ticks < 8: a wobble
    ([1] * 20 + [0] * 7 + [1] * 20, 0),  # 7 ticks < 8
    ([1] * 20 + [0] * 8 + [1] * 20, 2),  # exactly 8 ticks: a change, and back
])
def test_lane_changes_at_the_hold_boundary(lanes, changes):
    assert count_lane_changes(lanes, hold_ticks=8) == changes


def test_rewards_per_second_over_a_short_episode():
    egos = [msgspec.structs.replace(EGO, header=Header(tick=k), crashed=False, reward=0.0 if k == 0 else 0.5)
            for k in range(10)]
    row = motion_metrics(trace_of(egos))  # ticks 0..9: 9 steps = 0.6 s
    assert row["reward_per_s"] == pytest.approx(9 * 0.5 / (9 * DT_S))
    single = motion_metrics(trace_of([EGO]))
    assert single["reward_per_s"] is None and single["duration_s"] == 0.0


def test_ttc_at_touching_boxes_and_slow_closing():
    assert ttc_of(0.0, -1.0) == 0.0  # touching, even when opening
    assert ttc_of(0.5, 1.0) == 0.5
    assert ttc_of(10.0, 0.5) == 20.0
    assert ttc_of(10.0, 0.0) == math.inf


def test_episode_metrics_hands_its_params_to_every_part():
    n = 5
    egos = [msgspec.structs.replace(e, lane_index=lane) for e, lane in zip(cruise(n), [1, 1, 0, 1, 1], strict=True)]
    truth = [Object(id=1, x=20.0, y=0.0, vx=0.0, vy=0.0)]
    off = ObjectArray(objects=[Object(id=5, x=22.5, y=0.0, vx=0.0, vy=0.0)])  # IoU 1/3 with the truth
    trace = full_trace(egos, [truth] * n, perception=[off] * n, ego_recv_ns=[0] * n,
                       cmd_recv_ns=[55_000_000] * n)  # 55 ms each
    params = MetricParams(lane_hold_s=0.05, iou_min=0.3, deadline_s=0.05, ttc_horizon_s=4.0,
                          comfort=ComfortBounds(lon_accel_min=0.1))  # asks for at least 0.1 m/s^2
    row = episode_metrics(trace, params)
    assert row["lane_changes"] == 2  # a one-tick hold counts the wobble
    assert row["perception_tp"] == n  # matched at IoU 1/3 >= 0.3
    assert row["deadline_misses"] == n  # 55 ms > 50 ms
    assert row["min_ttc_s"] == 4.0 and row["series"]["ttc_s"] == [4.0] * n  # the lead is not closing
    assert row["comfortable"] is False  # a cruise at constant speed is below that
    loose = episode_metrics(trace)
    assert (loose["lane_changes"], loose["perception_tp"], loose["deadline_misses"]) == (0, 0, 0)
    assert loose["comfortable"] is True


def test_a_lead_labelled_lane_zero_in_lane_zero():
    ego0 = msgspec.structs.replace(cruise(1)[0], lane_index=0, y=0.0)
    assert lead_gap(ego0, ObjectArray(objects=[Object(id=1, x=20.0, y=3.0, vx=0.0, vy=0.0, lane_index=0)])) is not None


def test_perception_skips_unscored_ticks_and_recall_with_equal_hits_and_misses():
    truth = [Object(id=1, x=20.0, y=0.0, vx=0.0, vy=0.0), Object(id=2, x=40.0, y=4.0, vx=0.0, vy=0.0)]
    seen = ObjectArray(objects=[Object(id=5, x=20.0, y=0.0, vx=0.0, vy=0.0)])
    row = perception_metrics(full_trace(cruise(2), [truth, truth], perception=[None, seen]))
    assert (row["perception_tp"], row["perception_fn"], row["perception_recall_ratio"]) == (1, 1, 0.5)


def test_only_overridden_makes_override_episodes():
    agg = aggregate([{"episode": 0, "collision": True}, {"episode": 1, "collision": False}])
    assert "override_episodes" not in agg and agg["collision_rate"] == 0.5
