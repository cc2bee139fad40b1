"""make_idm_ego, the one swap of the ego for highway-env's IDM/MOBIL car, in both worlds that use it: the planner's
reference world (a meta-action ego with target lane and speed) and the sim's (a ContinuousAction ego)."""

import gymnasium as gym
import numpy as np
from highway_env.vehicle.behavior import IDMVehicle

from sim.highway import SimParams, make_env, make_idm_ego, use_road


def _swap(env: gym.Env, *steps: int) -> tuple:
    env.reset(seed=1)
    for action in steps:
        env.step(action)
    ego = env.unwrapped.vehicle
    before = (ego.position.copy(), ego.heading, ego.speed, getattr(ego, "target_speed", None),
              getattr(ego, "target_lane_index", None), ego.lane_index)
    make_idm_ego(env)
    idm = env.unwrapped.vehicle
    assert isinstance(idm, IDMVehicle) and idm is not ego
    assert idm in env.unwrapped.road.vehicles and ego not in env.unwrapped.road.vehicles
    assert env.unwrapped.action_type.controlled_vehicle is idm
    assert np.array_equal(idm.position, before[0]) and (idm.heading, idm.speed) == before[1:3]
    return idm, before


def test_a_meta_action_ego_keeps_its_targets():
    env = use_road(gym.make("highway-v0", config={"vehicles_count": 5}))
    idm, (_, _, speed, target_speed, target_lane, _) = _swap(env, 3)  # FASTER: a set-point above its speed
    assert target_speed is not None and target_speed > speed + 0.1
    assert idm.target_speed == target_speed and idm.target_lane_index == target_lane
    env.close()


def test_a_continuous_action_ego_aims_at_its_lane_and_speed():
    env = make_env(SimParams(vehicles_count=5, render=False))
    idm, (_, _, speed, target_speed, _, lane) = _swap(env)
    assert target_speed is None  # a plain vehicle: no set-point of its own
    assert idm.target_speed == speed and idm.target_lane_index == lane
    env.step(np.array([1.0, 0.5]))  # the command is ignored: the IDM car drives itself
    assert abs(env.unwrapped.vehicle.heading) < 0.1
    env.close()
