"""The one drawing of a tick: camera frame, boxes, and a text band. Used by the viewer window and the video.

Pure: numpy arrays and messages in, a BGR image (OpenCV's channel order) out; no window, no file.
Objects are placed with `CameraView.box_pixels`, the same transform that labels the detector's data.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from msgs import Action, DrivingTarget, EgoState, Header, Image, Mode, ObjectArray, Plan
from msgs.limits import MAX_POSITION, MAX_VEHICLE_SIZE, bounded_ego, bounded_target, clamp
from nodes.viewer.scene import Scene
from nodes.viewer.status import enum_name
from sim.view import DEFAULT_VIEW, CameraView

# Colours are BGR. None of them occurs in highway-env's rendering, so a test can find them by value.
GT_COLOUR = (0, 255, 0)  # ground-truth boxes: thin green
DET_COLOUR = (255, 0, 255)  # detections: thicker magenta, with their track id
TARGET_COLOUR = (255, 255, 0)  # cyan marker at the target lane's centre, on the left edge
BAND_COLOUR = (32, 32, 32)
TEXT_COLOUR = (235, 235, 235)
MODE_COLOURS = {  # how alarming each decision mode looks
    Mode.NOMINAL: (150, 230, 150),
    Mode.FOLLOWING: (230, 200, 150),
    Mode.OVERRIDE: (0, 215, 255),
    Mode.EMERGENCY: (60, 60, 255),
    Mode.MINIMAL_RISK: (0, 140, 255),
}
CRASH_COLOUR = (60, 60, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX
LINE_PX = 10  # [px] pitch of the text lines in the band, at scale 1
BAND_LINES = 4


@dataclass(frozen=True)
class Style:
    scale: int = 2  # upscale factor of the 600x150 frame, for legibility
    show_gt: bool = True  # draw ground-truth boxes
    show_detections: bool = True  # draw perception's boxes and track ids


DEFAULT_STYLE = Style()


def draw(frame: np.ndarray, ego: EgoState | None, gt: ObjectArray | None, detections: ObjectArray | None,
         plan: Plan | None, target: DrivingTarget | None, view: CameraView, *, header: Header | None = None,
         style: Style = DEFAULT_STYLE) -> np.ndarray:
    """The annotated frame as a BGR uint8 image of (scale * H + band, scale * W, 3).

    frame:      the camera's pixels, (H, W, 3) uint8 RGB, as `Image.array()` returns them.
    ego:        the ego state of the same tick (speed, lane, crash); None draws without it.
    gt:         ground-truth objects (ego frame) or None; thin GT_COLOUR boxes.
    detections: perception's tracked objects (ego frame) or None; DET_COLOUR boxes with track ids.
    plan:       the planner's held action, or None.
    target:     decision's target (lane, speed, mode, reason), or None.
    view:       the camera that rendered `frame` (must match its size).
    header:     episode / tick / sim time shown in the band; default: the ego's header.
    style:      scale and which layers to draw.
    """
    h, w = frame.shape[:2]
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"draw: frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if (w, h) != (view.width, view.height):
        raise ValueError(f"draw: frame is {w}x{h} but the view is {view.width}x{view.height}")
    if style.scale < 1:
        raise ValueError(f"draw: scale must be >= 1, got {style.scale}")
    s = style.scale
    road = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if s != 1:
        road = cv2.resize(road, (w * s, h * s), interpolation=cv2.INTER_NEAREST)
    shown = {"gt": 0, "det": 0}  # boxes at least partly in the frame
    labels: list[tuple[str, tuple[int, int]]] = []
    if style.show_detections and detections is not None:
        for obj in detections.objects:
            corner = _box(road, view, s, obj.x, obj.y, obj.length, obj.width, DET_COLOUR, 2)
            if corner is not None:
                shown["det"] += 1
                labels.append((f"#{obj.id}" if obj.score >= 1.0 else f"#{obj.id} {obj.score:.2f}", corner))
    if style.show_gt and gt is not None:  # thin, over the detections, so both show where they agree
        for obj in gt.objects:
            shown["gt"] += _box(road, view, s, obj.x, obj.y, obj.length, obj.width, GT_COLOUR, 1) is not None
    for text, (col, row) in labels:
        _label(road, text, col, row, s)
    if ego is not None and target is not None:
        _target_marker(road, view, s, ego, target)
    band = np.full(((BAND_LINES * LINE_PX + 3) * s, w * s, 3), BAND_COLOUR, np.uint8)
    _text_band(band, s, header or (ego.header if ego is not None else None), ego, shown, plan, target, style)
    return np.vstack([road, band])


def _box(img: np.ndarray, view: CameraView, s: int, dx: float, dy: float, length: float, width: float,
         colour: tuple[int, int, int], thickness: int) -> tuple[int, int] | None:
    """Draws the box; its top-left corner [px], or None when it is wholly outside the image."""
    # a physically meaningless box (1e308 m away or long) is clamped first, so that its pixels stay finite
    dx, dy = clamp(dx, -MAX_POSITION, MAX_POSITION), clamp(dy, -MAX_POSITION, MAX_POSITION)
    length, width = clamp(length, 0.0, MAX_VEHICLE_SIZE), clamp(width, 0.0, MAX_VEHICLE_SIZE)
    c0, r0, c1, r1 = view.box_pixels(dx, dy, length, width)
    if c1 < 0 or r1 < 0 or c0 > view.width or r0 > view.height:
        return None
    # edges beyond the image by more than a line's thickness draw nothing: keep them there, in cv2's int32
    c0, c1 = clamp(c0, -16.0, view.width + 16.0), clamp(c1, -16.0, view.width + 16.0)
    r0, r1 = clamp(r0, -16.0, view.height + 16.0), clamp(r1, -16.0, view.height + 16.0)
    p0 = (int(round(c0 * s)), int(round(r0 * s)))
    p1 = (int(round(c1 * s)) - 1, int(round(r1 * s)) - 1)
    cv2.rectangle(img, p0, p1, colour, thickness * max(1, s // 2), cv2.LINE_8)
    return p0


def _label(img: np.ndarray, text: str, col: int, row: int, s: int) -> None:
    """A track id above a box's top-left corner, on a dark patch so it reads on the road."""
    size = 0.3 * s
    (tw, th), base = cv2.getTextSize(text, FONT, size, 1)
    x = min(max(col, 0), img.shape[1] - tw - 2)
    y = max(row - 2 * s, th + 2)
    cv2.rectangle(img, (x - 1, y - th - 2), (x + tw + 1, y + base - 1), BAND_COLOUR, -1)
    cv2.putText(img, text, (x, y), FONT, size, DET_COLOUR, 1, cv2.LINE_AA)


def _target_marker(img: np.ndarray, view: CameraView, s: int, ego: EgoState, target: DrivingTarget) -> None:
    """A small triangle on the left edge at the target lane's centre."""
    ego, target = bounded_ego(ego), bounded_target(target)  # finite pixels for any finite lane, width or y
    _, row = view.to_pixels(0.0, target.target_lane * ego.lane_width - ego.y)
    r = int(round(float(row) * s))
    if 0 <= r < img.shape[0]:
        k = 4 * s
        pts = np.array([[0, r - k], [0, r + k], [int(1.5 * k), r]], np.int32)
        cv2.fillConvexPoly(img, pts, TARGET_COLOUR, cv2.LINE_AA)


def band_text(header: Header | None, ego: EgoState | None, plan: Plan | None,
              target: DrivingTarget | None) -> list[tuple[str, str]]:
    """The band's text rows as (left column, right column); the third row (the reason) spans both."""
    when = (f"episode {header.episode}  tick {header.tick}  t {header.stamp_ns / 1e9:6.2f} s"
            if header is not None else "episode -")
    speed = f"speed {ego.speed:5.1f} m/s" if ego is not None else "speed -"
    target_speed = f"target {target.target_speed:5.1f} m/s" if target is not None else "target -"
    lanes = f"lane {ego.lane_index if ego is not None else '-'} -> {target.target_lane if target else '-'}"
    crashed = "  CRASHED" if ego is not None and ego.crashed else ""
    if plan is None:
        planned = "plan -"
    else:
        planned = f"plan {enum_name(Action, plan.action)}" + (
            " (new)" if plan.replanned else f" (since tick {plan.plan_tick})")
    mode = f"mode {enum_name(Mode, target.mode)}" if target is not None else "mode -"
    reason = f"why: {target.reason}" if target is not None and target.reason else ""
    return [(when, f"{speed}   {target_speed}   {lanes}{crashed}"), (planned, mode), (reason, "")]


def _mode_colour(target: DrivingTarget | None) -> tuple[int, int, int]:
    if target is None or target.mode not in Mode._value2member_map_:
        return TEXT_COLOUR
    return MODE_COLOURS[Mode(target.mode)]


def _fit(text: str, width: int, size: float) -> str:
    """`text`, cut with an ellipsis to at most `width` pixels."""
    if cv2.getTextSize(text, FONT, size, 1)[0][0] <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cv2.getTextSize(text[:mid] + "...", FONT, size, 1)[0][0] <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."


def _text_band(band: np.ndarray, s: int, header: Header | None, ego: EgoState | None, shown: dict[str, int],
               plan: Plan | None, target: DrivingTarget | None, style: Style) -> None:
    size = 0.25 * s
    pitch = LINE_PX * s
    left, right = 4 * s, band.shape[1] // 2

    def put(text: str, x: int, y: int, colour: tuple[int, int, int] = TEXT_COLOUR) -> int:
        fitted = _fit(text, band.shape[1] - x - 2 * s, size)
        cv2.putText(band, fitted, (x, y), FONT, size, colour, 1, cv2.LINE_AA)
        return x + cv2.getTextSize(text, FONT, size, 1)[0][0]

    rows = band_text(header, ego, plan, target)
    crashed = ego is not None and ego.crashed
    put(rows[0][0], left, pitch)
    put(rows[0][1], right, pitch, CRASH_COLOUR if crashed else TEXT_COLOUR)
    put(rows[1][0], left, 2 * pitch)
    put(rows[1][1], right, 2 * pitch, _mode_colour(target))
    put(rows[2][0], left, 3 * pitch, _mode_colour(target))
    y, x = 4 * pitch, left
    if style.show_gt:
        x = _legend(band, x, y, s, GT_COLOUR) + 3 * s
        x = put(f"ground truth ({shown['gt']} in view)", x, y) + 8 * s
    if style.show_detections:
        x = _legend(band, x, y, s, DET_COLOUR) + 3 * s
        x = put(f"detections ({shown['det']}) #track id", x, y) + 8 * s
    triangle = np.array([[x, y - 4 * s], [x, y], [x + 4 * s, y - 2 * s]], np.int32)
    cv2.fillConvexPoly(band, triangle, TARGET_COLOUR, cv2.LINE_AA)
    put("target lane", x + 7 * s, y)


def _legend(band: np.ndarray, x: int, y: int, s: int, colour: tuple[int, int, int]) -> int:
    cv2.rectangle(band, (x, y - 4 * s), (x + 6 * s, y), colour, max(1, s // 2))
    return x + 6 * s


def view_for(camera: Image, scaling: float = DEFAULT_VIEW.scaling) -> CameraView:
    """The camera view of a frame of this size, rendered at `scaling` [px/m] (SimParams.scaling)."""
    return CameraView(width=camera.width, height=camera.height, scaling=scaling,
                      centering=DEFAULT_VIEW.centering)


def draw_scene(scene: Scene, scaling: float = DEFAULT_VIEW.scaling,
               style: Style = DEFAULT_STYLE) -> np.ndarray:
    """`draw` of everything a scene holds (the frame's own header names the tick)."""
    cam = scene.camera
    return draw(cam.array(), scene.ego, scene.gt, scene.objects, scene.plan, scene.target,
                view_for(cam, scaling), header=cam.header, style=style)
