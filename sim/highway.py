"""The highway-env backend: one gymnasium env driven by ContinuousAction, read out as typed messages.

Pure: no sockets, no clocks. `HighwaySim` is used by the sim node, by training and by the benches.

Conventions (checked in tests/sim): the world frame is highway-env's, x along the road, y across it
towards higher lane indices; lane i's centre is at y = i * lane_width (lane 0 on top of the camera
image). `lateral_offset` is measured from the centre of `lane_index`, + towards higher lanes. Ego-frame
objects are offsets from the ego with the road's axes (what highway-env's Kinematics observation uses).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import highway_env  # noqa: F401  (registers the highway-env ids with gymnasium)
import msgspec
import numpy as np
import pygame

from msgs import ControlCommand, EgoState, Header, Image, Object, ObjectArray
from sim import fast_road
from sim.view import DEFAULT_VIEW, CameraView
from sim.world import SIM_RATE_HZ, stamp_ns  # the clock every backend shares

# SDL (highway-env's renderer) complains on every start when this is unset; any private directory will do
if "XDG_RUNTIME_DIR" not in os.environ:
    os.environ["XDG_RUNTIME_DIR"] = os.path.join(tempfile.gettempdir(), f"drivestack-xdg-{os.getuid()}")
    os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)


class SimParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What world to build. Every field has a default; unknown keys are rejected."""

    env_id: str = "highway-v0"  # gymnasium id of a straight-road highway-env env (or highway-fast-v0)
    lanes_count: int = 4  # number of lanes
    vehicles_count: int = 50  # other vehicles spawned at reset
    vehicles_density: float = 1.0  # highway-env's spawn density (higher: closer spacing)
    duration: float = 40.0  # [s] episode time limit (simulated)
    render: bool = True  # render the camera; False skips the viewer entirely (training)
    screen_width: int = DEFAULT_VIEW.width  # [px] camera width
    screen_height: int = DEFAULT_VIEW.height  # [px] camera height
    scaling: float = DEFAULT_VIEW.scaling  # [px/m] camera scale
    offroad_terminal: bool = True  # end the episode when the ego leaves the road
    kinematics_obs: bool = False  # compute highway-env's Kinematics observation (unused here; ~30% of a step)
    ego_driver: str = "stack"  # "stack": /control/cmd drives the ego; "idm": highway-env's IDM/MOBIL drives it
    right_lane_reward: float = 0.1  # highway-env's reward weight for the rightmost lane (its default; training)
    high_speed_reward: float = 0.4  # highway-env's reward weight for speed in [20, 30] m/s (its default; training)
    road: str = "fast"  # "fast": sim.fast_road (stock's trajectories bit for bit, faster); "stock": highway-env's Road

    def check(self) -> SimParams:
        """ValueError naming the first bad field; returns self so it chains. Run by `make_env`, `HighwaySim`
        and the sim node's `check` (so by `launch --check`)."""
        if not self.env_id.startswith("highway"):
            raise ValueError(f"SimParams.env_id {self.env_id!r}: only the straight-road highway envs are "
                             "supported (highway-v0, highway-fast-v0)")
        if self.env_id not in gym.registry:
            raise ValueError(f"SimParams.env_id {self.env_id!r} is not a registered gymnasium id")
        if self.lanes_count < 1:
            raise ValueError(f"SimParams.lanes_count must be >= 1, got {self.lanes_count}")
        if self.vehicles_count < 0:
            raise ValueError(f"SimParams.vehicles_count must be >= 0, got {self.vehicles_count}")
        if not (math.isfinite(self.vehicles_density) and self.vehicles_density > 0):
            raise ValueError(f"SimParams.vehicles_density must be > 0, got {self.vehicles_density}")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"SimParams.duration must be > 0 s, got {self.duration}")
        if self.road not in fast_road.ROADS:
            raise ValueError(f"SimParams.road must be one of {fast_road.ROADS}, got {self.road!r}")
        if self.ego_driver not in ("stack", "idm"):
            raise ValueError(f"SimParams.ego_driver must be 'stack' or 'idm', got {self.ego_driver!r}")
        for name in ("screen_width", "screen_height"):
            if getattr(self, name) < 1:
                raise ValueError(f"SimParams.{name} must be >= 1 px, got {getattr(self, name)}")
        if not (math.isfinite(self.scaling) and self.scaling > 0):
            raise ValueError(f"SimParams.scaling must be > 0 px/m, got {self.scaling}")
        return self

    @property
    def view(self) -> CameraView:
        """The camera these params render (DEFAULT_VIEW unless the size or scale was changed)."""
        return CameraView(width=self.screen_width, height=self.screen_height, scaling=self.scaling,
                          centering=DEFAULT_VIEW.centering)


def env_config(params: SimParams, action: dict[str, Any] | None = None) -> dict[str, Any]:
    """highway-env config for `params`; `action` overrides ContinuousAction (benchmarks compare others)."""
    # The stack builds its own observations from messages; an empty attribute observation costs nothing.
    observation = {"type": "Kinematics"} if params.kinematics_obs else {"type": "AttributesObservation",
                                                                        "attributes": []}
    return {
        "observation": observation,
        "action": action or {"type": "ContinuousAction"},
        "policy_frequency": SIM_RATE_HZ,
        "simulation_frequency": SIM_RATE_HZ,
        "lanes_count": params.lanes_count,
        "vehicles_count": params.vehicles_count,
        "vehicles_density": params.vehicles_density,
        "duration": params.duration,
        "offroad_terminal": params.offroad_terminal,
        "right_lane_reward": params.right_lane_reward,
        "high_speed_reward": params.high_speed_reward,
        **params.view.env_config(),
        "offscreen_rendering": True,
    }


def make_env(params: SimParams, action: dict[str, Any] | None = None) -> gym.Env:
    """The gymnasium env for `params` (rgb_array rendering when params.render) on `params.road`."""
    params.check()
    # gymnasium's passive checker refuses the empty observation space (it checks nothing else we rely on).
    env = gym.make(params.env_id, config=env_config(params, action),
                   render_mode="rgb_array" if params.render else None,
                   disable_env_checker=not params.kinematics_obs)
    return use_road(env, params.road)


def use_road(env: gym.Env, road: str = "fast") -> gym.Env:
    """`env` (a straight-road highway-env env) building `road`'s Road on every reset: "fast" is
    sim.fast_road's (the same trajectories as stock, bit for bit, in a fraction of the time), "stock" is
    highway-env's. Every highway-env world of the project is made through here or `make_env`."""
    return fast_road.install(env, road)


def make_idm_ego(env: gym.Env) -> None:
    """Swap the ego for highway-env's IDM/MOBIL vehicle in the same state (right after reset): the baseline
    driver, in the sim (ContinuousAction) and in the planner's reference runs (DiscreteMetaAction). The action
    given to `env.step` is then ignored; the IDM car drives itself every frame. It keeps the ego's target lane,
    target speed, route and lane-change timer where the ego has them (a meta-action vehicle; what
    `IDMVehicle.create_from` copies), else it aims at its lane and speed."""
    from highway_env.vehicle.behavior import IDMVehicle

    base = env.unwrapped
    ego = base.vehicle
    idm = IDMVehicle(base.road, ego.position, heading=ego.heading, speed=ego.speed,
                     target_lane_index=getattr(ego, "target_lane_index", None) or ego.lane_index,
                     target_speed=getattr(ego, "target_speed", ego.speed),
                     route=getattr(ego, "route", None), timer=getattr(ego, "timer", None))
    base.road.vehicles[base.road.vehicles.index(ego)] = idm
    base.controlled_vehicles = [idm]
    base.action_type.controlled_vehicle = idm


class HighwaySim:
    """highway-env with ContinuousAction, one physics step per `step`, read out as drivestack messages (a
    `sim.world.World`; policy_frequency = simulation_frequency = SIM_RATE_HZ)."""

    episode: int
    tick: int

    def __init__(self, params: SimParams | None = None) -> None:
        self.params = (params or SimParams()).check()
        self.view = self.params.view
        self.env = make_env(self.params)
        self.episode = 0
        self.tick = 0
        self.reward = 0.0  # highway-env's normalised reward of the last step
        self._terminated = False
        self._truncated = False
        self._reset_done = False
        self._ids: dict[int, int] = {}
        self._traffic_act: Callable[[], None] | None = None  # the road's own act(), once prepare() took over
        self._prepared = False
        # highway-env accumulates time in floats (40 s can take 601 steps); the limit here is exact.
        self.max_ticks = round(self.params.duration * SIM_RATE_HZ)

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def reset(self, seed: int, episode: int) -> None:
        """Start `episode` from `seed`: same seed, same world."""
        self.env.reset(seed=seed)
        if self.params.ego_driver == "idm":
            make_idm_ego(self.env)
        self.episode = episode
        self.tick = 0
        self.reward = 0.0
        self._terminated = self._truncated = False
        self._reset_done = True
        # Ground-truth ids: the index in the road's vehicle list at reset (highway-v0 never removes any).
        self._ids = {id(v): i for i, v in enumerate(self.unwrapped.road.vehicles)}
        self._traffic_act, self._prepared = None, False

    def prepare(self) -> None:
        """Decide every vehicle's next move now: highway-env's `road.act()` (IDM and MOBIL for the traffic,
        two thirds of a step's time), which `step` would otherwise run first thing. It reads the world as it
        is after the last step and never the ego's next command (the ego is a plain kinematic vehicle whose
        act() only stores that command), so the next step's result is the same bytes either way; the sim
        node calls it while the rest of the stack computes the command. Not used with the IDM ego, which
        takes its own decision when the command is applied."""
        if not self._reset_done or self._prepared or self.params.ego_driver != "stack" or self.end_reason:
            return
        road = self.unwrapped.road
        if self._traffic_act is None:
            self._traffic_act = road.act
            road.act = self._act_once  # the instance attribute shadows Road.act until the next reset
        self._traffic_act()
        self._prepared = True

    def _act_once(self) -> None:
        """`road.act` inside highway-env's step: skipped once if prepare() already ran it for this step."""
        if self._prepared:
            self._prepared = False
        elif self._traffic_act is not None:
            self._traffic_act()

    def _id_of(self, vehicle: Any) -> int:
        return self._ids.setdefault(id(vehicle), len(self._ids))

    def step(self, cmd: ControlCommand) -> None:
        """Apply `cmd` (normalised accel, steering) for one tick."""
        if not self._reset_done:
            raise RuntimeError("HighwaySim.step before reset(seed, episode)")
        if self.end_reason is not None:
            raise RuntimeError(f"HighwaySim.step after the episode ended ({self.end_reason}); reset first")
        if not cmd.is_finite():
            raise ValueError(f"non-finite command {cmd.acceleration}, {cmd.steering}: refuse it upstream")
        action = np.array([cmd.acceleration, cmd.steering], dtype=np.float64)
        _, reward, terminated, truncated, _ = self.env.step(action)
        self.tick += 1
        self.reward = float(reward)
        self._terminated, self._truncated = bool(terminated), bool(truncated)

    @property
    def end_reason(self) -> str | None:
        """Why the episode is over ("collision", "offroad", "time_limit"), or None while it runs."""
        if not (self._terminated or self._truncated or self.tick >= self.max_ticks):
            return None
        vehicle = self.unwrapped.vehicle
        if vehicle.crashed:
            return "collision"
        if not vehicle.on_road:
            return "offroad"
        return "time_limit"

    def header(self, frame_id: str = "world") -> Header:
        return Header(episode=self.episode, tick=self.tick, stamp_ns=stamp_ns(self.tick), frame_id=frame_id)

    def ego_state(self, header: Header) -> EgoState:
        v = self.unwrapped.vehicle
        lane = v.lane
        longitudinal, lateral = lane.local_coordinates(v.position)
        velocity = v.velocity
        return EgoState(
            header=header,
            x=float(v.position[0]),
            y=float(v.position[1]),
            heading=float(v.heading),
            speed=float(v.speed),
            vx=float(velocity[0]),
            vy=float(velocity[1]),
            lane_index=int(v.lane_index[2]),
            lateral_offset=float(lateral),
            lanes_count=self.params.lanes_count,
            lane_width=float(lane.width_at(longitudinal)),
            length=float(v.LENGTH),
            width=float(v.WIDTH),
            acceleration=float(v.action["acceleration"]),
            steering=float(v.action["steering"]),
            crashed=bool(v.crashed),
            on_road=bool(v.on_road),
            reward=self.reward,
        )

    def objects_gt(self, header: Header, in_view_only: bool = False) -> ObjectArray:
        """Every other vehicle on the road, ego-frame offsets plus world values, in road-list order; with
        `in_view_only`, only those wholly in the camera's view (the same objects, without building the rest)."""
        ego = self.unwrapped.vehicle
        others = [v for v in self.unwrapped.road.vehicles if v is not ego]
        if not others:
            return ObjectArray(header=header, objects=[])
        # Elementwise over all vehicles at once: the same doubles as vehicle by vehicle.
        position = np.array([v.position for v in others], dtype=np.float64)
        lengths = [float(v.LENGTH) for v in others]
        widths = [float(v.WIDTH) for v in others]
        in_view = self.view.fully_in_view_mask(position[:, 0] - ego.position[0], position[:, 1] - ego.position[1],
                                               np.array(lengths), np.array(widths)).tolist()
        if in_view_only:
            keep = [i for i, seen in enumerate(in_view) if seen]
            others = [others[i] for i in keep]
            if not others:
                return ObjectArray(header=header, objects=[])
            position, lengths, widths, in_view = (position[keep], [lengths[i] for i in keep],
                                                  [widths[i] for i in keep], [True] * len(keep))
        offset = (position - ego.position).tolist()
        relative_velocity = (np.array([v.velocity for v in others], dtype=np.float64) - ego.velocity).tolist()
        objects = []
        for i, vehicle in enumerate(others):
            lane_index = vehicle.lane_index[2] if vehicle.lane_index is not None else -1
            (dx, dy), (dvx, dvy), (world_x, world_y) = offset[i], relative_velocity[i], position[i].tolist()
            objects.append(Object(
                id=self._id_of(vehicle), x=dx, y=dy, vx=dvx, vy=dvy,
                heading=float(vehicle.heading), length=lengths[i], width=widths[i], world_x=world_x, world_y=world_y,
                speed=float(vehicle.speed), lane_index=int(lane_index), in_view=in_view[i],
            ))
        return ObjectArray(header=header, objects=objects)

    def camera(self, header: Header) -> Image:
        if not self.params.render:
            raise RuntimeError("HighwaySim.camera with render=False: set SimParams.render to True")
        base = self.unwrapped
        viewer = base.viewer
        if self.params.road == "fast" and viewer is not None and viewer.offscreen and base.render_mode == "rgb_array":
            # env.render() for an offscreen rgb_array viewer, read out row-major in one copy (stock's
            # get_image transposes a column-major array: the same bytes in two more copies)
            base.enable_auto_render = True
            viewer.display()
            return Image(header=header, width=viewer.sim_surface.get_width(), height=viewer.sim_surface.get_height(),
                         data=pygame.image.tobytes(viewer.sim_surface, "RGB"))
        pixels = self.env.render()
        return Image.from_array(pixels, header)

    def close(self) -> None:
        self.env.close()

