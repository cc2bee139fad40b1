"""Multi-object tracker: constant-velocity Kalman filters, gated minimum-cost assignment, stable ids.

Detections come in and tracks go out in the ego frame (ego-relative positions and velocities, road axes).
Inside, each track's state is anchored to the road with the ego's pose: other vehicles move at a nearly
constant velocity over the road, but not relative to an ego that brakes or steers, so the constant-velocity
model holds where it is applied and the ego's own motion, known exactly from its state, never has to be
estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msgs.limits import MAX_POSITION, MAX_SPEED, MAX_TIME, MAX_VEHICLE_SIZE, clamp
from nodes.perception.assignment import gated_assignment

TRACK_FIELDS = ("x", "y", "length", "width", "vx", "vy", "id", "hits", "heading", "score", "misses")
T_X, T_Y, T_LEN, T_WID, T_VX, T_VY, T_ID, T_HITS, T_HEAD, T_SCORE, T_MISSES = range(len(TRACK_FIELDS))


@dataclass(frozen=True)
class TrackerConfig:
    meas_std: float = 0.1  # [m] detector position noise (1 sigma, each axis)
    accel_std_x: float = 2.0  # [m/s^2] unmodelled acceleration of a vehicle along the road
    accel_std_y: float = 1.0  # [m/s^2] across the road (lane changes)
    init_vx_std: float = 5.0  # [m/s] prior spread of a new vehicle's speed around the ego's
    init_vy_std: float = 1.0  # [m/s] prior spread of a new vehicle's lateral speed around 0 (road frame)
    gate_m: float = 2.5  # [m] largest distance between a track's prediction and its detection
    confirm_hits: int = 2  # detections before a track is reported
    max_misses: int = 3  # frames a track survives without a detection
    report_misses: int = 1  # a confirmed track is still reported this many frames after its last detection
    shape_alpha: float = 0.3  # weight of a new detection in the running length, width and heading

    def __post_init__(self) -> None:
        self.check()  # a value object: refused when made (the perception node makes it in its `check`)

    def check(self) -> TrackerConfig:
        """ValueError naming the first bad field; returns self so it chains."""
        if min(self.meas_std, self.accel_std_x, self.accel_std_y, self.init_vx_std, self.init_vy_std,
               self.gate_m) <= 0:
            raise ValueError(f"TrackerConfig: noise levels and gate must be > 0, got {self}")
        if not 0 < self.shape_alpha <= 1:
            raise ValueError(f"TrackerConfig.shape_alpha must be in (0, 1], got {self.shape_alpha}")
        return self


def _bounded_detections(dets: np.ndarray) -> np.ndarray:
    """Detection rows (x, y, length, width, heading, score) inside the physical envelope; `dets` itself
    when every value already is."""
    lo = np.array([-MAX_POSITION, -MAX_POSITION, 0.0, 0.0, -np.pi, 0.0])
    hi = np.array([MAX_POSITION, MAX_POSITION, MAX_VEHICLE_SIZE, MAX_VEHICLE_SIZE, np.pi, 1.0])
    core = dets[:, :6]
    if ((core >= lo) & (core <= hi)).all():
        return dets
    dets = dets.copy()
    heading = dets[:, 4]
    outside = np.abs(heading) > np.pi
    dets[outside, 4] = np.remainder(heading[outside] + np.pi, 2.0 * np.pi) - np.pi
    dets[:, :6] = np.clip(dets[:, :6], lo, hi)
    return dets


class Tracker:
    """Pure tracker: `step(detections, ego pose, ego velocity, time)` -> tracks; no I/O, no clock."""

    def __init__(self, cfg: TrackerConfig = TrackerConfig()) -> None:
        self.cfg = cfg
        self._fq: tuple[float, np.ndarray, np.ndarray] | None = None
        self.reset()

    def reset(self) -> None:
        self.x = np.zeros((0, 4))  # road-frame state: X, Y [m], VX, VY [m/s]
        self.P = np.zeros((0, 4, 4))
        self.shape = np.zeros((0, 3))  # length, width [m], heading [rad]
        self.score = np.zeros(0)
        self.ids = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.misses = np.zeros(0, np.int64)
        self.next_id = 1
        self.t: float | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def _model(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Transition F and process noise Q over dt [s] (cached: the control rate is fixed)."""
        if self._fq is None or self._fq[0] != dt:
            F = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1.0]])
            q = np.array([self.cfg.accel_std_x, self.cfg.accel_std_y]) ** 2
            Q = np.zeros((4, 4))
            for a in range(2):  # white-noise acceleration, per axis
                Q[a, a], Q[a, a + 2] = q[a] * dt**3 / 3, q[a] * dt**2 / 2
                Q[a + 2, a], Q[a + 2, a + 2] = q[a] * dt**2 / 2, q[a] * dt
            self._fq = (dt, F, Q)
        return self._fq[1], self._fq[2]

    def _predict(self, dt: float) -> None:
        F, Q = self._model(dt)
        self.x = self.x @ F.T
        self.P = F @ self.P @ F.T + Q

    def _update(self, idx: np.ndarray, z: np.ndarray) -> None:
        """Kalman update of tracks `idx` with road-frame positions z (len(idx), 2)."""
        r = self.cfg.meas_std**2
        P = self.P[idx]
        S = P[:, :2, :2] + r * np.eye(2)
        K = P[:, :, :2] @ np.linalg.inv(S)  # (n, 4, 2)
        innov = z - self.x[idx, :2]
        self.x[idx] += np.einsum("nij,nj->ni", K, innov)
        self.P[idx] = P - K @ P[:, :2, :]

    def step(self, dets: np.ndarray, ego_xy: tuple[float, float], ego_v: tuple[float, float], t: float
             ) -> np.ndarray:
        """Advance to time t [s] and fold in this frame's detections.

        dets: (K, >=6) rows x, y, length, width, heading, score, ego-relative [m, m, m, m, rad, -].
        ego_xy: ego position [m] and ego_v: ego velocity [m/s], both in the road frame.
        Returns the reported tracks as rows of TRACK_FIELDS (ego-relative positions and velocities).
        """
        cfg = self.cfg
        dets = np.asarray(dets, np.float64)
        if dets.size == 0:
            dets = np.zeros((0, 6))
        # Physically meaningless inputs (a position of 1e308 m, a negative size, a time of 1e300 s) are clamped
        # into the envelope of msgs.limits, where the filter's products (dt**3 * q, F P F') stay finite; values
        # inside it are used as they are.
        dets = _bounded_detections(dets)
        ex, ey = (clamp(float(v), -MAX_POSITION, MAX_POSITION) for v in ego_xy)
        evx, evy = (clamp(float(v), -MAX_SPEED, MAX_SPEED) for v in ego_v)
        t = clamp(float(t), -MAX_TIME, MAX_TIME)
        ego_xy, ego_v = (ex, ey), (evx, evy)
        if self.t is not None and t > self.t:
            self._predict(t - self.t)
        elif self.t is not None and t < self.t:
            self.reset()  # time went backwards: a new episode
        self.t = t
        z = dets[:, :2] + np.array([ex, ey])
        pairs = []
        if len(self) and len(dets):
            cost = np.linalg.norm(self.x[:, None, :2] - z[None, :, :], axis=2)
            pairs = gated_assignment(cost, cfg.gate_m)
        ti = np.array([p[0] for p in pairs], np.int64)
        di = np.array([p[1] for p in pairs], np.int64)
        if len(ti):
            self._update(ti, z[di])
            a = cfg.shape_alpha
            self.shape[ti] = (1 - a) * self.shape[ti] + a * dets[di][:, [2, 3, 4]]
            self.score[ti] = dets[di, 5]
            self.hits[ti] += 1
            self.misses[ti] = 0
        missed = np.ones(len(self), bool)
        missed[ti] = False
        self.misses[missed] += 1
        if (self.misses > cfg.max_misses).any():
            self._drop(self.misses <= cfg.max_misses)
        new = np.ones(len(dets), bool)
        new[di] = False
        self._birth(np.nonzero(new)[0], dets, z, (evx, evy))
        return self.report(ego_xy, ego_v)

    def _drop(self, keep: np.ndarray) -> None:
        self.x, self.P, self.shape = self.x[keep], self.P[keep], self.shape[keep]
        self.score, self.ids, self.hits, self.misses = (self.score[keep], self.ids[keep], self.hits[keep],
                                                        self.misses[keep])

    def _birth(self, new: np.ndarray, dets: np.ndarray, z: np.ndarray, ego_v: tuple[float, float]) -> None:
        n = len(new)
        if n == 0:
            return
        cfg = self.cfg
        x = np.zeros((n, 4))
        x[:, :2] = z[new]
        x[:, 2] = ego_v[0]  # a new vehicle is assumed to keep pace with the ego, with a wide spread
        P = np.zeros((n, 4, 4))
        P[:, 0, 0] = P[:, 1, 1] = cfg.meas_std**2
        P[:, 2, 2], P[:, 3, 3] = cfg.init_vx_std**2, cfg.init_vy_std**2
        self.x, self.P = np.concatenate([self.x, x]), np.concatenate([self.P, P])
        self.shape = np.concatenate([self.shape, dets[new][:, [2, 3, 4]]])
        self.score = np.concatenate([self.score, dets[new, 5]])
        self.ids = np.concatenate([self.ids, np.arange(self.next_id, self.next_id + n)])
        self.next_id += n
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(n, np.int64)])

    def report(self, ego_xy: tuple[float, float], ego_v: tuple[float, float]) -> np.ndarray:
        """Confirmed tracks seen within `report_misses` frames, ego-relative rows of TRACK_FIELDS."""
        cfg = self.cfg
        k = (self.hits >= cfg.confirm_hits) & (self.misses <= cfg.report_misses)
        out = np.zeros((int(k.sum()), len(TRACK_FIELDS)))
        out[:, T_X] = self.x[k, 0] - ego_xy[0]
        out[:, T_Y] = self.x[k, 1] - ego_xy[1]
        out[:, T_VX] = self.x[k, 2] - ego_v[0]
        out[:, T_VY] = self.x[k, 3] - ego_v[1]
        out[:, [T_LEN, T_WID, T_HEAD]] = self.shape[k]
        out[:, T_ID], out[:, T_HITS], out[:, T_MISSES] = self.ids[k], self.hits[k], self.misses[k]
        out[:, T_SCORE] = self.score[k]
        return out
