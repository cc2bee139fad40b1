"""The launcher's per-episode summary: distance, speed, and what the decision layer did."""

from __future__ import annotations

from msgs import DrivingTarget, EgoState, EpisodeEvent, Header, Mode
from nodes.viewer.summary import HEADER, SummaryBook


def _header(tick: int) -> Header:
    return Header(episode=0, tick=tick, stamp_ns=tick * 1_000_000_000 // 15, frame_id="world")


def test_summary_counts_following_apart_from_interventions():
    book = SummaryBook()
    modes = [Mode.NOMINAL] * 10 + [Mode.FOLLOWING] * 6 + [Mode.OVERRIDE] * 3 + [Mode.EMERGENCY]
    for k, mode in enumerate(modes):
        book.on_ego(EgoState(header=_header(k), x=25.0 * k / 15, y=4.0, heading=0.0, speed=25.0, vx=25.0, vy=0.0,
                             lane_index=1, lateral_offset=0.0))
        book.on_target(DrivingTarget(header=_header(k), target_lane=1, target_speed=25.0, mode=mode))
    done = book.on_event(EpisodeEvent(header=_header(len(modes)), kind="end", seed=4, reason="time_limit"))
    assert done is not None and (done.following, done.interventions, done.targets) == (6, 4, 20)
    row = done.row().split()
    assert row[-2:] == ["30%", "20%"] and len(row) == len(HEADER.split())
    assert float(row[-3]) == 25.0 and float(row[-4]) == round(25.0 * 19 / 15, 1)  # distance to 0.1 m
