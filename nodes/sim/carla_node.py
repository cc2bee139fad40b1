"""The CARLA sim node: a CARLA server stepped once per /control/cmd, on the same topics as the highway-env node.

The episode protocol is `nodes.sim.episodes.EpisodicSimNode`'s, as for `nodes.sim.node`: same topics, message types and
end reasons. The world comes from
`sim.carla_bridge.CarlaSim`. Connecting happens when the node is built, before the start-up barrier, so a
missing server or a missing `carla` package stops the launch at once with one line (exit 2, no traceback).
The runtime calls `close()` on the way out, Ctrl-C included: every spawned actor is destroyed and the
server's settings restored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nodes.runtime.node import Params
from nodes.sim.episodes import EpisodicSimNode, sim_node_params
from sim.carla_bridge import SIM_RATE_HZ, CarlaSim
from sim.carla_client import CarlaParams

CarlaSimNodeParams = sim_node_params(CarlaParams, "CarlaSimNodeParams", __name__)


class CarlaSimNode(EpisodicSimNode):
    Params: ClassVar[type[Params]] = CarlaSimNodeParams
    World: ClassVar[type[CarlaParams]] = CarlaParams
    sim_rate_hz: ClassVar[float] = SIM_RATE_HZ
    sim: CarlaSim

    def __init__(self, params: Params, *, carla: Any = None, client: Any = None) -> None:
        """carla, client: passed on to CarlaSim (tests use a stand-in server); None connects for real."""
        self._carla, self._client = carla, client
        super().__init__(params)

    def make_world(self, params: Params) -> CarlaSim:
        return CarlaSim(self.world_params(params), carla=self._carla, client=self._client)


NODE = CarlaSimNode
