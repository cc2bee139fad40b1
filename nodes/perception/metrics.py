"""Scoring detections and tracks against ground truth (used by training, the benchmark and the tests).

Rules: a detection matches the ground-truth box it overlaps most (IoU >= iou_min, axis-aligned boxes in
metres, greedy in decreasing score). Only vehicles fully in view count: a detection matched to a vehicle
partly out of the frame is neither right nor wrong; an unmatched detection is a false positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nodes.perception.dataset import L_ID, L_IN_VIEW, L_VX, L_VY


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of axis-aligned boxes, rows (x, y, length, width) -> (len(a), len(b))."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    ix = np.clip(np.minimum(a[..., 0] + a[..., 2] / 2, b[..., 0] + b[..., 2] / 2)
                 - np.maximum(a[..., 0] - a[..., 2] / 2, b[..., 0] - b[..., 2] / 2), 0, None)
    iy = np.clip(np.minimum(a[..., 1] + a[..., 3] / 2, b[..., 1] + b[..., 3] / 2)
                 - np.maximum(a[..., 1] - a[..., 3] / 2, b[..., 1] - b[..., 3] / 2), 0, None)
    inter = ix * iy
    return inter / np.maximum(a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter, 1e-9)


def match(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_min: float = 0.5) -> np.ndarray:
    """Greedy matching in decreasing score: for each box the index of its label row, or -1."""
    out = np.full(len(boxes), -1, np.int64)
    if len(boxes) == 0 or len(labels) == 0:
        return out
    iou = box_iou(boxes, labels)
    taken = np.zeros(len(labels), bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_min:
            out[i], taken[j] = j, True
    return out


@dataclass
class DetectionScore:
    """Accumulates per-frame results; precision/recall over vehicles fully in view."""

    iou_min: float = 0.5
    tp: int = 0
    fp: int = 0
    fn: int = 0
    pos_err: list[float] = field(default_factory=list)  # [m] centre error of true positives

    def add(self, dets: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """dets: (K, >=6) x, y, length, width, heading, score. Returns the matched label row per det."""
        m = match(dets[:, :4], dets[:, 5], labels, self.iou_min)
        visible = labels[:, L_IN_VIEW] > 0.5
        hit = m >= 0
        tp = hit & visible[np.maximum(m, 0)]
        self.tp += int(tp.sum())
        self.fp += int((~hit).sum())
        self.fn += int(visible.sum() - tp.sum())
        if tp.any():
            d = dets[tp, :2] - labels[m[tp], :2]
            self.pos_err.extend(np.hypot(d[:, 0], d[:, 1]).tolist())
        return m

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    def summary(self) -> dict[str, float]:
        e = np.asarray(self.pos_err) if self.pos_err else np.full(1, np.nan)
        return {
            "precision_ratio": self.precision,
            "recall_ratio": self.recall,
            "pos_err_median_m": float(np.median(e)),
            "pos_err_p95_m": float(np.percentile(e, 95)),
            "vehicles": float(self.tp + self.fn),
        }


@dataclass
class TrackScore:
    """Velocity error of tracks that have been updated at least `min_hits` times, against the vehicle their
    latest detection matched; plus identity switches (a vehicle's track id changing between frames)."""

    min_hits: int = 5
    vel_err: list[float] = field(default_factory=list)  # [m/s] norm of the relative-velocity error
    vx_err: list[float] = field(default_factory=list)  # [m/s] |error| along the road
    id_switches: int = 0
    matched: int = 0
    _last_track: dict[int, int] = field(default_factory=dict)

    def reset(self) -> None:
        self._last_track.clear()

    def add(self, tracks: np.ndarray, labels: np.ndarray, iou_min: float = 0.5) -> None:
        """tracks: (K, >=8) x, y, length, width, vx, vy, id, hits (relative to the ego)."""
        if len(tracks) == 0:
            return
        m = match(tracks[:, :4], tracks[:, 7], labels, iou_min)
        for k in np.nonzero(m >= 0)[0]:
            lab = labels[m[k]]
            if lab[L_IN_VIEW] < 0.5:
                continue
            vid, tid = int(lab[L_ID]), int(tracks[k, 6])
            self.matched += 1
            if vid in self._last_track and self._last_track[vid] != tid:
                self.id_switches += 1
            self._last_track[vid] = tid
            if tracks[k, 7] >= self.min_hits:
                dvx, dvy = tracks[k, 4] - lab[L_VX], tracks[k, 5] - lab[L_VY]
                self.vel_err.append(float(np.hypot(dvx, dvy)))
                self.vx_err.append(float(abs(dvx)))

    def summary(self) -> dict[str, float]:
        e = np.asarray(self.vel_err) if self.vel_err else np.full(1, np.nan)
        ex = np.asarray(self.vx_err) if self.vx_err else np.full(1, np.nan)
        return {
            "vel_err_median_mps": float(np.median(e)),
            "vel_err_p95_mps": float(np.percentile(e, 95)),
            "vx_err_median_mps": float(np.median(ex)),
            "id_switch_ratio": self.id_switches / max(self.matched, 1),
        }
