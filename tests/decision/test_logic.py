"""DecisionLogic on hand-built states: meta-action mapping, gap acceptance, speed cap, emergency, watchdog."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgs import Action, EgoState, Header, Mode, Object, ObjectArray, Plan
from nodes.decision.logic import DecisionLogic, DecisionParams

LANE_WIDTH = 4.0


def ego_at(lane: int = 1, speed: float = 25.0, x: float = 0.0, y: float | None = None) -> EgoState:
    y = lane * LANE_WIDTH if y is None else y
    return EgoState(
        x=x, y=y, heading=0.0, speed=speed, vx=speed, vy=0.0,
        lane_index=int(round(y / LANE_WIDTH)), lateral_offset=y - round(y / LANE_WIDTH) * LANE_WIDTH,
    )


def car(x: float, dlane: float = 0.0, dv: float = 0.0, vy: float = 0.0, id: int = 7) -> Object:
    """A vehicle x m ahead (centre to centre), dlane lanes across, dv m/s faster than the ego."""
    return Object(id=id, x=x, y=dlane * LANE_WIDTH, vx=dv, vy=vy)


def objs(*cars: Object) -> ObjectArray:
    return ObjectArray(objects=list(cars))


EMPTY = objs()


def plan(action: Action, replanned: bool = True, tick: int = 0) -> Plan:
    return Plan(header=Header(tick=tick), action=int(action), replanned=replanned, plan_tick=tick)


class Driver:
    """Feeds the logic one tick at a time with fresh inputs unless told otherwise."""

    def __init__(self, **params) -> None:
        self.logic = DecisionLogic(DecisionParams(**params))
        self.tick = 0

    def __call__(self, ego: EgoState, objects: ObjectArray | None = EMPTY, p: Plan | None = None,
                 action: Action = Action.IDLE, **ticks):
        p = plan(action, replanned=False) if p is None else p
        out = self.logic.step(self.tick, ego, objects, p, **ticks)
        self.tick += 1
        return out


# --- meta-actions -> targets ---------------------------------------------------------------------------
def test_faster_and_slower_step_through_the_setpoints_once_per_replan():
    d = Driver()
    assert d(ego_at(speed=24.0)).target_speed == 25.0  # nearest set-point at the start
    assert d(ego_at(), p=plan(Action.FASTER)).target_speed == 30.0
    for _ in range(14):  # the same plan republished: no further step
        assert d(ego_at(), action=Action.FASTER).target_speed == 30.0
    assert d(ego_at(), p=plan(Action.FASTER)).target_speed == 30.0  # clamped at the top
    speeds = [d(ego_at(), p=plan(Action.SLOWER)).target_speed for _ in range(3)]
    assert speeds == [25.0, 20.0, 20.0]


def test_custom_setpoints_and_initial_speed():
    d = Driver(speed_setpoints=[10.0, 15.0, 20.0, 25.0, 30.0, 35.0], initial_speed=10.0)
    assert d(ego_at(speed=25.0)).target_speed == 10.0
    assert d(ego_at(), p=plan(Action.FASTER)).target_speed == 15.0


def test_lane_changes_move_one_lane_are_clamped_and_held_until_reached():
    d = Driver()
    t = d(ego_at(lane=1), p=plan(Action.LANE_LEFT))
    assert (t.target_lane, t.mode, t.plan_action) == (0, Mode.NOMINAL, Action.LANE_LEFT)
    # the ego has not left lane 1 yet: an IDLE replan keeps the target lane 0
    assert d(ego_at(y=3.0), p=plan(Action.IDLE)).target_lane == 0
    assert d(ego_at(lane=0), p=plan(Action.LANE_LEFT)).target_lane == 0  # no lane left of lane 0
    assert d(ego_at(lane=0), p=plan(Action.LANE_RIGHT)).target_lane == 1
    d2 = Driver()
    d2(ego_at(lane=3))
    assert d2(ego_at(lane=3), p=plan(Action.LANE_RIGHT)).target_lane == 3  # lanes_count 4: lane 3 is last
    assert d2(ego_at(lane=3), action=Action.LANE_RIGHT).mode == Mode.NOMINAL


def test_a_republished_lane_change_is_not_applied_twice():
    d = Driver()
    assert d(ego_at(lane=2), p=plan(Action.LANE_LEFT)).target_lane == 1
    for _ in range(20):
        assert d(ego_at(lane=2), action=Action.LANE_LEFT).target_lane == 1


def test_unknown_action_is_refused_early():
    with pytest.raises(ValueError, match="not an Action"):
        DecisionLogic().step(0, ego_at(), objs(), Plan(action=9, replanned=True))


# --- lane-change gap acceptance ------------------------------------------------------------------------
def test_lane_change_into_an_occupied_gap_is_refused_with_the_reason():
    d = Driver()
    t = d(ego_at(lane=1), objs(car(-6.0, dlane=-1)), p=plan(Action.LANE_LEFT))
    assert t.target_lane == 1 and t.mode == Mode.OVERRIDE
    assert t.reason == "lane change refused: rear gap 1.0 m < 12.5 m"  # 5 m + 25 m/s * 0.3 s
    t = d(ego_at(lane=1), objs(car(12.0, dlane=-1, dv=-5.0)), p=plan(Action.LANE_LEFT))
    # front: 5 m + 25 m/s * 0.5 s + 5^2 / (2 * 3) m
    assert t.reason == "lane change refused: front gap 7.0 m < 21.7 m" and t.target_lane == 1


def test_lane_change_accepted_when_the_gap_is_large_enough():
    d = Driver()
    t = d(ego_at(lane=1), objs(car(-18.0, dlane=-1), car(35.0, dlane=-1, id=8)), p=plan(Action.LANE_LEFT))
    assert (t.target_lane, t.mode) == (0, Mode.NOMINAL)


def test_a_faster_follower_needs_a_longer_gap():
    d = Driver()
    slow = d(ego_at(lane=1), objs(car(-20.0, dlane=1)), p=plan(Action.LANE_RIGHT))
    assert slow.target_lane == 2
    d = Driver()
    fast = d(ego_at(lane=1), objs(car(-20.0, dlane=1, dv=10.0)), p=plan(Action.LANE_RIGHT))
    assert fast.target_lane == 1 and fast.reason.startswith("lane change refused: rear gap 15.0 m")


def _required_gap(p: DecisionParams, own_speed: float, closing: float, front: bool) -> float:
    """The documented requirement, written out: min gap + speed x time gap + closing^2 / (2 b_safe), where the
    time gap runs at the ego's speed in front and at the follower's behind."""
    if front:
        return p.lc_min_front_gap + own_speed * p.lc_front_time_gap + closing**2 / (2 * p.lc_safe_decel)
    return p.lc_min_rear_gap + (own_speed + closing) * p.lc_rear_time_gap + closing**2 / (2 * p.lc_safe_decel)


@pytest.mark.parametrize("front", [True, False], ids=["front", "rear"])
@pytest.mark.parametrize("closing", [0.0, 3.0, 6.0])
def test_the_gap_requirement_holds_at_its_boundary(front, closing):
    # 5% short of the requirement is refused, 5% over it accepted: a requirement met at half its length, or
    # without its closing-speed term (6 m/s: 6 m of the rear's ~20 m), fails one of the two.
    p, speed, length = DecisionParams(), 25.0, 5.0
    need = _required_gap(p, speed, closing, front)
    for factor, accepted in ((0.95, False), (1.05, True)):
        gap = factor * need
        x, dv = (gap + length, -closing) if front else (-(gap + length), closing)
        t = Driver()(ego_at(lane=1), objs(car(x, dlane=-1, dv=dv)), p=plan(Action.LANE_LEFT))
        assert (t.target_lane == 0) is accepted, (factor, need, t.reason)
        if not accepted:
            side = "front" if front else "rear"
            assert t.reason == f"lane change refused: {side} gap {gap:.1f} m < {need:.1f} m"


def test_a_vehicle_changing_into_the_same_gap_counts():
    d = Driver()
    # two lanes over, moving towards the target lane at 2 m/s
    t = d(ego_at(lane=1), objs(car(2.0, dlane=-2, vy=2.0)), p=plan(Action.LANE_LEFT))
    assert t.target_lane == 1 and t.mode == Mode.OVERRIDE


def test_a_refused_lane_change_is_retried_until_the_next_replan():
    d = Driver()
    assert d(ego_at(lane=1), objs(car(-10.0, dlane=-1)), p=plan(Action.LANE_LEFT)).target_lane == 1
    assert d(ego_at(lane=1), objs(car(-13.0, dlane=-1)), action=Action.LANE_LEFT).target_lane == 1
    t = d(ego_at(lane=1), objs(car(-18.0, dlane=-1)), action=Action.LANE_LEFT)
    assert (t.target_lane, t.mode) == (0, Mode.NOMINAL)


def test_without_retry_a_refused_lane_change_is_dropped_at_once():
    d = Driver(lc_retry=False)
    assert d(ego_at(lane=1), objs(car(-10.0, dlane=-1)), p=plan(Action.LANE_LEFT)).mode == Mode.OVERRIDE
    assert d(ego_at(lane=1), objs(car(-40.0, dlane=-1)), action=Action.LANE_LEFT).target_lane == 1


def test_a_new_replan_cancels_a_pending_lane_change():
    d = Driver()
    d(ego_at(lane=1), objs(car(-10.0, dlane=-1)), p=plan(Action.LANE_LEFT))
    t = d(ego_at(lane=1), objs(), p=plan(Action.IDLE))
    assert (t.target_lane, t.mode) == (1, Mode.NOMINAL)


def test_an_ongoing_lane_change_is_aborted_when_the_gap_closes():
    d = Driver()
    assert d(ego_at(lane=1), objs(), p=plan(Action.LANE_LEFT)).target_lane == 0
    assert d(ego_at(y=3.0), objs(car(-30.0, dlane=-0.75))).target_lane == 0
    t = d(ego_at(y=2.5), objs(car(-6.0, dlane=-0.6, dv=8.0)))
    assert (t.target_lane, t.mode) == (1, Mode.OVERRIDE)
    assert t.reason.startswith("lane change aborted: rear gap")
    # past the lane line the change is completed, not aborted
    d = Driver()
    d(ego_at(lane=1), objs(), p=plan(Action.LANE_LEFT))
    assert d(ego_at(y=1.8), objs(car(-6.0, dlane=-0.45, dv=8.0))).target_lane == 0


def test_a_reversed_lane_change_carried_over_the_line_is_aborted_when_the_way_back_closes():
    # The planner turns back half way; the lateral controller's rate limits carry the ego over the lane
    # line first. Heading back is then a lane change like any other: a vehicle cutting into the lane it
    # left (MOBIL traffic takes the room the ego made) aborts it, and the ego stays where it is.
    d = Driver()
    assert d(ego_at(lane=1), objs(), p=plan(Action.LANE_LEFT)).target_lane == 0
    assert d(ego_at(y=2.5), objs(), p=plan(Action.LANE_RIGHT, tick=1)).target_lane == 1  # still in lane 1
    assert d(ego_at(y=1.8), objs()).target_lane == 1  # over the line into lane 0, turning back, the way clear
    t = d(ego_at(y=1.8), objs(car(2.0, dlane=0.7)))  # now in lane 1 beside the ego, clear of its own path
    assert (t.target_lane, t.mode) == (0, Mode.OVERRIDE)
    assert t.reason.startswith("lane change aborted: front gap")


# --- longitudinal -------------------------------------------------------------------------------------
def test_no_cap_when_the_lane_ahead_is_clear_or_the_lead_far_or_faster():
    d = Driver(initial_speed=30.0)
    for scene in (objs(), objs(car(70.0, dv=-5.0)), objs(car(40.0, dv=+3.0)), objs(car(-10.0, dv=5.0))):
        t = d(ego_at(speed=28.0), scene)
        assert (t.mode, t.target_speed, t.reason) == (Mode.NOMINAL, 30.0, "")


def test_vehicles_in_the_next_lanes_do_not_cap_the_speed():
    d = Driver()
    t = d(ego_at(), objs(car(8.0, dlane=-1, dv=-10.0), car(8.0, dlane=1, dv=-10.0, id=8)))
    assert (t.mode, t.target_speed) == (Mode.NOMINAL, 25.0)


def test_the_cap_settles_at_the_lead_speed_at_the_desired_headway():
    d = Driver(initial_speed=30.0)
    # lead at 20 m/s, gap 3 m + 1 s * 20 m/s = 23 m (centres 28 m apart)
    t = d(ego_at(speed=20.0), objs(car(28.0, dv=0.0)))
    assert t.mode == Mode.FOLLOWING and t.target_speed == pytest.approx(20.0)
    assert t.reason == "speed capped: 30.0 -> 20.0 m/s, headway, vehicle 7 23.0 m ahead"
    closer = d(ego_at(speed=20.0), objs(car(18.0, dv=0.0))).target_speed
    assert 17.0 <= closer < 20.0  # a short headway is opened gently, at most 3 m/s below the lead


def test_the_cap_keeps_the_ttc_and_the_braking_distance():
    d = Driver()
    # closing at 10 m/s with 40 m: TTC 4 s is fine, the cap still keeps TTC >= 3 s
    t = d(ego_at(speed=25.0), objs(car(45.0, dv=-10.0)))
    assert t.target_speed <= 15.0 + 40.0 / 3.0 + 1e-9
    # stopped vehicle 60 m ahead at 20 m/s: braking distance binds, target = sqrt(2 * 3 * (55 - 3))
    t = d(ego_at(speed=20.0), objs(car(60.0, dv=-20.0)))
    assert t.target_speed == pytest.approx((2 * 3.0 * 52.0) ** 0.5) and "braking distance" in t.reason


def test_a_cut_in_is_seen_before_the_vehicle_enters_the_lane():
    d = Driver()
    t = d(ego_at(), objs(car(10.0, dlane=-0.8, dv=-5.0, vy=2.0)))  # 3.2 m across, 2 m/s towards us
    assert t.mode == Mode.EMERGENCY and t.max_decel > 0
    t = Driver()(ego_at(), objs(car(10.0, dlane=-0.8, dv=-5.0, vy=0.2)))  # drifting: tracker noise
    assert t.mode == Mode.NOMINAL


def test_emergency_braking_below_the_ttc_threshold_with_hysteresis():
    d = Driver()
    t = d(ego_at(speed=25.0), objs(car(15.0, dv=-8.0)))  # gap 10 m, TTC 1.25 s
    assert t.mode == Mode.EMERGENCY and t.reason.startswith("emergency brake: TTC 1.2 s < 1.5 s")
    assert 3.0 <= t.max_decel <= 5.0 and t.target_speed <= 17.0
    t = d(ego_at(speed=25.0), objs(car(20.0, dv=-8.0)))  # TTC 1.9 s: still below the exit threshold
    assert t.mode == Mode.EMERGENCY
    t = d(ego_at(speed=25.0), objs(car(25.0, dv=-5.0)))  # TTC 4 s
    assert t.mode != Mode.EMERGENCY and t.max_decel == 0.0


def test_emergency_when_the_required_braking_is_too_hard():
    t = Driver()(ego_at(speed=25.0), objs(car(60.0, dv=-25.0)))  # TTC 2.2 s but needs 5.8 m/s^2
    assert t.mode == Mode.EMERGENCY and "needs 5.8 m/s^2" in t.reason and t.max_decel == 5.0


# --- watchdog -----------------------------------------------------------------------------------------
def test_no_inputs_ever_received_is_minimal_risk():
    t = DecisionLogic().step(0, ego_at(), None, None)
    assert t.mode == Mode.MINIMAL_RISK and t.reason == "minimal risk: no perception, no plan"
    assert t.target_speed < 25.0


def test_stale_plan_ramps_the_speed_down_holds_the_lane_and_recovers():
    d = Driver()
    d(ego_at(), p=plan(Action.LANE_LEFT))
    dt = 1.0 / 15.0
    speeds, modes = [], []
    for k in range(1, 9):  # no plan for 8 ticks (0.53 s); the ego is still in lane 1
        t = d(ego_at(y=3.5), objs(), p=None, plan_tick=0)
        speeds.append(t.target_speed)
        modes.append(t.mode)
        if t.mode == Mode.MINIMAL_RISK:
            assert t.target_lane == 1 and t.reason == f"minimal risk: plan stale {k} ticks > 3"
    assert modes == [Mode.NOMINAL] * 3 + [Mode.MINIMAL_RISK] * 5
    ramp = speeds[3:]
    assert ramp[0] == pytest.approx(25.0 - 1.5 * dt)
    assert all(a - b == pytest.approx(1.5 * dt) for a, b in zip(ramp, ramp[1:], strict=False))
    t = d(ego_at(y=3.5), p=plan(Action.IDLE, replanned=False))
    assert (t.mode, t.target_speed, t.target_lane) == (Mode.NOMINAL, 25.0, 1)


def test_the_minimal_risk_speed_floors_at_its_minimum():
    d = Driver(mrm_min_speed=20.0)
    d(ego_at())
    for _ in range(100):
        t = d(ego_at(), None, p=None, objects_tick=0, plan_tick=0)
    assert t.target_speed == 20.0 and t.mode == Mode.MINIMAL_RISK


def test_stale_perception_carries_the_last_vehicles_forward():
    d = Driver(initial_speed=30.0)
    # lead 40 m ahead at 15 m/s, ego at 30: 15 m/s closing, last seen at tick 0
    first = d(ego_at(speed=30.0, x=0.0), objs(car(40.0, dv=-15.0)))
    x = 0.0
    for _ in range(7):
        x += 30.0 / 15.0
        t = d(ego_at(speed=30.0, x=x), None, objects_tick=0)
    # the lead was carried forward: the gap closed by 15 m/s * 7 ticks, so the cap is lower
    assert t.mode == Mode.MINIMAL_RISK and "perception stale 7 ticks > 3" in t.reason
    assert t.target_speed < first.target_speed


# --- ablation and params ------------------------------------------------------------------------------
def test_without_overrides_only_the_mapping_and_the_watchdog_remain():
    d = Driver(overrides=False)
    t = d(ego_at(), objs(car(-2.0, dlane=-1), car(8.0, dv=-10.0)), p=plan(Action.LANE_LEFT))
    assert (t.target_lane, t.target_speed, t.mode, t.max_decel) == (0, 25.0, Mode.NOMINAL, 0.0)
    assert d(ego_at(), None, p=None, plan_tick=0, objects_tick=0).mode == Mode.NOMINAL
    for _ in range(3):
        t = d(ego_at(), None, p=None, plan_tick=0, objects_tick=0)
    assert t.mode == Mode.MINIMAL_RISK
    quiet = DecisionLogic(DecisionParams(overrides=False, watchdog=False)).step(0, ego_at(), None, None)
    assert quiet.mode == Mode.NOMINAL


def test_reset_forgets_the_episode():
    d = Driver()
    d(ego_at(lane=2), p=plan(Action.LANE_LEFT))
    d.logic.reset()
    assert d(ego_at(lane=3)).target_lane == 3


@pytest.mark.parametrize("bad, match", [
    ({"speed_setpoints": [25.0, 20.0]}, "ascending"),
    ({"speed_setpoints": []}, "at least one"),
    ({"time_headway": 0.0}, "time_headway must be > 0"),
    ({"emergency_ttc": 2.0, "emergency_ttc_exit": 1.0}, "emergency_ttc_exit"),
    ({"lc_abort_gap_ratio": 1.5}, "lc_abort_gap_ratio"),
    ({"objects_stale_ticks": -1}, "objects_stale_ticks must be >= 0"),
])
def test_params_reject_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        DecisionParams(**bad)


def test_params_reject_unknown_and_mistyped_keys():
    with pytest.raises(msgspec.ValidationError, match="time_headway_s"):
        msgspec.convert({"time_headway_s": 1.0}, DecisionParams)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"time_headway": "long"}, DecisionParams)


# --- invariants ---------------------------------------------------------------------------------------
vehicle = st.builds(
    lambda x, dl, dv, vy, i: car(x, dl, dv, vy, id=i),
    st.floats(-40, 80), st.floats(-2.5, 2.5), st.floats(-25, 10), st.floats(-3, 3), st.integers(0, 99),
)


@settings(max_examples=150, deadline=None)
@given(
    lane=st.integers(0, 3), speed=st.floats(0, 35), scene=st.lists(vehicle, max_size=8),
    actions=st.lists(st.sampled_from(list(Action)), min_size=1, max_size=6),
)
def test_targets_stay_on_the_road_and_within_the_setpoints(lane, speed, scene, actions):
    d = Driver()
    for a in actions:
        t = d(ego_at(lane=lane, speed=speed), objs(*scene), p=plan(a))
        assert 0 <= t.target_lane <= 3 and abs(t.target_lane - lane) <= 1
        assert 0.0 <= t.target_speed <= 30.0
        assert (t.mode == Mode.NOMINAL) == (t.reason == "")
        assert (t.max_decel > 0) == (t.mode == Mode.EMERGENCY)


def test_one_lane_at_a_time():
    d = Driver()
    assert d(ego_at(lane=1), p=plan(Action.LANE_RIGHT)).target_lane == 2
    assert d(ego_at(y=5.0), p=plan(Action.LANE_RIGHT)).target_lane == 2  # not yet in lane 2
    assert d(ego_at(y=6.5), p=plan(Action.LANE_RIGHT)).target_lane == 3  # crossed: the next one
    assert d(ego_at(y=7.0), p=plan(Action.LANE_LEFT)).target_lane == 2  # back, relative to the target


def test_every_param_is_documented_with_its_unit():
    import ast
    import inspect

    from nodes.decision import params as module

    body = ast.parse(inspect.getsource(module.DecisionParams)).body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:], strict=False):
        documented = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
        if isinstance(stmt, ast.AnnAssign) and documented:
            docs[stmt.target.id] = nxt.value.value
    assert set(docs) == set(DecisionParams.__struct_fields__)
    for name, doc in docs.items():
        kind = DecisionParams.__annotations__[name]
        assert kind == "bool" or doc.startswith("["), f"{name}: say its unit first, e.g. [m/s] or [-]"
