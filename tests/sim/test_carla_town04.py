"""The CARLA bridge's road frame on the real Town04, built client-side from its OpenDRIVE file (tests/data), no server.

`carla.Map(name, opendrive_text)` is CARLA's own map code (waypoints, lanes, junctions): the lanes, curves and
junctions here are the real map's. The loop is walked with the test's own code (the leftmost lane's centre line,
lanes placed 3.5 m apart across it: Town04's lanes are all 3.5 m wide), independent of sim.carla_world. What a
live server adds (physics, the Traffic Manager's driving, sensor timing) is not here: see the README's CARLA section.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from msgs import ControlCommand
from nodes.decision.params import DecisionParams
from nodes.decision.scene import Track, in_corridor
from sim.carla_bridge import CarlaSim
from sim.carla_client import CarlaParams
from sim.carla_road import RoadFrame
from sim.carla_world import lane_position, lanes_across
from tests.conftest import ROOT
from tests.sim.carla_standin import StandInServer

carla = pytest.importorskip("carla", reason='no carla client package (pip install "drivestack[carla]")')

START = (-503.73, 177.59)  # [m] a point on the leftmost lane of one carriageway of Town04's highway loop (road 6)
STEP_M = 2.0  # [m] between the loop's stations
LANES, WIDTH = 4, 3.5  # Town04's highway: 4 lanes each way, 3.5 m wide


@pytest.fixture(scope="module")
def town04():
    text = gzip.decompress((ROOT / "tests/data/Town04.xodr.gz").read_bytes()).decode()
    return carla.Map("Town04", text)


@pytest.fixture(scope="module")
def loop(town04):
    """The leftmost lane's waypoints every STEP_M around the loop, back to the start (the branch that turns least
    where the lane branches)."""
    driving = carla.LaneType.Driving
    wp = town04.get_waypoint(carla.Location(x=START[0], y=START[1]), project_to_road=True, lane_type=driving)
    start, out = wp.transform.location, [wp]
    for _ in range(5000):
        yaw = out[-1].transform.rotation.yaw
        out.append(max(out[-1].next(STEP_M), key=lambda c: math.cos(math.radians(c.transform.rotation.yaw - yaw))))
        if len(out) > 100 and out[-1].transform.location.distance(start) < STEP_M:
            return out[:-1]
    raise AssertionError("the leftmost lane does not come back to its start")


def lane_point(wp, k: int) -> tuple[float, float, float]:
    """(x, y, yaw_deg) of lane k's centre (k lanes right of the leftmost lane's waypoint `wp`)."""
    t = wp.transform
    r = t.get_right_vector()
    return t.location.x + k * WIDTH * r.x, t.location.y + k * WIDTH * r.y, t.rotation.yaw


def test_the_loop_is_town04s_highway(loop):
    xy = np.array([(w.transform.location.x, w.transform.location.y) for w in loop])
    length = float(np.sum(np.hypot(*np.diff(xy, axis=0).T)))
    assert 3000 < length < 3100  # the 3.1 km loop
    yaw = np.unwrap(np.radians([w.transform.rotation.yaw for w in loop]))
    radius = STEP_M / np.maximum(np.abs(np.diff(yaw)), 1e-9)
    assert radius.min() < 60  # curves down to ~54 m radius
    assert all(abs(w.lane_width - WIDTH) < 1e-6 for w in loop)


def test_junctions_where_the_rightmost_lane_is_a_road_of_its_own_keep_four_lanes(town04, loop):
    """Case 1: at some junctions the road holds only 3 driving lanes (the 4th is a lane of type NONE, the through
    lane another road or none at all): the road's own lanes stop short there. The bridge's lanes do not."""
    driving = carla.LaneType.Driving
    short = []
    for wp in loop:
        own, here = 1, wp.get_right_lane()
        while here is not None and here.lane_type == driving and here.lane_id * wp.lane_id > 0:
            own, here = own + 1, here.get_right_lane()
        if own < LANES:
            short.append(wp)
        assert lane_position(town04, wp, driving) == (0, LANES)
        assert len(lanes_across(town04, wp, driving)) == LANES
    assert len(short) >= 4 and len({w.road_id for w in short}) >= 4  # the map feature is there to be handled


@pytest.mark.parametrize("lane", range(LANES))
def test_lane_index_and_count_never_jump_all_around_the_loop(town04, loop, lane):
    """Case 1: an ego driving each lane's centre all around the loop (junctions included) reads that lane, 4 lanes and
    no offset every 4 m (a tick at 60 m/s; junctions run 20 m and more), and its odometer is the length it drove."""
    frame = RoadFrame(town04, carla.LaneType.Driving, loop[0], reach_m=160.0)
    odometer, driven, last = 0.0, 0.0, lane_point(loop[0], lane)
    bad = []
    for i, wp in enumerate(loop[2::2] + loop[:1]):
        x, y, _ = lane_point(wp, lane)
        odometer += frame.update(x, y)
        driven += math.hypot(x - last[0], y - last[1])
        last = (x, y)
        here = frame.station(x, y)
        index, offset, inside = frame.lane_of(here.across)
        if (index, len(frame.lanes), inside) != (lane, LANES, True) or abs(offset) > 0.05 \
                or abs(frame.road_y(here.across) - lane * WIDTH) > 0.05:
            bad.append((i, wp.road_id, index, len(frame.lanes), round(offset, 2)))
    assert bad == []
    assert odometer == pytest.approx(driven, rel=2e-3)


def place(actor, x: float, y: float, z: float, yaw_deg: float, speed: float) -> None:
    actor.set_transform(carla.Transform(carla.Location(x=x, y=y, z=z), carla.Rotation(yaw=yaw_deg)))
    actor.speed = actor.cruise_mps = speed
    actor.auto_lane_change = False


def straightest(candidates, yaw_deg: float):
    return max(candidates, key=lambda c: math.cos(math.radians(c.transform.rotation.yaw - yaw_deg)))


def on_lane(town04, loop, i: int, k: int):
    """The driving lane whose centre is lane k's at station i and which carries on along lane k for the next few
    metres, where its straightest successor lies (the one the stand-in's autopilot takes), or None: a lane of type
    NONE in a junction, or a lane that only leads onto an exit."""
    station = loop[i % len(loop)]
    x, y, yaw = lane_point(station, k)
    r = station.transform.get_right_vector()
    here = carla.Location(x=x, y=y, z=station.transform.location.z)
    wp = town04.get_waypoint(here, project_to_road=False, lane_type=carla.LaneType.Driving)
    # (CARLA's projection is exact across the lane, up to ~0.5 m off along it)
    if wp is None:
        return None
    c = wp.transform.location
    if abs((c.x - x) * r.x + (c.y - y) * r.y) > 0.3 or c.distance(here) > 1.0 \
            or math.cos(math.radians(wp.transform.rotation.yaw - yaw)) < 0.999:
        return None
    for d in (2.0, 4.0):
        ahead = straightest(wp.next(d), yaw).transform.location
        station = loop[(i + int(d / STEP_M)) % len(loop)]
        px, py, _ = lane_point(station, k)
        r = station.transform.get_right_vector()
        if abs((ahead.x - px) * r.x + (ahead.y - py) * r.y) > 0.3:
            return None
    return wp


def other_carriageway(town04, wp):
    """The nearest driving lane left of `wp` (across the median) running the other way."""
    t = wp.transform
    r = t.get_right_vector()
    for d in np.arange(WIDTH, 40.0, 0.5):
        found = town04.get_waypoint(t.location - r * float(d), project_to_road=False, lane_type=carla.LaneType.Driving)
        if found is not None and math.cos(math.radians(found.transform.rotation.yaw - t.rotation.yaw)) < -0.9:
            return found
    raise AssertionError(f"no carriageway running the other way beside road {wp.road_id}")


def along_lane(loop, i: int, j: int, lane: int, a, b) -> float:
    """[m] from location a to location b along lane `lane`'s centre line, both between stations i and j (each
    projected onto the line, sampled every 0.25 m so a chord's normal is within 0.1 degree of the curve's: lanes
    are parallel, so they share its normals)."""
    wps = [loop[i % len(loop)]]
    for _ in range(int((j - i) * STEP_M / 0.25)):
        wps.append(straightest(wps[-1].next(0.25), wps[-1].transform.rotation.yaw))
    pts = np.array([lane_point(w, lane)[:2] for w in wps])
    seg = np.diff(pts, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*seg.T))])

    def station(p) -> float:
        q = np.array([p.x, p.y])
        t = np.clip(np.einsum("ij,ij->i", q - pts[:-1], seg) / np.einsum("ij,ij->i", seg, seg), 0.0, 1.0)
        foot = pts[:-1] + t[:, None] * seg
        n = int(np.argmin(np.hypot(*(foot - q).T)))
        return float(s[n] + t[n] * (s[n + 1] - s[n]))

    return station(b) - station(a)


def test_vehicles_keeping_their_lanes_read_no_lateral_speed_on_the_curves(town04, loop):
    """Case 2, through the bridge (CarlaSim on the stand-in server with the real Town04 map): the ego and a car 20-60 m
    ahead, each driven along its lane at 25 m/s, all around the loop and across all lanes. The car reads |vy| < 0.2
    m/s, its lane, its distance along the ego's lane, and is in the ego's corridor (decision's own test) only when it
    is in the ego's lane. A car on the other carriageway beside the ego is never among the objects."""
    server = StandInServer(types=carla, opendrive=town04)
    sim = CarlaSim(CarlaParams(vehicles_count=2, render=False, traffic_reach_m=60.0), carla=carla,
                   client=server.client())
    sim.reset(seed=0, episode=0)
    ego, car, other_way = (server.world.actors[a.id] for a in sim._vehicles)
    ego.autopilot_port = 8000  # the stand-in drives the ego along its lane, like the traffic
    decision = DecisionParams()
    stride, checked, skipped, rotated_with_ego_lane = 12, 0, 0, []
    for n, i in enumerate(range(0, len(loop), stride)):
        k, j, ahead = n % LANES, (n // LANES) % LANES, 10 + (n * 7) % 21  # 20..60 m in 2 m stations
        xe, ye, yawe = lane_point(loop[i], k)
        xc, yc, yawc = lane_point(loop[(i + ahead) % len(loop)], j)
        ego_lane, car_lane = on_lane(town04, loop, i, k), on_lane(town04, loop, i + ahead, j)
        if ego_lane is None or car_lane is None:
            skipped += 1
            continue
        place(ego, xe, ye, ego_lane.transform.location.z, yawe, 25.0)
        place(car, xc, yc, car_lane.transform.location.z, yawc, 25.0)
        t = other_carriageway(town04, loop[i]).transform
        place(other_way, t.location.x, t.location.y, t.location.z, t.rotation.yaw, 25.0)
        sim.step(ControlCommand(acceleration=0.0, steering=0.0))
        state = sim.ego_state(sim.header())
        objects = {o.id: o for o in sim.objects_gt(sim.header("ego")).objects}
        assert (state.lane_index, state.lanes_count) == (k, LANES), (i, k)
        assert abs(state.vy) < 0.2 and abs(state.heading) < 0.01, (i, k)
        assert 2 not in objects, (i, "the other carriageway")
        o = objects[1]
        assert o.lane_index == j and abs(o.vy) < 0.2 and abs(o.vx) < 0.2 and abs(o.heading) < 0.01, (i, j, o)
        expected = along_lane(loop, i - 5, i + ahead + 5, k, ego.get_transform().location, car.get_transform().location)
        assert o.x == pytest.approx(expected, abs=0.1), (i, k, j)
        track = Track(id=1, x=state.x + o.x, y=state.y + o.y, vx=state.vx + o.vx, vy=state.vy + o.vy,
                      length=o.length, width=o.width, lane_index=o.lane_index)
        assert in_corridor(track, state.y, state, decision) == (j == k), (i, k, j)
        # what rotating the car's velocity into the ego's lane direction would have read instead
        v = car.get_velocity()
        yaw = math.radians(ego_lane.transform.rotation.yaw)
        rotated_with_ego_lane.append(abs(-v.x * math.sin(yaw) + v.y * math.cos(yaw)))
        checked += 1
    sim.close()
    assert checked >= 110 and skipped <= 0.05 * (checked + skipped)
    assert np.mean(np.array(rotated_with_ego_lane) > 0.5) > 0.3  # the curves that made that wrong are there


def test_a_car_on_the_bridge_above_the_ego_is_not_in_its_lanes(town04, loop):
    """Town04's loop crosses itself on a bridge 11 m up: a car up there, right above the ego, is on another part of
    the loop (and runs across it), not in the ego's lanes."""
    xy = np.array([(w.transform.location.x, w.transform.location.y) for w in loop])
    z = np.array([w.transform.location.z for w in loop])
    low = int(np.argmin(np.where(z < 1.0, 0.0, np.inf) + np.min(np.hypot(*(xy[:, None] - xy[None, z > 9]).T), axis=0)))
    high = int(np.argmin(np.hypot(*(xy - xy[low]).T) + np.where(z > 9, 0.0, np.inf)))
    assert abs(z[high] - z[low]) > 9 and np.hypot(*(xy[high] - xy[low])) < 4  # one above the other
    server = StandInServer(types=carla, opendrive=town04)
    sim = CarlaSim(CarlaParams(vehicles_count=1, render=False), carla=carla, client=server.client())
    sim.reset(seed=0, episode=0)
    ego, car = (server.world.actors[a.id] for a in sim._vehicles)
    ego.autopilot_port = 8000
    for actor, wp in ((ego, loop[low]), (car, loop[high])):
        t = wp.transform
        place(actor, t.location.x, t.location.y, t.location.z, t.rotation.yaw, 0.0)
    sim.step(ControlCommand(acceleration=0.0, steering=0.0))
    assert sim.ego_state(sim.header()).lanes_count == LANES
    assert sim.objects_gt(sim.header("ego")).objects == []
    sim.close()


@pytest.mark.slow
def test_the_stack_drives_the_standin_on_town04_with_a_continuous_road_frame(town04):
    """Every node of launch/carla_stack.yaml, in one process, around the bridge on the stand-in server with the real
    Town04 map and 20 lane-changing traffic cars: the road frame stays continuous in closed loop (4 lanes at every
    tick, the lane index moves by at most one lane a tick, x grows with the distance driven). How far the ego gets
    is not asserted: the stack's control assumes a straight road (see the README's CARLA section)."""
    from collections import defaultdict

    from nodes.runtime.launchfile import load_plan
    from nodes.runtime.local import LocalNode, LocalStack
    from nodes.sim.carla_node import CarlaSimNode

    server = StandInServer(types=carla, opendrive=town04)
    plan = load_plan("carla_stack.yaml", {"episodes": 2, "duration": 15.0, "vehicles": 20, "record": False,
                                          "camera": False})
    nodes = []
    for n in plan.nodes:
        node = CarlaSimNode(n.params, carla=carla, client=server.client()) if n.name == "sim" else n.node_cls(n.params)
        nodes.append(LocalNode(n.name, node, dict(n.inputs), dict(n.outputs)))
    seen: dict[str, list] = defaultdict(list)
    stack = LocalStack(nodes)
    stack.observers.append(lambda topic, msg: seen[topic].append(msg))
    stack.run()
    for episode in (0, 1):
        egos = [e for e in seen["/sim/ego"] if e.header.episode == episode]
        assert len(egos) > 30
        assert {e.lanes_count for e in egos} == {LANES}
        assert max(abs(a.lane_index - b.lane_index) for a, b in zip(egos, egos[1:], strict=False)) <= 1
        for a, b in zip(egos, egos[1:], strict=False):
            assert b.x - a.x == pytest.approx(0.5 * (a.speed + b.speed) / 15.0, rel=0.1, abs=0.05)
    assert any(o.lane_index >= 0 for m in seen["/sim/objects_gt"] for o in m.objects)
    assert set(server.world.actors) == server.foreign_ids
