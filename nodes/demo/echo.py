"""A toy controller: answers each ego state with a command that echoes its tick."""

from __future__ import annotations

import math

from msgs import ControlCommand, EgoState, Message
from nodes.runtime.node import Node, Outputs, Params


class EchoParams(Params, kw_only=True, forbid_unknown_fields=True):
    gain: float = 0.001  # [1/tick] acceleration command = gain * tick


class EchoNode(Node):
    name = "echo"
    Params = EchoParams
    inputs = {"ego": "/sim/ego"}
    outputs = {"cmd": "/control/cmd"}
    trigger = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, EchoParams)
        if not math.isfinite(params.gain):  # a NaN command would reach the sim
            raise ValueError(f"echo params: gain must be a finite number [1/tick], got {params.gain}")

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs["ego"]
        assert isinstance(ego, EgoState)
        accel = min(1.0, self.params.gain * ego.header.tick)
        return [("cmd", ControlCommand(header=ego.header, acceleration=accel, steering=0.0))]


NODE = EchoNode
