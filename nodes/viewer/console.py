"""The launcher's console for a driving stack: an observer (nodes/runtime/observer.py) of the sim's ego and
episode topics and of decision's targets. It prints a line as each episode ends, keeps the live status line
(status.py), prints the per-episode summary table (summary.py) when the run is over, and, when asked
(`launch --progress PATH`), writes one JSON line per ended episode: how `drivestack evaluate` counts episodes.

An episode is reported once every per-tick stream it watches (ego, target) has moved on to a later episode, or
when the run is over: each topic comes over its own connection, so the end event can overtake the episode's last
ego states; waiting for the streams makes the line and the record hold the whole episode.

It lives beside the viewer rather than in the runtime: the launcher knows processes, topics and ready/stop
signals; what an episode, a collision or a lane is, is known here. `launch`, `drivestack replay` and the golden
refresh hand it to the supervisor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from msgs import DrivingTarget, EgoState, EpisodeEvent, Message, Plan
from nodes.runtime.observer import StackView, Watch
from nodes.viewer.status import status_line
from nodes.viewer.summary import HEADER, EpisodeSummary, SummaryBook

if TYPE_CHECKING:
    from nodes.runtime.launchfile import LaunchPlan

EGO, EPISODE, TARGET, PLAN = "/sim/ego", "/sim/episode", "/decision/target", "/planning/plan"


class DrivingConsole:
    """Episode lines, the live status line, the summary table and the progress file of a driving stack."""

    def __init__(self, episodes: int | None = None, progress: Path | None = None) -> None:
        """
        :param episodes: the run's number of episodes, shown in the status line as "ep 2/3" (None: not shown).
        :param progress: a file to write one JSON line per ended episode to (its EpisodeSummary.record());
            emptied here, so it holds this run's episodes only. An OSError here means it cannot be written.
        """
        self.episodes = episodes
        self.progress = progress
        if progress is not None:
            progress.write_text("")
        self.book = SummaryBook()
        self.owns_sim = True  # the sim runs in this launch (set by `watches`)
        self.ego: EgoState | None = None
        self.target: DrivingTarget | None = None
        self.plan: Plan | None = None
        self.done = False
        self.streams: set[str] = set()  # per-tick topics an ended episode waits for (see the module docstring)
        self.reached: dict[str, int] = {}  # topic -> the latest episode index seen on it
        self.pending: list[EpisodeSummary] = []  # ended, not reported yet

    @classmethod
    def for_plan(cls, plan: LaunchPlan, progress: Path | None = None) -> DrivingConsole:
        """The console for `plan`, its episode count taken from the launch arg `episodes` when it has one."""
        episodes = plan.args.get("episodes")
        return cls(episodes if isinstance(episodes, int) and not isinstance(episodes, bool) else None, progress)

    def watches(self, stack: StackView) -> Sequence[Watch]:
        self.owns_sim = bool({EGO, EPISODE} & stack.local)
        if not self.owns_sim:  # the sim runs in another launch: the end of its last episode ends this one too
            return [Watch(EPISODE)]
        # every ego state, episode event and target: the summaries miss nothing (the start-up barrier waits for
        # the launcher); the plan only feeds the live status line, which may start late
        self.streams = {EGO, TARGET} & stack.published
        return [Watch(EGO, complete=True), Watch(EPISODE, complete=True), Watch(TARGET, complete=True)] + (
            [Watch(PLAN)] if stack.live else [])

    def on_message(self, topic: str, msg: Message) -> Sequence[str]:
        if isinstance(msg, EgoState):
            self.book.on_ego(msg)
            self.ego = msg
            return self._reached(topic, msg.header.episode)
        elif isinstance(msg, DrivingTarget):
            self.target = msg
            self.book.on_target(msg)
            return self._reached(topic, msg.header.episode)
        elif isinstance(msg, Plan):
            self.plan = msg
        elif isinstance(msg, EpisodeEvent) and not self.owns_sim:
            if msg.kind == "end" and msg.last:
                self.done = True
                return ["the sim (in another launch) finished its last episode: stopping"]
        elif isinstance(msg, EpisodeEvent):
            done = self.book.on_event(msg)
            if done is not None:
                self.pending.append(done)
                return self._release()
        return []

    def _reached(self, topic: str, episode: int) -> list[str]:
        if episode <= self.reached.get(topic, -1):
            return []
        self.reached[topic] = episode
        return self._release()

    def _release(self, everything: bool = False) -> list[str]:
        """Lines (and progress records) of the ended episodes whose streams have all moved past them."""
        lines: list[str] = []
        while self.pending and (everything or all(self.reached.get(t, -1) > self.pending[0].episode
                                                  for t in self.streams)):
            done = self.pending.pop(0)
            lines.append(f"episode {done.episode} (seed {done.seed}) ended: {done.reason}, "
                         f"{done.distance_m:.0f} m at {done.mean_speed_mps:.1f} m/s"
                         + (", COLLISION" if done.collision else ""))
            lines += self._write_progress(done)
        return lines

    def _write_progress(self, done: EpisodeSummary) -> list[str]:
        if self.progress is None:
            return []
        try:
            with self.progress.open("a", encoding="utf-8") as f:
                f.write(json.dumps(done.record()) + "\n")  # one write per whole line: a reader never sees half
        except OSError as exc:
            path, self.progress = self.progress, None
            return [f"warning: cannot write the progress file {path}: {exc.strerror}; no more progress records"]
        return []

    def status(self) -> str | None:
        if self.ego is None:
            return None
        collisions = sum(s.collision for s in self.book.episodes.values())
        return status_line(self.ego, self.target, self.plan, collisions, episodes=self.episodes)

    def finished(self) -> bool:
        return self.done

    def report(self) -> Sequence[str]:
        lines = self._release(everything=True)  # the run is over: nothing more will come
        if self.book.finished:
            lines.append("summary\n" + HEADER + "\n" + "\n".join(s.row() for s in self.book.finished))
        return lines
