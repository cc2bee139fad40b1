"""The launcher's driving console (an observer of the topics): which topics it watches, when it reports an
episode, its progress records, and the stop of a launch whose sim runs elsewhere."""

from __future__ import annotations

import json

from msgs import DrivingTarget, EgoState, EpisodeEvent, Header
from nodes.runtime.observer import StackView, Watch
from nodes.viewer.console import DrivingConsole

TOPICS = frozenset({"/sim/ego", "/sim/episode", "/planning/plan", "/decision/target", "/control/cmd"})


def _h(episode: int, tick: int) -> Header:
    return Header(episode=episode, tick=tick, stamp_ns=tick * 1_000_000_000 // 15)


def _ego(episode: int, tick: int) -> EgoState:
    return EgoState(header=_h(episode, tick), x=20.0 * tick / 15, y=4.0, heading=0.0, speed=20.0, vx=20.0, vy=0.0,
                    lane_index=1, lateral_offset=0.0)


def _target(episode: int, tick: int) -> DrivingTarget:
    return DrivingTarget(header=_h(episode, tick), target_lane=1, target_speed=20.0)


def test_watches_in_full_what_the_summaries_need_and_the_plan_only_for_a_live_line():
    console = DrivingConsole()
    assert set(console.watches(StackView(TOPICS, TOPICS, live=False))) == {
        Watch("/sim/ego", True), Watch("/sim/episode", True), Watch("/decision/target", True)}
    assert Watch("/planning/plan") in console.watches(StackView(TOPICS, TOPICS, live=True))
    # the sim in another launch: only its episode events, to stop with it
    remote = DrivingConsole()
    assert list(remote.watches(StackView(TOPICS, frozenset({"/planning/plan"}), live=True))) == [
        Watch("/sim/episode")]
    assert remote.on_message("/sim/episode", EpisodeEvent(header=_h(0, 9), kind="end", seed=3)) == []
    assert not remote.finished()
    [line] = remote.on_message("/sim/episode", EpisodeEvent(header=_h(1, 9), kind="end", seed=4, last=True))
    assert "finished its last episode" in line and remote.finished()


def test_an_episode_is_reported_once_every_stream_has_moved_past_it(tmp_path):
    progress = tmp_path / "p.jsonl"
    progress.write_text("stale\n")
    console = DrivingConsole(episodes=2, progress=progress)
    assert progress.read_text() == ""  # this run's records only
    console.watches(StackView(TOPICS, TOPICS, live=False))
    for k in range(10):
        assert console.on_message("/sim/ego", _ego(0, k)) == []
        assert console.on_message("/decision/target", _target(0, k)) == []
    # the end event overtakes the episode's last ego state and target (they come over other connections)
    assert console.on_message("/sim/episode", EpisodeEvent(header=_h(0, 11), kind="end", seed=7,
                                                           reason="time_limit")) == []
    assert console.on_message("/sim/ego", _ego(0, 10)) == []
    assert console.on_message("/sim/ego", _ego(1, 0)) == []  # the target stream has not moved on yet
    assert console.on_message("/decision/target", _target(0, 10)) == []
    assert progress.read_text() == ""
    [line] = console.on_message("/decision/target", _target(1, 0))
    assert line == "episode 0 (seed 7) ended: time_limit, 13 m at 20.0 m/s"
    assert json.loads(progress.read_text()) == {
        "episode": 0, "seed": 7, "reason": "time_limit", "ticks": 10, "collision": False,
        "distance_m": 20.0 * 10 / 15, "mean_speed_mps": 20.0, "targets": 11, "following": 0, "interventions": 0}
    assert console.status().startswith("ep 1/2 | tick    0")
    # the last episode: reported when the run is over, before the summary table
    console.on_message("/sim/episode", EpisodeEvent(header=_h(1, 1), kind="end", seed=8, reason="collision",
                                                    last=True))
    assert not console.finished()  # the sim is in this launch: its own exit ends the run
    first, table = console.report()
    assert first.startswith("episode 1 (seed 8) ended: collision")
    assert table.startswith("summary\n") and len(table.splitlines()) == 4
    assert [json.loads(x)["seed"] for x in progress.read_text().splitlines()] == [7, 8]
