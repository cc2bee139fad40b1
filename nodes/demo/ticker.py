"""A toy source: publishes a fake ego state per tick and advances only when that tick's command is in."""

from __future__ import annotations

import math

from msgs import ControlCommand, EgoState, EpisodeEvent, Header, Message
from msgs.registry import CONTROL_RATE_HZ
from nodes.runtime.node import Node, Outputs, Params


class TickerParams(Params, kw_only=True, forbid_unknown_fields=True):
    ticks: int = 100  # ticks per episode
    episodes: int = 1  # episodes, then the node finishes
    dt: float = 1 / CONTROL_RATE_HZ  # [s] simulated time per tick
    period_s: float = 1 / CONTROL_RATE_HZ  # [s] wall-clock period in real-time mode


class TickerNode(Node):
    name = "ticker"
    Params = TickerParams
    inputs = {"cmd": "/control/cmd"}
    outputs = {"ego": "/sim/ego", "episode": "/sim/episode"}
    # no trigger: in real-time mode a source steps on its period and takes the latest command (with "cmd" as its
    # trigger every command stepped it too, and the loop ran flat out instead of at 15 Hz)

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, TickerParams)
        for name in ("ticks", "episodes"):
            if getattr(params, name) < 1:
                raise ValueError(f"ticker params: {name} must be >= 1, got {getattr(params, name)}")
        for name in ("dt", "period_s"):  # dt divides the ego's speed at the first tick
            value = getattr(params, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ticker params: {name} must be > 0 s, got {value}")

    def __init__(self, params: TickerParams) -> None:
        super().__init__(params)
        self.p = params
        self.episode = 0
        self.tick = 0
        self.done = False
        self.commands = 0  # commands received for the tick being waited on
        self.sum_accel = 0.0

    def _header(self) -> Header:
        return Header(episode=self.episode, tick=self.tick, stamp_ns=round(self.tick * self.p.dt * 1e9))

    def _ego(self) -> EgoState:
        return EgoState(header=self._header(), x=float(self.tick), y=0.0, heading=0.0, speed=1.0 / self.p.dt,
                        vx=1.0 / self.p.dt, vy=0.0, lane_index=0, lateral_offset=0.0)

    def start(self) -> Outputs:
        return [("episode", EpisodeEvent(header=self._header(), kind="start", seed=self.episode)),
                ("ego", self._ego())]

    def realtime_period(self) -> float | None:
        return self.p.period_s

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        cmd = inputs.get("cmd")
        if isinstance(cmd, ControlCommand):
            self.commands += 1
            self.sum_accel += cmd.acceleration
        self.tick += 1
        if self.tick < self.p.ticks:
            return [("ego", self._ego())]
        last = self.episode + 1 >= self.p.episodes
        out: Outputs = [("episode", EpisodeEvent(header=self._header(), kind="end", reason="time_limit",
                                                 seed=self.episode, last=last))]
        if last:
            self.done = True
            return out
        self.episode += 1
        self.tick = 0
        return out + self.start()

    @property
    def finished(self) -> bool:
        return self.done

    def counters(self) -> dict[str, int]:
        return {"commands": self.commands}

    def close(self) -> None:
        print(f"ticker: {self.commands} commands over {self.episode + 1} episode(s)", flush=True)


NODE = TickerNode
