"""Episode traces: the message streams of one run, split into episodes and aligned by tick.

An `EpisodeTrace` holds, for one episode, one entry per /sim/ego tick of every per-tick topic (None where
that topic had no message for the tick), the wall-clock receive times needed for loop latency, and the
episode's seed and end reason. `TraceBuilder` accumulates (topic, message, receive time) calls in any
arrival order (an in-process observer feeds it directly); `traces_from_recording` feeds it from an MCAP
file. The metrics in `evaluation.metrics` are pure functions of a trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from msgs import (
    ControlCommand,
    Diagnostics,
    DrivingTarget,
    EgoState,
    EpisodeEvent,
    Message,
    ObjectArray,
    Plan,
)
from msgs.registry import CONTROL_RATE_HZ

DT_S = 1.0 / CONTROL_RATE_HZ  # [s] one control tick

# Per-tick topics a trace keeps, by the EpisodeTrace field they fill. The camera is not kept.
TICK_TOPICS: dict[str, str] = {
    "/sim/ego": "ego",
    "/sim/objects_gt": "objects_gt",
    "/perception/objects": "perception",
    "/decision/target": "target",
    "/planning/plan": "plan",
    "/control/cmd": "cmd",
}
EVENT_TOPIC = "/sim/episode"
DIAGNOSTICS_TOPIC = "/diagnostics"
TRACE_TOPICS: frozenset[str] = frozenset({*TICK_TOPICS, EVENT_TOPIC, DIAGNOSTICS_TOPIC})


@dataclass
class EpisodeTrace:
    """One episode's messages. Index i of every per-tick list belongs to `ego[i]` (ticks ascending)."""

    episode: int
    seed: int = 0
    end_reason: str = ""  # "collision" | "offroad" | "time_limit" | "shutdown"; "" when no end event came
    ego: list[EgoState] = field(default_factory=list)
    objects_gt: list[ObjectArray | None] = field(default_factory=list)
    perception: list[ObjectArray | None] = field(default_factory=list)
    target: list[DrivingTarget | None] = field(default_factory=list)
    plan: list[Plan | None] = field(default_factory=list)
    cmd: list[ControlCommand | None] = field(default_factory=list)
    ego_recv_ns: list[int | None] = field(default_factory=list)  # [ns] wall clock, as received
    cmd_recv_ns: list[int | None] = field(default_factory=list)  # [ns] wall clock, as received
    diagnostics: list[Diagnostics] = field(default_factory=list)  # heartbeats received during the episode
    duplicates: int = 0  # per-tick messages seen twice for the same tick (the first one is kept)

    def __len__(self) -> int:
        return len(self.ego)

    @property
    def ticks(self) -> list[int]:
        return [e.header.tick for e in self.ego]

    @property
    def t_s(self) -> np.ndarray:
        """[s] simulated time of each tick since the episode started."""
        return np.array([e.header.stamp_ns for e in self.ego], np.float64) * 1e-9

    @property
    def steps(self) -> int:
        """Control steps the episode ran (its last tick minus its first)."""
        return self.ego[-1].header.tick - self.ego[0].header.tick if self.ego else 0

    @property
    def finished(self) -> bool:
        return bool(self.end_reason)

    def has(self, name: str) -> bool:
        """Whether any tick has a message of the per-tick field `name` ("perception", "target", ...)."""
        return any(m is not None for m in getattr(self, name))


@dataclass
class _Episode:
    seed: int = 0
    end_reason: str = ""
    ended: bool = False
    per_tick: dict[str, dict[int, tuple[Message, int]]] = field(
        default_factory=lambda: {name: {} for name in TICK_TOPICS.values()})
    diagnostics: list[Diagnostics] = field(default_factory=list)
    duplicates: int = 0


class TraceBuilder:
    """Accumulates a run's messages and cuts them into `EpisodeTrace`s.

    Per-tick messages are placed by their header's (episode, tick), so arrival order does not matter;
    heartbeats (/diagnostics, which carry no episode) go to the episode last seen starting or ticking.
    Topics outside TRACE_TOPICS are ignored.
    """

    def __init__(self) -> None:
        self._episodes: dict[int, _Episode] = {}
        self._current = 0
        self.ignored = 0  # messages on topics a trace does not keep

    def add(self, topic: str, msg: Message, log_time_ns: int = 0) -> None:
        """Take one message as received at wall-clock `log_time_ns` [ns] (0 when not known)."""
        name = TICK_TOPICS.get(topic)
        if name is not None:
            ep = self._episode(msg.header.episode)
            if name == "ego":
                self._current = max(self._current, msg.header.episode)
            slot = ep.per_tick[name]
            if msg.header.tick in slot:
                ep.duplicates += 1
            else:
                slot[msg.header.tick] = (msg, log_time_ns)
        elif topic == EVENT_TOPIC:
            if not isinstance(msg, EpisodeEvent):
                raise TypeError(f"{topic}: expected EpisodeEvent, got {type(msg).__name__}")
            ep = self._episode(msg.header.episode)
            ep.seed = msg.seed
            if msg.kind == "start":
                self._current = max(self._current, msg.header.episode)
            elif msg.kind == "end":
                ep.ended, ep.end_reason = True, msg.reason or "unknown"
        elif topic == DIAGNOSTICS_TOPIC:
            if not isinstance(msg, Diagnostics):
                raise TypeError(f"{topic}: expected Diagnostics, got {type(msg).__name__}")
            self._episode(self._current).diagnostics.append(msg)
        else:
            self.ignored += 1

    def _episode(self, episode: int) -> _Episode:
        ep = self._episodes.get(episode)
        if ep is None:
            ep = self._episodes[episode] = _Episode()
        return ep

    def episodes_ended(self) -> list[int]:
        """Episodes whose end event has arrived, ascending."""
        return sorted(i for i, ep in self._episodes.items() if ep.ended)

    def pop_finished(self) -> list[EpisodeTrace]:
        """Traces of the episodes that have ended, removed from the builder (bounded memory when streaming).
        A message of a popped episode that arrives later starts a new, partial entry for it: over sockets
        the end event can overtake the terminal tick's last messages, so pop in-process (where the order
        is the publication order) or once the run is over."""
        out = [t for i in self.episodes_ended() if (t := _build(i, self._episodes.pop(i))) is not None]
        return out

    def traces(self) -> list[EpisodeTrace]:
        """Every episode with at least one /sim/ego tick, ended or not (end_reason "" if not), ascending."""
        built = (_build(i, self._episodes[i]) for i in sorted(self._episodes))
        return [t for t in built if t is not None]


def _build(episode: int, ep: _Episode) -> EpisodeTrace | None:
    egos = ep.per_tick["ego"]
    if not egos:
        return None
    ticks = sorted(egos)
    trace = EpisodeTrace(episode=episode, seed=ep.seed, end_reason=ep.end_reason,
                         diagnostics=list(ep.diagnostics), duplicates=ep.duplicates)
    for name, slot in ep.per_tick.items():
        setattr(trace, name, [_msg(slot.get(k)) for k in ticks])
    trace.ego_recv_ns = [_time(egos.get(k)) for k in ticks]
    trace.cmd_recv_ns = [_time(ep.per_tick["cmd"].get(k)) for k in ticks]
    return trace


def _msg(entry: tuple[Message, int] | None) -> Any:
    return None if entry is None else entry[0]


def _time(entry: tuple[Message, int] | None) -> int | None:
    return None if entry is None or entry[1] <= 0 else entry[1]


def traces_from_recording(path: str | Path) -> list[EpisodeTrace]:
    """The episodes of one MCAP recording (see nodes/recorder); a file cut short gives its whole ticks."""
    from nodes.runtime.mcap_io import read_records

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"recording {str(path)!r} does not exist (expected an .mcap file written by the "
                         "recorder, e.g. runs/<stamp>/recording.mcap)")
    builder = TraceBuilder()
    for record in read_records(path, set(TRACE_TOPICS)):
        builder.add(record.topic, record.decode(), record.log_time_ns)
    return builder.traces()
