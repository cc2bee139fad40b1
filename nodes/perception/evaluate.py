"""Run the detector and the tracker over a rendered dataset and score them (training and the benchmark)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from nodes.perception.dataset import CONTROL_RATE_HZ, frame_labels
from nodes.perception.metrics import DetectionScore, TrackScore
from nodes.perception.tracker import T_MISSES, Tracker, TrackerConfig


def detect_all(detect: Callable[[np.ndarray], np.ndarray], data: dict, progress: bool = False
               ) -> tuple[list[np.ndarray], np.ndarray]:
    """Detections for every frame and the time each took [s]."""
    from tqdm import tqdm

    dets, times = [], []
    for frame in tqdm(data["frames"], desc="detecting", unit="frame", disable=not progress, leave=False):
        t0 = time.perf_counter()
        dets.append(detect(frame))
        times.append(time.perf_counter() - t0)
    return dets, np.array(times)


def score_detections(dets: list[np.ndarray], data: dict, iou_min: float = 0.5) -> DetectionScore:
    score = DetectionScore(iou_min)
    for i, d in enumerate(dets):
        score.add(d, frame_labels(data, i))
    return score


def track_all(dets: list[np.ndarray], data: dict, cfg: TrackerConfig | None = None, min_hits: int = 5
              ) -> tuple[TrackScore, DetectionScore, np.ndarray]:
    """Track through each sequence (consecutive frames only). Returns the velocity score, the detection
    score of the reported tracks (as if they were detections) and the time each tracker step took [s]."""
    tracker = Tracker(cfg or TrackerConfig())
    vel, det = TrackScore(min_hits), DetectionScore()
    times = []
    last = (-1, -1)
    for i, d in enumerate(dets):
        seq, step = (int(v) for v in data["seq"][i])
        if seq != last[0] or step != last[1] + 1:
            tracker.reset()
            vel.reset()
        last = (seq, step)
        ego = data["ego"][i].astype(np.float64)
        t0 = time.perf_counter()
        tracks = tracker.step(d, (ego[0], ego[1]), (ego[4], ego[5]), step / CONTROL_RATE_HZ)
        times.append(time.perf_counter() - t0)
        labels = frame_labels(data, i)
        vel.add(tracks, labels)
        # As detections: x, y, length, width, heading, score (seen this frame first).
        as_det = np.stack([tracks[:, 0], tracks[:, 1], tracks[:, 2], tracks[:, 3], tracks[:, 8],
                           1.0 - 0.1 * tracks[:, T_MISSES]], 1) if len(tracks) else np.zeros((0, 6))
        det.add(as_det, labels)
    return vel, det, np.array(times)
