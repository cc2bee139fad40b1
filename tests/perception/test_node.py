"""PerceptionNode called directly (start/step), on the real highway-env."""

import subprocess
import sys

import numpy as np
import pytest

from msgs import EgoState, Header, Image, Object, ObjectArray
from nodes.perception import dataset as ds
from nodes.perception.node import NODE, PerceptionNode, PerceptionParams
from nodes.runtime.node import make_params
from sim.view import DEFAULT_VIEW


def ego_msg(env, tick: int) -> EgoState:
    v = env.unwrapped.vehicle
    x, y, heading, speed, vx, vy = ds.ego_row(v)
    header = Header(episode=0, tick=tick, stamp_ns=round(tick / ds.CONTROL_RATE_HZ * 1e9), frame_id="world")
    lane = int(v.lane_index[2])
    return EgoState(header=header, x=x, y=y, heading=heading, speed=speed, vx=vx, vy=vy, lane_index=lane,
                    lateral_offset=float(v.lane.local_coordinates(v.position)[1]))


def gt_msg(env, header: Header) -> ObjectArray:
    """Every other vehicle on the road, in view or not."""
    ego = env.unwrapped.vehicle
    objs = []
    for i, v in enumerate(env.unwrapped.road.vehicles):
        if v is ego:
            continue
        dx, dy = v.position - ego.position
        dvx, dvy = v.velocity - ego.velocity
        objs.append(Object(id=i, x=dx, y=dy, vx=dvx, vy=dvy, heading=v.heading, world_x=v.position[0],
                           world_y=v.position[1], speed=v.speed))
    return ObjectArray(header=header, objects=objs)


@pytest.fixture(scope="module")
def env():
    e = ds.make_env(vehicles_count=25, density=1.5)
    e.reset(seed=ds.BENCH_SEEDS[0] + 900)
    yield e
    e.close()


def test_ports_follow_the_mode() -> None:
    assert NODE is PerceptionNode and PerceptionNode.name == "perception"
    assert PerceptionNode.input_ports(PerceptionParams()) == {"camera": "/sim/camera", "ego": "/sim/ego"}
    assert PerceptionNode.input_ports(PerceptionParams(mode="gt")) == {"objects": "/sim/objects_gt",
                                                                        "ego": "/sim/ego"}
    assert PerceptionNode.output_ports(PerceptionParams()) == {"objects": "/perception/objects"}
    assert PerceptionNode.trigger == "ego"


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        PerceptionNode(PerceptionParams(mode="lidar"))
    with pytest.raises(ValueError, match="model_path"):
        make_params(PerceptionNode, {"model_path": "x.pt"})


def test_gt_mode_passes_through_what_the_camera_sees(env) -> None:
    node = PerceptionNode(make_params(PerceptionNode, {"mode": "gt"}))
    node.start()
    for _ in range(30):
        env.step(np.zeros(2, np.float32))
    ego = ego_msg(env, 30)
    gt = gt_msg(env, ego.header)
    ((port, out),) = node.step({"objects": gt, "ego": ego})
    assert port == "objects" and isinstance(out, ObjectArray)
    assert out.header.tick == 30 and out.header.frame_id == "ego"
    inside = [o for o in gt.objects if DEFAULT_VIEW.fully_in_view(o.x, o.y, o.length, o.width)]
    assert 0 < len(inside) < len(gt.objects)
    assert out.objects == inside


def test_gt_mode_does_not_import_torch() -> None:
    code = ("import sys; from nodes.perception.node import PerceptionNode, PerceptionParams; "
            "PerceptionNode(PerceptionParams(mode='gt')); assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_weights_fail_at_construction(tmp_path) -> None:
    path = tmp_path / "perception.pt"
    with pytest.raises(ValueError) as err:
        PerceptionNode(PerceptionParams(model=str(path)))
    assert str(path) in str(err.value) and "drivestack train perception" in str(err.value)


def test_cnn_mode_tracks_the_vehicles_in_view(env) -> None:
    node = PerceptionNode(PerceptionParams())
    node.reset(0)
    ids_by_vehicle: dict[int, set[int]] = {}
    for tick in range(12):
        env.step(np.array([0.1, 0.0], np.float32))
        ego = ego_msg(env, tick)
        cam = Image.from_array(env.render(), Header(episode=0, tick=tick, frame_id="camera"))
        ((_, out),) = node.step({"camera": cam, "ego": ego})
        gt = [o for o in gt_msg(env, ego.header).objects
              if DEFAULT_VIEW.fully_in_view(o.x, o.y, o.length, o.width)]
        if tick < 6:
            continue
        assert len(out.objects) >= 0.8 * len(gt) and len(out.objects) <= len(gt) + 1
        for o in out.objects:
            g = min(gt, key=lambda g, o=o: np.hypot(g.x - o.x, g.y - o.y))
            assert np.hypot(g.x - o.x, g.y - o.y) < 0.6
            assert abs(g.vx - o.vx) < 2.0 and abs(o.speed - np.hypot(ego.vx + o.vx, ego.vy + o.vy)) < 1e-9
            assert o.world_x == pytest.approx(ego.x + o.x) and 0 <= o.lane_index <= 3
            ids_by_vehicle.setdefault(g.id, set()).add(o.id)
    assert ids_by_vehicle and all(len(s) == 1 for s in ids_by_vehicle.values())
    assert node.counters()["frames"] == 12
