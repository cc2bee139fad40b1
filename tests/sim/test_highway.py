"""HighwaySim on the real highway-env, shrunk to a few vehicles and a few ticks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msgs import ControlCommand, encode
from sim.highway import SIM_RATE_HZ, HighwaySim, SimParams, stamp_ns

DT = 1.0 / SIM_RATE_HZ
ZERO = ControlCommand(acceleration=0.0, steering=0.0)
EGO_RGB = (200, 200, 0)  # highway-env draws a ContinuousAction ego in its default yellow
OTHER_RGB = (100, 200, 255)  # and IDM traffic in blue


def frames(sim: HighwaySim) -> list[bytes]:
    out = []
    for topic, msg in (("/sim/camera", sim.camera(sim.header("camera"))),
                       ("/sim/ego", sim.ego_state(sim.header())),
                       ("/sim/objects_gt", sim.objects_gt(sim.header("ego")))):
        out.extend(bytes(f) for f in encode(topic, msg))
    return out


def rollout(seed: int, ticks: int = 20) -> list[bytes]:
    sim = HighwaySim(SimParams(vehicles_count=6))
    sim.reset(seed=seed, episode=0)
    out = frames(sim)
    for k in range(ticks):
        sim.step(ControlCommand(acceleration=0.3 * math.sin(k / 5), steering=0.02 * math.cos(k / 7)))
        out.extend(frames(sim))
    sim.close()
    return out


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    a, b, c = rollout(7), rollout(7), rollout(8)
    assert a == b
    assert a != c


def test_empty_road_physics_in_closed_form():
    sim = HighwaySim(SimParams(vehicles_count=0, render=False))
    sim.reset(seed=1, episode=0)
    e0 = sim.ego_state(sim.header())
    assert (e0.heading, e0.speed, e0.lateral_offset) == (0.0, 25.0, 0.0)
    assert e0.y == e0.lane_index * e0.lane_width
    for _ in range(15):  # 1 s coasting: x = x0 + v t
        sim.step(ZERO)
    e1 = sim.ego_state(sim.header())
    assert e1.x == pytest.approx(e0.x + 25.0, abs=1e-9) and e1.y == e0.y and e1.speed == 25.0
    # 1 s at +0.4 (2 m/s^2): v = v0 + a t; x = x0 + v0 t + a t^2 / 2 - a t dt / 2 (explicit Euler)
    for _ in range(15):
        sim.step(ControlCommand(acceleration=0.4, steering=0.0))
    e2 = sim.ego_state(sim.header())
    assert e2.speed == pytest.approx(27.0, abs=1e-9)
    assert e2.x - e1.x == pytest.approx(25.0 + 1.0 - 2.0 * 1.0 * DT / 2, abs=1e-9)
    assert e2.acceleration == pytest.approx(2.0) and e2.header.tick == 30
    assert e2.header.stamp_ns == 2_000_000_000 == stamp_ns(30)
    assert 0.0 <= e2.reward <= 1.0


def test_lane_convention_y_grows_with_lane_index_and_offset_is_from_that_lanes_centre():
    sim = HighwaySim(SimParams(vehicles_count=0, render=False))
    sim.reset(seed=2, episode=0)
    start = sim.ego_state(sim.header())
    toward_higher = 1.0 if start.lane_index < start.lanes_count - 1 else -1.0
    for _ in range(10):  # steer towards the neighbouring lane, then straighten
        sim.step(ControlCommand(acceleration=0.0, steering=0.03 * toward_higher))
    seen = set()
    for _ in range(40):
        sim.step(ControlCommand(acceleration=0.0, steering=0.0))
        e = sim.ego_state(sim.header())
        assert e.y == pytest.approx(e.lane_index * e.lane_width + e.lateral_offset, abs=1e-9)
        assert abs(e.lateral_offset) <= e.lane_width / 2 + 1e-9
        seen.add(e.lane_index)
    assert start.lane_index + int(toward_higher) in seen


def test_objects_are_every_other_vehicle_in_both_frames_and_match_the_camera():
    sim = HighwaySim(SimParams(vehicles_count=8))
    sim.reset(seed=3, episode=0)
    for _ in range(5):
        sim.step(ZERO)
    ego = sim.ego_state(sim.header())
    objs = sim.objects_gt(sim.header("ego")).objects
    assert len(objs) == 8 and len({o.id for o in objs}) == 8
    pixels = sim.camera(sim.header("camera")).array()
    assert pixels.shape == (150, 600, 3)
    col, row = sim.view.centre_px
    assert tuple(pixels[int(row), int(col)]) == EGO_RGB
    in_view = 0
    for o in objs:
        assert o.world_x - ego.x == pytest.approx(o.x) and o.world_y - ego.y == pytest.approx(o.y)
        assert o.vx == pytest.approx(o.speed * math.cos(o.heading) - ego.vx)
        assert o.y + ego.y == pytest.approx(o.lane_index * 4.0, abs=2.0)
        if o.in_view:
            in_view += 1
            c, r = sim.view.to_pixels(o.x, o.y)
            assert tuple(pixels[int(r), int(c)]) == OTHER_RGB
    assert in_view >= 1


def test_episode_ends_for_collision_offroad_and_time_limit():
    sim = HighwaySim(SimParams(vehicles_count=0, duration=2.0, render=False))
    sim.reset(seed=0, episode=0)
    for _ in range(29):
        sim.step(ZERO)
        assert sim.end_reason is None
    sim.step(ZERO)
    assert sim.end_reason == "time_limit" and sim.tick == 30
    with pytest.raises(RuntimeError, match="ended"):
        sim.step(ZERO)

    sim.reset(seed=0, episode=1)
    for _ in range(100):
        sim.step(ControlCommand(acceleration=0.0, steering=0.3))
        if sim.end_reason:
            break
    assert sim.end_reason == "offroad" and not sim.ego_state(sim.header()).on_road

    crash = HighwaySim(SimParams(vehicles_count=10, vehicles_density=2.0, render=False))
    crash.reset(seed=0, episode=0)
    for _ in range(600):
        crash.step(ControlCommand(acceleration=1.0, steering=0.0))
        if crash.end_reason:
            break
    assert crash.end_reason == "collision" and crash.ego_state(crash.header()).crashed


def test_bad_params_and_commands_fail_early():
    with pytest.raises(ValueError, match="env_id"):
        HighwaySim(SimParams(env_id="merge-v0"))
    with pytest.raises(ValueError, match="duration"):
        HighwaySim(SimParams(duration=0.0))
    sim = HighwaySim(SimParams(vehicles_count=0, render=False))
    with pytest.raises(RuntimeError, match="reset"):
        sim.step(ZERO)
    sim.reset(seed=0, episode=0)
    with pytest.raises(ValueError, match="non-finite"):
        sim.step(ControlCommand(acceleration=float("nan"), steering=0.0))
    with pytest.raises(RuntimeError, match="render"):
        sim.camera(sim.header())
    assert np.isfinite(sim.ego_state(sim.header()).x)


def test_skipping_highway_envs_observation_changes_nothing_we_publish():
    def run(kinematics_obs: bool) -> list[bytes]:
        sim = HighwaySim(SimParams(vehicles_count=4, render=False, kinematics_obs=kinematics_obs))
        sim.reset(seed=5, episode=0)
        out = []
        for _ in range(10):
            sim.step(ControlCommand(acceleration=0.2, steering=0.01))
            out += [bytes(f) for f in encode("/sim/ego", sim.ego_state(sim.header()))]
            out += [bytes(f) for f in encode("/sim/objects_gt", sim.objects_gt(sim.header("ego")))]
        return out

    assert run(False) == run(True)


def test_prepare_moves_the_traffic_decision_out_of_step_and_changes_no_byte():
    """The sim node calls prepare() while the stack computes the next command: the traffic's IDM/MOBIL
    decision then runs once, early, and what every step publishes stays the same, across a reset."""
    def run(prepare: bool) -> tuple[list[bytes], int, int, int]:
        sim = HighwaySim(SimParams(vehicles_count=20, render=False))
        decisions = steps = early = 0
        out = []
        for episode, seed in enumerate((11, 12)):
            sim.reset(seed=seed, episode=episode)
            road_act = sim.unwrapped.road.act

            def counted(act=road_act) -> None:
                nonlocal decisions
                decisions += 1
                act()

            sim.unwrapped.road.act = counted
            for k in range(90):
                if prepare:
                    before = decisions
                    sim.prepare()
                    sim.prepare()  # a second call before the step does nothing more
                    early += decisions - before
                sim.step(ControlCommand(acceleration=0.4 * math.sin(k / 9), steering=0.03 * math.sin(k / 4)))
                steps += 1
                out += [bytes(f) for f in encode("/sim/ego", sim.ego_state(sim.header()))]
                out += [bytes(f) for f in encode("/sim/objects_gt", sim.objects_gt(sim.header("ego")))]
                if sim.end_reason is not None:
                    break
        sim.close()
        return out, decisions, steps, early

    plain, plain_decisions, steps, _ = run(prepare=False)
    prepared, prepared_decisions, _, early = run(prepare=True)
    assert prepared == plain
    assert plain_decisions == steps > 100  # one traffic decision a step ...
    assert prepared_decisions == early == steps  # ... all taken early, none twice
