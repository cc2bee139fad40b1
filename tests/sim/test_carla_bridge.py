"""The CARLA bridge: conversions in closed form and against real carla types, the connection error against a
port with no server, and the bridge's logic against tests/sim/carla_standin.py (a stand-in for a CARLA
server: no CARLA server runs in these tests, and the bridge has not been run against a live one here)."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from msgs import TOPICS, ControlCommand, EgoState, EpisodeEvent, ObjectArray
from nodes.runtime.node import make_params
from nodes.sim.carla_node import CarlaSimNode
from sim.carla_bridge import SIM_RATE_HZ, CarlaSim
from sim.carla_client import CarlaConnectionError, CarlaNotInstalledError, CarlaParams, connect, import_carla
from sim.carla_frames import (
    ACCEL_SCALE_MPS2,
    STEER_SCALE_RAD,
    bgra_to_rgb,
    camera_mount,
    command_to_control,
    control_to_command,
    forward_right,
    lateral_offset,
    max_steer_deg_of,
    to_lane_frame,
    yaw_to_heading,
)
from sim.view import DEFAULT_VIEW
from tests.conftest import ROOT, run_launch
from tests.sim.carla_standin import TYPES, StandInServer

NEEDS_CARLA = "the carla client package is not installed (pip install \"drivestack[carla]\")"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- conversions, closed form -----------------------------------------------------------------------------
@pytest.mark.parametrize("road_yaw", [0.0, 30.0, -135.0, 179.0])
def test_lane_frame_measures_along_and_across_the_road(road_yaw):
    (fx, fy), (rx, ry) = forward_right(road_yaw)
    dx, dy = 12.0 * fx + 3.0 * rx, 12.0 * fy + 3.0 * ry  # 12 m ahead, 3 m to the right
    assert to_lane_frame(dx, dy, road_yaw) == pytest.approx((12.0, 3.0))
    assert lateral_offset(100 + dx, -50 + dy, 100, -50, road_yaw) == pytest.approx(3.0)
    assert yaw_to_heading(road_yaw + 10.0, road_yaw) == pytest.approx(math.radians(10.0))
    assert yaw_to_heading(road_yaw + 350.0, road_yaw) == pytest.approx(math.radians(-10.0))


def test_right_is_towards_plus_y_as_in_our_frame():
    # yaw 0: forward +x, right +y (CARLA); our y grows to the right too (towards higher lanes)
    assert forward_right(0.0) == (pytest.approx((1.0, 0.0)), pytest.approx((0.0, 1.0)))
    assert forward_right(90.0)[0] == pytest.approx((0.0, 1.0))  # positive yaw turns towards +y


finite = st.floats(-1e4, 1e4, allow_nan=False)


@given(yaw=st.floats(-720, 720), along=finite, across=finite)
def test_lane_frame_inverts_placing_a_point_along_and_across_a_lane(yaw, along, across):
    (fx, fy), (rx, ry) = forward_right(yaw)
    got = to_lane_frame(along * fx + across * rx, along * fy + across * ry, yaw)
    assert got == pytest.approx((along, across), abs=1e-6 * (1 + abs(along) + abs(across)))


@given(accel=st.floats(-1, 1), steer=st.floats(-1, 1), max_steer=st.floats(46, 90))
def test_command_to_control_inverts_inside_its_range(accel, steer, max_steer):
    throttle, s, brake = command_to_control(accel, steer, max_steer, 5.0, 5.0)
    assert 0 <= throttle <= 1 and 0 <= brake <= 1 and -1 <= s <= 1 and throttle * brake == 0
    assert control_to_command(throttle, s, brake, max_steer, 5.0, 5.0) == pytest.approx((accel, steer), abs=1e-9)


@pytest.mark.parametrize("accel, steer, expected", [
    (0.4, 0.0, (0.5, 0.0, 0.0)),  # 2 m/s^2 of 4 at full throttle
    (-0.8, 0.0, (0.0, 0.0, 0.5)),  # -4 m/s^2 of 8 at full brake
    (1.0, 1.0, (1.0, 45.0 / 70.0, 0.0)),  # pi/4 rad of a 70 degree wheel
    (-3.0, -7.0, (0.0, -45.0 / 70.0, 0.625)),  # clipped to [-1, 1] first
])
def test_command_to_control(accel, steer, expected):
    assert command_to_control(accel, steer, 70.0, 4.0, 8.0) == pytest.approx(expected)


def test_control_round_trip_and_saturation():
    for accel, steer in [(0.3, 0.2), (-0.5, -0.9), (0.0, 0.0)]:
        throttle, s, brake = command_to_control(accel, steer, 70.0, 4.0, 8.0)
        assert throttle * brake == 0.0
        assert control_to_command(throttle, s, brake, 70.0, 4.0, 8.0) == pytest.approx((accel, steer))
    # a wheel that turns less than pi/4 saturates at steer 1
    assert command_to_control(0.0, 1.0, 30.0, 4.0, 8.0)[1] == 1.0
    with pytest.raises(ValueError, match="max_steer_deg"):
        command_to_control(0.0, 0.0, 0.0, 4.0, 8.0)
    assert ACCEL_SCALE_MPS2 == 5.0 and STEER_SCALE_RAD == pytest.approx(math.pi / 4)  # ControlCommand's doc


def test_bgra_to_rgb_swaps_channels_and_checks_size():
    raw = bytes([10, 20, 30, 255]) * 6
    rgb = bgra_to_rgb(raw, 3, 2)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb == [30, 20, 10]).all()
    with pytest.raises(ValueError, match="expected 3x3x4"):
        bgra_to_rgb(raw, 3, 3)


def test_camera_mount_reproduces_the_highway_view_on_the_ground():
    """A pinhole camera at the mount, looking down with columns forwards and rows to the right, puts a ground
    point where sim.view (highway-env's layout) does."""
    view, fov = DEFAULT_VIEW, 90.0
    m = camera_mount(view, fov)
    focal = view.width / (2 * math.tan(math.radians(fov) / 2))  # [px]
    for dx, dy in [(0.0, 0.0), (40.0, -4.0), (-20.0, 6.0)]:
        col = view.width / 2 + focal * (dx - m["x"]) / m["z"]
        row = view.height / 2 + focal * (dy - m["y"]) / m["z"]
        assert (col, row) == pytest.approx(tuple(float(v) for v in view.to_pixels(dx, dy)))


# -- with the real carla package ----------------------------------------------------------------------------
@pytest.mark.parametrize("yaw", [0.0, 30.0, -135.0])
def test_frames_against_real_carla_transforms(yaw):
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    lane = carla.Transform(carla.Location(x=50.0, y=-20.0, z=0.0), carla.Rotation(yaw=yaw))
    f, r = lane.get_forward_vector(), lane.get_right_vector()
    assert forward_right(yaw) == (pytest.approx((f.x, f.y), abs=1e-6), pytest.approx((r.x, r.y), abs=1e-6))
    # a point 8 m ahead and 1.5 m to the right of the lane centre, placed by carla's own transform
    p = lane.transform(carla.Location(x=8.0, y=1.5, z=0.0))
    along, across = to_lane_frame(p.x - lane.location.x, p.y - lane.location.y, lane.rotation.yaw)
    assert (along, across) == pytest.approx((8.0, 1.5), abs=1e-4)
    car = carla.Rotation(yaw=yaw + 12.0)
    assert yaw_to_heading(car.yaw, lane.rotation.yaw) == pytest.approx(math.radians(12.0), abs=1e-6)


def test_camera_mount_orientation_with_real_carla_rotation():
    """CARLA images run along the camera's right vector (columns) and down its up vector (rows): with the mount's
    rotation those must be the ego's forward (+x) and its right (+y), the highway-env layout."""
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    m = camera_mount(DEFAULT_VIEW, 90.0)
    rot = carla.Transform(carla.Location(), carla.Rotation(pitch=m["pitch"], yaw=m["yaw"]))
    look, right, up = rot.get_forward_vector(), rot.get_right_vector(), rot.get_up_vector()
    assert (look.x, look.y, look.z) == pytest.approx((0.0, 0.0, -1.0), abs=1e-6)
    assert (right.x, right.y, right.z) == pytest.approx((1.0, 0.0, 0.0), abs=1e-6)
    assert (-up.x, -up.y, -up.z) == pytest.approx((0.0, 1.0, 0.0), abs=1e-6)


def test_vehicle_control_and_physics_with_real_carla_types():
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    wheels = [carla.WheelPhysicsControl(max_steer_angle=a) for a in (70.0, 70.0, 0.0, 0.0)]
    physics = carla.VehiclePhysicsControl(wheels=wheels)
    max_steer = max_steer_deg_of(physics.wheels)
    assert max_steer == pytest.approx(70.0)
    throttle, steer, brake = command_to_control(-0.6, -0.5, max_steer, 4.0, 8.0)
    control = carla.VehicleControl(throttle=throttle, steer=steer, brake=brake)
    assert (control.throttle, control.steer, control.brake) == pytest.approx((0.0, -22.5 / 70.0, 0.375), abs=1e-6)
    assert not control.reverse and not control.hand_brake
    with pytest.raises(ValueError, match="no steering wheel"):
        max_steer_deg_of(carla.VehiclePhysicsControl(wheels=wheels[2:]).wheels)


def test_no_server_fails_within_the_timeout_naming_host_port_and_how_to_start_one():
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(CarlaConnectionError) as err:
        connect(carla, CarlaParams(port=port, timeout_s=2.0))
    elapsed = time.monotonic() - t0
    text = str(err.value)
    assert "time-out of 2000ms" in text, text  # the client's own report of the timeout it applied
    # a wall-clock bound only against a hang: 30 s, room for a loaded machine (the timeout itself is checked above)
    assert elapsed < 30.0, f"took {elapsed:.1f} s with a 2 s timeout"
    assert f"127.0.0.1:{port}" in text and "CarlaUE4.sh -RenderOffScreen" in text and "carlasim/carla:0.9.16" in text
    assert isinstance(err.value, OSError)  # the node runner turns it into one log line and exit 2


def test_bridge_runs_on_the_standin_with_real_carla_value_types():
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    server = StandInServer(types=carla, road_yaw_deg=20.0)
    sim = CarlaSim(CarlaParams(vehicles_count=4, duration=0.2), carla=carla, client=server.client())
    sim.reset(seed=3, episode=0)
    sim.step(ControlCommand(acceleration=0.2, steering=0.0))
    ego = sim.ego_state(sim.header())
    assert ego.lanes_count == 4 and abs(ego.lateral_offset) < 0.05 and abs(ego.heading) < 1e-6
    assert len(sim.objects_gt(sim.header("ego")).objects) == 4
    sim.close()
    assert set(server.world.actors) == server.foreign_ids


# what the bridge calls on the server side, by carla 0.9.16 class: the stand-in must model it under the same name
SERVER_API = {
    "Client": ["set_timeout", "get_server_version", "get_client_version", "get_world", "load_world",
               "get_available_maps", "get_trafficmanager"],
    "World": ["get_settings", "apply_settings", "get_map", "get_blueprint_library", "try_spawn_actor", "spawn_actor",
              "tick"],
    "WorldSettings": ["synchronous_mode", "fixed_delta_seconds"],
    "Map": ["name", "get_spawn_points", "get_waypoint"],
    "Waypoint": ["transform", "road_id", "lane_id", "lane_type", "lane_width", "is_junction", "get_left_lane",
                 "get_right_lane", "next", "previous"],
    "BlueprintLibrary": ["find", "filter"],
    "ActorBlueprint": ["id", "has_attribute", "get_attribute", "set_attribute"],
    "Vehicle": ["id", "bounding_box", "get_transform", "get_velocity", "set_target_velocity", "destroy",
                "apply_control", "set_autopilot", "get_physics_control"],
    "Sensor": ["id", "listen", "stop", "destroy"],
    "TrafficManager": ["set_synchronous_mode", "set_random_device_seed", "get_port", "set_desired_speed",
                       "auto_lane_change"],
}


def test_the_standin_models_the_real_carla_api_under_the_same_names():
    carla = pytest.importorskip("carla", reason=NEEDS_CARLA)
    from tests.sim import carla_standin as standin

    server = StandInServer()
    world = server.world
    audi = world.get_blueprint_library().find("vehicle.audi.a2")
    vehicle = world.try_spawn_actor(audi, world.map.get_spawn_points()[0])
    standins = {"Client": server.client(), "World": world, "WorldSettings": world.get_settings(), "Map": world.map,
                "Waypoint": world.map.get_waypoint(vehicle.get_transform().location),
                "BlueprintLibrary": world.get_blueprint_library(), "ActorBlueprint": standin.BLUEPRINTS[0],
                "Vehicle": vehicle, "Sensor": vehicle, "TrafficManager": server.client().get_trafficmanager()}
    for cls, names in SERVER_API.items():
        real = getattr(carla, cls)
        assert [n for n in names if not hasattr(real, n)] == [], f"carla.{cls}"
        assert [n for n in names if not hasattr(standins[cls], n)] == [], f"stand-in for carla.{cls}"


# -- no carla package ---------------------------------------------------------------------------------------
def test_missing_carla_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "carla", None)  # makes `import carla` raise ImportError
    with pytest.raises(CarlaNotInstalledError, match=r'pip install "drivestack\[carla\]"'):
        import_carla()
    with pytest.raises(CarlaNotInstalledError):
        CarlaSim(CarlaParams())


def test_planning_the_launch_file_needs_neither_carla_nor_a_server():
    code = ("import sys; from nodes.runtime.launchfile import load_plan; "
            "plan = load_plan('carla_stack.yaml', {'port': 1}); "
            "assert 'carla' not in sys.modules, 'carla was imported'; "
            "print(plan.node('sim').module, plan.node('perception').params.mode)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["nodes.sim.carla_node", "gt"]


@pytest.mark.slow
def test_launch_without_a_server_exits_nonzero_with_one_clear_line(workdir):
    port = free_port()
    t0 = time.monotonic()
    out = run_launch("carla_stack.yaml", f"port:={port}", "timeout:=2", "record:=false", cwd=workdir, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "Traceback" not in text
    try:
        import carla  # noqa: F401
    except ImportError:
        assert 'pip install "drivestack[carla]"' in text
    else:
        assert f"127.0.0.1:{port}" in text and "CarlaUE4.sh" in text
    assert time.monotonic() - t0 < 90


# -- the bridge's logic against the stand-in server -----------------------------------------------------------
def make_node(server: StandInServer, **params) -> CarlaSimNode:
    base = {"vehicles_count": 5, "duration": 0.4, "episodes": 2, "seed": 7}
    return CarlaSimNode(make_params(CarlaSimNode, base | params), carla=TYPES, client=server.client())


def run_all(node: CarlaSimNode, accel: float = 0.1, steering: float = 0.0) -> list[tuple[str, object]]:
    out = node.start()
    log = list(out)
    while not node.finished:
        ego = next((m for p, m in out if p == "ego"), None)
        cmd = ControlCommand(header=ego.header if ego else log[-1][1].header, acceleration=accel, steering=steering)
        out = node.step({"cmd": cmd})
        log.extend(out)
    return log


def test_connect_sets_synchronous_mode_loads_the_town_and_restores_on_close():
    server = StandInServer(town="Town10HD_Opt")
    before = server.world.get_settings()
    sim = CarlaSim(CarlaParams(), carla=TYPES, client=server.client())
    world = server.world
    assert server.loaded == ["Town04"] and world.map.name.endswith("Town04")
    assert world.settings.synchronous_mode and world.settings.fixed_delta_seconds == pytest.approx(1 / SIM_RATE_HZ)
    assert server.traffic_managers[8000].synchronous
    sim.close()
    assert world.get_settings() == before and not server.traffic_managers[8000].synchronous
    # already on Town04: nothing is loaded
    server = StandInServer()
    CarlaSim(CarlaParams(), carla=TYPES, client=server.client()).close()
    assert server.loaded == []


def test_episodes_publish_the_highway_topics_and_types():
    server = StandInServer()
    node = make_node(server)
    log = run_all(node)
    events = [m for p, m in log if p == "episode"]
    assert [(e.kind, e.header.episode, e.seed) for e in events] == [
        ("start", 0, 7), ("end", 0, 7), ("start", 1, 8), ("end", 1, 8)]
    assert [e.reason for e in events if e.kind == "end"] == ["time_limit", "time_limit"]
    assert [e.last for e in events if e.kind == "end"] == [False, True]
    assert server.traffic_managers[8000].seeds == [7, 8]
    ticks = round(0.4 * SIM_RATE_HZ)
    for episode in (0, 1):
        for port in ("camera", "ego", "objects"):
            got = [m.header.tick for p, m in log if p == port and m.header.episode == episode]
            assert got == list(range(ticks + 1)), port
    for port, msg in log:
        assert isinstance(msg, TOPICS[CarlaSimNode.outputs[port]].type)
    assert {p: m.header.frame_id for p, m in log if p != "episode"} == {"camera": "camera", "ego": "world",
                                                                        "objects": "ego"}
    camera = next(m for p, m in log if p == "camera").array()
    assert camera.shape == (DEFAULT_VIEW.height, DEFAULT_VIEW.width, 3)
    assert (camera[0, 0] == [2, 1, camera[0, 0, 2]]).all()  # the stand-in's B, G, R = frame, 1, 2
    objects = [m for p, m in log if p == "objects"]
    assert all(len(o.objects) == 5 for o in objects)
    assert sorted(o.id for o in objects[0].objects) == [1, 2, 3, 4, 5]
    assert node.counters()["ticks"] == 2 * ticks and node.counters()["stale_cmd"] == 0
    egos = [m for p, m in log if p == "ego" and m.header.episode == 0]
    assert egos[-1].x > egos[0].x + 0.9 * 20.0 * 0.4  # driven along the road at about the start speed
    node.close()


@pytest.mark.parametrize("road_yaw", [0.0, 30.0, -135.0])
def test_lane_index_offset_and_objects_in_the_road_frame(road_yaw):
    """The same scene on roads pointing different ways gives the same messages."""
    server = StandInServer(road_yaw_deg=road_yaw, origin=(40.0, -70.0))
    sim = CarlaSim(CarlaParams(vehicles_count=2, render=False), carla=TYPES, client=server.client())
    sim.reset(seed=1, episode=0)
    road, t = server.road, TYPES
    ego, first, second = (server.world.actors[a.id] for a in sim._vehicles)

    def place(actor, lane_id, s, across, yaw_offset=0.0, speed=0.0):
        x, y = road.to_world(s, road.centre_t(lane_id) + across)
        actor.set_transform(t.Transform(t.Location(x=x, y=y), t.Rotation(yaw=road.yaw_deg + yaw_offset)))
        actor.speed = actor.cruise_mps = speed

    place(ego, -3, 500.0, 0.7, yaw_offset=5.0)  # lane index 2, 0.7 m right of its centre, 5 degrees right
    place(first, -4, 530.0, -0.2)  # lane index 3, 30 m ahead
    place(second, 2, 480.0, 0.0, yaw_offset=180.0)  # the other carriageway, running the other way
    sim.step(ControlCommand(acceleration=0.0, steering=0.0))
    state = sim.ego_state(sim.header())
    assert (state.lane_index, state.lanes_count, state.lane_width) == (2, 4, 3.5)
    assert state.lateral_offset == pytest.approx(0.7)
    assert state.y == pytest.approx(2 * 3.5 + 0.7)
    assert state.heading == pytest.approx(math.radians(5.0))
    assert state.on_road and not state.crashed
    objects = {o.id: o for o in sim.objects_gt(sim.header("ego")).objects}
    ahead = objects[1]
    assert (ahead.x, ahead.y, ahead.lane_index) == pytest.approx((30.0, 3.5 - 0.2 - 0.7, 3))
    assert ahead.world_y == pytest.approx(3 * 3.5 - 0.2) and ahead.world_x == pytest.approx(state.x + 30.0)
    assert ahead.in_view and ahead.heading == pytest.approx(0.0, abs=1e-9)
    assert 2 not in objects  # on the other carriageway, running the other way: left out
    sim.close()


def test_stack_commands_move_the_car_the_way_they_say():
    server = StandInServer()
    sim = CarlaSim(CarlaParams(vehicles_count=0, render=False), carla=TYPES, client=server.client())
    sim.reset(seed=2, episode=0)
    start = sim.ego_state(sim.header())
    for _ in range(3):
        sim.step(ControlCommand(acceleration=0.4, steering=0.0))  # throttle 0.5: 2 m/s^2 in the stand-in
    state = sim.ego_state(sim.header())
    assert state.speed == pytest.approx(start.speed + 3 * 2.0 / SIM_RATE_HZ)
    assert state.acceleration == pytest.approx(2.0) and server.world.actors[sim.ego.id].control.throttle == 0.5
    for _ in range(6):
        sim.step(ControlCommand(acceleration=0.0, steering=0.05))  # positive steering: to the right
    turned = sim.ego_state(sim.header())
    assert turned.heading > 0 and turned.y > state.y and turned.steering == pytest.approx(0.05 * math.pi / 4)
    sim.close()


def test_collision_ends_the_episode():
    server = StandInServer()
    node = make_node(server, episodes=1, duration=5.0, render=False)
    out = node.start()
    ego_actor = node.sim.ego
    other = server.world.actors[node.sim._vehicles[1].id]
    et = ego_actor.get_transform()
    f, _ = forward_right(et.rotation.yaw)
    other.set_transform(TYPES.Transform(TYPES.Location(x=et.location.x + 6 * f[0], y=et.location.y + 6 * f[1]),
                                        TYPES.Rotation(yaw=et.rotation.yaw)))
    other.speed = other.cruise_mps = 0.0
    ego = next(m for p, m in out if p == "ego")
    for _ in range(10):
        out = node.step({"cmd": ControlCommand(header=ego.header, acceleration=0.0, steering=0.0)})
        ego = next((m for p, m in out if p == "ego"), ego)
        if node.finished:
            break
    end = next(m for p, m in out if isinstance(m, EpisodeEvent))
    assert (end.kind, end.reason, end.last) == ("end", "collision", True)
    assert ego.crashed and ego.header.tick < 10
    node.close()


def test_leaving_the_road_ends_the_episode():
    server = StandInServer()
    sim = CarlaSim(CarlaParams(vehicles_count=0, render=False), carla=TYPES, client=server.client())
    sim.reset(seed=0, episode=0)
    x, y = server.road.to_world(300.0, server.road.centre_t(-5))  # the shoulder: not a driving lane
    sim.ego.set_transform(TYPES.Transform(TYPES.Location(x=x, y=y), TYPES.Rotation()))
    sim.step(ControlCommand(acceleration=0.0, steering=0.0))
    assert sim.end_reason == "offroad" and not sim.ego_state(sim.header()).on_road
    sim.close()


def test_same_seed_same_world_other_seed_another():
    def spawned(seed: int) -> list[tuple[float, float, str]]:
        server = StandInServer()
        sim = CarlaSim(CarlaParams(vehicles_count=6, render=False), carla=TYPES, client=server.client())
        sim.reset(seed=seed, episode=0)
        out = [(round(a.get_transform().location.x, 6), round(a.get_transform().location.y, 6), a.type_id)
               for a in sim._vehicles]
        sim.close()
        return out

    assert spawned(5) == spawned(5)
    assert spawned(5) != spawned(6)


def test_every_spawned_actor_is_destroyed_and_settings_restored_on_shutdown():
    server = StandInServer()
    before = server.world.get_settings()
    node = make_node(server, episodes=2)
    out = node.start()
    world = server.world
    first_episode = set(world.spawned)
    assert len(first_episode) == 1 + 2 + 5  # ego, collision sensor, camera, traffic
    ego = next(m for p, m in out if p == "ego")
    while not any(isinstance(m, EpisodeEvent) and m.kind == "start" and m.header.episode == 1 for _, m in out):
        out = node.step({"cmd": ControlCommand(header=ego.header, acceleration=0.0, steering=0.0)})
        ego = next((m for p, m in out if p == "ego"), ego)
    assert first_episode <= set(world.destroyed)  # the next episode started from a clean world
    assert len(set(world.actors) - server.foreign_ids) == 8
    node.close()  # what the runtime does on the way out, Ctrl-C included
    assert set(world.actors) == server.foreign_ids
    assert sorted(world.destroyed) == sorted(world.spawned)
    assert world.destroyed_listening == []  # sensors were stopped before they were destroyed
    assert world.get_settings() == before and not server.traffic_managers[8000].synchronous
    node.close()  # twice is harmless
    assert sorted(world.destroyed) == sorted(world.spawned)


def test_an_exception_mid_episode_still_leaves_the_server_clean():
    server = StandInServer()
    before = server.world.get_settings()
    node = make_node(server, duration=5.0)
    out = node.start()
    server.world.fail_tick_at = server.world.frame + 3
    ego = next(m for p, m in out if p == "ego")
    with pytest.raises(RuntimeError, match="stopped answering"):
        for _ in range(5):
            out = node.step({"cmd": ControlCommand(header=ego.header, acceleration=0.0, steering=0.0)})
            ego = next(m for p, m in out if p == "ego")
    node.close()  # the runner's `finally`
    assert set(server.world.actors) == server.foreign_ids and sorted(server.world.destroyed) == sorted(
        server.world.spawned)
    assert server.world.get_settings() == before and not server.traffic_managers[8000].synchronous


def test_a_failure_while_spawning_destroys_what_was_spawned():
    server = StandInServer()
    node = make_node(server)
    server.world.fail_spawn_after = 4  # ego, two sensors, one car: then the server refuses
    with pytest.raises(RuntimeError, match="spawn failed"):
        node.start()
    assert len(server.world.spawned) == 4
    node.close()
    assert set(server.world.actors) == server.foreign_ids


def test_ctrl_c_while_connecting_restores_the_settings_it_changed():
    server = StandInServer()
    before = server.world.get_settings()

    def interrupted():
        raise KeyboardInterrupt

    server.world.get_blueprint_library = interrupted  # after the settings and the Traffic Manager were set
    with pytest.raises(KeyboardInterrupt):
        make_node(server)
    assert server.world.get_settings() == before and not server.traffic_managers[8000].synchronous


def test_params_are_checked_at_launch_and_unknown_keys_rejected():
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        CarlaSimNode.check(make_params(CarlaSimNode, {"timeout_s": 0.0}))
    with pytest.raises(ValueError, match="unknown field `vehicles`"):
        make_params(CarlaSimNode, {"vehicles": 3})
    with pytest.raises(ValueError, match="no spawn point on a road with >= 5 lanes"):
        CarlaSim(CarlaParams(min_lanes=5), carla=TYPES, client=StandInServer().client())
    assert "camera" not in CarlaSimNode.output_ports(make_params(CarlaSimNode, {"render": False}))


@pytest.mark.parametrize("params, expected", [
    ({"town": "Town99"}, r"town 'Town99': the server cannot load it .*'Town04', 'Town06'"),
    ({"ego_blueprint": "vehicle.nope"}, "ego_blueprint 'vehicle.nope' is not a blueprint"),
    ({"traffic_filter": "vehicle.yamaha.*"}, "matches no four-wheeled blueprint"),
])
def test_server_side_mistakes_name_the_param_and_leave_the_server_as_found(params, expected):
    server = StandInServer(town="Town10HD_Opt")
    before = server.world.get_settings()
    with pytest.raises(ValueError, match=expected):
        CarlaSim(CarlaParams(**params), carla=TYPES, client=server.client())
    assert server.world.get_settings() == before and not server.world.spawned


def test_messages_are_finite_and_typed():
    server = StandInServer(road_yaw_deg=77.0)
    log = run_all(make_node(server, episodes=1), accel=0.2, steering=0.01)
    for _, msg in log:
        if isinstance(msg, EgoState):
            values = [msg.x, msg.y, msg.heading, msg.speed, msg.vx, msg.vy, msg.lateral_offset]
            assert all(math.isfinite(v) for v in values)
        elif isinstance(msg, ObjectArray):
            assert all(math.isfinite(o.x) and math.isfinite(o.y) for o in msg.objects)


@pytest.mark.slow
def test_the_stack_of_carla_stack_yaml_drives_the_standin_in_lockstep():
    """Every node of launch/carla_stack.yaml (the real perception, planning, decision and control), composed in one
    process around the bridge on the stand-in server: one command per tick, and a clean server afterwards."""
    from nodes.runtime.launchfile import load_plan
    from nodes.runtime.local import LocalNode, LocalStack

    server = StandInServer(road_yaw_deg=-60.0)
    before = server.world.get_settings()
    plan = load_plan("carla_stack.yaml", {"episodes": 1, "duration": 1.0, "vehicles": 3, "record": False})
    nodes = []
    for n in plan.nodes:
        node = CarlaSimNode(n.params, carla=TYPES, client=server.client()) if n.name == "sim" else n.node_cls(n.params)
        nodes.append(LocalNode(n.name, node, dict(n.inputs), dict(n.outputs)))
    stack = LocalStack(nodes)
    seen: dict[str, list] = {}
    stack.observers.append(lambda topic, msg: seen.setdefault(topic, []).append(msg))
    stack.run()
    ticks = round(1.0 * SIM_RATE_HZ)
    end = seen["/sim/episode"][-1]
    assert (end.kind, end.last) == ("end", True)
    last_tick = seen["/sim/ego"][-1].header.tick
    assert end.reason == "time_limit" and last_tick == ticks or end.reason == "collision" and last_tick < ticks
    # lockstep: one command answers every published tick (the terminal tick's is not applied)
    assert [c.header.tick for c in seen["/control/cmd"]] == list(range(last_tick + 1))
    assert all(c.is_finite() for c in seen["/control/cmd"])
    for topic in ("/perception/objects", "/planning/plan", "/decision/target"):
        assert [m.header.tick for m in seen[topic]] == list(range(last_tick + 1)), topic
    assert all(e.on_road for e in seen["/sim/ego"])
    assert set(server.world.actors) == server.foreign_ids and server.world.get_settings() == before


# -- what a real server does that the bridge must handle -----------------------------------------------------------
def test_a_server_left_in_synchronous_mode_by_a_killed_run_is_put_back_asynchronous(caplog):
    """A run killed before its clean-up leaves the server synchronous with nobody ticking it (frozen for every client).
    The next run must not take that for the server's own settings and restore it on exit."""
    server = StandInServer()
    killed = CarlaSim(CarlaParams(vehicles_count=0, render=False), carla=TYPES, client=server.client())
    killed.reset(seed=0, episode=0)  # ... and SIGKILL: close() never runs
    assert server.world.settings.synchronous_mode and server.traffic_managers[8000].synchronous
    with caplog.at_level("WARNING", logger="drivestack.carla"):
        sim = CarlaSim(CarlaParams(vehicles_count=0, render=False), carla=TYPES, client=server.client())
    assert "synchronous mode with no client ticking it" in caplog.text
    sim.reset(seed=1, episode=0)
    sim.close()
    settings = server.world.get_settings()
    assert not settings.synchronous_mode and not server.traffic_managers[8000].synchronous
    assert settings.fixed_delta_seconds == pytest.approx(1 / SIM_RATE_HZ)  # the rest is left as found


def test_traffic_gets_explicit_desired_speeds_and_the_lane_change_setting():
    server = StandInServer()
    params = CarlaParams(vehicles_count=8, render=False, traffic_speed=22.0, traffic_speed_spread=20.0,
                         traffic_lane_changes=False)
    sim = CarlaSim(params, carla=TYPES, client=server.client())
    sim.reset(seed=4, episode=0)
    assert len(sim.traffic_speeds) == 8
    assert all(22.0 * 0.8 <= v <= 22.0 * 1.2 for v in sim.traffic_speeds.values())
    assert len(set(sim.traffic_speeds.values())) == 8  # one each, drawn from the seed
    for actor in sim._vehicles[1:]:
        ground_truth_id = sim._ids[actor.id]
        # the Traffic Manager was told km/h (set_desired_speed), which the stand-in turns back into m/s
        assert server.world.actors[actor.id].cruise_mps == pytest.approx(sim.traffic_speeds[ground_truth_id])
        assert server.world.actors[actor.id].auto_lane_change is False
    sim.close()


@pytest.mark.parametrize("lane_changes", [True, False])
def test_traffic_changing_lanes_is_followed_across_the_lanes(lane_changes):
    """A fast car behind a slow one: with the Traffic Manager's lane changes on it passes on the left, and the
    objects show it moving from lane 2 to lane 1 with a negative lateral speed; with them off it stays and slows."""
    server = StandInServer()
    sim = CarlaSim(CarlaParams(vehicles_count=2, render=False, traffic_lane_changes=lane_changes), carla=TYPES,
                   client=server.client())
    sim.reset(seed=0, episode=0)
    road, t = server.road, TYPES
    ego, slow, fast = (server.world.actors[a.id] for a in sim._vehicles)
    for actor, lane_id, s, speed in ((ego, -1, 300.0, 20.0), (slow, -3, 330.0, 15.0), (fast, -3, 305.0, 28.0)):
        x, y = road.to_world(s, road.centre_t(lane_id))
        actor.set_transform(t.Transform(t.Location(x=x, y=y), t.Rotation(yaw=road.yaw_deg)))
        actor.speed = actor.cruise_mps = speed
    lanes, lateral = [], []
    for _ in range(6 * SIM_RATE_HZ):
        sim.step(ControlCommand(acceleration=0.0, steering=0.0))
        o = {o.id: o for o in sim.objects_gt(sim.header("ego")).objects}[2]
        lanes.append(o.lane_index)
        lateral.append(o.vy)
    sim.close()
    if lane_changes:
        assert lanes[0] == 2 and lanes[-1] == 1 and set(lanes) == {1, 2}
        assert min(lateral) < -0.5 and max(lateral) < 0.1  # leftwards only
        assert fast.lane_changes == 1
    else:
        assert set(lanes) == {2} and max(abs(v) for v in lateral) < 1e-6
        assert fast.speed == pytest.approx(15.0, abs=0.5) and fast.lane_changes == 0


def test_the_start_speed_is_in_effect_at_tick_0():
    """CARLA applies a target velocity two frames after the call (modelled by the stand-in): tick 0 starts moving."""
    server = StandInServer()
    world = server.world
    world.apply_settings(type(world.settings)(synchronous_mode=True, fixed_delta_seconds=0.1))
    car = world.try_spawn_actor(world.get_blueprint_library().find("vehicle.audi.a2"), world.map.get_spawn_points()[0])
    car.set_target_velocity(TYPES.Vector3D(x=20.0))
    world.tick()
    assert car.speed == 0.0  # one tick is not enough
    world.tick()
    assert car.speed == pytest.approx(20.0)
    car.destroy()
    sim = CarlaSim(CarlaParams(vehicles_count=3, render=False, start_speed=20.0), carla=TYPES, client=server.client())
    sim.reset(seed=0, episode=0)
    assert sim.ego_state(sim.header()).speed == pytest.approx(20.0)
    assert all(o.speed >= 20.0 - 3.0 / SIM_RATE_HZ for o in sim.objects_gt(sim.header("ego")).objects)
    sim.close()


def test_collision_events_are_matched_by_frame():
    """Events stream on the sensor thread: one from the spawn ticks that arrives after tick 0 does not end the
    episode; a real one that arrives a tick late still does, with its own frame."""
    server = StandInServer()
    sim = CarlaSim(CarlaParams(vehicles_count=1, render=False, duration=5.0), carla=TYPES, client=server.client())
    sim.reset(seed=0, episode=0)
    world = server.world
    ego, other = (world.actors[a.id] for a in sim._vehicles)
    world._sensor_event(ego, other, frame=world.frame - 1)  # late news from the ticks before tick 0
    sim.step(ControlCommand(acceleration=0.0, steering=0.0))
    assert sim.end_reason is None and not sim.ego_state(sim.header()).crashed
    world.event_delay_ticks = 1
    et = ego.get_transform()
    f, _ = forward_right(et.rotation.yaw)
    other.set_transform(TYPES.Transform(TYPES.Location(x=et.location.x + 6 * f[0], y=et.location.y + 6 * f[1]),
                                        TYPES.Rotation(yaw=et.rotation.yaw)))
    other.speed = other.cruise_mps = 0.0
    contact = None
    for _ in range(10):
        sim.step(ControlCommand(acceleration=0.0, steering=0.0))
        if contact is None and any(_overlaps(a, b) for a, b in [(ego, other)]):
            contact = world.frame
        if sim.end_reason is not None:
            break
    assert sim.end_reason == "collision" and contact is not None
    assert world.frame == contact + 1  # seen a tick late ...
    assert min(frame for frame, _ in sim._collisions if frame >= sim._first_frame) == contact  # ... with its frame
    sim.close()


def _overlaps(a, b) -> bool:
    from tests.sim.carla_standin import _overlap

    return _overlap(a, b)


def test_a_lost_camera_frame_is_warned_about_and_the_last_one_published_again(caplog):
    server = StandInServer()
    node = make_node(server, episodes=1, duration=0.4, camera_timeout_s=0.2)
    out = node.start()
    server.world.drop_camera_frames = {server.world.frame + 2}  # the second tick's image never arrives
    frames = [next(m for p, m in out if p == "camera").array()]
    ego = next(m for p, m in out if p == "ego")
    with caplog.at_level("WARNING", logger="drivestack.carla"):
        while not node.finished:
            out = node.step({"cmd": ControlCommand(header=ego.header, acceleration=0.0, steering=0.0)})
            ego = next((m for p, m in out if p == "ego"), ego)
            frames += [m.array() for p, m in out if p == "camera"]
    assert node.sim.lost_camera_frames == 1 and "no camera frame for server frame" in caplog.text
    blue = [int(f[0, 0, 2]) for f in frames]  # the stand-in paints B = its frame number
    assert blue[2] == blue[1] and blue[3] == blue[1] + 2 and blue[1] == blue[0] + 1  # tick 2 repeats tick 1
    assert len(frames) == round(0.4 * SIM_RATE_HZ) + 1
    node.close()
