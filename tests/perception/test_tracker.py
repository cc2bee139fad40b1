"""The tracker on synthetic detections with closed-form truth."""

import numpy as np
import pytest

from nodes.perception.tracker import T_ID, T_VX, T_VY, T_X, T_Y, Tracker, TrackerConfig

DT = 1 / 15


def det(x: float, y: float, score: float = 0.9) -> list[float]:
    return [x, y, 5.0, 2.0, 0.0, score]


def run(paths, steps: int, ego_speed=lambda t: 25.0, noise: float = 0.0, seed: int = 0):
    """paths: functions t -> (x, y) relative to the ego. The ego drives along x at ego_speed(t)."""
    rng = np.random.default_rng(seed)
    tr = Tracker()
    ego_x, out = 0.0, []
    for k in range(steps):
        t = k * DT
        if k:
            ego_x += ego_speed(t - DT) * DT
        dets = [det(*(np.array(p(t)) + rng.normal(0, noise, 2))) for p in paths]
        out.append(tr.step(np.array(dets), (ego_x, 4.0), (ego_speed(t), 0.0), t))
    return out


def ids_by_truth(out, paths, steps: int) -> list[set[int]]:
    seen = [set() for _ in paths]
    for k, tracks in enumerate(out):
        for row in tracks:
            d = [np.hypot(row[T_X] - p(k * DT)[0], row[T_Y] - p(k * DT)[1]) for p in paths]
            seen[int(np.argmin(d))].add(int(row[T_ID]))
    return seen


def test_ids_survive_a_crossing_in_y() -> None:
    # Two vehicles 6 m apart along the road swap lanes through each other's lateral position.
    paths = [lambda t: (10.0, -4.0 + 3.0 * t), lambda t: (16.0, 4.0 - 3.0 * t)]
    out = run(paths, 60, noise=0.08)
    seen = ids_by_truth(out, paths, 60)
    assert [len(s) for s in seen] == [1, 1] and seen[0] != seen[1]


def test_ids_survive_a_crossing_in_x() -> None:
    # One vehicle overtakes the other in the next lane (3.5 m apart across the road) at 10 m/s relative.
    paths = [lambda t: (-10.0 + 5.0 * t, 0.0), lambda t: (10.0 - 5.0 * t, 3.5)]
    out = run(paths, 60, noise=0.08)
    seen = ids_by_truth(out, paths, 60)
    assert [len(s) for s in seen] == [1, 1] and seen[0] != seen[1]


def test_relative_velocity_converges_while_the_ego_brakes() -> None:
    # Target at a constant 22 m/s over the road; the ego brakes from 25 m/s at 3 m/s^2.
    ego_speed = lambda t: 25.0 - 3.0 * t  # noqa: E731
    target_x = lambda t: 15.0 + 22.0 * t - (25.0 * t - 1.5 * t * t)  # noqa: E731
    out = run([lambda t: (target_x(t), 0.0)], 30, ego_speed=ego_speed, noise=0.05)
    t = 29 * DT
    (row,) = out[-1]
    assert row[T_VX] == pytest.approx(22.0 - ego_speed(t), abs=0.3)
    assert row[T_VY] == pytest.approx(0.0, abs=0.3)


def test_confirmation_coasting_and_deletion() -> None:
    tr = Tracker(TrackerConfig(confirm_hits=2, max_misses=2, report_misses=1))
    assert len(tr.step(np.array([det(10, 0)]), (0, 0), (0, 0), 0.0)) == 0  # tentative
    assert len(tr.step(np.array([det(10, 0)]), (0, 0), (0, 0), DT)) == 1  # confirmed
    assert len(tr.step(np.zeros((0, 6)), (0, 0), (0, 0), 2 * DT)) == 1  # coasting, still reported
    assert len(tr.step(np.zeros((0, 6)), (0, 0), (0, 0), 3 * DT)) == 0  # coasting, not reported
    assert len(tr) == 1
    tr.step(np.zeros((0, 6)), (0, 0), (0, 0), 4 * DT)
    assert len(tr) == 0


def test_time_going_back_starts_afresh() -> None:
    tr = Tracker()
    for k in range(3):
        tr.step(np.array([det(10, 0)]), (0, 0), (0, 0), k * DT)
    tr.step(np.array([det(10, 0)]), (0, 0), (0, 0), 0.0)
    assert len(tr) == 1 and tr.ids[0] == 1 and tr.hits[0] == 1  # ids restart: episodes are independent


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="gate"):
        TrackerConfig(gate_m=0.0)
