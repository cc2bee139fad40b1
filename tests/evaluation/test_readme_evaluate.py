"""README: `drivestack evaluate --compare A B ...` drives every launch file over the same seeds and reports them side
by side; "the metrics are computed from the recordings, so `--recordings DIR` scores earlier runs the same way":
the comparison's own recordings, scored again, give the very same per-episode metrics and aggregates."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _env

TIMING = ("latency", "deadline", "wall", "recv")  # wall-clock figures, measured while driving
CONFIGS = ("full_stack.yaml", "idm_baseline.yaml")


def _evaluate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=600, env=_env(None))
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "episodes.csv") as f:
        return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_compare_drives_the_same_seeds_and_recordings_rescore_to_the_same_metrics(tmp_path):
    driven = tmp_path / "driven"
    # in-process stacks: the same nodes and recordings at half the start-up cost (the multi-process --compare
    # is driven in tests/nodes/test_cli_args.py)
    _evaluate(tmp_path, "--compare", *CONFIGS, "--episodes", "2", "--seed", "5151", "duration:=2", "vehicles:=5",
              "perception:=gt", "--inprocess", "--out", str(driven))
    rows = _rows(driven)
    by_config = {c: [r for r in rows if r["config"] == c] for c in CONFIGS}
    assert all(by_config.values()) and len(rows) == 4
    for config_rows in by_config.values():
        assert [r["seed"] for r in config_rows] == ["5151", "5152"]  # paired: the same episodes for each file
        assert all(r["end_reason"] == "time_limit" for r in config_rows)
    summary = (driven / "summary.md").read_text()
    assert all(c in summary for c in CONFIGS)
    metrics = json.loads((driven / "metrics.json").read_text())
    assert set(metrics["configs"]) == set(CONFIGS)
    # the two drivers drove differently (were it one config twice, every row would match)
    strip = [{k: v for k, v in r.items() if k not in ("config", "episode")} for r in rows]
    assert strip[:2] != strip[2:]

    folders = [driven / Path(c).stem for c in CONFIGS]  # where evaluate put each file's recordings
    assert all(list(f.rglob("*.mcap")) for f in folders)
    rescored = tmp_path / "rescored"
    _evaluate(tmp_path, "--recordings", *map(str, folders), "--out", str(rescored))
    again = _rows(rescored)
    assert [r["config"] for r in again] == [Path(c).stem for c in CONFIGS for _ in range(2)]
    assert [{**r, "config": ""} for r in again] == [{**r, "config": ""} for r in rows]
    rescored_metrics = json.loads((rescored / "metrics.json").read_text())["configs"]
    for config in CONFIGS:
        timed = {k for k in metrics["configs"][config] if any(t in k for t in TIMING)}
        assert ({k: v for k, v in rescored_metrics[Path(config).stem].items() if k not in timed}
                == {k: v for k, v in metrics["configs"][config].items() if k not in timed}), config
