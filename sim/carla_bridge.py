"""The CARLA backend: a CARLA server's world, stepped in synchronous mode, read out as drivestack messages.

`CarlaSim` has the interface of `sim.highway.HighwaySim` (reset, step, end_reason, header, ego_state,
objects_gt, camera, close), so `sim.carla_node` publishes the same topics and types as the highway-env node.
It needs the `carla` client package (`pip install "drivestack[carla]"`), imported only when connecting, and a
running CARLA 0.9.16 server. What it does on the server:

- connects to host:port, failing within `timeout_s` with a message that says how to start a server;
- loads `town` (Town04, a highway loop, by default) unless it is already loaded;
- sets synchronous mode with fixed_delta_seconds = 1 / SIM_RATE_HZ and the Traffic Manager in synchronous
  mode, seeded per episode (episode i: base seed + i, as with highway-env);
- per episode: spawns the ego on a lane of a road with >= `min_lanes` lanes one way, a collision sensor and
  a top-down camera on it, and `vehicles_count` traffic vehicles on the Traffic Manager's autopilot;
- `close()` (also on Ctrl-C or an exception) destroys every actor it spawned and restores the world's
  settings and the Traffic Manager's mode as it found them.

Reaching the server and the params: `sim.carla_client`. Frames and unit conversions: `sim.carla_frames` (the
road frame published here is described there). Lanes and spawn slots: `sim.carla_world`.
"""

from __future__ import annotations

import logging
import math
import queue
from typing import Any

import msgspec
import numpy as np

from msgs import ControlCommand, EgoState, Header, Image, Object, ObjectArray
from msgs.registry import CONTROL_RATE_HZ
from sim.carla_client import CarlaParams, connect, import_carla
from sim.carla_frames import (
    bgra_to_rgb,
    camera_mount,
    command_to_control,
    forward_right,
    lateral_offset,
    max_steer_deg_of,
    road_y,
    to_lane_frame,
    yaw_to_heading,
)
from sim.carla_world import highway_starts, lane_position, pick, traffic_slots

log = logging.getLogger("drivestack.carla")

SIM_RATE_HZ = int(CONTROL_RATE_HZ)  # [Hz] one synchronous CARLA tick per control tick, as with highway-env
NS_PER_S = 1_000_000_000
SPAWN_LIFT_M = 0.3  # [m] spawn this far above the road so the car drops onto it instead of into it


def stamp_ns(tick: int) -> int:
    """Simulated time of `tick` since the episode started [ns], exact in integers."""
    return tick * NS_PER_S // SIM_RATE_HZ


class _Pose(msgspec.Struct):
    """One vehicle read from the server this tick (CARLA world plan values)."""

    x: float
    y: float
    yaw_deg: float
    vx: float
    vy: float
    length: float
    width: float
    wp: Any  # lane-centre waypoint of the nearest driving lane


class CarlaSim:
    """A CARLA world in synchronous mode, one server tick per `step`, read out as drivestack messages."""

    def __init__(self, params: CarlaParams | None = None, *, carla: Any = None, client: Any = None) -> None:
        """params: the server and world; carla: the carla module (imported when None); client: an attached
        carla.Client (connected from params when None). Tests pass both to run against a stand-in server."""
        self.params = (params or CarlaParams()).validate()
        self.view = self.params.view
        self.carla = carla if carla is not None else import_carla()
        self.episode = 0
        self.tick = 0
        self.max_ticks = round(self.params.duration * SIM_RATE_HZ)
        self.world: Any = None
        self.tm: Any = None
        self.ego: Any = None
        self._original_settings: Any = None
        self._tm_sync = False
        self._sensors: list[Any] = []  # this episode's sensors, stopped and destroyed first
        self._vehicles: list[Any] = []  # this episode's vehicles, the ego first
        self._ids: dict[int, int] = {}  # carla actor id -> ground-truth id (spawn order, ego 0)
        self._frames: queue.Queue[Any] = queue.Queue()
        self._image: np.ndarray | None = None
        self._collisions: list[int] = []
        self._closed = False
        self._reset_done = False
        self.client = client if client is not None else connect(self.carla, self.params)
        try:
            self._setup_world()
        except BaseException:  # Ctrl-C included: leave the server as it was found
            self.close()
            raise

    # -- the world ---------------------------------------------------------------------------------
    def _setup_world(self) -> None:
        p, driving = self.params, self.carla.LaneType.Driving
        self.world = self.client.get_world()
        self._original_settings = self.world.get_settings()
        self.map = self.world.get_map()
        if self.map.name.split("/")[-1] != p.town:
            log.info("loading %s (up to %g s)", p.town, p.map_timeout_s)
            self.client.set_timeout(p.map_timeout_s)
            try:
                self.world = self.client.load_world(p.town)
            except RuntimeError as exc:
                towns = sorted(m.split("/")[-1] for m in self.client.get_available_maps())
                raise ValueError(f"CarlaParams.town {p.town!r}: the server cannot load it ({exc}); it has {towns}"
                                 ) from None
            self.client.set_timeout(p.timeout_s)
            self.map = self.world.get_map()
        settings = self.world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = 1.0 / SIM_RATE_HZ
        self.world.apply_settings(settings)
        self.tm = self.client.get_trafficmanager(p.tm_port)
        self.tm.set_synchronous_mode(True)
        self._tm_sync = True
        self._starts = highway_starts(self.map, self.map.get_spawn_points(), driving, p.min_lanes)
        if not self._starts:
            raise ValueError(f"CarlaParams.town {p.town!r} has no spawn point on a road with >= {p.min_lanes} lanes "
                             "one way: use a highway map such as Town04, or lower min_lanes")
        library = self.world.get_blueprint_library()
        try:
            self._ego_bp = library.find(p.ego_blueprint)
        except IndexError:
            raise ValueError(f"CarlaParams.ego_blueprint {p.ego_blueprint!r} is not a blueprint on this server"
                             ) from None
        self._traffic_bps = sorted((bp for bp in library.filter(p.traffic_filter)
                                    if bp.has_attribute("number_of_wheels")
                                    and bp.get_attribute("number_of_wheels").as_int() == 4), key=lambda bp: bp.id)
        if not self._traffic_bps and p.vehicles_count:
            raise ValueError(f"CarlaParams.traffic_filter {p.traffic_filter!r} matches no four-wheeled blueprint")

    def _spawn(self, blueprint: Any, wp_or_transform: Any, attach_to: Any = None, sensor: bool = False) -> Any:
        if attach_to is None:
            t = wp_or_transform.transform
            transform = self.carla.Transform(self.carla.Location(x=t.location.x, y=t.location.y,
                                                                 z=t.location.z + SPAWN_LIFT_M), t.rotation)
            actor = self.world.try_spawn_actor(blueprint, transform)
        else:
            actor = self.world.spawn_actor(blueprint, wp_or_transform, attach_to=attach_to)
        if actor is not None:
            (self._sensors if sensor else self._vehicles).append(actor)
        return actor

    def _attach_sensors(self) -> None:
        library = self.world.get_blueprint_library()
        collision = self._spawn(library.find("sensor.other.collision"), self.carla.Transform(), self.ego, True)
        collision.listen(lambda event: self._collisions.append(int(event.other_actor.id)))
        if not self.params.render:
            return
        bp = library.find("sensor.camera.rgb")
        for key, value in (("image_size_x", self.view.width), ("image_size_y", self.view.height),
                           ("fov", self.params.camera_fov)):
            bp.set_attribute(key, str(value))
        m = camera_mount(self.view, self.params.camera_fov)
        mount = self.carla.Transform(self.carla.Location(x=m["x"], y=m["y"], z=m["z"]),
                                     self.carla.Rotation(pitch=m["pitch"], yaw=m["yaw"]))
        self._spawn(bp, mount, self.ego, True).listen(self._frames.put)

    def _destroy_actors(self) -> list[str]:
        """Stop and destroy every actor spawned this episode (sensors first); the errors, as text."""
        errors = []
        for sensor in self._sensors:
            try:
                sensor.stop()
            except Exception as exc:  # noqa: BLE001 (clean-up goes on; reported by the caller)
                errors.append(f"stopping sensor {sensor.id}: {exc}")
        for actor in [*self._sensors, *reversed(self._vehicles)]:
            try:
                actor.destroy()
            except Exception as exc:  # noqa: BLE001
                errors.append(f"destroying actor {actor.id}: {exc}")
        self._sensors, self._vehicles, self.ego = [], [], None
        return errors

    # -- episodes ------------------------------------------------------------------------------------
    def reset(self, seed: int, episode: int) -> None:
        """Start `episode` from `seed`: a fresh ego, sensors and traffic; same seed, same spawn choices."""
        if self._closed:
            raise RuntimeError("CarlaSim.reset after close()")
        errors = self._destroy_actors()
        if errors:
            log.error("clearing the last episode: %s", "; ".join(errors))
        p, driving = self.params, self.carla.LaneType.Driving
        rng = np.random.default_rng(seed)
        self.tm.set_random_device_seed(seed)
        start = self._starts[int(rng.integers(len(self._starts)))]
        self.ego = self._spawn(self._ego_bp, start)
        if self.ego is None:
            raise RuntimeError(f"could not spawn the ego at {start.transform.location} (occupied?)")
        self._ids = {self.ego.id: 0}
        self._max_steer_deg = max_steer_deg_of(self.ego.get_physics_control().wheels)
        self._attach_sensors()
        for slot in pick(rng, traffic_slots(start, driving, p.traffic_spacing_m, p.traffic_reach_m), p.vehicles_count):
            bp = self._traffic_bps[int(rng.integers(len(self._traffic_bps)))]
            vehicle = self._spawn(bp, slot)
            if vehicle is None:  # the slot was taken (by another client's actor): fewer vehicles, not an error
                continue
            self._ids[vehicle.id] = len(self._ids)
            vehicle.set_autopilot(True, self.tm.get_port())
            self.tm.vehicle_percentage_speed_difference(vehicle, float(rng.uniform(-1, 1) * p.traffic_speed_spread))
        self._tick()  # the actors take their place in the world
        for vehicle in self._vehicles:
            (fx, fy), _ = forward_right(vehicle.get_transform().rotation.yaw)
            vehicle.set_target_velocity(self.carla.Vector3D(x=fx * p.start_speed, y=fy * p.start_speed, z=0.0))
        self._tick()
        self._collisions.clear()
        self.episode, self.tick = episode, 0
        self._applied = (0.0, 0.0)
        self._odometer = 0.0
        self._observe_ego()
        self._reset_done = True

    def step(self, cmd: ControlCommand) -> None:
        """Apply `cmd` (normalised accel, steering; see sim.carla_frames.command_to_control) for one tick."""
        if not self._reset_done:
            raise RuntimeError("CarlaSim.step before reset(seed, episode)")
        if self.end_reason is not None:
            raise RuntimeError(f"CarlaSim.step after the episode ended ({self.end_reason}); reset first")
        if not cmd.is_finite():
            raise ValueError(f"non-finite command {cmd.acceleration}, {cmd.steering}: refuse it upstream")
        p = self.params
        throttle, steer, brake = command_to_control(cmd.acceleration, cmd.steering, self._max_steer_deg,
                                                    p.full_throttle_mps2, p.full_brake_mps2)
        self.ego.apply_control(self.carla.VehicleControl(throttle=throttle, steer=steer, brake=brake))
        self._applied = (throttle * p.full_throttle_mps2 - brake * p.full_brake_mps2,
                         math.radians(steer * self._max_steer_deg))
        self._tick()
        self.tick += 1
        before = self._ego_pose
        self._observe_ego()
        # distance along the road: this tick's displacement measured along the lane it started in
        along, _ = to_lane_frame(self._ego_pose.x - before.x, self._ego_pose.y - before.y,
                                 before.wp.transform.rotation.yaw)
        self._odometer += along

    def _tick(self) -> None:
        frame = self.world.tick()
        if not self.params.render:
            return
        while True:
            try:
                image = self._frames.get(timeout=self.params.timeout_s)
            except queue.Empty:
                raise TimeoutError(f"no camera frame for server frame {frame} within {self.params.timeout_s:g} s"
                                   ) from None
            if image.frame >= frame:
                self._image = bgra_to_rgb(image.raw_data, image.width, image.height)
                return

    def _read(self, actor: Any) -> _Pose:
        t = actor.get_transform()
        v = actor.get_velocity()
        extent = actor.bounding_box.extent
        wp = self.map.get_waypoint(t.location, project_to_road=True, lane_type=self.carla.LaneType.Driving)
        return _Pose(x=t.location.x, y=t.location.y, yaw_deg=t.rotation.yaw, vx=v.x, vy=v.y,
                     length=2 * extent.x, width=2 * extent.y, wp=wp)

    def _observe_ego(self) -> None:
        """Read the ego after a tick; whether its centre is inside a driving lane (CARLA: a waypoint found
        without projecting onto the road) is taken at the same time."""
        self._ego_pose = self._read(self.ego)
        location = self.ego.get_transform().location
        self._on_road = self.map.get_waypoint(location, project_to_road=False,
                                              lane_type=self.carla.LaneType.Driving) is not None

    @property
    def end_reason(self) -> str | None:
        """Why the episode is over ("collision", "offroad", "time_limit"), or None while it runs."""
        if self._collisions:
            return "collision"
        if not self._on_road:
            return "offroad"
        if self.tick >= self.max_ticks:
            return "time_limit"
        return None

    # -- read-outs -------------------------------------------------------------------------------------
    def header(self, frame_id: str = "world") -> Header:
        return Header(episode=self.episode, tick=self.tick, stamp_ns=stamp_ns(self.tick), frame_id=frame_id)

    def _lane_frame(self) -> tuple[int, int, float, float]:
        """The ego's (lane index, lanes count, lateral offset [m], lane width [m])."""
        pose, driving = self._ego_pose, self.carla.LaneType.Driving
        index, count = lane_position(pose.wp, driving)
        c = pose.wp.transform
        offset = lateral_offset(pose.x, pose.y, c.location.x, c.location.y, c.rotation.yaw)
        return index, count, offset, float(pose.wp.lane_width)

    def ego_state(self, header: Header) -> EgoState:
        """The ego in the road frame (sim.carla_frames): x driven along the road, y across the lanes."""
        pose = self._ego_pose
        index, count, offset, width = self._lane_frame()
        lane_yaw = pose.wp.transform.rotation.yaw
        vx, vy = to_lane_frame(pose.vx, pose.vy, lane_yaw)
        return EgoState(
            header=header, x=self._odometer, y=road_y(index, width, offset),
            heading=yaw_to_heading(pose.yaw_deg, lane_yaw), speed=math.hypot(pose.vx, pose.vy), vx=vx, vy=vy,
            lane_index=index, lateral_offset=offset, lanes_count=count, lane_width=width,
            length=pose.length, width=pose.width, acceleration=self._applied[0], steering=self._applied[1],
            crashed=bool(self._collisions), on_road=self._on_road, reward=0.0,
        )

    def objects_gt(self, header: Header) -> ObjectArray:
        """Every traffic vehicle, in spawn order: offsets from the ego along its lane (x) and across the lanes
        (y), velocities relative to the ego in the same axes, and road-frame world values (ego's + offset)."""
        ego = self._ego_pose
        index, _, offset, width = self._lane_frame()
        ego_y = road_y(index, width, offset)
        lane_yaw = ego.wp.transform.rotation.yaw
        ego_v = to_lane_frame(ego.vx, ego.vy, lane_yaw)
        objects = []
        for vehicle in self._vehicles[1:]:
            pose = self._read(vehicle)
            dx, dy = to_lane_frame(pose.x - ego.x, pose.y - ego.y, lane_yaw)
            lane = -1
            if pose.wp is not None and _same_direction(pose.wp.transform.rotation.yaw, lane_yaw):
                # across the lanes by lane structure, which stays right on a curve where rotating does not
                lane, _ = lane_position(pose.wp, self.carla.LaneType.Driving)
                c = pose.wp.transform
                dy = road_y(lane, width, lateral_offset(pose.x, pose.y, c.location.x, c.location.y,
                                                        c.rotation.yaw)) - ego_y
            vx, vy = to_lane_frame(pose.vx, pose.vy, lane_yaw)
            objects.append(Object(
                id=self._ids.get(vehicle.id, -1), x=dx, y=dy, vx=vx - ego_v[0], vy=vy - ego_v[1],
                heading=yaw_to_heading(pose.yaw_deg, lane_yaw), length=pose.length, width=pose.width,
                world_x=self._odometer + dx, world_y=ego_y + dy, speed=math.hypot(pose.vx, pose.vy),
                lane_index=lane, in_view=self.view.fully_in_view(dx, dy, pose.length, pose.width),
            ))
        return ObjectArray(header=header, objects=objects)

    def camera(self, header: Header) -> Image:
        if not self.params.render or self._image is None:
            raise RuntimeError("CarlaSim.camera with render=False or before reset: set CarlaParams.render")
        return Image.from_array(self._image, header)

    # -- shutdown --------------------------------------------------------------------------------------
    def close(self) -> None:
        """Destroy every actor spawned, restore the world's settings and the Traffic Manager's mode. Idempotent;
        each step runs even if an earlier one failed (failures are logged, not raised)."""
        if self._closed:
            return
        self._closed = True
        errors = self._destroy_actors()
        if self.world is not None and self._original_settings is not None:
            try:
                self.world.apply_settings(self._original_settings)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"restoring the world's settings: {exc}")
        if self._tm_sync:
            try:
                self.tm.set_synchronous_mode(False)
                self._tm_sync = False
            except Exception as exc:  # noqa: BLE001
                errors.append(f"turning the Traffic Manager's synchronous mode off: {exc}")
        if errors:
            log.error("CARLA clean-up incomplete: %s", "; ".join(errors))


def _same_direction(yaw_a_deg: float, yaw_b_deg: float) -> bool:
    return math.cos(math.radians(yaw_a_deg - yaw_b_deg)) > 0

