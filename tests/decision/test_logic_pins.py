"""Decision's scene geometry and logic pinned at the boundaries their docstrings state: the lane-change gap
requirement accepted at exactly its length (gap >= need) and with a standing ego, a lane from its label
(lane 0 included) or from y / lane width, the leader "at or in front of" the ego, the nearest follower among
several, TTC 0 at touching boxes, an ongoing change aborted only below lc_abort_gap_ratio of the requirement,
and the minimal-risk ramp starting from the ego's own speed."""

from __future__ import annotations

import msgspec
import pytest

from msgs import Action, EgoState, Header, Mode, Object, ObjectArray, Plan
from nodes.decision.logic import DecisionLogic, DecisionParams
from nodes.decision.scene import (
    Neighbour,
    Snapshot,
    Track,
    in_corridor,
    lane_change_refusal,
    lane_of,
    leader_and_follower,
    required_decel,
    speed_cap,
    time_to_collision,
)

P = DecisionParams()


def ego(speed: float = 10.0, y: float = 4.0, x: float = 0.0) -> EgoState:
    lane = int(round(y / 4.0))
    return EgoState(x=x, y=y, heading=0.0, speed=speed, vx=speed, vy=0.0, lane_index=lane,
                    lateral_offset=y - 4.0 * lane)


def track(x: float, y: float = 0.0, vx: float = 10.0, lane: int = -1, id: int = 1) -> Track:
    return Track(id=id, x=x, y=y, vx=vx, vy=0.0, length=5.0, width=2.0, lane_index=lane)


def neighbour(gap: float, speed: float) -> Neighbour:
    return Neighbour(track=track(0.0), gap=gap, speed=speed)


def test_a_gap_of_exactly_the_requirement_is_accepted():
    # ego 10 m/s: front need 5 + 10 * 0.5 = 10 m to a lead as fast; rear need 5 + 10 * 0.3 = 8 m to a
    # follower as fast (no closing terms)
    e = ego(10.0)
    assert lane_change_refusal(neighbour(10.0, 10.0), None, e, P) is None
    assert lane_change_refusal(neighbour(9.99, 10.0), None, e, P) is not None
    assert lane_change_refusal(None, neighbour(8.0, 10.0), e, P) is None
    assert lane_change_refusal(None, neighbour(7.99, 10.0), e, P) is not None


def test_a_standing_ego_needs_only_the_minimum_front_gap():
    assert lane_change_refusal(neighbour(5.0, 0.0), None, ego(0.0), P) is None  # 5 + 0 * 0.5 + 0


def test_the_default_ratio_is_the_full_requirement():
    e = ego(10.0)
    assert lane_change_refusal(neighbour(9.0, 10.0), None, e, P) is not None
    assert lane_change_refusal(neighbour(9.0, 10.0), None, e, P, ratio=0.5) is None


def test_a_lane_from_its_label_else_from_y():
    assert lane_of(track(0.0, y=5.0, lane=0), 4.0) == 0  # the label wins, lane 0 included
    assert lane_of(track(0.0, y=8.3, lane=-1), 4.0) == 2  # round(8.3 / 4)
    assert lane_of(track(0.0, y=5.9, lane=-1), 3.0) == 2  # round(5.9 / 3)


def test_the_leader_is_at_or_in_front_of_the_ego_and_the_follower_the_nearest_behind():
    e = ego(10.0, x=100.0)
    level, near, far = track(100.0, id=1), track(90.0, id=2), track(70.0, id=3)
    lead, follow = leader_and_follower((far, level, near), e, lambda t: True)
    assert lead is not None and lead.track.id == 1  # level with the ego: ahead
    assert follow is not None and follow.track.id == 2
    assert leader_and_follower((level,), e, lambda t: True)[1] is None


def test_ttc_is_zero_at_touching_boxes_even_without_closing():
    assert time_to_collision(neighbour(0.0, 10.0), ego(10.0)) == 0.0


def test_an_ongoing_change_is_aborted_only_below_the_abort_ratio():
    # the rear requirement to a follower as fast as the ego (25 m/s) is 5 + 25 * 0.3 = 12.5 m; abort at half of
    # it (6.25 m): a 9 m gap (centre 14 m behind) keeps the change going
    logic = DecisionLogic()
    e = ego(25.0, y=4.0)
    target = logic.step(0, e, ObjectArray(objects=[]), Plan(action=int(Action.LANE_LEFT), replanned=True))
    assert target.target_lane == 0
    still = ego(25.0, y=3.0)  # still in lane 1
    behind = Object(id=4, x=-14.0, y=-3.0, vx=0.0, vy=0.0)  # lane 0, 9 m bumper to bumper, same speed
    target = logic.step(1, still, ObjectArray(objects=[behind]), Plan(action=int(Action.LANE_LEFT)))
    assert (target.target_lane, target.mode) == (0, Mode.NOMINAL)


def test_the_minimal_risk_ramp_starts_from_the_ego_speed():
    # nothing ever received: minimal risk from the first tick, from 0.3 m/s down by mrm_decel * tick
    logic = DecisionLogic()
    target = logic.step(0, ego(0.3), None, None)
    assert target.mode == Mode.MINIMAL_RISK
    assert target.target_speed == pytest.approx(max(P.mrm_min_speed, 0.3 - P.mrm_decel * P.tick_period))


def test_ttc_is_gap_over_closing_speed_for_small_gaps_and_slow_closing():
    assert time_to_collision(neighbour(0.5, 5.0), ego(10.0)) == pytest.approx(0.1)  # 0.5 m at 5 m/s
    assert time_to_collision(neighbour(10.0, 9.5), ego(10.0)) == pytest.approx(20.0)  # 10 m at 0.5 m/s
    assert time_to_collision(neighbour(10.0, 10.0), ego(10.0)) == float("inf")


@pytest.mark.parametrize(("gap", "lead_speed", "speed", "why"), [
    # headway: 20 + (25 - 3 - 1 * 20) / 2 = 21 (braking sqrt(20^2 + 2 * 3 * 22) = 23.07, TTC 20 + 25 / 3 = 28.3)
    (25.0, 20.0, 21.0, "headway"),
    # braking: sqrt(10^2 + 2 * 3 * 27) = 16.19 (headway 10 + 17 / 2 = 18.5, TTC 10 + 30 / 3 = 20)
    (30.0, 10.0, (100.0 + 6.0 * 27.0) ** 0.5, "braking distance"),
    # TTC: 0 + 20 / 3 = 6.67 (headway (20 - 3) / 2 = 8.5, braking sqrt(6 * 17) = 10.1)
    (20.0, 0.0, 20.0 / 3.0, "ttc"),
])
def test_the_speed_cap_is_the_lowest_of_its_three_limits(gap, lead_speed, speed, why):
    cap = speed_cap(neighbour(gap, lead_speed), ego(25.0), P)
    assert cap.speed == pytest.approx(speed) and cap.why == why


def test_the_required_braking_to_stop_the_closing_at_the_stop_gap():
    # closing 2 m/s with 0.5 m of room before the 1 m stop gap: 2^2 / (2 * 0.5) = 4 m/s^2; no room: infinite
    assert required_decel(neighbour(1.5, 8.0), ego(10.0), P) == pytest.approx(4.0)
    assert required_decel(neighbour(1.0, 8.0), ego(10.0), P) == float("inf")
    assert required_decel(neighbour(3.0, 9.5), ego(10.0), P) == pytest.approx(0.25 / 4.0)  # 0.5 m/s, 2 m room
    assert required_decel(neighbour(3.0, 12.0), ego(10.0), P) == 0.0  # opening


def test_corridor_edges_and_cut_in_prediction():
    p = DecisionParams(lateral_margin=0.5, cut_in_horizon=5.0)  # half width 0.5 * (2 + 2) + 0.5 = 2.5 m
    e = ego(10.0)
    assert not in_corridor(track(20.0, y=2.5), 0.0, e, p)  # on the edge: outside
    # moving in at exactly the minimum lateral speed: predicted 5 s ahead at y = 4.5 - 2.5 = 2.0, inside
    assert in_corridor(Track(1, 20.0, 4.5, 10.0, -0.5, 5.0, 2.0, -1), 0.0, e, p)
    # predicted onto the edge (4.5 - 0.5 * 4 = 2.5 m after 4 s): outside
    assert not in_corridor(Track(1, 20.0, 4.5, 10.0, -0.5, 5.0, 2.0, -1), 0.0, e,
                           DecisionParams(lateral_margin=0.5, cut_in_horizon=4.0))
    # crossing the corridor within the horizon (3 m to -7 m), and landing on its centre line
    q = DecisionParams()
    assert in_corridor(Track(1, 20.0, 3.0, 10.0, -10.0, 5.0, 2.0, -1), 0.0, e, q)
    assert in_corridor(Track(1, 20.0, 3.0, 10.0, -3.0, 5.0, 2.0, -1), 0.0, e, q)


def test_the_target_lane_and_a_level_vehicle_are_in_the_path():
    logic = DecisionLogic()
    e = ego(25.0, y=4.0)
    logic.step(0, e, ObjectArray(objects=[]), Plan(action=int(Action.LANE_LEFT), replanned=True))
    # the change is accepted (target lane 0); a slow car 40 m ahead in lane 0 only caps the speed
    slow = Object(id=3, x=40.0, y=-4.0, vx=-15.0, vy=0.0)
    target = logic.step(1, e, ObjectArray(objects=[slow]), Plan(action=int(Action.LANE_LEFT)))
    assert target.target_lane == 0 and target.target_speed < 20.0
    # a car level with the ego in its lane (overlapping): TTC 0, emergency
    level = Object(id=4, x=0.0, y=0.0, vx=0.0, vy=0.0)
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[level]), Plan(action=1))
    assert target.mode == Mode.EMERGENCY


def test_the_emergency_hysteresis_is_forgotten_once_the_road_is_clear():
    # TTC 1.0 s: emergency; then nobody ahead; then TTC 1.8 s (between entry 1.5 s and exit 2.0 s): no emergency
    logic = DecisionLogic()
    e = ego(20.0)

    def lead(gap: float, closing: float) -> ObjectArray:
        return ObjectArray(objects=[Object(id=5, x=gap + 5.0, y=0.0, vx=-closing, vy=0.0)])

    assert logic.step(0, e, lead(10.0, 10.0), Plan(action=1)).mode == Mode.EMERGENCY
    assert logic.step(1, e, ObjectArray(objects=[]), Plan(action=1)).mode == Mode.NOMINAL
    assert logic.step(2, e, lead(9.0, 5.0), Plan(action=1)).mode != Mode.EMERGENCY  # braking 25 / 16 m/s^2 only


def car_ahead(gap: float, closing: float, id: int = 5) -> Object:
    """A vehicle in the ego's lane `gap` m ahead bumper to bumper, `closing` m/s slower than the ego."""
    return Object(id=id, x=gap + 5.0, y=0.0, vx=-closing, vy=0.0)


def test_the_lowest_cap_wins_not_the_slowest_lead():
    # A: 15 m/s, 100 m ahead (cap 28.4 m/s, braking distance); B: 20 m/s, 10 m ahead (cap 17 m/s, headway)
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[car_ahead(100.0, 10.0, 1),
                                                                    car_ahead(10.0, 5.0, 2)]), Plan(action=1))
    assert target.target_speed == pytest.approx(17.0) and "vehicle 2" in target.reason


def test_a_cap_within_the_tolerance_is_applied_but_not_reported():
    # a lead at 24 m/s 28.6 m ahead: headway cap 24 + (28.6 - 3 - 24) / 2 = 24.8 m/s, 0.2 m/s under the 25 m/s set-point
    target = DecisionLogic(DecisionParams(initial_speed=25.0)).step(
        0, ego(25.0), ObjectArray(objects=[car_ahead(28.6, 1.0)]), Plan(action=1))
    assert target.target_speed == pytest.approx(24.8) and target.mode == Mode.NOMINAL


@pytest.mark.parametrize(("gap", "closing"), [
    (15.0, 10.0),  # TTC exactly 1.5 s (braking needed 100 / 28 = 3.6 m/s^2)
    (19.0, 12.0),  # braking needed exactly 144 / (2 * 18) = 4 m/s^2 (TTC 1.58 s)
])
def test_emergency_thresholds_are_strict(gap, closing):
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[car_ahead(gap, closing)]), Plan(action=1))
    assert target.mode != Mode.EMERGENCY and target.max_decel == 0.0


def test_the_emergency_names_the_lead_with_the_lowest_ttc():
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[car_ahead(10.0, 8.0, 1),
                                                                    car_ahead(4.0, 8.0, 2)]), Plan(action=1))
    assert target.mode == Mode.EMERGENCY and "vehicle 2 4.0 m ahead" in target.reason.split("; ")[0]


def test_without_lc_abort_an_ongoing_change_goes_on():
    logic = DecisionLogic(DecisionParams(lc_abort=False))
    logic.step(0, ego(25.0, y=4.0), ObjectArray(objects=[]), Plan(action=int(Action.LANE_LEFT), replanned=True))
    close = Object(id=4, x=-7.0, y=-3.0, vx=8.0, vy=0.0)  # lane 0, 2 m behind and 8 m/s faster
    target = logic.step(1, ego(25.0, y=3.0), ObjectArray(objects=[close]), Plan(action=int(Action.LANE_LEFT)))
    assert target.target_lane == 0 and target.mode != Mode.OVERRIDE


@pytest.mark.parametrize(("ticks", "period"), [(3, 0.1), (10, 0.1), (0, 0.1)])
def test_a_snapshot_is_carried_forward_along_the_road_only(ticks, period):
    objects = ObjectArray(objects=[Object(id=9, x=20.0, y=-4.0, vx=-2.0, vy=0.5, lane_index=0)])
    snap = Snapshot.of(objects, ego(10.0, x=100.0), tick=7)
    (t,) = snap.at(7 + ticks, period)
    dt = ticks * period
    assert (t.id, t.x, t.y, t.vx, t.vy, t.lane_index) == (9, pytest.approx(120.0 + 8.0 * dt), 0.0, 8.0, 0.5, 0)
    assert snap.at(5, period) == snap.tracks  # an older tick: not carried back


def test_the_target_lane_follows_a_road_that_loses_lanes_and_starts_in_lane_zero():
    logic = DecisionLogic()
    assert logic.step(0, ego(25.0, y=0.0), ObjectArray(objects=[]), Plan(action=1)).target_lane == 0
    logic = DecisionLogic()
    e3 = ego(25.0, y=12.0)  # lane 3 of 4
    assert logic.step(0, e3, ObjectArray(objects=[]), Plan(action=1)).target_lane == 3
    two = msgspec.structs.replace(ego(25.0, y=0.0), lanes_count=2)  # the road narrows to 2 lanes
    assert logic.step(1, two, ObjectArray(objects=[]), Plan(action=1)).target_lane == 1


def test_input_ticks_age_the_inputs():
    p = Plan(action=1)
    logic = DecisionLogic()
    # objects passed with an old tick are stale at once
    t = logic.step(10, ego(), ObjectArray(objects=[]), p, objects_tick=5)
    assert t.mode == Mode.MINIMAL_RISK and "perception stale 5 ticks > 3" in t.reason
    logic = DecisionLogic()
    logic.step(0, ego(), ObjectArray(objects=[]), p)
    assert logic.step(2, ego(), None, p).mode == Mode.NOMINAL  # nothing new, 2 ticks old: still fresh
    assert logic.step(10, ego(), None, p, objects_tick=10).mode == Mode.NOMINAL  # received at 10
    logic = DecisionLogic()
    logic.step(0, ego(), ObjectArray(objects=[]), p)
    assert logic.step(2, ego(), ObjectArray(objects=[]), None).mode == Mode.NOMINAL  # plan 2 ticks old
    assert logic.step(10, ego(), ObjectArray(objects=[]), None, plan_tick=10).mode == Mode.NOMINAL


def test_a_lane_change_asked_during_minimal_risk_is_not_made_later():
    logic = DecisionLogic()
    logic.step(0, ego(25.0), None, Plan(action=1, replanned=True))  # no perception yet: minimal risk
    logic.step(1, ego(25.0), None, Plan(action=int(Action.LANE_LEFT), replanned=True))
    target = logic.step(2, ego(25.0), ObjectArray(objects=[]), Plan(action=int(Action.LANE_LEFT)))
    assert target.target_lane == 1 and target.mode == Mode.NOMINAL


def test_the_target_carries_the_ego_header_and_joins_reasons_by_semicolons():
    e = msgspec.structs.replace(ego(25.0), header=Header(episode=2, tick=33))
    target = DecisionLogic().step(33, e, ObjectArray(objects=[car_ahead(4.0, 8.0)]), Plan(action=1))
    assert target.header == e.header
    assert target.reason.startswith("emergency brake: ") and "; speed capped: " in target.reason


def test_an_unknown_action_names_the_range():
    with pytest.raises(ValueError, match=r"0\.\.4"):
        DecisionLogic().step(0, ego(), ObjectArray(objects=[]), Plan(action=9))


def test_a_refused_change_from_the_last_lane_is_retried():
    # ego in lane 3 of 4 asks for lane 2; a car alongside in lane 2 refuses it; once it has gone, the retry takes it
    logic = DecisionLogic()
    e = ego(25.0, y=12.0)
    alongside = Object(id=6, x=1.0, y=-4.0, vx=0.0, vy=0.0)
    t = logic.step(0, e, ObjectArray(objects=[alongside]), Plan(action=int(Action.LANE_LEFT), replanned=True))
    assert (t.target_lane, t.mode) == (3, Mode.OVERRIDE)
    t = logic.step(1, e, ObjectArray(objects=[]), Plan(action=int(Action.LANE_LEFT)))
    assert t.target_lane == 2


def test_a_cap_exactly_at_the_tolerance_is_not_reported():
    # headway cap 24 + (28 - 3 - 24) / 2 = 24.5 m/s: exactly 0.5 m/s under the 25 m/s set-point
    target = DecisionLogic(DecisionParams(initial_speed=25.0)).step(
        0, ego(25.0), ObjectArray(objects=[car_ahead(28.0, 1.0)]), Plan(action=1))
    assert target.target_speed == pytest.approx(24.5) and target.mode == Mode.NOMINAL


def test_the_lowest_ttc_lead_is_named_whatever_the_order():
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[car_ahead(4.0, 8.0, 2),
                                                                    car_ahead(10.0, 8.0, 1)]), Plan(action=1))
    assert "vehicle 2 4.0 m ahead" in target.reason.split("; ")[0]  # the emergency part


def test_an_emergency_at_exactly_the_ttc_limit_is_reported_by_its_braking():
    # gap 18 m closing at 12 m/s: TTC 1.5 s (not below), braking 144 / 34 = 4.2 m/s^2 > 4
    target = DecisionLogic().step(0, ego(25.0), ObjectArray(objects=[car_ahead(18.0, 12.0)]), Plan(action=1))
    assert target.mode == Mode.EMERGENCY and "emergency brake: needs 4.2 m/s^2 > 4.0" in target.reason


def test_a_vehicle_in_the_corridor_caps_the_speed_whatever_its_lane_label():
    # the ego straddles the line (y = 2 m, lane 0); a slow car 1.5 m across, labelled lane 1, is in its corridor
    e = EgoState(x=0.0, y=2.0, heading=0.0, speed=25.0, vx=25.0, vy=0.0, lane_index=0, lateral_offset=2.0)
    slow = Object(id=8, x=40.0, y=1.5, vx=-10.0, vy=0.0, lane_index=1)
    target = DecisionLogic().step(0, e, ObjectArray(objects=[slow]), Plan(action=1))
    assert target.target_speed < 25.0 and target.mode == Mode.FOLLOWING  # under the 25 m/s set-point
