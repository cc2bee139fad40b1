"""Our messages as Foxglove's schemas (foxglove-sdk): pure conversions, no server.

Foxglove's 3D panel is right-handed with z up; the road's y axis points the other way (towards higher lanes,
down the camera image), so y and angles are negated on the way out: `world` has x along the road, y to the
left, z up. `ego` is the ego's centre with the road's axes (no rotation), as in our ego-frame messages.
Timestamps are simulated time since the episode started.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from foxglove.messages import (
    Color,
    CompressedImage,
    CubePrimitive,
    FrameTransform,
    Odometry,
    Pose,
    Quaternion,
    RawImage,
    SceneEntity,
    SceneUpdate,
    TextPrimitive,
    Timestamp,
    Vector3,
)

from msgs import EgoState, Header, Image, ObjectArray

NS_PER_S = 1_000_000_000
VEHICLE_HEIGHT_M = 1.5  # [m] height of the boxes drawn for vehicles
GT_RGBA = (0.0, 1.0, 0.0, 0.35)  # same hues as the viewer's boxes
DET_RGBA = (1.0, 0.0, 1.0, 0.6)
EGO_RGBA = (0.8, 0.8, 0.0, 0.9)


def stamp(header: Header) -> Timestamp:
    return Timestamp(header.stamp_ns // NS_PER_S, header.stamp_ns % NS_PER_S)


def yaw(angle_rad: float) -> Quaternion:
    """Rotation about z by `angle_rad` (already in Foxglove's sense)."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(0.5 * angle_rad), w=math.cos(0.5 * angle_rad))


def raw_image(image: Image) -> RawImage:
    return RawImage(timestamp=stamp(image.header), frame_id="camera", width=image.width, height=image.height,
                    encoding="rgb8", step=3 * image.width, data=bytes(image.data))  # a received frame is a view


def compressed_image(bgr: np.ndarray, header: Header, fmt: str = "jpeg",
                     quality: int = 85) -> CompressedImage:
    """A BGR image (as `draw` returns it) encoded as JPEG or PNG."""
    ext, flags = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]) if fmt == "jpeg" else (".png", [])
    ok, data = cv2.imencode(ext, bgr, flags)
    if not ok:
        raise ValueError(f"cv2 could not encode a {fmt} image")
    return CompressedImage(timestamp=stamp(header), frame_id="camera", data=data.tobytes(), format=fmt)


def ego_odometry(ego: EgoState) -> Odometry:
    return Odometry(timestamp=stamp(ego.header), frame_id="world", body_frame_id="ego_body",
                    pose=Pose(position=Vector3(x=ego.x, y=-ego.y, z=0.0), orientation=yaw(-ego.heading)),
                    linear_velocity=Vector3(x=ego.vx, y=-ego.vy, z=0.0))


def ego_transform(ego: EgoState) -> FrameTransform:
    """world -> ego: a translation only (the ego frame keeps the road's axes)."""
    return FrameTransform(timestamp=stamp(ego.header), parent_frame_id="world", child_frame_id="ego",
                          translation=Vector3(x=ego.x, y=-ego.y, z=0.0), rotation=yaw(0.0))


def _cube(x: float, y: float, heading: float, length: float, width: float,
          rgba: tuple[float, float, float, float]) -> CubePrimitive:
    pose = Pose(position=Vector3(x=x, y=-y, z=0.5 * VEHICLE_HEIGHT_M), orientation=yaw(-heading))
    r, g, b, a = rgba
    size = Vector3(x=length, y=width, z=VEHICLE_HEIGHT_M)
    return CubePrimitive(pose=pose, size=size, color=Color(r=r, g=g, b=b, a=a))


def objects_scene(objects: ObjectArray, name: str, rgba: tuple[float, float, float, float],
                  ego: EgoState | None = None, labels: bool = False) -> SceneUpdate:
    """One entity `name` holding a box per object (ego frame), replaced whole on every update, so vehicles
    that left need no deletion; with `ego`, the ego's own box too; with `labels`, the track ids."""
    cubes = [_cube(o.x, o.y, o.heading, o.length, o.width, rgba) for o in objects.objects]
    if ego is not None:
        cubes.append(_cube(0.0, 0.0, ego.heading, ego.length, ego.width, EGO_RGBA))
    texts: list[TextPrimitive] = []
    if labels:
        white = Color(r=1.0, g=1.0, b=1.0, a=1.0)
        for o in objects.objects:
            above = Pose(position=Vector3(x=o.x, y=-o.y, z=VEHICLE_HEIGHT_M + 0.5), orientation=yaw(0.0))
            texts.append(TextPrimitive(pose=above, billboard=True, font_size=14.0, scale_invariant=True,
                                       color=white, text=f"#{o.id}"))
    entity = SceneEntity(timestamp=stamp(objects.header), frame_id="ego", id=name, cubes=cubes, texts=texts)
    return SceneUpdate(entities=[entity])


def ground_truth_scene(objects: ObjectArray, ego: EgoState | None) -> SceneUpdate:
    """The ground-truth boxes, with the ego's own box when `ego` is of the same tick."""
    same_tick = ego is not None and (ego.header.episode, ego.header.tick) == (objects.header.episode,
                                                                              objects.header.tick)
    return objects_scene(objects, "objects_gt", GT_RGBA, ego=ego if same_tick else None)
