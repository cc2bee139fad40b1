"""ScriptedTargetNode: /sim/ego -> /decision/target from a list of [time_s, target_lane, target_speed].

Used by tests and benches to drive the control loop without planning. At simulated time t (the ego
header's stamp) the last set-point with time_s <= t applies; before the first one, and for a negative
lane or speed, the ego's lane and speed at the episode's first tick are used.
"""

from __future__ import annotations

import math
from typing import ClassVar

from msgs import DrivingTarget, EgoState, Message
from nodes.runtime.node import Node, Outputs, Params

NS_PER_S = 1_000_000_000


class ScriptedTargetParams(Params, kw_only=True, forbid_unknown_fields=True):
    # [[time [s], target lane (index; < 0: the starting lane), target speed [m/s] (< 0: the starting speed)]]
    setpoints: list[list[float]] = []  # sorted by time; empty: hold the starting lane and speed


class ScriptedTargetNode(Node):
    name: ClassVar[str] = "scripted_target"
    Params: ClassVar[type[Params]] = ScriptedTargetParams
    inputs: ClassVar[dict[str, str]] = {"ego": "/sim/ego"}
    outputs: ClassVar[dict[str, str]] = {"target": "/decision/target"}
    trigger: ClassVar[str | None] = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        _validated(params.setpoints)  # type: ignore[attr-defined]

    def __init__(self, params: ScriptedTargetParams) -> None:
        super().__init__(params)
        self.setpoints = _validated(params.setpoints)
        self._episode: int | None = None
        self._start: tuple[int, float] = (0, 0.0)  # (lane, speed [m/s]) at the episode's first tick

    def reset(self, episode: int) -> None:
        self._episode = None  # the next ego message fixes the starting lane and speed

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs.get("ego")
        if not isinstance(ego, EgoState):
            return []
        if ego.header.episode != self._episode:
            self._episode = ego.header.episode
            self._start = (ego.lane_index, ego.speed)
        lane, speed = self._start
        now = ego.header.stamp_ns / NS_PER_S
        for time_s, sp_lane, sp_speed in self.setpoints:
            if time_s > now:
                break
            lane = self._start[0] if sp_lane < 0 else int(sp_lane)
            speed = self._start[1] if sp_speed < 0 else sp_speed
        return [("target", DrivingTarget(header=ego.header, target_lane=lane, target_speed=speed))]


def _validated(setpoints: list[list[float]]) -> list[tuple[float, float, float]]:
    out = []
    last_time = -math.inf
    for i, sp in enumerate(setpoints):
        if len(sp) != 3 or not all(math.isfinite(v) for v in sp):
            raise ValueError(f"scripted_target params: setpoints[{i}] = {sp} is not [time_s, lane, speed]")
        time_s, lane, speed = sp
        if time_s < last_time:
            raise ValueError(f"scripted_target params: setpoints[{i}] time {time_s} s is before the "
                             "previous set-point's")
        if lane != int(lane):
            raise ValueError(f"scripted_target params: setpoints[{i}] lane {lane} is not an integer")
        last_time = time_s
        out.append((float(time_s), float(lane), float(speed)))
    return out


NODE = ScriptedTargetNode
