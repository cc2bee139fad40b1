"""Perception node: camera frame -> detector -> tracker -> /perception/objects (ego frame).

mode "cnn" runs the shipped CNN on /sim/camera and tracks its detections; mode "gt" passes /sim/objects_gt
through, restricted to the camera's field of view, for ablations. torch is imported only in cnn mode with
backend torch; the ONNX backends run on onnxruntime.
"""

from __future__ import annotations

import math
from typing import ClassVar

from msgs import EgoState, Image, Message, Object, ObjectArray
from msgs.limits import bounded_ego, bounded_objects
from nodes.deploy import EXPORT_COMMANDS, TRAIN_COMMANDS, check_backend, check_export, exported_path
from nodes.perception.backends import Layout
from nodes.perception.tracker import (
    T_HEAD,
    T_ID,
    T_LEN,
    T_SCORE,
    T_VX,
    T_VY,
    T_WID,
    T_X,
    T_Y,
    Tracker,
    TrackerConfig,
)
from nodes.runtime.node import Node, Outputs, Params, tick_header
from nodes.share import require_model
from sim.view import DEFAULT_VIEW


class PerceptionParams(Params, kw_only=True, forbid_unknown_fields=True):
    mode: str = "cnn"  # "cnn": detect and track vehicles on /sim/camera; "gt": pass /sim/objects_gt through
    model: str = "perception.pt"  # detector weights, found as nodes.share.resolve_model says (as planning's model_path)
    score_threshold: float = 0.0  # [-] least detection score kept; 0 uses the one stored with the weights
    threads: int = 1  # CPU threads for the detector
    backend: str = "onnx_int8"  # the detector's runtime: torch | onnx | onnx_int8 (nodes/deploy.py; README, Deployment)
    confirm_hits: int = 2  # detections before a track is published
    max_misses: int = 3  # frames a track survives without a detection
    gate_m: float = 2.5  # [m] largest distance between a track's prediction and its detection
    meas_std_m: float = 0.1  # [m] detector position noise assumed by the tracker
    accel_std_mps2: float = 2.0  # [m/s^2] unmodelled acceleration of other vehicles along the road


class PerceptionNode(Node):
    name: ClassVar[str] = "perception"
    Params: ClassVar[type[Params]] = PerceptionParams
    inputs: ClassVar[dict[str, str]] = {"camera": "/sim/camera", "ego": "/sim/ego"}
    outputs: ClassVar[dict[str, str]] = {"objects": "/perception/objects"}
    trigger: ClassVar[str | None] = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, PerceptionParams)
        if params.mode not in ("cnn", "gt"):
            raise ValueError(f"perception: mode must be 'cnn' or 'gt', got {params.mode!r}")
        if params.threads < 1:
            raise ValueError(f"perception: threads must be >= 1, got {params.threads}")
        if not (params.score_threshold == 0.0 or 0.0 < params.score_threshold < 1.0):
            raise ValueError(f"perception: score_threshold must be 0 (the one stored with the weights) or in (0, 1), "
                             f"got {params.score_threshold}")
        for name, unit in (("gate_m", "m"), ("meas_std_m", "m"), ("accel_std_mps2", "m/s^2")):
            value = getattr(params, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"perception: {name} must be > 0 {unit}, got {value}")
        _tracker_config(params)  # and whatever else TrackerConfig.check refuses
        check_backend(params.backend, "perception")
        if params.mode != "cnn":
            return
        try:
            source = require_model(params.model, "perception", TRAIN_COMMANDS["perception"])
        except ValueError as exc:
            raise ValueError(f"model: {exc}") from None
        if params.backend != "torch":
            path = exported_path(source, params.backend)
            if not path.is_file():
                raise ValueError(f"perception: backend {params.backend} needs {path}: make it with "
                                 f"`{EXPORT_COMMANDS['perception']}`, or use backend: torch")
            try:  # an export of other weights, or without the layout it is decoded with: refused when loaded
                Layout(check_export(path, source, EXPORT_COMMANDS["perception"]))
            except ValueError as exc:
                raise ValueError(f"perception: backend {params.backend}: {exc}") from None

    @classmethod
    def input_ports(cls, params: Params) -> dict[str, str]:
        if isinstance(params, PerceptionParams) and params.mode == "gt":
            return {"objects": "/sim/objects_gt", "ego": "/sim/ego"}
        return dict(cls.inputs)

    def __init__(self, params: PerceptionParams) -> None:
        super().__init__(params)
        self.view = DEFAULT_VIEW
        self.detector = None
        self.tracker = Tracker(_tracker_config(params))
        self._counts = {"frames": 0, "detections": 0, "published_objects": 0}
        if params.mode == "cnn":
            from nodes.perception.backends import make_detector

            self.detector = make_detector(params.model, params.backend, params.score_threshold or None, self.view,
                                          params.threads)

    def reset(self, episode: int) -> None:
        self.tracker.reset()

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs.get("ego")
        if not isinstance(ego, EgoState):
            return []
        ego = bounded_ego(ego)  # a lane width <= 0 or a position of 1e308 m would break the lane and speed below
        if self.params.mode == "gt":
            objs = self._ground_truth(inputs.get("objects"))
        else:
            objs = self._track(inputs.get("camera"), ego)
        self._counts["published_objects"] += len(objs)
        return [("objects", ObjectArray(header=tick_header(ego.header, "ego"), objects=objs))]

    def _ground_truth(self, msg: Message | None) -> list[Object]:
        if not isinstance(msg, ObjectArray):
            return []
        # clamped into the physical envelope first: a vehicle 1e308 m away is simply out of view (no overflow)
        return [o for o in bounded_objects(msg.objects) if self.view.fully_in_view(o.x, o.y, o.length, o.width)]

    def _track(self, camera: Message | None, ego: EgoState) -> list[Object]:
        dets = None
        if isinstance(camera, Image):
            self._counts["frames"] += 1
            dets = self.detector(camera.array())
            self._counts["detections"] += len(dets)
        tracks = self.tracker.step(dets if dets is not None else [], (ego.x, ego.y), (ego.vx, ego.vy),
                                   ego.header.stamp_ns * 1e-9)
        out = []
        for t in tracks:
            x, y, length, width = float(t[T_X]), float(t[T_Y]), float(t[T_LEN]), float(t[T_WID])
            if not self.view.fully_in_view(x, y, length, width):
                continue
            vx, vy = float(t[T_VX]), float(t[T_VY])
            wx, wy = ego.x + x, ego.y + y
            lane = int(min(max(round(wy / ego.lane_width), 0), ego.lanes_count - 1))
            out.append(Object(id=int(t[T_ID]), x=x, y=y, vx=vx, vy=vy, heading=float(t[T_HEAD]),
                              length=length, width=width, world_x=wx, world_y=wy,
                              speed=math.hypot(ego.vx + vx, ego.vy + vy), lane_index=lane,
                              score=float(t[T_SCORE]), in_view=True))
        return out

    def counters(self) -> dict[str, int]:
        return dict(self._counts, tracks=len(self.tracker))


def _tracker_config(params: PerceptionParams) -> TrackerConfig:
    """The tracker's config from the node's params (ValueError, from TrackerConfig.check, for bad values)."""
    return TrackerConfig(meas_std=params.meas_std_m, accel_std_x=params.accel_std_mps2, gate_m=params.gate_m,
                         confirm_hits=params.confirm_hits, max_misses=params.max_misses)


NODE = PerceptionNode
