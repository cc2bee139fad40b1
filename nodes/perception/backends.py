"""The detector behind a backend: torch (the trained net) or an ONNX export run by onnxruntime (no torch).

Every backend is called the same way: frame (H, W, 3) uint8 -> detections, rows of detector.DET_FIELDS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nodes.deploy import EXPORT_COMMANDS, TRAIN_COMMANDS, check_backend, exported_path, open_session
from nodes.share import require_model, resolve_model
from sim.view import DEFAULT_VIEW, CameraView

LAYOUT_FIELDS = ("heat", "off_x", "off_y", "length", "width", "heading")  # the output channels, stored in order


resolve_weights = resolve_model  # the one model resolver (nodes.share), under the name perception's callers use


class Layout:
    """Where decode finds each output channel, and the output stride [px]: read from the export's metadata,
    which the exporter writes from nodes/perception/net.py, so the runtime needs no torch."""

    def __init__(self, meta: dict[str, str]) -> None:
        try:
            self.stride = int(meta["stride"])
            order = meta["channels"].split(",")
            self.heat, self.off_x, self.off_y, self.length, self.width, self.heading = (
                order.index(f) for f in LAYOUT_FIELDS)
        except (KeyError, ValueError):
            raise ValueError("the ONNX detector has no output layout in its metadata: remake it with "
                             f"`{EXPORT_COMMANDS['perception']}`") from None


def find_peaks(logit: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the cells that are the maximum of their 3x3 neighbourhood and above the score
    `threshold` (as net.decode finds them with torch's max_pool2d), in row-major order."""
    padded = np.pad(logit, 1, constant_values=-np.inf)
    h, w = logit.shape
    pooled = logit.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(pooled, padded[dy:dy + h, dx:dx + w], out=pooled)
    thr_logit = np.float32(math.log(threshold / (1 - threshold)))
    return np.nonzero((logit == pooled) & (logit > thr_logit))


def decode_array(out: np.ndarray, threshold: float, layout: Layout, view: CameraView = DEFAULT_VIEW,
                 max_det: int = 64) -> np.ndarray:
    """net.decode on a numpy output (1, 6, gh, gw): (K, 6) detections, highest score first."""
    iy, ix = find_peaks(out[0, layout.heat], threshold)
    if len(iy) == 0:
        return np.zeros((0, 6), np.float32)
    vals = out[0, :, iy, ix]  # (K, 6)
    score = 1.0 / (1.0 + np.exp(-vals[:, layout.heat]))
    order = np.argsort(-score)[:max_det]
    vals, score = vals[order], score[order]
    col = (ix[order] + vals[:, layout.off_x]) * layout.stride
    row = (iy[order] + vals[:, layout.off_y]) * layout.stride
    x, y = view.to_world(col, row)
    return np.stack([x, y, vals[:, layout.length], vals[:, layout.width], vals[:, layout.heading], score],
                    1).astype(np.float32)


class OnnxDetector:
    """The exported detector (backend onnx or onnx_int8) on onnxruntime; the Detector's interface."""

    def __init__(self, weights: str | Path, backend: str = "onnx", threshold: float | None = None,
                 view: CameraView = DEFAULT_VIEW, threads: int = 1, path: str | Path | None = None) -> None:
        """weights: the torch weights the export was made from (under models/ or a path). backend: onnx or
        onnx_int8. threshold: least score kept (None: the one stored with the export). view: the camera.
        threads: onnxruntime threads. path: the ONNX file (None: the one beside the weights)."""
        source = require_model(weights, "perception", TRAIN_COMMANDS["perception"])
        self.path = Path(path) if path is not None else exported_path(source, backend)
        self.session, meta = open_session(self.path, source, EXPORT_COMMANDS["perception"], threads)
        self.view = view
        self.backend = backend
        self.layout = Layout(meta)
        self.threshold = float(threshold if threshold is not None else meta.get("threshold", 0.5))
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"detector threshold must be in (0, 1), got {self.threshold}")

    def raw(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> the network's output (B, 6, gh, gw) float32."""
        return self.session.run(None, {"frames": np.ascontiguousarray(frames)})[0]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.shape != (self.view.height, self.view.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"detector expects ({self.view.height}, {self.view.width}, 3) uint8 frames, "
                             f"got {frame.shape} {frame.dtype}")
        return decode_array(self.raw(frame[None]), self.threshold, self.layout, self.view)


def make_detector(weights: str | Path, backend: str = "torch", threshold: float | None = None,
                  view: CameraView = DEFAULT_VIEW, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """The detector for `backend` (torch, onnx, onnx_int8); torch is imported only for backend torch."""
    check_backend(backend, "perception")
    if backend == "torch":
        import torch

        from nodes.perception.detector import Detector

        torch.set_num_threads(threads)
        return Detector(weights, threshold, view)
    return OnnxDetector(weights, backend, threshold, view, threads)
