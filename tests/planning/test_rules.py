"""The rule planner in closed-form scenarios, on observations made by the real "lanes" builder."""

from __future__ import annotations

import math

import msgspec
import pytest

from msgs import Action, EgoState, Header, Object
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.rules import RuleParams, RulePlanner, decode

LANES = ObservationConfig(kind="lanes")
P = RuleParams()
CHANGES = (Action.LANE_LEFT, Action.LANE_RIGHT)


def ego(lane: int = 1, speed: float = 25.0, vy: float = 0.0, offset: float = 0.0) -> EgoState:
    return EgoState(header=Header(), x=0.0, y=4.0 * lane + offset, heading=0.0, speed=speed, vx=speed, vy=vy,
                    lane_index=lane, lateral_offset=offset)


def car(dx: float, lanes_over: int, speed: float, me: EgoState, i: int = 0) -> Object:
    """A vehicle `dx` metres ahead (centre to centre), `lanes_over` lanes right of the ego, at `speed` m/s."""
    return Object(id=i, x=dx, y=4.0 * lanes_over - me.lateral_offset, vx=speed - me.vx, vy=0.0)


def obs(me: EgoState, *cars: tuple[float, int, float]):
    return build_observation([car(dx, lo, v, me, i) for i, (dx, lo, v) in enumerate(cars)], me, LANES)


def test_decode_reads_the_observation_back_in_si_units():
    me = ego(lane=1, speed=24.0)
    scene = decode(obs(me, (25.0, 0, 20.0), (45.0, 0, 22.0), (-15.0, 1, 27.0)))
    assert scene.speed == pytest.approx(24.0, abs=1e-4)
    assert [g for g, _ in scene.own.leads] == pytest.approx([20.0, 40.0], abs=1e-4)  # gaps: minus one length
    assert [v for _, v in scene.own.leads] == pytest.approx([20.0, 22.0], abs=1e-4)
    assert scene.right.leads == () and scene.right.rear == pytest.approx((10.0, 27.0), abs=1e-4)
    assert scene.left.exists and scene.left.leads == () and scene.left.rear is None
    edge = decode(obs(ego(lane=0)))
    assert not edge.left.exists and edge.right.exists


def test_blocked_lane_changes_to_the_free_one():
    me = ego(lane=1, speed=25.0)
    # own lane: a 20 m/s car 22 m ahead (gap 17 m); left: the same at 24 m; right: empty.
    o = obs(me, (22.0, 0, 20.0), (24.0, -1, 20.0))
    planner = RulePlanner()
    # closed form: progress(right) = top set-point * horizon (nothing seen); progress(own) = gap + horizon * 20
    # - min_gap - time_headway * 20 (with the defaults: 240 m against 154 m)
    scene = decode(o)
    assert planner.progress(scene.right, 25.0) == pytest.approx(P.speed_setpoints[-1] * P.horizon)
    own = 17.0 + 20.0 * P.horizon - P.min_gap - P.time_headway * 20.0
    assert planner.progress(scene.own, 25.0) == pytest.approx(own, abs=1e-3)
    assert planner.progress(scene.right, 25.0) - own > P.change_gain
    assert planner.step(o) == Action.LANE_RIGHT


def test_the_lane_with_room_and_speed_wins_over_the_one_with_room_only():
    me = ego(lane=1, speed=25.0)
    # own: gap 17 m at 20 m/s (progress 94 m); left: 40 m gap at 18 m/s (109 m); right: 25 m gap at 29 m/s (138 m)
    o = obs(me, (22.0, 0, 20.0), (45.0, -1, 18.0), (30.0, 1, 29.0))
    assert RulePlanner().step(o) == Action.LANE_RIGHT
    # with the speeds swapped the left one is better (150 m against 94 m)
    o = obs(me, (22.0, 0, 20.0), (45.0, -1, 29.0), (30.0, 1, 18.0))
    assert RulePlanner().step(o) == Action.LANE_LEFT


@pytest.mark.parametrize("closing,expect_change", [(3.0, True), (8.0, True), (10.0, False)])
def test_new_followers_braking_decides_the_change(closing: float, expect_change: bool):
    # Right lane free ahead, a follower 35 m behind (gap 30 m) closing at `closing` m/s. The braking it needs
    # is closing^2 / (2 (gap - rear_min_gap - rear_time_gap * v_follower)); change only if <= safe_decel.
    me = ego(lane=0, speed=25.0)
    v_f = 25.0 + closing
    o = obs(me, (22.0, 0, 20.0), (-35.0, 1, v_f))
    room = 30.0 - P.rear_min_gap - P.rear_time_gap * v_f
    braking = closing**2 / (2.0 * room)
    planner = RulePlanner()
    assert planner.follower_braking(decode(o).right, 25.0) == pytest.approx(braking, rel=1e-3)
    assert (braking <= P.safe_decel) == expect_change  # the scenario sits where it means to
    assert (planner.step(o) == Action.LANE_RIGHT) == expect_change


def test_unsafe_rear_gap_stays_in_lane():
    me = ego(lane=1, speed=25.0)
    # own lane blocked, both neighbours free ahead, but each has a car alongside-behind (gap 3 m)
    o = obs(me, (15.0, 0, 20.0), (-8.0, -1, 25.0), (-8.0, 1, 25.0))
    scene = decode(o)
    planner = RulePlanner()
    assert math.isinf(planner.follower_braking(scene.left, 25.0))
    assert planner.step(o) not in CHANGES


def test_small_gain_does_not_change_lanes():
    me = ego(lane=1, speed=25.0)
    # own lead: gap 30 m at 24 m/s, right lane's at 24.2 m/s: (horizon - time_headway) * 0.2 m/s more progress
    o = obs(me, (35.0, 0, 24.0), (35.0, 1, 24.2), (35.0, -1, 24.0))
    planner = RulePlanner()
    scene = decode(o)
    gain = planner.incentive(scene.right, scene, +1)
    assert gain == pytest.approx((P.horizon - P.time_headway) * 0.2, abs=1e-3)
    assert 0.0 < gain < P.change_gain
    assert planner.step(o) not in CHANGES


SLOW_TO_CHANGE = msgspec.structs.replace(RuleParams(), cooldown=3.0, reverse_cooldown=8.0)


def test_hysteresis_no_change_while_moving_across_nor_straight_back():
    p = SLOW_TO_CHANGE
    planner = RulePlanner(p, period=1.0)
    # 1. the ego is moving right (a change under way): no new change, although the left lane is free
    moving = ego(lane=1, speed=25.0, vy=1.0, offset=1.5)
    blocked_left_free = obs(moving, (22.0, 0, 20.0))
    assert planner.step(blocked_left_free) not in CHANGES
    # 2. settled in the new lane; its lead slows, the left lane (where it came from) is free. Any change waits
    #    `cooldown` after the move, a change back left waits `reverse_cooldown`.
    settled = ego(lane=2, speed=25.0)
    stuck = obs(settled, (22.0, 0, 20.0), (22.0, 1, 20.0))  # own and right blocked, left free
    actions = []
    for _ in range(12):
        actions.append(planner.step(stuck))
    first_left = actions.index(Action.LANE_LEFT)
    assert Action.LANE_RIGHT not in actions
    # step k (k = 1.., the move seen at step 0) happens k seconds after the move
    assert actions[:first_left] == [Action.IDLE] * first_left
    assert first_left + 1 == math.ceil(p.reverse_cooldown)


def test_cooldown_after_a_move_holds_any_change():
    planner = RulePlanner(SLOW_TO_CHANGE, period=1.0)
    planner.step(obs(ego(lane=1, vy=1.0, offset=1.5)))  # seen moving right
    settled = ego(lane=2, speed=25.0)
    stuck_right_free = obs(settled, (22.0, 0, 20.0), (22.0, -1, 20.0))  # the change goes on to the right
    actions = [planner.step(stuck_right_free) for _ in range(5)]
    assert actions.index(Action.LANE_RIGHT) + 1 == math.ceil(SLOW_TO_CHANGE.cooldown)
    assert not set(actions[:actions.index(Action.LANE_RIGHT)]) & set(CHANGES)  # (SLOWER meanwhile: 20 m/s lead)


def test_a_refused_change_is_asked_again_at_once():
    # Decision refused the change (the ego never moved): the planner asks again on the next replan.
    planner = RulePlanner()
    o = obs(ego(lane=1), (22.0, 0, 20.0), (22.0, 1, 20.0))
    assert [planner.step(o) for _ in range(3)] == [Action.LANE_LEFT] * 3


def test_faster_when_free_slower_when_needed():
    planner = RulePlanner()
    free = obs(ego(lane=1, speed=25.0))
    assert planner.step(free) == Action.FASTER  # set-point 25 -> 30
    assert planner.setpoint == 30.0
    assert planner.step(free) not in (Action.FASTER, Action.SLOWER)  # at the top already
    # a 20 m/s lead 15 m ahead (gap 10 m, 0.4 s at 25 m/s), no lane to go to safely
    close = obs(ego(lane=1, speed=25.0), (15.0, 0, 20.0), (-8.0, -1, 25.0), (-8.0, 1, 25.0))
    assert planner.step(close) == Action.SLOWER and planner.setpoint == 25.0
    assert planner.step(close) == Action.SLOWER and planner.setpoint == 20.0
    assert planner.step(close) != Action.SLOWER  # at the lead's speed: nothing to gain by going lower


def test_the_road_edge_is_never_crossed():
    planner = RulePlanner()
    # leftmost lane, blocked; the only free lane is "left" of the road: no lane change at all
    o = obs(ego(lane=0), (15.0, 0, 20.0), (15.0, 1, 20.0))
    assert decode(o).left.exists is False
    assert planner.step(o) not in CHANGES


def test_reset_forgets_the_episode():
    planner = RulePlanner()
    o = obs(ego(lane=1, speed=25.0))
    first = [planner.step(o) for _ in range(3)]
    planner.step(obs(ego(lane=1, vy=1.0, offset=1.5)))
    planner.reset()
    assert [planner.step(o) for _ in range(3)] == first


@pytest.mark.parametrize("field,value", [("horizon", 0.0), ("safe_decel", -1.0), ("cooldown", math.nan),
                                         ("speed_setpoints", (25.0, 20.0))])
def test_bad_params_are_rejected_with_the_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        RulePlanner(msgspec.structs.replace(RuleParams(), **{field: value}))


def test_wrong_observation_is_refused():
    with pytest.raises(ValueError, match="lanes"):
        RulePlanner().step(build_observation([], ego(), ObservationConfig()))


def test_trapped_behind_a_lead_slower_than_the_lowest_set_point_takes_a_tighter_gap():
    # Own lead at 19 m/s (below the 20 m/s floor), 12 m gap, closing: staying ends in a collision without
    # decision's following. The left lane has a follower 15 m behind (gap 10 m) at the ego's speed: short of
    # the normal rear gap (6 + 0.5 * 20 = 16 m), within half of it (8 m), so only the escape takes it.
    me = ego(lane=1, speed=20.0)
    blocked = obs(me, (17.0, 0, 19.0), (-15.0, -1, 20.0), (17.0, 1, 19.0))
    planner = RulePlanner()
    scene = decode(blocked)
    assert planner.trapped(scene)
    assert math.isinf(planner.follower_braking(scene.left, 20.0))
    assert planner.follower_braking(scene.left, 20.0, ratio=P.escape_gap_ratio) == 0.0
    assert planner.step(blocked) == Action.LANE_LEFT
    # the same with a lead at 21 m/s is not a trap: the normal rear gap holds, no change
    fine = obs(me, (17.0, 0, 21.0), (-15.0, -1, 20.0), (17.0, 1, 21.0))
    assert not RulePlanner().trapped(decode(fine))
    assert RulePlanner().step(fine) not in CHANGES


@pytest.mark.parametrize("anticipation,expect_change", [(0.0, False), (1.0, False), (5.0, True)])
def test_anticipation_asks_for_a_gap_that_opens_in_time(anticipation: float, expect_change: bool):
    # Right lane free ahead; a follower 10 m behind (gap 5 m) at 22 m/s, 3 m/s slower than the ego: the gap
    # grows 3 m a second and reaches the 6 + 0.5 * 22 = 17 m needed in 4 s.
    me = ego(lane=0, speed=25.0)
    o = obs(me, (22.0, 0, 20.0), (-10.0, 1, 22.0))
    params = msgspec.structs.replace(RuleParams(), anticipation=anticipation)
    assert (RulePlanner(params).step(o) == Action.LANE_RIGHT) == expect_change
