"""drivestack evaluate --ray: seed chunks as Ray tasks give the same episodes and report as the local path."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _env

ray = pytest.importorskip("ray", reason='Ray is the optional [ray] extra (pip install "drivestack[ray]")')

ARGS = ["full_stack.yaml", "perception:=gt", "vehicles:=10", "duration:=3.0", "--episodes", "4", "--seed", "5151"]
TIMING = ("latency", "deadline", "wall", "recv")  # wall-clock figures differ between any two runs


def _rows(out: Path) -> list[dict]:
    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    # "episode" counts within one launch, so it depends on how seeds were chunked; the seed names the episode
    return [{k: v for k, v in r.items() if k != "episode" and not any(t in k for t in TIMING)} for r in rows]


@pytest.fixture
def local_ray(monkeypatch):
    import os

    for key, value in _env(None).items():  # Ray's workers start the launches; they need the repo importable
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield os.environ
    ray.shutdown()


def test_ray_tasks_give_the_local_episodes(tmp_path, local_ray, monkeypatch):
    from evaluation.evaluate import main

    monkeypatch.chdir(tmp_path)
    assert main([*ARGS, "--ray", "--chunk", "1", "--out", str(tmp_path / "ray")]) == 0
    local = subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", *ARGS, "--jobs", "2",
                            "--out", str(tmp_path / "local")], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env=_env(None))
    assert local.returncode == 0, local.stdout + local.stderr
    on_ray, here = _rows(tmp_path / "ray"), _rows(tmp_path / "local")
    assert [r["seed"] for r in on_ray] == ["5151", "5152", "5153", "5154"]
    assert on_ray == here
    meta = json.loads((tmp_path / "ray" / "metrics.json").read_text())
    assert meta["episodes"] == 4 and meta["meta"]["ray"]["tasks_per_config"] == 4
    recordings = sorted((tmp_path / "ray" / "full_stack").glob("job*/recording.mcap"))
    assert len(recordings) == 4 and all(p.stat().st_size > 0 for p in recordings)
    for name in ("summary.md", "speed_over_time.png", "comparison.png"):
        assert (tmp_path / "ray" / name).stat().st_size > 0


def test_a_failing_task_is_reported_not_hung(tmp_path, local_ray, monkeypatch, capsys):
    from evaluation.evaluate import main

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "no_recorder.yaml"  # a stack without a recorder: the task cannot return a recording
    bad.write_text("nodes:\n  - name: ticker\n    module: nodes.demo.ticker\n    required: true\n"
                   "    params: {ticks: 3}\n  - name: echo\n    module: nodes.demo.echo\n")
    assert main([str(bad), "--episodes", "1", "--ray", "--out", str(tmp_path / "out")]) == 1
    assert "no recording" in capsys.readouterr().err


def test_a_launch_file_taken_for_the_address_is_refused(capsys):
    from evaluation.evaluate import main

    with pytest.raises(SystemExit) as exc:
        main(["--ray", "full_stack.yaml"])
    assert exc.value.code == 2 and "put the launch file before --ray" in capsys.readouterr().err
