"""sim.fast_road against stock highway-env: the same world, bit for bit, at every tick.

The ego is driven by the stack's own decision and control (PlannerEnv, one control tick per env step) with
meta-actions drawn from a seeded generator; the traffic is highway-env's IDM/MOBIL, dense enough that it
changes lanes and collides within the short episodes. Every vehicle's position, heading, speed, crash flag
and lane is compared as exact doubles after every tick.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from highway_env.road.road import Road, RoadNetwork
from highway_env.vehicle.behavior import IDMVehicle

from msgs import Action, ControlCommand, encode
from nodes.planning.env import PlannerEnv, PlannerEnvConfig
from sim.fast_road import FastRoad
from sim.highway import HighwaySim, SimParams

TICKS = 60  # control ticks per episode (4 s)
HOLD = 15  # ticks a meta-action is held (the stack's 1 Hz plan rate)
EPISODES = 20


def state(road: Road) -> list[tuple]:
    """Every vehicle's state as exact values (positions as their bytes)."""
    return [(v.position.tobytes(), float(v.heading), float(v.speed), bool(v.crashed), v.lane_index,
             getattr(v, "target_lane_index", None)) for v in road.vehicles]


def planner_env(road: str, vehicles: int, density: float) -> PlannerEnv:
    sim = SimParams(env_id="highway-v0", vehicles_count=vehicles, vehicles_density=density, render=False, road=road)
    return PlannerEnv(PlannerEnvConfig(sim=sim, plan_period_ticks=1, overrides=True))


def test_fast_road_drives_stock_highway_envs_trajectories_bit_for_bit():
    # highway-v0's density on even seeds; three times it on odd ones, where the traffic collides
    envs = {(road, density): planner_env(road, vehicles=25, density=density)
            for road in ("stock", "fast") for density in (1.0, 3.0)}
    rng = np.random.default_rng(0)
    traffic_crashes = traffic_lane_changes = ego_lane_changes = 0
    for seed in range(EPISODES):
        density = 3.0 if seed % 2 else 1.0
        stock, fast = envs["stock", density], envs["fast", density]
        for env in (stock, fast):
            env.reset(seed=seed)
        roads = stock.sim.unwrapped.road, fast.sim.unwrapped.road
        assert type(roads[0]) is Road and type(roads[1]) is FastRoad
        assert state(roads[0]) == state(roads[1])
        ego = stock.sim.unwrapped.vehicle
        lanes = [v.lane_index for v in roads[0].vehicles]
        action = int(Action.IDLE)
        for tick in range(TICKS):
            if tick % HOLD == 0:
                action = int(rng.choice([Action.LANE_LEFT, Action.LANE_RIGHT, Action.FASTER, Action.IDLE]))
            out = stock.step(action), fast.step(action)
            assert state(roads[0]) == state(roads[1]), f"seed {seed}, tick {tick}"
            assert out[0][0].tobytes() == out[1][0].tobytes()  # the planner's observation
            assert out[0][1:4] == out[1][1:4]  # reward, terminated, truncated
            for i, v in enumerate(roads[0].vehicles):
                if v.lane_index != lanes[i]:
                    lanes[i] = v.lane_index
                    if v is ego:
                        ego_lane_changes += 1
                    else:
                        traffic_lane_changes += 1
            if out[0][2] or out[0][3]:
                break
        traffic_crashes += sum(v.crashed for v in roads[0].vehicles if v is not ego)
    # The comparison covered what the fast road changes: lane changes and collisions among the traffic.
    assert traffic_crashes >= 5 and traffic_lane_changes >= 20 and ego_lane_changes >= 3, (
        traffic_crashes, traffic_lane_changes, ego_lane_changes)


@pytest.mark.parametrize("env_id, ego_driver", [("highway-v0", "idm"), ("highway-fast-v0", "stack")])
def test_fast_road_matches_stock_for_the_idm_ego_and_the_training_world(env_id, ego_driver):
    """The IDM baseline's ego (an IDMVehicle, so the fast act drives it too) and highway-fast-v0, where
    only the ego checks collisions (the planner's training world)."""
    sims = {road: HighwaySim(SimParams(env_id=env_id, vehicles_count=25, vehicles_density=1.5, render=False,
                                       ego_driver=ego_driver, road=road)) for road in ("stock", "fast")}
    for seed in (3, 4):
        for sim in sims.values():
            sim.reset(seed, 0)
        for tick in range(45):
            cmd = ControlCommand(acceleration=0.3, steering=0.02 * (-1) ** (tick // 10))
            for sim in sims.values():
                sim.prepare()  # the sim node's work-ahead of road.act, as the running stack does
                sim.step(cmd)
            assert state(sims["stock"].unwrapped.road) == state(sims["fast"].unwrapped.road), (seed, tick)
            if sims["stock"].end_reason:
                break


def test_fast_road_publishes_stocks_bytes_camera_included():
    """Every message the sim node publishes, camera frames included (the fast road also draws the lane
    markings and reads the frame out its own way), is byte for byte stock's."""
    sims = {road: HighwaySim(SimParams(vehicles_count=30, road=road)) for road in ("stock", "fast")}
    rng = np.random.default_rng(1)
    for seed in (5, 6):
        for sim in sims.values():
            sim.reset(seed, 0)
        for _ in range(40):
            cmd = ControlCommand(acceleration=float(rng.uniform(-1, 1)), steering=float(rng.uniform(-0.1, 0.1)))
            frames = {}
            for road, sim in sims.items():
                sim.step(cmd)
                frames[road] = [bytes(f) for topic, msg in (("/sim/camera", sim.camera(sim.header("camera"))),
                                                            ("/sim/ego", sim.ego_state(sim.header())),
                                                            ("/sim/objects_gt", sim.objects_gt(sim.header("ego"))))
                                for f in encode(topic, msg)]
            assert frames["stock"] == frames["fast"]
            if sims["stock"].end_reason:
                break


def straight_road(lanes: int = 3) -> tuple[Road, FastRoad]:
    network = RoadNetwork.straight_road_network(lanes, speed_limit=30)
    stock = Road(network=network, np_random=np.random.default_rng(0))
    return stock, FastRoad.from_road(stock)


def place(road: Road, xy: list[tuple[float, float]], speeds: list[float]) -> list[IDMVehicle]:
    road.vehicles = [IDMVehicle(road, np.array(p, dtype=np.float64), speed=s) for p, s in zip(xy, speeds, strict=True)]
    return road.vehicles


def test_neighbour_search_breaks_ties_as_stock_does():
    """Vehicles at exactly the same longitudinal position: stock keeps the last such vehicle in the road's
    list ahead and the first behind; a vehicle half-way between lanes is on both (stock's 1 m margin)."""
    xy = [(10.0, 4.0), (30.0, 4.0), (10.0, 4.0), (20.0, 4.0), (30.0, 4.0), (20.0, 6.5), (30.0, 2.9), (20.0, 9.1),
          (-6.0, 4.0), (40.0, 0.0), (25.0, 4.0)]
    stock, fast = straight_road()
    stock_vehicles = place(stock, xy, [20.0] * len(xy))
    fast.vehicles = stock_vehicles
    with fast.frozen():
        for vehicle in stock_vehicles:
            for lane in range(3):
                index = ("0", "1", lane)
                assert fast.neighbour_vehicles(vehicle, index) == stock.neighbour_vehicles(vehicle, index)
            assert fast.neighbour_vehicles(vehicle) == stock.neighbour_vehicles(vehicle)
    ahead, behind = stock.neighbour_vehicles(stock_vehicles[10])  # x = 25 in lane 1
    assert ahead is stock_vehicles[6] and behind is stock_vehicles[3]  # the last of three at 30, the first of two at 20
    assert stock.neighbour_vehicles(stock_vehicles[0]) == (stock_vehicles[2], None)  # a tie with itself excluded


def test_pileup_impacts_follow_stocks_pair_order():
    """Three overlapping vehicles: an impact set by one pair is overwritten by the next, so only stock's
    pair order gives stock's positions after the next step."""
    stock, _ = straight_road()
    place(stock, [(50.0, 4.0), (53.0, 4.5), (55.5, 3.2), (200.0, 0.0), (51.0, 8.0)], [25.0, 20.0, 15.0, 25.0, 22.0])
    other = copy.deepcopy(stock)
    fast = FastRoad.from_road(other)
    for v in fast.vehicles:
        v.road = fast
    for _ in range(3):
        for road in (stock, fast):
            road.act()
            road.step(1 / 15)
        assert state(stock) == state(fast)
    assert sum(v.crashed for v in stock.vehicles) >= 3
