"""The drawing on real highway-env frames, and the matching of messages to a frame's tick."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from msgs import Action, DrivingTarget, Header, Mode, ObjectArray, Plan
from nodes.viewer.draw import DET_COLOUR, GT_COLOUR, Style, band_text, draw
from nodes.viewer.scene import TickHistory
from sim.highway import HighwaySim, SimParams
from sim.view import DEFAULT_VIEW

ROAD_GREY = (100, 100, 100)  # highway-env's road colour (same in RGB and BGR)


@pytest.fixture(scope="module")
def world():
    sim = HighwaySim(SimParams(vehicles_count=8))
    sim.reset(seed=1000, episode=0)
    header = sim.header()
    frame = sim.camera(header).array()
    ego, gt = sim.ego_state(header), sim.objects_gt(header)
    sim.close()
    return frame, ego, gt


def edge_colour(img: np.ndarray, box: tuple[float, float, float, float], s: int) -> tuple[int, ...]:
    """Colour on the top edge of a box drawn at scale s, halfway along it."""
    c0, r0, c1, _ = box
    return tuple(int(v) for v in img[int(round(r0 * s)), int(round(0.5 * (c0 + c1) * s))])


def test_boxes_land_on_the_vehicles_through_the_camera_view(world):
    frame, ego, gt = world
    in_view = [o for o in gt.objects if o.in_view]
    assert len(in_view) >= 2, "the scene should show some traffic"
    det = ObjectArray(header=gt.header, objects=[msgspec.structs.replace(o, id=40 + i, score=0.8)
                                                 for i, o in enumerate(in_view[:1])])
    img = draw(frame, ego, gt, det, None, None, DEFAULT_VIEW)
    s = Style().scale
    assert img.shape[1] == 600 * s and img.shape[0] > 150 * s
    road = img[: 150 * s]
    assert (road == ROAD_GREY).all(axis=-1).mean() > 0.5
    for obj in in_view[1:]:
        box = DEFAULT_VIEW.box_pixels(obj.x, obj.y, obj.length, obj.width)
        assert edge_colour(img, box, s) == GT_COLOUR, obj
        # the box encloses the vehicle that highway-env drew: its centre is not road grey
        c, r = DEFAULT_VIEW.to_pixels(obj.x, obj.y)
        assert tuple(frame[int(r), int(c)]) != ROAD_GREY
    # where a detection agrees with the ground truth both show: a thin green line over a thick magenta one
    first = in_view[0]
    c0, r0, c1, _ = DEFAULT_VIEW.box_pixels(first.x, first.y, first.length, first.width)
    across_top_edge = img[int(round(r0 * s)) - 2: int(round(r0 * s)) + 3, int(round(0.5 * (c0 + c1) * s))]
    colours = {tuple(int(v) for v in px) for px in across_top_edge}
    assert DET_COLOUR in colours and GT_COLOUR in colours


def test_layers_can_be_left_out(world):
    frame, ego, gt = world
    img = draw(frame, ego, gt, None, None, None, DEFAULT_VIEW, style=Style(scale=1, show_gt=False))
    assert img.shape[:2][1] == 600
    assert not (img[:150] == GT_COLOUR).all(axis=-1).any()
    np.testing.assert_array_equal(img[:150], frame[..., ::-1])  # the road itself is untouched


def test_band_text_names_action_mode_reason_speeds():
    header = Header(episode=2, tick=45, stamp_ns=3_000_000_000)
    plan = Plan(header=header, action=Action.LANE_LEFT, plan_tick=30)
    target = DrivingTarget(header=header, target_lane=1, target_speed=22.5, mode=Mode.OVERRIDE,
                           reason="gap too small")
    (when, speeds), (planned, mode), (reason, _) = band_text(header, None, plan, target)
    assert when.startswith("episode 2  tick 45  t") and "3.00 s" in when
    assert "target  22.5 m/s" in speeds and "-> 1" in speeds
    assert planned == "plan LANE_LEFT (since tick 30)"
    assert mode == "mode OVERRIDE"
    assert reason == "why: gap too small"
    assert band_text(None, None, None, None)[1:] == [("plan -", "mode -"), ("", "")]


def test_a_frame_of_the_wrong_size_is_refused(world):
    frame, ego, gt = world
    with pytest.raises(ValueError, match="600x75"):
        draw(frame[::2], ego, gt, None, None, None, DEFAULT_VIEW)


def test_tick_history_takes_the_tick_or_the_latest_before_it_in_the_same_episode():
    h = TickHistory(limit=3)
    for ep, tick in [(0, 5), (0, 7), (1, 0), (1, 2)]:
        h.add(Plan(header=Header(episode=ep, tick=tick), action=tick))
    assert len(h) == 3  # (0, 5) fell out
    assert h.at((0, 7)).action == 7
    assert h.at((0, 9)).action == 7
    assert h.at((0, 6)) is None  # before anything kept of episode 0
    assert h.at((1, 1)).action == 0
    assert h.at((2, 0)) is None
    h.add(Plan(header=Header(episode=1, tick=1), action=11))  # late arrival lands in order
    assert h.at((1, 1)).action == 11 and h.at((1, 5)).action == 2
