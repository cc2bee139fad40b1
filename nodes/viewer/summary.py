"""Per-episode summary from the ego stream: what `launch` prints when an episode ends (nodes/viewer/console.py),
and the record of each episode in its progress file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msgs import DrivingTarget, EgoState, EpisodeEvent, Mode


@dataclass
class EpisodeSummary:
    episode: int
    seed: int = 0
    reason: str = ""
    ticks: int = 0
    collision: bool = False
    x_start: float | None = None
    x_end: float = 0.0
    speeds: list[float] = field(default_factory=list)
    targets: int = 0  # /decision/target messages seen
    following: int = 0  # of them in FOLLOWING (adaptive cruise behind a slower lead)
    interventions: int = 0  # of them in an intervention (refused/aborted lane change, emergency, minimal risk)

    def add(self, ego: EgoState) -> None:
        if self.x_start is None:
            self.x_start = ego.x
        self.x_end = ego.x
        self.speeds.append(ego.speed)
        self.ticks = ego.header.tick
        self.collision = self.collision or ego.crashed

    def add_target(self, target: DrivingTarget) -> None:
        self.targets += 1
        self.following += target.mode == Mode.FOLLOWING
        self.interventions += target.mode in Mode._value2member_map_ and Mode(target.mode).is_intervention

    def _share(self, n: int) -> str:
        return f"{100.0 * n / self.targets:.0f}%" if self.targets else "-"

    @property
    def distance_m(self) -> float:
        return 0.0 if self.x_start is None else self.x_end - self.x_start

    @property
    def mean_speed_mps(self) -> float:
        return sum(self.speeds) / len(self.speeds) if self.speeds else 0.0

    def record(self) -> dict[str, Any]:
        """The summary as plain JSON values (a line of `launch --progress`'s file)."""
        return {"episode": self.episode, "seed": self.seed, "reason": self.reason, "ticks": self.ticks,
                "collision": self.collision, "distance_m": self.distance_m, "mean_speed_mps": self.mean_speed_mps,
                "targets": self.targets, "following": self.following, "interventions": self.interventions}

    def row(self) -> str:
        return (f"{self.episode:>7} {self.seed:>6} {self.reason or '-':>11} {self.ticks:>6} "
                f"{'yes' if self.collision else 'no':>9} {self.distance_m:>10.1f} {self.mean_speed_mps:>10.2f} "
                f"{self._share(self.following):>10} {self._share(self.interventions):>13}")


HEADER = (f"{'episode':>7} {'seed':>6} {'end':>11} {'ticks':>6} {'collision':>9} {'distance_m':>10} {'speed_mps':>10} "
          f"{'following':>10} {'interventions':>13}")  # following / interventions: shares of decision's ticks


class SummaryBook:
    """Collects EpisodeSummary objects from /sim/ego and /sim/episode messages."""

    def __init__(self) -> None:
        self.episodes: dict[int, EpisodeSummary] = {}
        self.finished: list[EpisodeSummary] = []

    def on_ego(self, ego: EgoState) -> None:
        self._get(ego.header.episode).add(ego)

    def on_target(self, target: DrivingTarget) -> None:
        self._get(target.header.episode).add_target(target)

    def on_event(self, event: EpisodeEvent) -> EpisodeSummary | None:
        summary = self._get(event.header.episode)
        summary.seed = event.seed
        if event.kind == "end":
            summary.reason = event.reason
            self.finished.append(summary)
            return summary
        return None

    def _get(self, episode: int) -> EpisodeSummary:
        if episode not in self.episodes:
            self.episodes[episode] = EpisodeSummary(episode)
        return self.episodes[episode]
