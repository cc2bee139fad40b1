"""The CARLA sim node: a CARLA server stepped once per /control/cmd, on the same topics as the highway-env node.

Same lockstep protocol as `sim.node` (start publishes tick 0; each step applies the tick's command and
publishes the next tick; a terminal tick is published, then the end event instead of applying the answer,
then the next episode's start and tick 0), same message types, same end reasons. The world comes from
`sim.carla_bridge.CarlaSim`. Connecting happens when the node is built, before the start-up barrier, so a
missing server or a missing `carla` package stops the launch at once with one line (exit 2, no traceback).
The runtime calls `close()` on the way out, Ctrl-C included: every spawned actor is destroyed and the
server's settings restored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgs import ControlCommand, EpisodeEvent, Message
from nodes.runtime.node import Node, Outputs, Params, tick_header
from sim.carla_bridge import SIM_RATE_HZ, CarlaSim
from sim.carla_client import CarlaParams

MODES = ("lockstep", "realtime")


class CarlaSimNodeParams(Params, CarlaParams, kw_only=True, forbid_unknown_fields=True):
    """CarlaParams (the server and world) plus the run's episodes."""

    episodes: int = 3  # episodes to run before the node finishes
    seed: int = 0  # base seed: episode i is reset with seed + i
    mode: str = "lockstep"  # "lockstep" (step on each command) or "realtime" (paced by the wall clock)


class CarlaSimNode(Node):
    name: ClassVar[str] = "sim"
    Params: ClassVar[type[Params]] = CarlaSimNodeParams
    inputs: ClassVar[dict[str, str]] = {"cmd": "/control/cmd"}
    outputs: ClassVar[dict[str, str]] = {
        "camera": "/sim/camera",
        "ego": "/sim/ego",
        "objects": "/sim/objects_gt",
        "episode": "/sim/episode",
    }
    trigger: ClassVar[str | None] = None  # as sim.node: lockstep steps on the tick's cmd, real time on the clock

    def __init__(self, params: CarlaSimNodeParams, *, carla: Any = None, client: Any = None) -> None:
        """carla, client: passed on to CarlaSim (tests use a stand-in server); None connects for real."""
        super().__init__(params)
        if params.episodes < 1:
            raise ValueError(f"sim params: episodes must be >= 1, got {params.episodes}")
        if params.mode not in MODES:
            raise ValueError(f"sim params: mode must be one of {MODES}, got {params.mode!r}")
        self.params: CarlaSimNodeParams = params
        world = CarlaParams(**{f: getattr(params, f) for f in CarlaParams.__struct_fields__})
        self.sim = CarlaSim(world, carla=carla, client=client)
        self.episode = 0
        self._pending_end: str | None = None
        self._finished = False
        self._last_cmd = ControlCommand(acceleration=0.0, steering=0.0)
        self._counters = {"ticks": 0, "episodes": 0, "non_finite_cmd": 0, "missing_cmd": 0, "stale_cmd": 0}

    @classmethod
    def check(cls, params: Params) -> None:
        """At launch: the params alone (no carla import, no server), so the file plans anywhere."""
        CarlaParams(**{f: getattr(params, f) for f in CarlaParams.__struct_fields__}).validate()

    @classmethod
    def output_ports(cls, params: Params) -> dict[str, str]:
        ports = dict(cls.outputs)
        if not getattr(params, "render", True):
            del ports["camera"]
        return ports

    def realtime_period(self) -> float | None:
        return 1.0 / SIM_RATE_HZ

    @property
    def finished(self) -> bool:
        return self._finished

    def close(self) -> None:
        self.sim.close()

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

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


NODE = CarlaSimNode
