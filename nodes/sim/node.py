"""The sim node: highway-env stepped once per /control/cmd, publishing what the world looks like.

The episode protocol (lockstep and real time) is `nodes.sim.episodes.EpisodicSimNode`'s; this module gives it
the highway-env world.
"""

from __future__ import annotations

from typing import ClassVar

from nodes.runtime.node import Params
from nodes.sim.episodes import MODES, EpisodicSimNode, sim_node_params
from sim.highway import SIM_RATE_HZ, HighwaySim, SimParams

__all__ = ["MODES", "NODE", "SimNode", "SimNodeParams"]

SimNodeParams = sim_node_params(SimParams, "SimNodeParams", __name__)


class SimNode(EpisodicSimNode):
    Params: ClassVar[type[Params]] = SimNodeParams
    World: ClassVar[type[SimParams]] = SimParams
    sim_rate_hz: ClassVar[float] = SIM_RATE_HZ
    sim: HighwaySim

    def make_world(self, params: Params) -> HighwaySim:
        return HighwaySim(self.world_params(params))


NODE = SimNode
