"""Scripted scenarios in closed loop on the real highway-env (HighwaySim + DecisionLogic + PID control).

Each ends without a collision and with the expected sequence of modes.
"""

from __future__ import annotations

import pytest

from msgs import Action, Mode
from nodes.decision.logic import DecisionParams
from tests.decision.scenario import Scenario

NOMINAL, OVERRIDE, EMERGENCY, MINIMAL_RISK = Mode.NOMINAL, Mode.OVERRIDE, Mode.EMERGENCY, Mode.MINIMAL_RISK
FOLLOWING = Mode.FOLLOWING


def gaps_to(run, vehicle_x: list[float]) -> list[float]:
    return [x - r.ego.x - 5.0 for r, x in zip(run.records, vehicle_x, strict=True)]


def test_cut_in_10_m_ahead_at_lower_speed():
    s = Scenario(ego_lane=1, ego_speed=25.0)
    other = s.add(10.0, lane=2, speed=20.0, cut_into=1)  # starts steering into the ego's lane at once
    xs: list[float] = []
    run = s.run(90, on_tick=lambda: xs.append(float(other.position[0])))
    assert not run.crashed
    assert run.modes == [NOMINAL, EMERGENCY, FOLLOWING]
    first = next(r for r in run.records if r.target.mode == EMERGENCY)
    assert first.tick <= 3  # seen while it was still crossing the lane line
    assert first.target.max_decel > 0 and "emergency brake: TTC" in first.target.reason
    assert min(gaps_to(run, xs)) > 1.0
    # then it follows the slower vehicle, gently: never far below its speed
    assert all(r.target.target_speed >= 16.5 for r in run.records if r.target.mode == FOLLOWING)
    assert min(r.ego.speed for r in run.records) > 16.0


def test_stopped_vehicle_60_m_ahead_in_the_ego_lane():
    # At 20 m/s; at 25 m/s, 55 m of bumper gap is less than the 62.5 m highway-env's 5 m/s^2 needs.
    s = Scenario(ego_lane=1, ego_speed=20.0)
    stopped = s.add(60.0, lane=1, speed=0.0)
    run = s.run(150)
    assert not run.crashed
    assert run.modes == [FOLLOWING, EMERGENCY, FOLLOWING]
    assert "braking distance" in run.records[0].target.reason
    last = run.records[-1]
    assert last.ego.speed < 0.1 and last.ego.lane_index == 1
    assert 1.0 < stopped.position[0] - last.ego.x - 5.0 < 5.0  # stopped close behind it


def test_stopped_vehicle_seen_at_the_edge_of_the_camera_at_25_mps():
    s = Scenario(ego_lane=1, ego_speed=25.0)
    s.add(85.0, lane=1, speed=0.0)  # enters the 76 m view after a few ticks
    run = s.run(150)
    assert not run.crashed
    assert run.modes == [NOMINAL, EMERGENCY, FOLLOWING]
    assert run.records[-1].ego.speed < 0.5


def test_lane_change_into_an_occupied_gap_is_refused():
    s = Scenario(ego_lane=1, ego_speed=25.0)
    s.add(-3.0, lane=0, speed=25.0)  # alongside, in the lane to the left
    run = s.run(45, actions={1: Action.LANE_LEFT})  # asked at 1 s, IDLE again at 2 s
    assert not run.crashed
    assert run.modes == [NOMINAL, OVERRIDE, NOMINAL]
    refused = [r for r in run.records if r.target.mode == OVERRIDE]
    assert [r.tick for r in refused] == list(range(15, 30))
    assert refused[0].target.reason == "lane change refused: rear gap -2.0 m < 12.5 m"
    assert all(r.target.target_lane == 1 and r.ego.lane_index == 1 for r in run.records)
    assert max(abs(r.ego.y - 4.0) for r in run.records) < 0.05


def test_the_same_lane_change_without_overrides_collides():
    s = Scenario(ego_lane=1, ego_speed=25.0, params=DecisionParams(overrides=False))
    s.add(-3.0, lane=0, speed=25.0)
    run = s.run(90, actions={1: Action.LANE_LEFT})
    assert run.crashed and run.modes == [NOMINAL]


def test_without_interventions_the_lane_change_is_made_and_collides():
    s = Scenario(ego_lane=1, ego_speed=25.0, params=DecisionParams(interventions=False))
    s.add(-3.0, lane=0, speed=25.0)
    run = s.run(90, actions={1: Action.LANE_LEFT})
    assert run.crashed and run.modes == [NOMINAL]


def test_without_interventions_the_ego_still_follows_a_slower_lead():
    s = Scenario(ego_lane=1, ego_speed=25.0, params=DecisionParams(interventions=False))
    lead = s.add(40.0, lane=1, speed=20.0)
    xs: list[float] = []
    run = s.run(150, on_tick=lambda: xs.append(float(lead.position[0])))
    assert not run.crashed
    assert run.modes == [FOLLOWING]  # adaptive cruise from the first tick, never an EMERGENCY brake
    assert all(r.target.max_decel == 0.0 for r in run.records)
    assert run.records[-1].ego.speed == pytest.approx(20.0, abs=1.0)
    assert min(gaps_to(run, xs)) > 10.0


def test_a_refused_lane_change_is_made_once_the_gap_opens():
    s = Scenario(ego_lane=1, ego_speed=25.0)
    s.add(-8.0, lane=0, speed=20.0)  # falling behind at 5 m/s
    run = s.run(90, actions={1: Action.LANE_LEFT})
    assert not run.crashed
    assert run.modes == [NOMINAL, OVERRIDE, NOMINAL]
    accepted = next(r for r in run.records if r.target.target_lane == 0)
    assert 15 < accepted.tick < 30  # within the second the plan held LANE_LEFT
    assert run.records[-1].ego.lane_index == 0


@pytest.mark.parametrize("gap", ["plan", "objects"])
def test_an_input_stream_stops_for_half_a_second(gap: str):
    s = Scenario(ego_lane=1, ego_speed=25.0)
    s.add(50.0, lane=1, speed=25.0)
    s.add(-20.0, lane=2, speed=25.0)
    outage = range(30, 38)  # 8 ticks: 0.53 s
    run = s.run(75, **{f"{gap}_gap": outage})
    assert not run.crashed
    assert run.modes == [NOMINAL, MINIMAL_RISK, NOMINAL]
    mrm = [r for r in run.records if r.target.mode == MINIMAL_RISK]
    stale = "plan" if gap == "plan" else "perception"
    assert [r.tick for r in mrm] == list(range(33, 38))  # stale after 3 ticks, fresh again at once
    assert all(r.target.reason.startswith(f"minimal risk: {stale} stale") for r in mrm)
    speeds = [r.target.target_speed for r in mrm]
    steps = [a - b for a, b in zip(speeds, speeds[1:], strict=False)]
    assert all(step == pytest.approx(1.5 / 15.0) for step in steps)  # a ramp, not a step
    assert speeds[0] > 24.5 and all(r.target.target_lane == 1 for r in run.records)
    assert run.records[-1].target.target_speed == 25.0


def test_a_long_perception_outage_brakes_towards_a_stop_in_lane():
    s = Scenario(ego_lane=2, ego_speed=25.0)
    run = s.run(150, objects_gap=range(15, 10_000))
    assert run.modes == [NOMINAL, MINIMAL_RISK]
    speeds = [r.ego.speed for r in run.records]
    assert speeds[-1] < 25.0 - 1.5 * (150 - 19) / 15.0 + 1.0  # about 1.5 m/s^2 of slowing down
    assert all(abs(r.ego.y - 8.0) < 0.05 for r in run.records)


def test_in_traffic_a_reckless_planner_stays_collision_free():
    """highway-env traffic (shrunk), a planner that asks for 30 m/s and random lane changes every second."""
    import random

    from msgs import ObjectArray, Plan
    from nodes.control.pid import LaneSpeedController
    from nodes.decision.logic import DecisionLogic
    from sim.highway import HighwaySim, SimParams

    sim = HighwaySim(SimParams(vehicles_count=20, duration=15.0, render=False))
    rng = random.Random(3)
    modes = set()
    for episode, seed in enumerate((11, 12)):
        sim.reset(seed=seed, episode=episode)
        logic, control = DecisionLogic(), LaneSpeedController()
        action = Action.IDLE
        while sim.end_reason is None:
            header = sim.header()
            ego = sim.ego_state(header)
            if sim.tick % 15 == 0:
                action = rng.choice([Action.FASTER, Action.FASTER, Action.LANE_LEFT, Action.LANE_RIGHT])
            in_view = [o for o in sim.objects_gt(header).objects if o.in_view]
            objects = ObjectArray(header=header, objects=in_view)
            target = logic.step(sim.tick, ego, objects, Plan(header=header, action=int(action),
                                                              replanned=sim.tick % 15 == 0))
            modes.add(Mode(target.mode))
            sim.step(control.step(ego, target))
        assert sim.end_reason == "time_limit"
    assert OVERRIDE in modes and MINIMAL_RISK not in modes
