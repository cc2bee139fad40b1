"""The tracker pinned to the textbook constant-velocity Kalman filter: a birth at the detection with the ego's
speed and the configured spreads, the prediction F = [[1, dt], [0, 1]] with white-noise-acceleration Q per
axis, the update with gain K = P H' (H P H' + r)^-1, the running shape, the gate at its boundary, ids,
reporting and deletion counts, and the clamp of meaningless detections. Each expected value is computed
here from those formulas, axis by axis (the axes never mix)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nodes.perception.tracker import (
    T_HEAD,
    T_HITS,
    T_ID,
    T_LEN,
    T_MISSES,
    T_SCORE,
    T_VX,
    T_VY,
    T_WID,
    T_X,
    T_Y,
    Tracker,
    TrackerConfig,
)

DT = 1.0 / 15.0
CFG = TrackerConfig()


def det(x: float, y: float, length: float = 5.0, width: float = 2.0, heading: float = 0.0,
        score: float = 0.9) -> list[float]:
    return [x, y, length, width, heading, score]


def kf_axis(p_pos: float, p_vel: float, q: float, pos: float, vel: float, z: float, dt: float
            ) -> tuple[float, float]:
    """One predict + update of a [pos, vel] axis born with diagonal covariance (p_pos, p_vel)."""
    r = CFG.meas_std ** 2
    p00 = p_pos + p_vel * dt**2 + q * dt**3 / 3
    p10 = p_vel * dt + q * dt**2 / 2
    pos_pred, vel_pred = pos + vel * dt, vel
    innov = z - pos_pred
    return pos_pred + p00 / (p00 + r) * innov, vel_pred + p10 / (p00 + r) * innov


def test_birth_predict_update_report_coast_in_closed_form():
    tr = Tracker()
    ego_x0, ego_v = 100.0, 20.0
    assert len(tr.step(np.array([det(10.0, 1.0)]), (ego_x0, 4.0), (ego_v, 0.0), 0.0)) == 0  # tentative
    ego_x1 = ego_x0 + ego_v * DT
    zx, zy = 110.0 + 22.0 * DT, 5.0 + 0.05  # the vehicle at 22 m/s, drifting 5 cm across
    (row,) = tr.step(np.array([det(zx - ego_x1, zy - 4.0, 4.6, 1.8, 0.1, 0.7)]), (ego_x1, 4.0), (ego_v, 0.0), DT)
    r = CFG.meas_std ** 2
    x, vx = kf_axis(r, CFG.init_vx_std**2, CFG.accel_std_x**2, 110.0, ego_v, zx, DT)  # born at the ego's speed
    y, vy = kf_axis(r, CFG.init_vy_std**2, CFG.accel_std_y**2, 5.0, 0.0, zy, DT)
    assert row[T_X] == pytest.approx(x - ego_x1, abs=1e-9)
    assert row[T_Y] == pytest.approx(y - 4.0, abs=1e-9)
    assert row[T_VX] == pytest.approx(vx - ego_v, abs=1e-9)
    assert row[T_VY] == pytest.approx(vy, abs=1e-9)
    a = CFG.shape_alpha
    assert (row[T_LEN], row[T_WID], row[T_HEAD]) == pytest.approx(
        ((1 - a) * 5.0 + a * 4.6, (1 - a) * 2.0 + a * 1.8, a * 0.1), abs=1e-12)
    assert (row[T_ID], row[T_HITS], row[T_MISSES], row[T_SCORE]) == (1, 2, 0, pytest.approx(0.7))
    # a missed frame half a second later (a period other than the last one): reported (report_misses = 1)
    # where the constant velocity puts it, one miss
    ego_x2 = ego_x1 + 21.0 * 0.5
    (coast,) = tr.step(np.zeros((0, 6)), (ego_x2, 4.0), (21.0, 0.0), DT + 0.5)
    assert coast[T_X] == pytest.approx(x + vx * 0.5 - ego_x2, abs=1e-9)
    assert coast[T_VX] == pytest.approx(vx - 21.0, abs=1e-9)
    assert (coast[T_HITS], coast[T_MISSES]) == (2, 1)
    # a second miss: kept (max_misses = 3) but no longer reported
    assert len(tr.step(np.zeros((0, 6)), (ego_x2, 4.0), (21.0, 0.0), DT + 0.6)) == 0 and len(tr) == 1


def kf_matrix(zs: list[float], ts: list[float], p_vel: float, q: float, v0: float) -> np.ndarray:
    """[pos, vel] of one axis after a birth at zs[0] and an update with each later z, by the matrix form."""
    r = CFG.meas_std ** 2
    x, P = np.array([zs[0], v0]), np.diag([r, p_vel])
    for z, dt in zip(zs[1:], np.diff(ts), strict=True):
        F = np.array([[1.0, dt], [0.0, 1.0]])
        Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        x, P = F @ x, F @ P @ F.T + Q
        K = P[:, 0] / (P[0, 0] + r)
        x, P = x + K * (z - x[0]), P - np.outer(K, P[0])
    return x


def test_three_detections_in_closed_form():
    # the second update depends on the whole covariance the first left behind (both off-diagonal terms)
    tr = Tracker()
    ts, xs, ys = [0.0, 0.1, 0.3], [20.0, 21.3, 23.5], [0.0, 0.1, 0.05]
    for t, x, y in zip(ts, xs, ys, strict=True):
        out = tr.step(np.array([det(x, y)]), (0.0, 0.0), (0.0, 0.0), t)
    (row,) = out
    ex = kf_matrix(xs, ts, CFG.init_vx_std**2, CFG.accel_std_x**2, 0.0)
    ey = kf_matrix(ys, ts, CFG.init_vy_std**2, CFG.accel_std_y**2, 0.0)
    assert (row[T_X], row[T_VX], row[T_Y], row[T_VY]) == pytest.approx((ex[0], ex[1], ey[0], ey[1]), abs=1e-9)


def test_two_detections_at_one_time_average_by_the_gain():
    # same t: no prediction; P = diag(r, r, ...) so the position gain is r / (r + r) = 1/2 on each axis
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.0), 1.0)
    (row,) = tr.step(np.array([det(10.2, -0.1)]), (0.0, 0.0), (0.0, 0.0), 1.0)
    assert (row[T_X], row[T_Y]) == pytest.approx((10.1, -0.05), abs=1e-12)
    assert (row[T_VX], row[T_VY]) == pytest.approx((0.0, 0.0), abs=1e-12)  # no cross-covariance yet


@pytest.mark.parametrize("distance,tracks", [(CFG.gate_m, 1), (CFG.gate_m + 1e-6, 2)])
def test_the_gate_is_inclusive(distance, tracks):
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    # dt = 0 keeps the prediction on the birth position, so the pair's cost is the distance itself
    tr.step(np.array([det(10.0, distance)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    assert len(tr) == tracks


def test_ids_count_up_across_births():
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0), det(30.0, 4.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    assert list(tr.ids) == [1, 2] and list(tr.hits) == [1, 1] and list(tr.misses) == [0, 0]
    tr.step(np.array([det(10.0, 0.0), det(30.0, 4.0), det(-20.0, -4.0)]), (0.0, 0.0), (0.0, 0.0), DT)
    assert list(tr.ids) == [1, 2, 3] and list(tr.hits) == [2, 2, 1]


def test_a_track_lives_through_max_misses_and_is_dropped_after():
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    for k in range(1, CFG.max_misses + 1):
        tr.step(np.zeros((0, 6)), (0.0, 0.0), (0.0, 0.0), k * DT)
        assert len(tr) == 1 and tr.misses[0] == k
    tr.step(np.zeros((0, 6)), (0.0, 0.0), (0.0, 0.0), (CFG.max_misses + 1) * DT)
    assert len(tr) == 0


def test_an_empty_list_of_detections_is_no_detection():
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    assert len(tr.step([], (0.0, 0.0), (0.0, 0.0), DT)) == 0 and tr.misses[0] == 1


def test_meaningless_detection_values_are_clamped_and_wrapped():
    tr = Tracker()
    bad = det(10.0, 0.0, length=-3.0, width=500.0, heading=3.5, score=1.7)
    for k in range(2):
        out = tr.step(np.array([bad]), (0.0, 0.0), (0.0, 0.0), k * DT)
    (row,) = out
    assert row[T_LEN] == 0.0 and row[T_WID] == 100.0  # sizes into [0, 100] m
    assert row[T_HEAD] == pytest.approx(3.5 - 2 * math.pi, abs=1e-12)  # into [-pi, pi]
    assert row[T_SCORE] == 1.0
    assert np.all(np.isfinite(out))


def test_values_inside_the_envelope_are_kept_while_others_are_clamped():
    # width 0.5 m and heading pi are inside [0, 100] m and [-pi, pi]: unchanged, though the score (1.5) of
    # the same row is clamped; a seventh column (allowed: rows have >= 6) is carried along untouched
    tr = Tracker(TrackerConfig(confirm_hits=1))
    (row,) = tr.step(np.array([det(10.0, 0.0, 4.0, 0.5, math.pi, 1.5) + [7.0]]), (0.0, 0.0), (0.0, 0.0), 0.0)
    assert (row[T_WID], row[T_HEAD], row[T_SCORE]) == (0.5, math.pi, 1.0)
    (row,) = Tracker(TrackerConfig(confirm_hits=1)).step(np.array([det(10.0, 0.0, 4.0, 0.5) + [7.0]]),
                                                         (0.0, 0.0), (0.0, 0.0), 0.0)
    assert row[T_WID] == 0.5


def test_integer_detections_are_read_as_floats():
    # a list of ints (heading 4 rad, wrapped into [-pi, pi]) gives the same as the float detections
    tr = Tracker(TrackerConfig(confirm_hits=1))
    (row,) = tr.step([[10, 0, 5, 2, 4, 1]], (0.0, 0.0), (0.0, 0.0), 0.0)
    assert row[T_HEAD] == pytest.approx(4.0 - 2 * math.pi, abs=1e-12)


def test_the_shape_of_a_birth_is_its_detections_and_the_score_the_latest():
    tr = Tracker(TrackerConfig(confirm_hits=1))
    (row,) = tr.step(np.array([det(10.0, 0.0, 4.2, 1.9, -0.2, 0.55)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    assert (row[T_LEN], row[T_WID], row[T_HEAD], row[T_SCORE]) == pytest.approx((4.2, 1.9, -0.2, 0.55))


@pytest.mark.parametrize("field", ["meas_std", "accel_std_x", "accel_std_y", "init_vx_std", "init_vy_std",
                                   "gate_m"])
def test_zero_noise_or_gate_is_refused(field):
    with pytest.raises(ValueError):
        TrackerConfig(**{field: 0.0})


def test_shape_alpha_is_in_the_half_open_unit_interval():
    assert TrackerConfig(shape_alpha=1.0).shape_alpha == 1.0
    for bad in (0.0, 1.01):
        with pytest.raises(ValueError, match="shape_alpha"):
            TrackerConfig(shape_alpha=bad)


def test_tracks_keep_their_ids_when_the_detections_come_in_another_order():
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0), det(30.0, 4.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    out = tr.step(np.array([det(30.1, 4.0), det(10.1, 0.0)]), (0.0, 0.0), (0.0, 0.0), DT)
    by_id = {int(row[T_ID]): row for row in out}
    assert by_id[1][T_X] == pytest.approx(10.0, abs=0.2) and by_id[1][T_Y] == pytest.approx(0.0, abs=0.05)
    assert by_id[2][T_X] == pytest.approx(30.0, abs=0.2) and by_id[2][T_Y] == pytest.approx(4.0, abs=0.05)


def test_only_the_tracks_past_max_misses_are_dropped():
    # A is last seen at frame 0, B at frame 1: at frame 4, A has missed 4 frames (> 3, dropped), B 3 (kept)
    tr = Tracker()
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.0), 0.0)
    tr.step(np.array([det(40.0, 8.0)]), (0.0, 0.0), (0.0, 0.0), DT)
    for k in range(2, 5):
        tr.step(np.zeros((0, 6)), (0.0, 0.0), (0.0, 0.0), k * DT)
    assert list(tr.ids) == [2] and list(tr.misses) == [CFG.max_misses]


def test_the_lateral_prior_and_the_ego_lateral_speed():
    # init_vy_std 2 m/s (P_vy = 4), the ego drifting across at 0.5 m/s: the reported VY is relative to it
    cfg = TrackerConfig(init_vy_std=2.0)
    tr = Tracker(cfg)
    tr.step(np.array([det(10.0, 0.0)]), (0.0, 0.0), (0.0, 0.5), 0.0)
    (row,) = tr.step(np.array([det(10.0, 0.2)]), (0.0, 0.0), (0.0, 0.5), 0.1)
    r, q, dt = cfg.meas_std**2, cfg.accel_std_y**2, 0.1
    p00 = r + 4.0 * dt**2 + q * dt**3 / 3
    p10 = 4.0 * dt + q * dt**2 / 2
    assert row[T_VY] == pytest.approx(p10 / (p00 + r) * 0.2 - 0.5, abs=1e-12)
