"""`launch --progress PATH`: one JSON record per ended episode, from a real launch."""

from __future__ import annotations

import json
import re

from tests.conftest import run_launch

KEYS = {"episode", "seed", "reason", "ticks", "collision", "distance_m", "mean_speed_mps", "targets", "following",
        "interventions"}


def test_progress_file_has_one_record_per_episode_matching_the_summary(workdir):
    res = run_launch("demo.yaml", "ticks:=40", "episodes:=3", "--progress", "progress.jsonl", cwd=workdir,
                     timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    records = [json.loads(line) for line in (workdir / "progress.jsonl").read_text().splitlines()]
    assert [(r["episode"], r["seed"], r["reason"]) for r in records] == [(e, e, "time_limit") for e in range(3)]
    assert all(set(r) == KEYS for r in records)
    # the ticker's ego runs x = tick for ticks 0..39: each record holds the whole episode
    assert [(r["ticks"], r["distance_m"], r["collision"]) for r in records] == [(39, 39.0, False)] * 3
    for r in records:  # the same figures as the console's lines and summary table
        assert f"[launch] episode {r['episode']} (seed {r['seed']}) ended: time_limit, 39 m at 15.0 m/s" in res.stdout
        assert re.search(rf"^\s+{r['episode']}\s+{r['seed']}\s+time_limit\s+39\s+no\s+39\.0\s", res.stdout, re.M)


def test_progress_file_of_a_driving_stack(workdir):
    res = run_launch("idm_baseline.yaml", "duration:=2", "episodes:=2", "vehicles:=5", "seed:=7", "record:=false",
                     "--progress", str(workdir / "out" / "p.jsonl"), cwd=workdir, timeout=240)
    assert res.returncode == 2 and "progress file" in res.stderr  # its folder does not exist: refused up front
    (workdir / "out").mkdir()
    res = run_launch("idm_baseline.yaml", "duration:=2", "episodes:=2", "vehicles:=5", "seed:=7", "record:=false",
                     "--progress", str(workdir / "out" / "p.jsonl"), cwd=workdir, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    records = [json.loads(line) for line in (workdir / "out" / "p.jsonl").read_text().splitlines()]
    assert [(r["episode"], r["seed"]) for r in records] == [(0, 7), (1, 8)]
    for r in records:
        assert set(r) == KEYS and r["distance_m"] > 0 and r["mean_speed_mps"] > 0
        # decision's targets are watched in full too: one per tick of the episode (ticks 0..ticks)
        assert r["targets"] == r["ticks"] + 1 and 0 <= r["following"] + r["interventions"] <= r["targets"]


def test_launch_help_documents_progress(workdir):
    res = run_launch("--help", cwd=workdir, timeout=60)
    text = " ".join(res.stdout.split())  # as argparse wrapped it
    assert res.returncode == 0 and "--progress PATH" in text and "JSON line per ended episode" in text
