"""The shipped detector, as the stack runs it (models/perception.pt on its default backend, the int8 ONNX
export), at the README's stated bounds on a fixed set of frames: precision >= 0.99, recall >= 0.98 and median
position error <= 0.2 m over the vehicles fully in view, IoU >= 0.5 (README, Perception and Deployment). The
figures themselves (0.9997 / 1.0000 / 0.067 m over 2400 frames) come from bench/perception.py and bench/deploy.py;
this is a modest set, enough to catch a detector that broke, rendered from seeds never used in training."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.perception import dataset as ds
from nodes.perception.backends import make_detector
from nodes.perception.evaluate import score_detections
from nodes.perception.node import PerceptionParams

# two driven sequences, at highway-v0's density and at 1.5x, 60 steps each, every other frame kept: 60 frames
SCENARIOS = [ds.Scenario(ds.BENCH_SEEDS[0] + 700 + 10 * k, ds.DEFAULT_COUNT, density, 60, 2)
             for k, density in enumerate((1.0, 1.5))]


@pytest.fixture(scope="module")
def frames() -> dict:
    return ds.build(SCENARIOS, progress=False)


@pytest.mark.slow
def test_the_shipped_detector_meets_the_readme_s_bounds(frames: dict) -> None:
    defaults = PerceptionParams()
    detect = make_detector(defaults.model, defaults.backend)
    score = score_detections([detect(f) for f in frames["frames"]], frames)
    assert len(frames["frames"]) == 60 and score.tp + score.fn >= 200  # enough vehicles for 0.99 to mean something
    assert score.precision >= 0.99, (score.tp, score.fp)
    assert score.recall >= 0.98, (score.tp, score.fn)
    assert float(np.median(score.pos_err)) <= 0.2
