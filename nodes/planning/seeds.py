"""Which episode seeds each use may draw, so that evaluation never replays a training world."""

from __future__ import annotations

TRAIN_SEED_RANGE = (0, 1_000_000)  # training episodes draw their seeds uniformly in [low, high)
VALIDATION_SEED_BASE = 9_000_000  # periodic evaluation during training: base, base + 1, ...
SELECTION_SEED_BASE = 9_000_100  # choosing among trained models (bench/planner.py --selection): base, base + 1, ...
BENCH_SEED_BASE = 10_000_000  # bench/planner.py's episodes until now; every earlier choice was checked on them,
# so they are no longer held out: the figures the project claims come from the range below
# It is also the default seed of full_stack.yaml (and so of every launch file that includes it) and of
# `drivestack evaluate` (tests/nodes/test_launch_includes.py holds the YAML to this value).
HELD_OUT_SEED_BASE = 94_300_000  # the held-out episodes of the next choice: base, base + 1, ...; looked at once,
# after every choice, and never before (chosen before the candidates that will be measured on it were trained)
HELD_OUT_EPISODES = 100  # how many of them the claimed figures use
# Held-out ranges already looked at: no longer held out. The README's figures name the range they come from.
RETIRED_HELD_OUT_SEED_BASES = (31_400_000, 52_700_000, 84_300_000, 61_900_000)
