"""The episode protocol every sim node shares, whatever world it steps (highway-env, CARLA).

Lockstep: `start()` publishes tick 0; each `step` applies the command for the current tick and
publishes the next tick. When an episode ends, the terminal tick's data goes out as usual; the command
that answers it is not applied: instead the end event (with its reason) is published, then, unless that
was the last episode, the next episode's start event and its tick 0.

Real-time mode: the runtime calls `step` every `realtime_period()` of wall time with the latest command
(the trigger is None on purpose: a command arriving must not step the world a second time); a missing
or late command means "keep applying the last one" and is normal there, so it is only counted in lockstep.

Params: a sim node's params are its world's (`sim.highway.SimParams`, `sim.carla_client.CarlaParams`) plus the
run's episodes, seed and mode, defined here once (`EPISODE_FIELDS`, `sim_node_params`, `check_episodes`). The
node's `check` runs both rule sets, so `launch --check` refuses what the world would refuse when it is built.

The world is a `sim.world.World` (highway-env's `sim.highway.HighwaySim`, CARLA's `sim.carla_bridge.CarlaSim`):
`reset(seed, episode)`, `step(cmd)`, `end_reason`, `episode`, `tick`, `header()`, `camera(header)`,
`ego_state(header)`, `objects_gt(header)` and `close()`; optionally `prepare()`: work for the next step that the
command does not change, done while the rest of the stack computes that command.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from msgs import ControlCommand, EpisodeEvent, Message
from msgs.registry import CONTROL_RATE_HZ
from nodes.runtime.node import Node, Outputs, Params, tick_header
from sim.world import World as SimWorld

MODES = ("lockstep", "realtime")
# What every sim node runs, whatever its world: (name, type, default)
EPISODE_FIELDS: tuple[tuple[str, type, Any], ...] = (
    ("episodes", int, 3),  # episodes to run before the node finishes
    ("seed", int, 0),  # base seed: episode i is reset with seed + i (>= 0: gymnasium and CARLA take no negative seed)
    ("mode", str, "lockstep"),  # "lockstep" (step on each command) or "realtime" (paced by the wall clock)
)


def sim_node_params(world: type[msgspec.Struct], name: str, module: str) -> type[Params]:
    """The params class of a sim node: `world`'s fields, then EPISODE_FIELDS; unknown keys are rejected.

    (A msgspec struct takes its fields from one base only, so the episode fields are added here rather than
    by a second base class.)

    :param world: the world's params (SimParams, CarlaParams), whose `check()` the node runs too.
    :param name: the class's name, as the module binds it.
    :param module: the module that binds it (so that it pickles and reads back by name).
    :return: a Params subclass of `world`.
    """
    doc = f"{world.__name__} (the world) plus the run's episodes, seed and mode (nodes.sim.episodes)."
    return msgspec.defstruct(name, EPISODE_FIELDS, bases=(Params, world), module=module, namespace={"__doc__": doc},
                             kw_only=True, forbid_unknown_fields=True)


def check_episodes(params: Any) -> None:
    """ValueError naming the first bad episode field (episodes, seed, mode) of a sim node's params."""
    if params.episodes < 1:
        raise ValueError(f"sim params: episodes must be >= 1, got {params.episodes}")
    if params.seed < 0:
        raise ValueError(f"sim params: seed must be >= 0 (episode i uses seed + i), got {params.seed}")
    if params.mode not in MODES:
        raise ValueError(f"sim params: mode must be one of {MODES}, got {params.mode!r}")


class EpisodicSimNode(Node):
    """A sim node: `make_world(params)` gives the world; this class runs the episodes and publishes.

    Subclasses set `World` (the world's params type, with a `check()`) and `Params = sim_node_params(World, ...)`,
    and build the world from `world_params(params)` in `make_world`."""

    name: ClassVar[str] = "sim"
    inputs: ClassVar[dict[str, str]] = {"cmd": "/control/cmd"}
    outputs: ClassVar[dict[str, str]] = {
        "camera": "/sim/camera",
        "ego": "/sim/ego",
        "objects": "/sim/objects_gt",
        "episode": "/sim/episode",
    }
    trigger: ClassVar[str | None] = None  # lockstep: steps when the tick's cmd is in; real time: on the clock
    opens_ticks: ClassVar[bool] = True  # the command of tick k makes the outputs of tick k + 1
    sim_rate_hz: ClassVar[float] = CONTROL_RATE_HZ
    World: ClassVar[type[Any]]  # the world's params (SimParams, CarlaParams): the fields of Params it takes

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self.params: Any = params
        self.sim: SimWorld = self.make_world(params)
        self.episode = 0
        self._pending_end: str | None = None  # reason of an episode whose terminal tick was published
        self._finished = False
        self._last_cmd = ControlCommand(acceleration=0.0, steering=0.0)
        self._counters = {"ticks": 0, "episodes": 0, "non_finite_cmd": 0, "missing_cmd": 0, "stale_cmd": 0}

    def make_world(self, params: Params) -> SimWorld:
        """The world this node steps, built from its params (`world_params`)."""
        raise NotImplementedError

    @classmethod
    def world_params(cls, params: Params) -> Any:
        """The world's own params, taken from the node's."""
        return cls.World(**{f: getattr(params, f) for f in cls.World.__struct_fields__})

    @classmethod
    def check(cls, params: Params) -> None:
        """The episodes' rules, then the world's (its params alone: no world is built, no server reached)."""
        check_episodes(params)
        cls.world_params(params).check()

    @classmethod
    def output_ports(cls, params: Params) -> dict[str, str]:
        ports = dict(cls.outputs)
        if not getattr(params, "render", True):
            del ports["camera"]
        return ports

    def realtime_period(self) -> float | None:
        return 1.0 / self.sim_rate_hz

    @property
    def finished(self) -> bool:
        return self._finished

    def close(self) -> None:
        self.sim.close()

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def prepare(self) -> None:
        prepare = getattr(self.sim, "prepare", None)
        if prepare is not None:  # the world itself does nothing once its episode has ended
            prepare()

    def start(self) -> Outputs:
        return self._begin(0)

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        if self._finished:
            return []
        if self._pending_end is not None:
            return self._end()
        lockstep = self.params.mode == "lockstep"
        cmd = inputs.get("cmd")
        if cmd is None:
            self._counters["missing_cmd"] += int(lockstep)
            cmd = self._last_cmd
        elif not isinstance(cmd, ControlCommand) or not cmd.is_finite():
            self._counters["non_finite_cmd"] += 1
            cmd = ControlCommand(header=self.sim.header(), acceleration=0.0, steering=0.0)
        elif lockstep and (cmd.header.episode, cmd.header.tick) != (self.sim.episode, self.sim.tick):
            self._counters["stale_cmd"] += 1
        self._last_cmd = cmd
        self.sim.step(cmd)
        self._counters["ticks"] += 1
        if self.sim.end_reason is not None:
            self._pending_end = self.sim.end_reason
        return self._tick_outputs()

    def _begin(self, episode: int) -> Outputs:
        self.episode = episode
        seed = self.params.seed + episode
        self.sim.reset(seed=seed, episode=episode)
        self._last_cmd = ControlCommand(acceleration=0.0, steering=0.0)
        event = EpisodeEvent(header=self.sim.header(), kind="start", seed=seed)
        return [("episode", event), *self._tick_outputs()]

    def _end(self) -> Outputs:
        last = self.episode + 1 >= self.params.episodes
        event = EpisodeEvent(header=self.sim.header(), kind="end", seed=self.params.seed + self.episode,
                             reason=self._pending_end or "", last=last)
        self._pending_end = None
        self._counters["episodes"] += 1
        if last:
            self._finished = True
            return [("episode", event)]
        return [("episode", event), *self._begin(self.episode + 1)]

    def _tick_outputs(self) -> Outputs:
        world = self.sim.header()
        out: Outputs = []
        if self.params.render:
            out.append(("camera", self.sim.camera(tick_header(world, "camera"))))
        out.append(("ego", self.sim.ego_state(world)))
        out.append(("objects", self.sim.objects_gt(tick_header(world, "ego"))))
        return out
