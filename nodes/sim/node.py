"""The sim node: highway-env stepped once per /control/cmd, publishing what the world looks like.

The episode protocol (lockstep and real time) is `nodes.sim.episodes.EpisodicSimNode`'s; this module gives it
the highway-env world.
"""

from __future__ import annotations

from typing import ClassVar

from nodes.runtime.node import Params
from nodes.sim.episodes import MODES, EpisodicSimNode
from sim.highway import SIM_RATE_HZ, HighwaySim, SimParams

__all__ = ["MODES", "NODE", "SimNode", "SimNodeParams"]


class SimNodeParams(Params, SimParams, kw_only=True, forbid_unknown_fields=True):
    """SimParams (the world) plus the run's episodes."""

    episodes: int = 3  # episodes to run before the node finishes
    seed: int = 0  # base seed: episode i is reset with seed + i
    mode: str = "lockstep"  # "lockstep" (step on each command) or "realtime" (paced by the wall clock)


class SimNode(EpisodicSimNode):
    Params: ClassVar[type[Params]] = SimNodeParams
    sim_rate_hz: ClassVar[float] = SIM_RATE_HZ
    sim: HighwaySim

    def make_world(self, params: Params) -> HighwaySim:
        return HighwaySim(_world_params(params))

    @classmethod
    def check(cls, params: Params) -> None:
        super().check(params)
        _world_params(params).check()


def _world_params(params: Params) -> SimParams:
    return SimParams(**{f: getattr(params, f) for f in SimParams.__struct_fields__})


NODE = SimNode
