"""A stand-in for a CARLA server, for testing the bridge's logic where no CARLA server runs.

It is NOT CARLA: it models only what `sim.carla_bridge` calls on the server side (client, world, settings,
map, waypoints, blueprints, actors, sensors, Traffic Manager), with the same method names and argument
conventions as the carla 0.9.16 Python API. Its map is either a toy one (one straight road of length
ROAD_LENGTH_M in the direction `road_yaw_deg`, with `lanes` driving lanes one way (ids -1..-lanes, right of the
reference line), a shoulder beyond them (id -(lanes + 1)) and `lanes_back` driving lanes the other way (ids +1..))
or a real `carla.Map` built from an OpenDRIVE file (`opendrive=`, e.g. Town04 from tests/data: its junctions,
curves and the other carriageway are the real map's; only the spawn points, which a server takes from its 3D
map, are the stand-in's: lane centres every SPAWN_SPACING_M outside junctions).

What the server does that matters to the bridge, modelled here:
- vehicles move by a point-mass model: the ego by throttle/brake/steer, autopilot vehicles along their lane
  (waypoint by waypoint, through junctions and around curves), speeding up or slowing down towards their desired
  speed (`set_desired_speed`, km/h) at AUTOPILOT_ACCEL_MPS2, following a slower leader and, with the Traffic
  Manager's lane changes on (the default, as in CARLA), changing lanes to pass it when the next lane is free;
- `set_target_velocity` takes effect VELOCITY_DELAY_FRAMES frames after the call (CARLA's API reference);
- a collision sensor fires when two vehicles' footprints overlap, with the event's frame; `event_delay_ticks`
  delivers events that many ticks late (they stream on the sensor thread, not with the tick);
- a camera frame can be lost (`drop_camera_frames`).
It keeps books on what a client spawned, destroyed and set, so tests can check that the bridge leaves the server
as it found it.

Value types (Location, Rotation, Transform, Vector3D, VehicleControl, LaneType) come from the namespace passed
in: `TYPES` here, or the real `carla` module, so the same server also runs with carla's own types.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

ROAD_LENGTH_M = 2000.0  # [m]
FULL_THROTTLE_MPS2 = 4.0  # [m/s^2] the stand-in's acceleration at throttle 1 (the bridge's default figure)
FULL_BRAKE_MPS2 = 8.0  # [m/s^2]
WHEELBASE_M = 2.9  # [m]
SPEED_LIMIT_MPS = 25.0  # [m/s] autopilot desired speed until the Traffic Manager is told another
AUTOPILOT_ACCEL_MPS2 = 3.0  # [m/s^2] how fast an autopilot vehicle speeds up to its desired speed
AUTOPILOT_BRAKE_MPS2 = 8.0  # [m/s^2] and slows down (to it, or to a slower leader's speed)
VELOCITY_DELAY_FRAMES = 2  # set_target_velocity takes effect this many frames after the call
LANE_CHANGE_MPS = 1.2  # [m/s] lateral speed of an autopilot lane change
FOLLOW_GAP_M = 30.0  # [m] an autopilot vehicle reacts to a slower leader this close (centre to centre)
CHANGE_CLEAR_M = 12.0  # [m] and changes lanes to pass it if the next lane is free this far ahead and behind
SPAWN_SPACING_M = 50.0  # [m] between the stand-in's spawn points on a real map


@dataclass
class Location:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0


@dataclass
class Rotation:
    pitch: float = 0.0
    yaw: float = 0.0
    roll: float = 0.0


@dataclass
class Transform:
    location: Location = field(default_factory=Location)
    rotation: Rotation = field(default_factory=Rotation)


@dataclass
class Vector3D:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0


@dataclass
class VehicleControl:
    throttle: float = 0.0
    steer: float = 0.0
    brake: float = 0.0
    hand_brake: bool = False
    reverse: bool = False


TYPES = SimpleNamespace(Location=Location, Rotation=Rotation, Transform=Transform, Vector3D=Vector3D,
                        VehicleControl=VehicleControl,
                        LaneType=SimpleNamespace(Driving="Driving", Shoulder="Shoulder", NONE="NONE"))


@dataclass
class Settings:
    synchronous_mode: bool = False
    fixed_delta_seconds: float | None = None
    no_rendering_mode: bool = False


class Waypoint:
    def __init__(self, road: Road, lane_id: int, s: float) -> None:
        self.road, self.lane_id, self.s = road, lane_id, s
        self.lane_type = road.lane_type(lane_id)
        self.lane_width = road.lane_width
        self.is_junction = False
        self.road_id = 1
        x, y, yaw = road.pose(lane_id, s)
        t = road.types
        self.transform = t.Transform(t.Location(x=x, y=y, z=0.0), t.Rotation(pitch=0.0, yaw=yaw, roll=0.0))

    def _lane(self, lane_id: int) -> Waypoint | None:
        return Waypoint(self.road, lane_id, self.s) if self.road.lane_type(lane_id) is not None else None

    def get_left_lane(self) -> Waypoint | None:
        # towards the reference line; from +-1 across it, onto the lane running the other way (as CARLA does)
        if abs(self.lane_id) == 1:
            return self._lane(-self.lane_id)
        return self._lane(self.lane_id - 1 if self.lane_id > 0 else self.lane_id + 1)

    def get_right_lane(self) -> Waypoint | None:
        return self._lane(self.lane_id + (1 if self.lane_id > 0 else -1))

    def next(self, distance: float) -> list[Waypoint]:
        s = self.s + (distance if self.lane_id < 0 else -distance)
        return [Waypoint(self.road, self.lane_id, s)] if 0.0 <= s <= ROAD_LENGTH_M else []

    def previous(self, distance: float) -> list[Waypoint]:
        return self.next(-distance)


class Road:
    """The straight road: s along it from its origin, t across it, + to the right of the reference line."""

    def __init__(self, types: Any, lanes: int, lanes_back: int, lane_width: float, yaw_deg: float,
                 origin: tuple[float, float]) -> None:
        self.types, self.lanes, self.lanes_back, self.lane_width = types, lanes, lanes_back, lane_width
        self.yaw_deg, self.origin = yaw_deg, origin
        yaw = math.radians(yaw_deg)
        self.f, self.r = (math.cos(yaw), math.sin(yaw)), (-math.sin(yaw), math.cos(yaw))

    def lane_type(self, lane_id: int) -> Any:
        kinds = self.types.LaneType
        if -self.lanes <= lane_id <= -1 or 1 <= lane_id <= self.lanes_back:
            return kinds.Driving
        return kinds.Shoulder if lane_id == -(self.lanes + 1) else None

    def centre_t(self, lane_id: int) -> float:
        return (abs(lane_id) - 0.5) * self.lane_width * (1 if lane_id < 0 else -1)

    def pose(self, lane_id: int, s: float) -> tuple[float, float, float]:
        t = self.centre_t(lane_id)
        x, y = self.to_world(s, t)
        return x, y, self.yaw_deg if lane_id < 0 else self.yaw_deg + 180.0

    def to_world(self, s: float, t: float) -> tuple[float, float]:
        return self.origin[0] + s * self.f[0] + t * self.r[0], self.origin[1] + s * self.f[1] + t * self.r[1]

    def to_road(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.origin[0], y - self.origin[1]
        return dx * self.f[0] + dy * self.f[1], dx * self.r[0] + dy * self.r[1]


class Map:
    def __init__(self, name: str, road: Road) -> None:
        self.name, self.road = name, road

    def get_spawn_points(self) -> list[Any]:
        t, road = self.road.types, self.road
        points = []
        for lane_id in [*range(-road.lanes, 0), *range(1, road.lanes_back + 1)]:
            for s in range(100, int(ROAD_LENGTH_M) - 100, 150):
                x, y, yaw = road.pose(lane_id, float(s))
                points.append(t.Transform(t.Location(x=x, y=y, z=0.5), t.Rotation(yaw=yaw)))
        return points

    def get_waypoint(self, location: Any, project_to_road: bool = True, lane_type: Any = None) -> Waypoint | None:
        road = self.road
        lane_type = road.types.LaneType.Driving if lane_type is None else lane_type
        s, t = road.to_road(location.x, location.y)
        ids = [i for i in range(-road.lanes - 1, road.lanes_back + 1) if i and road.lane_type(i) == lane_type]
        if not project_to_road:
            inside = [i for i in ids if abs(t - road.centre_t(i)) <= road.lane_width / 2 and 0 <= s <= ROAD_LENGTH_M]
            return Waypoint(road, inside[0], s) if inside else None
        best = min(ids, key=lambda i: abs(t - road.centre_t(i)))
        return Waypoint(road, best, min(max(s, 0.0), ROAD_LENGTH_M))


class RealMap:
    """A real `carla.Map` (built from OpenDRIVE text, no server) with the stand-in's spawn points: lane centres of
    driving lanes every SPAWN_SPACING_M, outside junctions, in the map's own order."""

    def __init__(self, carla: Any, world_map: Any) -> None:
        self.carla, self.map, self.name = carla, world_map, f"Carla/Maps/{world_map.name}"
        self._spawns: list[Any] | None = None

    def get_spawn_points(self) -> list[Any]:
        if self._spawns is None:
            t = self.carla
            self._spawns = []
            for wp in self.map.generate_waypoints(SPAWN_SPACING_M):
                if wp.lane_type == t.LaneType.Driving and not wp.is_junction:
                    c, r = wp.transform.location, wp.transform.rotation
                    self._spawns.append(t.Transform(t.Location(x=c.x, y=c.y, z=c.z + 0.5), t.Rotation(yaw=r.yaw)))
        return list(self._spawns)

    def get_waypoint(self, location: Any, project_to_road: bool = True, lane_type: Any = None) -> Any:
        lane_type = self.carla.LaneType.Driving if lane_type is None else lane_type
        return self.map.get_waypoint(location, project_to_road=project_to_road, lane_type=lane_type)


@dataclass
class Blueprint:
    id: str
    wheels: int = 4
    extent: tuple[float, float, float] = (2.4, 1.0, 0.8)
    attributes: dict[str, str] = field(default_factory=dict)

    def has_attribute(self, key: str) -> bool:
        return key == "number_of_wheels" and self.id.startswith("vehicle.") or key in self.attributes

    def get_attribute(self, key: str) -> Any:
        value = str(self.wheels) if key == "number_of_wheels" else self.attributes[key]
        return SimpleNamespace(as_int=lambda: int(value), as_str=lambda: value)

    def set_attribute(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"set_attribute({key!r}): carla takes strings, got {type(value).__name__}")
        self.attributes[key] = value


BLUEPRINTS = [Blueprint("vehicle.tesla.model3"), Blueprint("vehicle.audi.a2", extent=(1.9, 0.9, 0.8)),
              Blueprint("vehicle.lincoln.mkz_2020", extent=(2.45, 1.05, 0.75)),
              Blueprint("vehicle.yamaha.yzf", wheels=2, extent=(1.1, 0.4, 0.6)),
              Blueprint("sensor.other.collision"), Blueprint("sensor.camera.rgb")]


class BlueprintLibrary:
    def find(self, blueprint_id: str) -> Blueprint:
        for bp in BLUEPRINTS:
            if bp.id == blueprint_id:
                return replace(bp, attributes={})
        raise IndexError(f"blueprint {blueprint_id!r} not found")

    def filter(self, pattern: str) -> list[Blueprint]:
        return [replace(bp, attributes={}) for bp in BLUEPRINTS if fnmatch.fnmatch(bp.id, pattern)]


class Actor:
    def __init__(self, world: World, actor_id: int, bp: Blueprint, transform: Any, parent: Actor | None) -> None:
        self.world, self.id, self.type_id, self.parent = world, actor_id, bp.id, parent
        t = world.types
        self.transform = t.Transform(t.Location(x=transform.location.x, y=transform.location.y,
                                                z=transform.location.z), t.Rotation(yaw=transform.rotation.yaw))
        self.bounding_box = SimpleNamespace(extent=t.Vector3D(x=bp.extent[0], y=bp.extent[1], z=bp.extent[2]))
        self.attributes = dict(bp.attributes)
        self.speed = 0.0  # [m/s] along the heading
        self.cruise_mps = SPEED_LIMIT_MPS  # [m/s] on autopilot
        self.control = t.VehicleControl()
        self.autopilot_port: int | None = None
        self.auto_lane_change = True  # CARLA's Traffic Manager default
        self.lane_wp: Any = None  # autopilot: the lane-centre waypoint it follows
        self.lane_offset = 0.0  # [m] autopilot: right of that lane's centre (non-zero while changing lanes)
        self.lane_changes = 0
        self.pending_velocity: tuple[int, float] | None = None  # (frame it takes effect, speed [m/s])
        self.callback: Any = None
        self.is_alive = True

    def get_transform(self) -> Any:
        return self.transform

    def set_transform(self, transform: Any) -> None:
        self.transform = transform
        self.lane_wp = None  # an autopilot vehicle carries on from its new place

    def get_velocity(self) -> Any:
        yaw = math.radians(self.transform.rotation.yaw)
        return self.world.types.Vector3D(x=self.speed * math.cos(yaw), y=self.speed * math.sin(yaw), z=0.0)

    def set_target_velocity(self, velocity: Any) -> None:
        self.pending_velocity = (self.world.frame + VELOCITY_DELAY_FRAMES, math.hypot(velocity.x, velocity.y))

    def apply_control(self, control: Any) -> None:
        self.control = control

    def set_autopilot(self, enabled: bool, tm_port: int) -> None:
        self.autopilot_port = tm_port if enabled else None

    def get_physics_control(self) -> Any:
        return SimpleNamespace(wheels=[SimpleNamespace(max_steer_angle=a) for a in (70.0, 70.0, 0.0, 0.0)])

    def listen(self, callback: Any) -> None:
        self.callback = callback

    def stop(self) -> None:
        self.callback = None

    def destroy(self) -> bool:
        if self.callback is not None:
            self.world.destroyed_listening.append(self.id)
        self.is_alive = False
        self.world.actors.pop(self.id, None)
        self.world.destroyed.append(self.id)
        return True


class World:
    def __init__(self, server: StandInServer, town: str) -> None:
        self.server, self.types = server, server.types
        self.map = server.make_map(town)
        self.settings = Settings()
        self.actors: dict[int, Actor] = {}
        self.spawned: list[int] = []  # by a client, in order
        self.destroyed: list[int] = []
        self.destroyed_listening: list[int] = []  # sensors destroyed without stop(): a leak in CARLA
        self.frame = 0
        self.fail_tick_at: int | None = None  # tick() raises when the frame would reach this
        self.fail_spawn_after: int | None = None  # spawning raises once this many actors were spawned
        self.spawn_error: BaseException = RuntimeError("stand-in: spawn failed")
        self.event_delay_ticks = 0  # collision events reach the client this many ticks late
        self.drop_camera_frames: set[int] = set()  # frames whose camera image never arrives
        self._late_events: list[tuple[int, Any, Any]] = []  # (tick that delivers it, sensor callback, event)

    def get_settings(self) -> Settings:
        return replace(self.settings)

    def apply_settings(self, settings: Settings) -> int:
        self.settings = replace(settings)
        return self.frame

    def get_map(self) -> Map:
        return self.map

    def get_blueprint_library(self) -> BlueprintLibrary:
        return BlueprintLibrary()

    def _add(self, bp: Blueprint, transform: Any, parent: Actor | None) -> Actor:
        if self.fail_spawn_after is not None and len(self.spawned) >= self.fail_spawn_after:
            raise self.spawn_error
        actor = Actor(self, next(self.server.ids), bp, transform, parent)
        self.actors[actor.id] = actor
        self.spawned.append(actor.id)
        return actor

    def try_spawn_actor(self, bp: Blueprint, transform: Any) -> Actor | None:
        extent = SimpleNamespace(x=bp.extent[0], y=bp.extent[1])
        probe = SimpleNamespace(transform=transform, bounding_box=SimpleNamespace(extent=extent))
        if any(_overlap(probe, other) for other in self.vehicles()):
            return None
        return self._add(bp, transform, None)

    def spawn_actor(self, bp: Blueprint, transform: Any, attach_to: Actor | None = None) -> Actor:
        actor = self.try_spawn_actor(bp, transform) if attach_to is None else self._add(bp, transform, attach_to)
        if actor is None:
            raise RuntimeError("Spawn failed because of collision at spawn position")
        return actor

    def vehicles(self) -> list[Actor]:
        return [a for a in self.actors.values() if a.type_id.startswith("vehicle.")]

    def tick(self, seconds: float = 10.0) -> int:
        if not self.settings.synchronous_mode:
            raise RuntimeError("stand-in: tick() outside synchronous mode")
        if self.fail_tick_at is not None and self.frame + 1 >= self.fail_tick_at:
            raise RuntimeError("stand-in: the server stopped answering")
        self.frame += 1
        dt = self.settings.fixed_delta_seconds or 0.05
        vehicles = self.vehicles()
        for vehicle in vehicles:
            if vehicle.pending_velocity is not None and self.frame >= vehicle.pending_velocity[0]:
                vehicle.speed, vehicle.pending_velocity = vehicle.pending_velocity[1], None
        for vehicle in vehicles:
            if vehicle.autopilot_port is not None:
                _drive(self, vehicle, vehicles, dt)
            else:
                _move(vehicle, dt)
                if self.server.opendrive is not None:  # on the road's surface (Town04's loop climbs 11 m)
                    ground = self.map.get_waypoint(vehicle.transform.location, project_to_road=True,
                                                   lane_type=self.types.LaneType.Any)
                    if ground is not None:
                        vehicle.transform.location.z = ground.transform.location.z
        due, self._late_events = self._late_events, []
        for _, callback, event in due:
            callback(event)
        for a, b in itertools.combinations(vehicles, 2):
            if _overlap(a, b):
                self._sensor_event(a, b)
                self._sensor_event(b, a)
        for sensor in list(self.actors.values()):
            if sensor.type_id == "sensor.camera.rgb" and sensor.callback is not None \
                    and self.frame not in self.drop_camera_frames:
                sensor.callback(self._image(sensor))
        return self.frame

    def _sensor_event(self, vehicle: Actor, other: Actor, frame: int | None = None) -> None:
        """A collision event of `vehicle` with `other` in `frame` (this one by default), to its collision sensors."""
        event = SimpleNamespace(frame=self.frame if frame is None else frame, actor=vehicle, other_actor=other)
        for sensor in list(self.actors.values()):
            if sensor.type_id == "sensor.other.collision" and sensor.parent is vehicle and sensor.callback:
                if self.event_delay_ticks:
                    self._late_events.append((self.frame + self.event_delay_ticks, sensor.callback, event))
                else:
                    sensor.callback(event)

    def _image(self, camera: Actor) -> Any:
        w, h = int(camera.attributes["image_size_x"]), int(camera.attributes["image_size_y"])
        # B, G, R, A = frame % 256, 1, 2, 255 everywhere: enough to check the channel order and the frame
        pixel = bytes([self.frame % 256, 1, 2, 255])
        return SimpleNamespace(frame=self.frame, width=w, height=h, raw_data=pixel * (w * h))


def _move(vehicle: Actor, dt: float) -> None:
    """The ego: throttle, brake and steering on a point mass with a bicycle's turn rate."""
    t = vehicle.transform
    c = vehicle.control
    accel = c.throttle * FULL_THROTTLE_MPS2 - c.brake * FULL_BRAKE_MPS2
    vehicle.speed = max(vehicle.speed + accel * dt, 0.0)
    angle = math.radians(c.steer * 70.0)
    t.rotation.yaw += math.degrees(vehicle.speed / WHEELBASE_M * math.tan(angle) * dt)
    yaw = math.radians(t.rotation.yaw)
    t.location.x += vehicle.speed * math.cos(yaw) * dt
    t.location.y += vehicle.speed * math.sin(yaw) * dt


def _plan_offset(frm: Any, to: Any) -> tuple[float, float]:
    """(along, across) [m] of transform `to`'s location in transform `frm`'s axes (CARLA plan: right is +y)."""
    yaw = math.radians(frm.rotation.yaw)
    dx, dy = to.location.x - frm.location.x, to.location.y - frm.location.y
    return dx * math.cos(yaw) + dy * math.sin(yaw), -dx * math.sin(yaw) + dy * math.cos(yaw)


def _same_lane(a: Any, b: Any) -> bool:
    return a is not None and b is not None and (a.road_id, a.lane_id) == (b.road_id, b.lane_id)


def _lane_beside(wp: Any, side: int, driving: Any) -> Any:
    lane = wp.get_left_lane() if side < 0 else wp.get_right_lane()
    return lane if lane is not None and lane.lane_type == driving and lane.lane_id * wp.lane_id > 0 else None


def _drive(world: World, vehicle: Actor, vehicles: list[Actor], dt: float) -> None:
    """An autopilot vehicle: towards its desired speed, behind a slower leader or past it, along its lane."""
    driving = world.types.LaneType.Driving
    if vehicle.lane_wp is None:  # placed (or just spawned): carry on from where it is
        vehicle.lane_wp = world.map.get_waypoint(vehicle.transform.location, project_to_road=True, lane_type=driving)
        c = vehicle.lane_wp.transform
        vehicle.lane_offset = _plan_offset(c, vehicle.transform)[1]
    wp = vehicle.lane_wp
    leader = None
    for other in vehicles:
        along, across = _plan_offset(vehicle.transform, other.transform)
        if other is not vehicle and 0 < along < FOLLOW_GAP_M and abs(across) < wp.lane_width / 2 \
                and (leader is None or along < leader[0]):
            leader = (along, other)
    target = vehicle.cruise_mps
    if leader is not None and leader[1].speed < vehicle.cruise_mps - 1.0:
        side = _free_side(world, vehicle, vehicles, driving) if vehicle.auto_lane_change else None
        if side is not None and abs(vehicle.lane_offset) < 0.1:
            vehicle.lane_wp = wp = _lane_beside(wp, side, driving)
            vehicle.lane_offset -= side * wp.lane_width
            vehicle.lane_changes += 1
        else:
            target = min(target, leader[1].speed)
    v = vehicle.speed
    vehicle.speed = min(max(target, v - AUTOPILOT_BRAKE_MPS2 * dt), v + AUTOPILOT_ACCEL_MPS2 * dt)
    # back to the lane's centre (after a lane change, or placed off it); a car at rest does not move sideways
    lateral = -math.copysign(min(LANE_CHANGE_MPS * dt, abs(vehicle.lane_offset)), vehicle.lane_offset)
    lateral = lateral if vehicle.speed > 0 else 0.0
    vehicle.lane_offset += lateral
    distance = vehicle.speed * dt
    if distance > 0:
        ahead = [c for c in wp.next(distance) if c.lane_type == driving]
        if ahead:  # where the lane branches, the branch that turns least; at a dead end it stops
            yaw = wp.transform.rotation.yaw
            wp = vehicle.lane_wp = max(ahead, key=lambda c: math.cos(math.radians(c.transform.rotation.yaw - yaw)))
        else:
            vehicle.speed = 0.0
    c = wp.transform
    lane_yaw = math.radians(c.rotation.yaw)
    t = world.types
    x = c.location.x - math.sin(lane_yaw) * vehicle.lane_offset
    y = c.location.y + math.cos(lane_yaw) * vehicle.lane_offset
    drift = math.degrees(math.atan2(lateral / dt, vehicle.speed)) if vehicle.speed > 0 else 0.0
    vehicle.transform = t.Transform(t.Location(x=x, y=y, z=c.location.z), t.Rotation(yaw=c.rotation.yaw + drift))


def _free_side(world: World, vehicle: Actor, vehicles: list[Actor], driving: Any) -> int | None:
    """The side (-1 left first, then +1) whose lane is clear CHANGE_CLEAR_M ahead and behind, or None."""
    for side in (-1, 1):
        lane = _lane_beside(vehicle.lane_wp, side, driving)
        if lane is None:
            continue
        clear = True
        for other in vehicles:
            along, across = _plan_offset(lane.transform, other.transform)
            if other is not vehicle and abs(along) < CHANGE_CLEAR_M and abs(across) < lane.lane_width / 2:
                clear = False
        if clear:
            return side
    return None


def _overlap(a: Any, b: Any) -> bool:
    """Footprints overlap, measured in a's axes (fine for the near-parallel cars of a highway)."""
    la, lb = a.transform.location, b.transform.location
    yaw = math.radians(a.transform.rotation.yaw)
    dx, dy = lb.x - la.x, lb.y - la.y
    along, across = dx * math.cos(yaw) + dy * math.sin(yaw), -dx * math.sin(yaw) + dy * math.cos(yaw)
    ea, eb = a.bounding_box.extent, b.bounding_box.extent
    return abs(along) < ea.x + eb.x and abs(across) < ea.y + eb.y


class TrafficManager:
    def __init__(self, server: StandInServer, port: int) -> None:
        self.server, self.port = server, port
        self.synchronous = False
        self.seeds: list[int] = []

    def set_synchronous_mode(self, enabled: bool) -> None:
        self.synchronous = enabled

    def set_random_device_seed(self, seed: int) -> None:
        self.seeds.append(seed)

    def get_port(self) -> int:
        return self.port

    def set_desired_speed(self, vehicle: Actor, speed_kmh: float) -> None:
        vehicle.cruise_mps = speed_kmh / 3.6

    def auto_lane_change(self, vehicle: Actor, enable: bool) -> None:
        vehicle.auto_lane_change = enable


class StandInServer:
    """The server's state; `client()` hands out a client attached to it."""

    def __init__(self, types: Any = TYPES, town: str = "Town04", lanes: int = 4, lanes_back: int = 2,
                 lane_width: float = 3.5, road_yaw_deg: float = 0.0, origin: tuple[float, float] = (0.0, 0.0),
                 version: str = "0.9.16", opendrive: Any = None) -> None:
        """opendrive: a real carla.Map to use instead of the toy road (then `types` must be the carla module)."""
        self.types = types
        self.road = Road(types, lanes, lanes_back, lane_width, road_yaw_deg, origin)
        self.opendrive = opendrive
        self.ids = itertools.count(100)
        self.world = World(self, town)
        self.traffic_managers: dict[int, TrafficManager] = {}
        self.loaded: list[str] = []
        self.version = version
        # another client's car, far down the road: the bridge must leave it alone
        parked = self.world._add(BLUEPRINTS[1], types.Transform(types.Location(x=1900.0, y=-30.0, z=0.0),
                                                                types.Rotation()), None)
        self.world.spawned.remove(parked.id)
        self.foreign_ids = {parked.id}

    def client(self) -> Client:
        return Client(self)

    def make_map(self, town: str) -> Any:
        if self.opendrive is not None:
            return RealMap(self.types, self.opendrive)
        return Map(f"Carla/Maps/{town}", self.road)


class Client:
    def __init__(self, server: StandInServer) -> None:
        self.server = server
        self.timeouts: list[float] = []

    def set_timeout(self, seconds: float) -> None:
        self.timeouts.append(seconds)

    def get_server_version(self) -> str:
        return self.server.version

    def get_client_version(self) -> str:
        return "0.9.16"

    def get_world(self) -> World:
        return self.server.world

    def get_available_maps(self) -> list[str]:
        return [f"/Game/Carla/Maps/{town}" for town in ("Town04", "Town06", "Town10HD_Opt")]

    def load_world(self, town: str) -> World:
        if not any(m.endswith("/" + town) for m in self.get_available_maps()):
            raise RuntimeError(f"map '{town}' not found")
        old = self.server.world
        self.server.loaded.append(town)
        self.server.world = World(self.server, town)
        self.server.world.actors = {i: a for i, a in old.actors.items() if i in self.server.foreign_ids}
        return self.server.world

    def get_trafficmanager(self, port: int = 8000) -> TrafficManager:
        return self.server.traffic_managers.setdefault(port, TrafficManager(self.server, port))
