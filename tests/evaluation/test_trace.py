"""Episode traces: built from messages in any order, and read back from a real recording."""

from __future__ import annotations

import json

import pytest

from evaluation.metrics import episode_metrics
from evaluation.trace import TraceBuilder, traces_from_recording
from msgs import ControlCommand, Diagnostics, EgoState, EpisodeEvent, Header, ObjectArray
from tests.conftest import run_launch


def header(episode: int, tick: int) -> Header:
    return Header(episode=episode, tick=tick, stamp_ns=tick * 1_000_000_000 // 15)


def ego(episode: int, tick: int) -> EgoState:
    return EgoState(header=header(episode, tick), x=float(tick), y=0.0, heading=0.0, speed=15.0, vx=15.0,
                    vy=0.0, lane_index=0, lateral_offset=0.0)


def cmd(episode: int, tick: int) -> ControlCommand:
    return ControlCommand(header=header(episode, tick), acceleration=0.0, steering=0.0)


def test_builder_aligns_by_tick_whatever_the_arrival_order():
    b = TraceBuilder()
    b.add("/sim/episode", EpisodeEvent(header=header(0, 0), kind="start", seed=41), 1)
    b.add("/sim/ego", ego(0, 1), 200)
    b.add("/sim/ego", ego(0, 0), 100)
    b.add("/control/cmd", cmd(0, 1), 230)  # tick 1's command arrives before tick 0's
    b.add("/control/cmd", cmd(0, 0), 110)
    b.add("/sim/objects_gt", ObjectArray(header=header(0, 0)), 105)  # none for tick 1
    b.add("/sim/ego", ego(0, 1), 999)  # a duplicate: the first is kept
    b.add("/diagnostics", Diagnostics(node="control"), 150)
    b.add("/sim/camera", ego(0, 0), 0)  # not kept
    b.add("/sim/episode", EpisodeEvent(header=header(0, 2), kind="end", seed=41, reason="collision"), 300)
    b.add("/sim/episode", EpisodeEvent(header=header(1, 0), kind="start", seed=42), 301)
    b.add("/sim/ego", ego(1, 0), 400)
    b.add("/diagnostics", Diagnostics(node="sim"), 401)

    first, second = b.traces()
    assert (first.episode, first.seed, first.end_reason, first.finished) == (0, 41, "collision", True)
    assert first.ticks == [0, 1] and first.steps == 1
    assert [m.header.tick for m in first.cmd] == [0, 1]
    assert first.objects_gt[0] is not None and first.objects_gt[1] is None
    assert first.ego_recv_ns == [100, 200] and first.cmd_recv_ns == [110, 230]
    assert first.duplicates == 1 and b.ignored == 1
    assert [d.node for d in first.diagnostics] == ["control"]
    assert not first.has("perception") and first.has("cmd")
    assert first.t_s.tolist() == pytest.approx([0.0, 1 / 15])
    assert (second.episode, second.seed, second.finished) == (1, 42, False)
    assert [d.node for d in second.diagnostics] == ["sim"]

    popped = b.pop_finished()
    assert [t.episode for t in popped] == [0]
    assert [t.episode for t in b.traces()] == [1]  # the running episode stays
    assert b.pop_finished() == []


def test_missing_recording_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        traces_from_recording(tmp_path / "nope.mcap")


def test_traces_from_a_real_recording(tmp_path):
    proc = run_launch("full_stack.yaml", "duration:=3.0", "episodes:=2", "vehicles:=10", "seed:=1000", cwd=tmp_path,
                      timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recordings = list(tmp_path.glob("runs/*/recording.mcap"))
    assert len(recordings) == 1, proc.stdout

    traces = traces_from_recording(recordings[0])
    assert [t.episode for t in traces] == [0, 1]
    assert [t.seed for t in traces] == [1000, 1001]
    for t in traces:
        # 3 s at 15 Hz: ticks 0..45, every per-tick topic of the stack present on every tick
        assert t.ticks == list(range(46)) and t.steps == 45
        assert t.end_reason in ("time_limit", "collision", "offroad")
        assert all(m is not None for m in t.objects_gt + t.target + t.cmd)
        assert all(r is not None for r in t.ego_recv_ns + t.cmd_recv_ns)
        assert t.has("perception") and all(m is not None for m in t.perception)
        row = episode_metrics(t, series=True)
        json.dumps(row, allow_nan=False)  # plain, finite values only
        assert len(row["series"]["speed_mps"]) == 46
        assert row["ticks"] == 45 and row["duration_s"] == pytest.approx(3.0)
        assert row["distance_m"] > 0 and 0 < row["latency_p50_ms"] < 1000
        assert row["override_ratio"] is not None  # the stack publishes /decision/target
