"""Evaluation's metrics, aggregates and statistics pinned to their documented rules where the suite's
closed-form tests leave a rule unchecked: which box the ego hit (most overlap, else the nearest box, every
distance computed here by hand for 5 x 2 m boxes), the rear-end / side split, perception counting, the
aggregate's key rules and clipping, and the t quantiles to the accuracy their docstring states."""

from __future__ import annotations

import math

import msgspec
import pytest

from evaluation.aggregate import aggregate
from evaluation.metrics import MetricParams, collision_partner, motion_metrics, reason_kinds, score_detections
from evaluation.stats import mean_ci95, t_975, wilson_ci95
from evaluation.trace import EpisodeTrace
from msgs import EgoState, Object

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
