"""Which episode seeds each use may draw, so that evaluation never replays a training world."""

from __future__ import annotations

TRAIN_SEED_RANGE = (0, 1_000_000)  # training episodes draw their seeds uniformly in [low, high)
VALIDATION_SEED_BASE = 9_000_000  # periodic evaluation during training: base, base + 1, ...
BENCH_SEED_BASE = 10_000_000  # bench/planner.py's held-out episodes: base, base + 1, ...
