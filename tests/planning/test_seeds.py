"""Seed ranges: training, its periodic evaluation, model selection and the held-out bench never meet."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from nodes.planning.seeds import (
    BENCH_SEED_BASE,
    HELD_OUT_EPISODES,
    HELD_OUT_SEED_BASE,
    RETIRED_HELD_OUT_SEED_BASES,
    SELECTION_SEED_BASE,
    TRAIN_SEED_RANGE,
    VALIDATION_SEED_BASE,
)
from nodes.planning.train import Args

ROOT = Path(__file__).resolve().parents[2]


def test_ranges_are_disjoint():
    periodic = range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + Args().eval_episodes)
    selection = range(SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1_000)
    bench = range(BENCH_SEED_BASE, BENCH_SEED_BASE + 1_000)
    assert TRAIN_SEED_RANGE[1] <= periodic.start
    assert periodic.stop <= selection.start and selection.stop <= bench.start
    held_out = range(HELD_OUT_SEED_BASE, HELD_OUT_SEED_BASE + HELD_OUT_EPISODES)
    assert bench.stop <= held_out.start and HELD_OUT_EPISODES >= 100
    for base in RETIRED_HELD_OUT_SEED_BASES:  # a range already looked at is never held out again
        assert bench.stop <= base and not set(held_out) & set(range(base, base + HELD_OUT_EPISODES))


def test_planner_bench_runs_on_the_selection_episodes_when_asked(tmp_path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_planner", ROOT / "bench" / "planner.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    out = tmp_path / "selection.json"
    assert bench.main(["--selection", "--episodes", "1", "--only", "planner_dqn_overrides_on",
                       "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["kind"] == "model-selection" and figures["seeds"] == [SELECTION_SEED_BASE]
    row = figures["rows"]["planner_dqn_overrides_on"]
    assert row["episodes"] == 1 and 15.0 < row["mean_speed_mps"] < 35.0
