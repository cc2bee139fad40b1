"""The CARLA backend: a CARLA server's world, stepped in synchronous mode, read out as drivestack messages.

`CarlaSim` has the interface of `sim.highway.HighwaySim` (reset, step, end_reason, header, ego_state,
objects_gt, camera, close), so `nodes.sim.carla_node` publishes the same topics and types as the highway-env node.
It needs the `carla` client package (`pip install "drivestack[carla]"`), imported only when connecting, and a
running CARLA 0.9.16 server. What it does on the server:

- connects to host:port, failing within `timeout_s` with a message that says how to start a server;
- loads `town` (Town04, a highway loop, by default) unless it is already loaded;
- sets synchronous mode with fixed_delta_seconds = 1 / SIM_RATE_HZ and the Traffic Manager in synchronous
  mode, seeded per episode (episode i: base seed + i, as with highway-env). A server found in synchronous mode
  (left so by a client that was killed before it could restore it) is warned about and put back in asynchronous
  mode first, as carla-ros-bridge does, so that frozen state is never what `close()` restores;
- per episode: spawns the ego on a lane of a road with >= `min_lanes` lanes one way, a collision sensor and
  a top-down camera on it, and `vehicles_count` traffic vehicles on the Traffic Manager's autopilot, each with
  an explicit desired speed (`set_desired_speed`, not a share of a speed limit that may be unset right after
  spawning) and the Traffic Manager's own lane changes on or off (`traffic_lane_changes`); every vehicle is
  given `start_speed`, and the episode's tick 0 is read once that velocity is in effect (CARLA applies a target
  velocity two frames after the call);
- collisions come from the collision sensor's thread, each kept with its server frame: those of frames before
  the episode's tick 0 (the spawn ticks) are ignored. A camera frame that does not arrive within
  `camera_timeout_s` is warned about and the last one is published again (counted in `lost_camera_frames`);
- `close()` (also on Ctrl-C or an exception) destroys every actor it spawned and restores the world's
  settings (asynchronous) and turns the Traffic Manager's synchronous mode off.

Reaching the server and the params: `sim.carla_client`. Unit conversions: `sim.carla_frames`. The road frame the
messages are in (x along the road, y across the lanes, on curves and through junctions): `sim.carla_road`. Lanes
and spawn slots: `sim.carla_world`.
"""

from __future__ import annotations

import logging
import math
import queue
from typing import Any

import msgspec
import numpy as np

from msgs import ControlCommand, EgoState, Header, Image, Object, ObjectArray
from sim.carla_client import CarlaParams, connect, import_carla
from sim.carla_frames import (
    bgra_to_rgb,
    camera_mount,
    command_to_control,
    forward_right,
    max_steer_deg_of,
    to_lane_frame,
    yaw_to_heading,
)
from sim.carla_road import RoadFrame, Station
from sim.carla_world import highway_starts, pick, traffic_slots
from sim.world import SIM_RATE_HZ, stamp_ns  # the clock every backend shares

log = logging.getLogger("drivestack.carla")

SPAWN_LIFT_M = 0.3  # [m] spawn this far above the road so the car drops onto it instead of into it
VELOCITY_DELAY_TICKS = 2  # CARLA applies set_target_velocity this many frames after the call (its API reference)
FRAME_MARGIN_M = 100.0  # [m] the road frame reaches this much beyond where traffic spawns, ahead and behind
MPS_TO_KMH = 3.6


class _Pose(msgspec.Struct):
    """One vehicle read from the server this tick (CARLA world plan values)."""

    x: float
    y: float
    z: float
    yaw_deg: float
    vx: float
    vy: float
    length: float
    width: float
    wp: Any  # lane-centre waypoint of the nearest driving lane


class CarlaSim:
    """A CARLA world in synchronous mode, one server tick per `step` (1 / SIM_RATE_HZ of simulated time), read out
    as drivestack messages (a `sim.world.World`)."""

    episode: int
    tick: int

    def __init__(self, params: CarlaParams | None = None, *, carla: Any = None, client: Any = None) -> None:
        """params: the server and world; carla: the carla module (imported when None); client: an attached
        carla.Client (connected from params when None). Tests pass both to run against a stand-in server."""
        self.params = (params or CarlaParams()).check()
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
        self._collisions: list[tuple[int, int]] = []  # (server frame, other actor id), from the sensor's thread
        self._first_frame = 0  # the server frame of the episode's tick 0
        self._on_road = True  # the ego was in a driving lane at the last read (no episode yet: end_reason is None)
        self._road: RoadFrame | None = None
        self.lost_camera_frames = 0
        self.traffic_speeds: dict[int, float] = {}  # ground-truth id -> desired speed [m/s] (the Traffic Manager's)
        self._odometer = 0.0
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
        self._original_settings = self._unfreeze(self.world.get_settings())
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

    def _unfreeze(self, found: Any) -> Any:
        """The server's settings as this run should leave them: never synchronous. A server found in synchronous
        mode was left so by a client killed before its clean-up (nobody ticks it: it is frozen for every client);
        it is put back in asynchronous mode at once, with a warning."""
        if found.synchronous_mode:
            log.warning("the CARLA server is in synchronous mode with no client ticking it (a run killed before its "
                        "clean-up?): putting it back in asynchronous mode; this run sets synchronous mode itself")
            found.synchronous_mode = False
            self.world.apply_settings(found)
        return found

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
        collision.listen(lambda event: self._collisions.append((int(event.frame), int(event.other_actor.id))))
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
        self._collisions.clear()
        self._attach_sensors()
        self.traffic_speeds = {}
        slots = traffic_slots(self.map, start, driving, p.traffic_spacing_m, p.traffic_reach_m)
        for slot in pick(rng, slots, p.vehicles_count):
            bp = self._traffic_bps[int(rng.integers(len(self._traffic_bps)))]
            speed = p.traffic_speed * (1.0 + float(rng.uniform(-1, 1)) * p.traffic_speed_spread / 100.0)
            vehicle = self._spawn(bp, slot)
            if vehicle is None:  # the slot was taken (by another client's actor): fewer vehicles, not an error
                continue
            self._ids[vehicle.id] = len(self._ids)
            vehicle.set_autopilot(True, self.tm.get_port())
            self.tm.set_desired_speed(vehicle, speed * MPS_TO_KMH)  # [km/h]
            self.tm.auto_lane_change(vehicle, p.traffic_lane_changes)
            self.traffic_speeds[self._ids[vehicle.id]] = speed
        log.info("episode %d: %d traffic vehicles, desired speeds %s m/s", episode, len(self.traffic_speeds),
                 ", ".join(f"{v:.1f}" for v in self.traffic_speeds.values()))
        self._tick()  # the actors take their place in the world
        for vehicle in self._vehicles:
            (fx, fy), _ = forward_right(vehicle.get_transform().rotation.yaw)
            vehicle.set_target_velocity(self.carla.Vector3D(x=fx * p.start_speed, y=fy * p.start_speed, z=0.0))
        for _ in range(VELOCITY_DELAY_TICKS):  # tick 0 is read once the start velocity is in effect
            frame = self._tick()
        self._first_frame = frame
        self.episode, self.tick = episode, 0
        self._applied = (0.0, 0.0)
        self._road = RoadFrame(self.map, driving, start, reach_m=p.traffic_reach_m + FRAME_MARGIN_M)
        self._observe_ego()
        self._odometer = 0.0
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
        self._observe_ego()

    def _tick(self) -> int:
        """One server frame; with the camera on, its image (or, if none comes in time, a warning and the last one).
        Returns the server frame."""
        frame = self.world.tick()
        if not self.params.render:
            return frame
        while True:
            try:
                image = self._frames.get(timeout=self.params.camera_timeout_s)
            except queue.Empty:
                self.lost_camera_frames += 1
                log.warning("no camera frame for server frame %d within %g s: publishing the last one again (%d lost "
                            "so far)", frame, self.params.camera_timeout_s, self.lost_camera_frames)
                if self._image is None:
                    self._image = np.zeros((self.view.height, self.view.width, 3), dtype=np.uint8)
                return frame
            if image.frame >= frame:
                self._image = bgra_to_rgb(image.raw_data, image.width, image.height)
                return frame

    def _read(self, actor: Any) -> _Pose:
        t = actor.get_transform()
        v = actor.get_velocity()
        extent = actor.bounding_box.extent
        wp = self.map.get_waypoint(t.location, project_to_road=True, lane_type=self.carla.LaneType.Driving)
        return _Pose(x=t.location.x, y=t.location.y, z=t.location.z, yaw_deg=t.rotation.yaw, vx=v.x, vy=v.y,
                     length=2 * extent.x, width=2 * extent.y, wp=wp)

    def _observe_ego(self) -> None:
        """Read the ego after a tick and move the road frame (and the odometer) with it. It is on the road while
        its centre is inside a driving lane (CARLA: a waypoint found without projecting onto the road) or inside the
        carriageway's lanes (a through lane of type NONE in a junction, see sim.carla_world.beside)."""
        assert self._road is not None
        pose = self._ego_pose = self._read(self.ego)
        self._odometer += self._road.update(pose.x, pose.y, pose.z)
        self._ego_station = self._station(pose)
        location = self.ego.get_transform().location
        in_lane = self.map.get_waypoint(location, project_to_road=False, lane_type=self.carla.LaneType.Driving)
        self._on_road = in_lane is not None or self._road.lane_of(self._ego_station.across)[2]

    def _station(self, pose: _Pose) -> Station:
        """The ego's place on the road frame (after `update` it sits at the frame's anchor, so it is always found;
        the lane's own waypoint is the fallback should the map give a chain of one point)."""
        assert self._road is not None
        found = self._road.station(pose.x, pose.y, pose.z)
        if found is not None:
            return found
        c = self._road.anchor.transform
        return Station(s=0.0, across=to_lane_frame(pose.x - c.location.x, pose.y - c.location.y, c.rotation.yaw)[1],
                       yaw_deg=c.rotation.yaw)

    def _crashed(self) -> bool:
        """A collision event of this episode (events of the spawn ticks, before tick 0's frame, are not)."""
        return any(frame >= self._first_frame for frame, _ in list(self._collisions))

    @property
    def end_reason(self) -> str | None:
        """Why the episode is over ("collision", "offroad", "time_limit"), or None while it runs."""
        if self._crashed():
            return "collision"
        if not self._on_road:
            return "offroad"
        if self.tick >= self.max_ticks:
            return "time_limit"
        return None

    # -- read-outs -------------------------------------------------------------------------------------
    def header(self, frame_id: str = "world") -> Header:
        return Header(episode=self.episode, tick=self.tick, stamp_ns=stamp_ns(self.tick), frame_id=frame_id)

    def _ego_lane(self) -> tuple[int, float, float]:
        """The ego's (lane index, lateral offset [m], road-frame y [m])."""
        assert self._road is not None
        index, offset, _ = self._road.lane_of(self._ego_station.across)
        return index, offset, self._road.road_y(self._ego_station.across)

    def ego_state(self, header: Header) -> EgoState:
        """The ego in the road frame (sim.carla_road): x driven along the road, y across the lanes."""
        assert self._road is not None
        pose, here = self._ego_pose, self._ego_station
        index, offset, y = self._ego_lane()
        vx, vy = to_lane_frame(pose.vx, pose.vy, here.yaw_deg)
        return EgoState(
            header=header, x=self._odometer, y=y, heading=yaw_to_heading(pose.yaw_deg, here.yaw_deg),
            speed=math.hypot(pose.vx, pose.vy), vx=vx, vy=vy, lane_index=index, lateral_offset=offset,
            lanes_count=len(self._road.lanes), lane_width=self._road.lane_width, length=pose.length,
            width=pose.width, acceleration=self._applied[0], steering=self._applied[1], crashed=self._crashed(),
            on_road=self._on_road, reward=0.0,
        )

    def objects_gt(self, header: Header, in_view_only: bool = False) -> ObjectArray:
        """The traffic vehicles on the ego's carriageway within the road frame's reach, in spawn order: x the distance
        along the road from the ego (on the ego's line), y across the lanes from the ego, velocities and headings
        taken along the road at each vehicle's own place and made relative to the ego's. Vehicles on the other
        carriageway (a lane running the other way), on another level (a bridge) and beyond the frame's reach are left
        out; with `in_view_only`, only those wholly in the camera's view."""
        assert self._road is not None
        road, ego, here = self._road, self._ego_pose, self._ego_station
        _, _, ego_y = self._ego_lane()
        ego_v = to_lane_frame(ego.vx, ego.vy, here.yaw_deg)
        objects = []
        for vehicle in self._vehicles[1:]:
            pose = self._read(vehicle)
            there = road.station(pose.x, pose.y, pose.z)
            lane_yaw = pose.wp.transform.rotation.yaw if pose.wp is not None else pose.yaw_deg
            if there is None or not road.runs_along(there, lane_yaw):
                continue
            dx = road.distance_along(here, there, here.across)
            lane, _, inside = road.lane_of(there.across)
            dy = road.road_y(there.across) - ego_y
            vx, vy = to_lane_frame(pose.vx, pose.vy, there.yaw_deg)
            in_view = self.view.fully_in_view(dx, dy, pose.length, pose.width)
            if in_view_only and not in_view:
                continue
            objects.append(Object(
                id=self._ids.get(vehicle.id, -1), x=dx, y=dy, vx=vx - ego_v[0], vy=vy - ego_v[1],
                heading=yaw_to_heading(pose.yaw_deg, there.yaw_deg), length=pose.length, width=pose.width,
                world_x=self._odometer + dx, world_y=ego_y + dy, speed=math.hypot(pose.vx, pose.vy),
                lane_index=lane if inside else -1, in_view=in_view,
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

