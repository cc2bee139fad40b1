"""drivestack evaluate end to end: multi-process and in-process give the same episodes; the report is whole."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, _env

ARGS = ["full_stack.yaml", "perception:=gt", "vehicles:=10", "duration:=3.0", "--episodes", "2", "--seed", "4242"]
TIMING = ("latency", "deadline", "wall", "recv")  # wall-clock figures differ between any two runs


def _evaluate(out: Path, *extra: str) -> dict:
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", *ARGS, "--out", str(out), *extra],
                         cwd=out.parent, capture_output=True, text=True, timeout=300, env=_env(None))
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads((out / "metrics.json").read_text())


def _rows(out: Path) -> list[dict]:
    import csv

    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def test_multiprocess_and_inprocess_agree_and_the_report_is_complete(tmp_path):
    multi = _evaluate(tmp_path / "multi", "--multiprocess", "--jobs", "2")
    single = _evaluate(tmp_path / "single")  # composed in one process: the default
    for name in ("metrics.json", "episodes.csv", "summary.md", "speed_over_time.png",
                 "lateral_error_over_time.png", "distributions.png", "comparison.png"):
        for out in ("multi", "single"):
            path = tmp_path / out / name
            assert path.is_file() and path.stat().st_size > 0, path
    assert (tmp_path / "multi" / "speed_over_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert multi["episodes"] == single["episodes"] == 2
    assert (tmp_path / "multi" / "full_stack" / "job1" / "launch.log").is_file()  # real launches, side by side
    assert not (tmp_path / "single" / "full_stack" / "job0" / "launch.log").exists()
    assert {"collision_rate", "mean_speed_mps"} <= set(multi)
    rows_multi, rows_single = _rows(tmp_path / "multi"), _rows(tmp_path / "single")
    assert [r["seed"] for r in rows_multi] == ["4242", "4243"]
    strip = [{k: v for k, v in r.items() if k not in ("episode", "config")} for r in rows_multi]
    assert strip == [{k: v for k, v in r.items() if k not in ("episode", "config")} for r in rows_single]
    assert "full_stack.yaml" in (tmp_path / "multi" / "summary.md").read_text()


def test_a_bad_launch_arg_is_refused_before_driving(tmp_path):
    # name:=value may come after the options too, as in `evaluate FILE.yaml --episodes N name:=value`
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", "full_stack.yaml", "--episodes", "1",
                          "perception:=lidar", "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env=dict(_env(None), **{k: v for k, v in os.environ.items() if k == "PATH"}))
    assert res.returncode == 2 and "'lidar' is not one of" in res.stderr


def test_an_arg_no_launch_file_takes_is_refused_not_dropped(tmp_path):
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", "full_stack.yaml", "--episodes", "1",
                          "planer_model:=x.zip", "--out", str(tmp_path / "x")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=_env(None))
    assert res.returncode == 2 and "['planer_model']" in res.stderr and "planner_model" in res.stderr
    assert not (tmp_path / "x" / "metrics.json").exists()
