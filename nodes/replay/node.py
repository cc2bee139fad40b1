"""The replay node: republishes a recording's messages at recorded pace, a multiple of it, or flat out.

Options follow rosbag2's `play`: --rate, --topics/--exclude, --start-offset, --loop. Messages go out with
the bytes they were recorded with; each topic keeps its recorded order.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import ClassVar

import msgspec

from msgs import Message
from msgs.registry import TOPICS
from nodes.runtime.mcap_io import MESSAGE_ENCODING, Record, read_records
from nodes.runtime.node import Node, Outputs, Params
from nodes.runtime.seal import RecordingError, check_usable

BATCH = 64  # [messages] at most this many per call at --rate max, so a stop request is seen promptly


class ReplayParams(Params, kw_only=True, forbid_unknown_fields=True):
    file: str = ""  # the MCAP recording to play
    rate: float = 1.0  # playback speed as a multiple of recorded pace; 0 = as fast as possible
    topics: list[str] = []  # play only these topics (empty: all recorded ones)
    exclude: list[str] = msgspec.field(default_factory=lambda: ["/diagnostics"])  # never play these
    start_offset: float = 0.0  # [s] skip this much of the recording's start
    loop: bool = False  # start again at the end, forever
    period_s: float = 0.002  # [s] how often the node checks which messages are due


def _wanted(params: ReplayParams, topic: str) -> bool:
    # /diagnostics is never played, whatever --exclude says: the runtime publishes this node's own heartbeat
    # there on the same endpoint, so a replayed /diagnostics port would clash with it (the launch hung at start-up)
    return (topic in TOPICS and topic != "/diagnostics" and (not params.topics or topic in params.topics)
            and topic not in params.exclude)


class ReplayNode(Node):
    name: ClassVar[str] = "replay"
    Params: ClassVar[type[Params]] = ReplayParams

    def __init__(self, params: ReplayParams) -> None:
        super().__init__(params)
        self.p = params
        state = check_usable(params.file)
        if not state.complete:  # flagged at the start and the end of the replay, not refused: it is what is left
            self.cut_note = f"{params.file} was cut ({state.reason}): it holds the run only up to then"
            print(f"replay: warning: {self.cut_note}", flush=True)
        else:
            self.cut_note = ""
        self.records: list[Record] = [r for r in read_records(params.file) if _wanted(params, r.topic)]
        if not self.records:  # check refuses a file without the chosen topics; this is one whose channels are empty
            raise ValueError(f"replay: {params.file} has no messages on the chosen topics")
        t0 = self.records[0].log_time_ns + int(params.start_offset * 1e9)
        self.records = [r for r in self.records if r.log_time_ns >= t0]
        self.index = 0
        self.t0_record = t0
        self.t0_wall: float | None = None
        self.played = 0
        self.done = False

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, ReplayParams)
        if not params.file:
            raise ValueError("file: give the recording to play (file:=PATH.mcap)")
        if not Path(params.file).is_file():
            raise ValueError(f"file: no such recording {params.file!r}")
        try:
            check_usable(params.file)  # not MCAP, empty, or cut and never sealed: refused before anything starts
        except RecordingError as exc:
            raise ValueError(f"file: {exc}") from None
        if not (math.isfinite(params.rate) and params.rate >= 0):
            raise ValueError(f"rate: must be >= 0 (0 = as fast as possible), got {params.rate}")
        if not (math.isfinite(params.period_s) and params.period_s > 0):
            raise ValueError(f"period_s: must be > 0 s, got {params.period_s}")
        if not math.isfinite(params.start_offset):
            raise ValueError(f"start_offset: must be a number of seconds, got {params.start_offset}")
        if not cls.output_ports(params):
            raise ValueError(f"topics: replay: {params.file} has no messages on the chosen topics (topics: "
                             f"{params.topics or 'all'}, exclude: {params.exclude})")

    @classmethod
    def output_ports(cls, params: Params) -> dict[str, str]:
        assert isinstance(params, ReplayParams)
        if not params.file or not Path(params.file).is_file():
            return {}
        from mcap.reader import make_reader

        try:
            with open(params.file, "rb") as f:
                summary = make_reader(f).get_summary()
            if summary is None:  # sealed after a failure: no summary section
                raise ValueError("no summary")
            topics = {c.topic for c in summary.channels.values() if c.message_encoding == MESSAGE_ENCODING}
        except Exception:  # noqa: BLE001 - no summary (a cut recording) or not MCAP: scan it
            try:
                topics = {r.topic for r in read_records(params.file)}
            except Exception:  # noqa: BLE001 - not a recording: `check` says so
                topics = set()
        return {t: t for t in sorted(topics) if _wanted(params, t)}

    def realtime_period(self) -> float | None:
        return self.p.period_s

    def start(self) -> Outputs:
        return []

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        now = time.monotonic()
        if self.t0_wall is None:
            self.t0_wall = now
        out: Outputs = []
        while self.index < len(self.records) and len(out) < BATCH:
            rec = self.records[self.index]
            if self.p.rate > 0:
                due = self.t0_wall + (rec.log_time_ns - self.t0_record) / 1e9 / self.p.rate
                if due > now:
                    break
            out.append((rec.topic, rec.decode()))
            self.index += 1
        self.played += len(out)
        if self.index >= len(self.records):
            if self.p.loop:
                self.index, self.t0_wall = 0, None
            else:
                self.done = True
        return out

    @property
    def finished(self) -> bool:
        return self.done

    def counters(self) -> dict[str, int]:
        return {"played": self.played}

    def close(self) -> None:
        print(f"replayed {self.played} messages from {self.p.file}", flush=True)
        if self.cut_note:
            print(f"replay: warning: {self.cut_note}", flush=True)


NODE = ReplayNode
