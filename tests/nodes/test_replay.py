"""Record a lockstep episode, replay it, record the replay: the bytes are the same on every topic."""

import subprocess
import sys
from pathlib import Path

import pytest

from nodes.runtime.mcap_io import read_records
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


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """One whole lane-change run's recording (one episode that ends with its time limit)."""
    work = tmp_path_factory.mktemp("recorded")
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=work, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    (path,) = list(work.glob("runs/*/recording.mcap"))
    return path


def _cut_copy(original: Path, dest: Path, seal_it: bool) -> Path:
    """The recording as a writer killed before the end of its episode leaves it (then sealed, as the launcher
    does): cut half-way through the chunk that holds the episode's end event or its last /sim/ego, whichever
    comes first, so that both are lost and the ticks before that chunk are kept. Where the end event lies in
    the file depends on the order the recorder received the topics in, which the machine's load changes: a
    fixed share of the bytes kept it on a loaded machine."""
    from mcap.reader import make_reader

    records = list(read_records(original, {"/sim/episode", "/sim/ego"}))
    (end_ns,) = [r.log_time_ns for r in records if r.topic == "/sim/episode" and r.decode().kind == "end"]
    ego_ns = [r.log_time_ns for r in records if r.topic == "/sim/ego"]
    cut_ns = min(end_ns, ego_ns[-1])
    with open(original, "rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    chunk = next(c for c in chunks if c.message_end_time >= cut_ns)  # the recorder writes in log-time order
    assert ego_ns[0] < chunk.message_start_time, "the first tick is in the chunk to cut: nothing would be kept"
    dest.write_bytes(original.read_bytes()[: chunk.chunk_start_offset + chunk.chunk_length // 2])
    if seal_it:
        res = subprocess.run([sys.executable, "-m", "nodes.runtime.seal", str(dest)], capture_output=True,
                             text=True, timeout=60, env=_env(None), cwd=ROOT)
        assert res.returncode == 0 and "cut" in res.stdout, res.stdout + res.stderr
    return dest


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file (0 bytes)"),
    (b"not a recording at all\n" * 10, "not an MCAP file"),
    (None, "is cut short and was never sealed"),
])
def test_replay_refuses_what_is_not_a_usable_recording(tmp_path, recorded, content, expected):
    path = tmp_path / "bad.mcap"
    if content is None:
        _cut_copy(recorded, path, seal_it=False)
    else:
        path.write_bytes(content)
    play = subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=_env(None))
    assert play.returncode == 2, play.stdout + play.stderr
    (line,) = play.stderr.strip().splitlines()
    assert expected in line
    assert not (tmp_path / "runs").exists()  # refused before a run directory was made


def test_replay_of_a_cut_recording_says_so_and_plays_what_is_there(tmp_path, recorded):
    cut = _cut_copy(recorded, tmp_path / "cut.mcap", seal_it=True)
    play = subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(cut), "--rate", "max", "--record"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=_env(None))
    assert play.returncode == 0, play.stdout + play.stderr
    assert play.stdout.count(f"warning: {cut} was cut (sealed by hand") == 2  # at its start and at its end
    (copy,) = list(tmp_path.glob("runs/*/recording.mcap"))
    played, whole = recorded_bodies(copy)["/sim/ego"], recorded_bodies(recorded)["/sim/ego"]
    assert 0 < len(played) < len(whole) and played == whole[: len(played)]


def _evaluate(*folders: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.cli", "evaluate", "--recordings", *map(str, folders),
                           "--out", str(cwd / "report")], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=_env(None))


def test_evaluate_recordings_leaves_out_cut_episodes_and_refuses_double_seeds(tmp_path, recorded):
    import json
    import shutil

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(recorded, mixed / "whole.mcap")
    _cut_copy(recorded, mixed / "cut.mcap", seal_it=True)
    (mixed / "junk.mcap").write_bytes(b"")
    res = _evaluate(mixed, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "left out episode 0 (seed 1003) of" in res.stderr and "cut.mcap: it has no end" in res.stderr
    assert "junk.mcap: not a usable recording: empty file" in res.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert len(metrics["meta"]["left_out"]["mixed"]) == 3  # cut.mcap is cut, its episode, junk.mcap
    rows = (tmp_path / "report" / "episodes.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and "1003" in rows[1]  # the header and the whole episode, once

    shutil.copy(recorded, mixed / "again.mcap")  # the same seed twice in one folder
    res = _evaluate(mixed, cwd=tmp_path)
    assert res.returncode == 2 and "seed 1003 is recorded twice" in res.stderr, res.stdout + res.stderr

    nothing = tmp_path / "nothing"
    nothing.mkdir()
    _cut_copy(recorded, nothing / "cut.mcap", seal_it=True)
    res = _evaluate(nothing, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "error: no whole episode to score under" in res.stderr
