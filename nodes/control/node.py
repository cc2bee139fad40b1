"""The control node: /decision/target + /sim/ego -> /control/cmd through `LaneSpeedController`."""

from __future__ import annotations

import math
from typing import ClassVar

from msgs import ControlCommand, DrivingTarget, EgoState, Message, Mode
from nodes.control.pid import ControlParams, LaneSpeedController
from nodes.runtime.node import Node, Outputs, Params


class ControlNodeParams(Params, kw_only=True, forbid_unknown_fields=True):
    pid: ControlParams = ControlParams()  # gains and limits, see nodes/control/pid.py
    missing_target_decel: float = 1.0  # [m/s^2] speed ramp-down while no target has arrived (real time)


class ControlNode(Node):
    name: ClassVar[str] = "control"
    Params: ClassVar[type[Params]] = ControlNodeParams
    inputs: ClassVar[dict[str, str]] = {"target": "/decision/target", "ego": "/sim/ego"}
    outputs: ClassVar[dict[str, str]] = {"cmd": "/control/cmd"}
    trigger: ClassVar[str | None] = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, ControlNodeParams)
        if not (math.isfinite(params.missing_target_decel) and params.missing_target_decel > 0):
            raise ValueError(f"control params: missing_target_decel must be > 0 m/s^2, "
                             f"got {params.missing_target_decel}")
        params.pid.check()

    def __init__(self, params: ControlNodeParams) -> None:
        super().__init__(params)
        self.params: ControlNodeParams = params
        self.controller = LaneSpeedController(params.pid)
        self._episode: int | None = None
        self._last_target: DrivingTarget | None = None
        self._hold_speed: float | None = None  # [m/s] ramped reference while the target is missing
        self._counters = {"ticks": 0, "missing_target": 0}

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def reset(self, episode: int) -> None:
        self.controller.reset()
        self._episode = episode
        self._last_target = None
        self._hold_speed = None

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs.get("ego")
        if not isinstance(ego, EgoState):
            return []
        if ego.header.episode != self._episode:
            self.reset(ego.header.episode)
        target = inputs.get("target")
        if isinstance(target, DrivingTarget):
            self._last_target = target
            self._hold_speed = None
        else:
            target = self._hold_target(ego)
        cmd: ControlCommand = self.controller.step(ego, target)
        self._counters["ticks"] += 1
        return [("cmd", cmd)]

    def _hold_target(self, ego: EgoState) -> DrivingTarget:
        """No target (real-time mode): keep to the lane last asked for (else the current one), slow gently."""
        self._counters["missing_target"] += 1
        dt = self.params.pid.dt
        start = ego.speed if self._hold_speed is None else self._hold_speed
        self._hold_speed = max(0.0, start - self.params.missing_target_decel * dt)
        lane = self._last_target.target_lane if self._last_target is not None else ego.lane_index
        return DrivingTarget(header=ego.header, target_lane=lane, target_speed=self._hold_speed,
                             mode=Mode.MINIMAL_RISK, reason="no target received")


NODE = ControlNode
