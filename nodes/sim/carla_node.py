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
from nodes.sim.episodes import EpisodicSimNode
from sim.carla_bridge import SIM_RATE_HZ, CarlaSim
from sim.carla_client import CarlaParams


class CarlaSimNodeParams(Params, CarlaParams, kw_only=True, forbid_unknown_fields=True):
    """CarlaParams (the server and world) plus the run's episodes."""

    episodes: int = 3  # episodes to run before the node finishes
    seed: int = 0  # base seed: episode i is reset with seed + i
    mode: str = "lockstep"  # "lockstep" (step on each command) or "realtime" (paced by the wall clock)


class CarlaSimNode(EpisodicSimNode):
    Params: ClassVar[type[Params]] = CarlaSimNodeParams
    sim_rate_hz: ClassVar[float] = SIM_RATE_HZ
    sim: CarlaSim

    def __init__(self, params: CarlaSimNodeParams, *, carla: Any = None, client: Any = None) -> None:
        """carla, client: passed on to CarlaSim (tests use a stand-in server); None connects for real."""
        self._carla, self._client = carla, client
        super().__init__(params)

    def make_world(self, params: Params) -> CarlaSim:
        world = CarlaParams(**{f: getattr(params, f) for f in CarlaParams.__struct_fields__})
        return CarlaSim(world, carla=self._carla, client=self._client)

    @classmethod
    def check(cls, params: Params) -> None:
        """At launch: the params alone (no carla import, no server), so the file plans anywhere."""
        super().check(params)
        CarlaParams(**{f: getattr(params, f) for f in CarlaParams.__struct_fields__}).check()


NODE = CarlaSimNode
