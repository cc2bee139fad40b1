"""Record a lockstep episode, replay it, record the replay: the bytes are the same on every topic."""

import subprocess
import sys
from pathlib import Path

from nodes.recorder.mcap_io import read_records
from tests.conftest import ROOT, _env, recorded_bodies, run_launch

DATA = Path(__file__).parents[1] / "data"


def test_replay_is_byte_identical(workdir):
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=workdir, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    (original,) = list((workdir / "runs").glob("*/recording.mcap"))
    play = subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(original), "--rate", "max", "--record"],
                          cwd=workdir, capture_output=True, text=True, timeout=120, env=_env(None))
    assert play.returncode == 0, play.stdout + play.stderr
    (copy,) = [p for p in (workdir / "runs").glob("*/recording.mcap") if p != original]
    a, b = recorded_bodies(original), recorded_bodies(copy)
    assert set(a) == set(b) and len(a["/sim/ego"]) == 106
    for topic in a:
        assert a[topic] == b[topic], topic


def test_replay_paces_and_filters(workdir):
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=workdir, timeout=180)
    assert res.returncode == 0
    (original,) = list((workdir / "runs").glob("*/recording.mcap"))
    import time

    t0 = time.monotonic()
    play = subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(original), "--rate", "4",
                           "--topics", "/sim/ego", "--record"], cwd=workdir, capture_output=True, text=True,
                          timeout=120, env=_env(None))
    assert play.returncode == 0, play.stdout + play.stderr
    (copy,) = [p for p in (workdir / "runs").glob("*/recording.mcap") if p != original]
    got = recorded_bodies(copy)
    assert set(got) == {"/sim/ego"} and got["/sim/ego"] == recorded_bodies(original)["/sim/ego"]
    recorded_s = _span(original)
    assert time.monotonic() - t0 > recorded_s / 4 * 0.8  # paced, not flat out


def _span(path: Path) -> float:
    times = [r.log_time_ns for r in read_records(path, {"/sim/ego"})]
    return (times[-1] - times[0]) / 1e9


def test_replay_rejects_a_missing_file(workdir):
    play = subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(workdir / "nope.mcap")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=_env(None))
    assert play.returncode == 2 and "no such recording" in play.stderr
