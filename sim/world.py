"""What every simulated world offers the sim nodes: the `World` protocol, and the clock they share.

Two backends implement it: `sim.highway.HighwaySim` (highway-env) and `sim.carla_bridge.CarlaSim` (a CARLA
server in synchronous mode). The sim nodes (`nodes/sim/`) step a `World` once per control tick and publish what it
reads out; they never see which backend it is. tests/sim/test_world.py checks that both backends implement it,
signature for signature.

A world may also have `prepare()`: work for the next step that the command does not change, done while the rest of
the stack computes that command (the sim node calls it when it is there). It is not part of the protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from msgs import ControlCommand, EgoState, Header, Image, ObjectArray
from msgs.registry import CONTROL_RATE_HZ

SIM_RATE_HZ = int(CONTROL_RATE_HZ)  # [Hz] one world step per control tick, in every backend
NS_PER_S = 1_000_000_000


def stamp_ns(tick: int) -> int:
    """Simulated time of `tick` since the episode started [ns], exact in integers."""
    return tick * NS_PER_S // SIM_RATE_HZ


@runtime_checkable
class World(Protocol):
    """A simulated world, stepped once per control tick (1 / SIM_RATE_HZ of simulated time) and read out as messages.

    Episode i starts with `reset(seed, i)`: same seed, same world. Every read-out takes the header to stamp it
    with (the node derives the camera's and the objects' from `header()`).
    """

    episode: int  # the current episode's index
    tick: int  # control ticks since the episode started

    def reset(self, seed: int, episode: int) -> None:
        """Start `episode` from `seed`: same seed, same world."""
        ...

    def step(self, cmd: ControlCommand) -> None:
        """Apply `cmd` for one control tick and advance the world by it."""
        ...

    @property
    def end_reason(self) -> str | None:
        """Why the episode is over ("collision", "offroad", "time_limit"), or None while it runs."""
        ...

    def header(self, frame_id: str = "world") -> Header:
        """The header of the current tick (episode, tick, simulated time), in `frame_id`."""
        ...

    def ego_state(self, header: Header) -> EgoState:
        """The ego's state now, world frame."""
        ...

    def objects_gt(self, header: Header, in_view_only: bool = False) -> ObjectArray:
        """Every other vehicle now, ground truth in the ego frame; with `in_view_only`, only those wholly in the
        camera's view (a consumer that reads no other, such as the planner's training env, skips the rest)."""
        ...

    def camera(self, header: Header) -> Image:
        """The rendered top-down frame now (rgb8)."""
        ...

    def close(self) -> None:
        """Release the world (env, server actors); the object is not used afterwards."""
        ...
