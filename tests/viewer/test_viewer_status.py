from msgs import DrivingTarget, EgoState, Header, Mode, Plan
from nodes.viewer.status import status_line


def ego(**kw) -> EgoState:
    base = dict(header=Header(episode=1, tick=123, stamp_ns=8_200_000_000), x=0.0, y=4.0, heading=0.0,
                speed=24.31, vx=24.31, vy=0.0, lane_index=1, lateral_offset=0.0)
    return EgoState(**{**base, **kw})


def test_status_line_has_every_field():
    target = DrivingTarget(target_lane=2, target_speed=25.0, mode=Mode.OVERRIDE, reason="gap too small")
    line = status_line(ego(), target, Plan(action=2), 0, episodes=3)
    assert line == ("ep 1/3 | tick  123 t    8.2 s | v  24.3/ 25.0 m/s | lane 1->2 | plan LANE_RIGHT | "
                    "mode OVERRIDE (gap too small) | collisions 0")


def test_status_line_before_anything_arrived_and_after_a_crash():
    assert status_line(None, None, None, 0) == (
        "ep - | tick    - t      - s | v     -/    - m/s | lane - | plan - | mode - | collisions 0")
    line = status_line(ego(crashed=True), None, None, 2, episode=4)
    assert line.startswith("ep 4 |") and line.endswith("collisions 2 CRASHED")


def test_status_line_fits_a_width():
    line = status_line(ego(), DrivingTarget(target_lane=1, target_speed=20.0), None, 0, width=30)
    assert len(line) == 30 and line.endswith("…")
