"""The vehicle detector at inference: load the shipped weights, frame in, ego-relative boxes out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nodes.deploy import TRAIN_COMMANDS
from nodes.perception.net import CenterNet, NetConfig, decode, to_input
from nodes.share import MODELS_DIR as MODELS_DIR  # re-exported: where the shipped weights live
from nodes.share import require_model, resolve_model
from sim.view import DEFAULT_VIEW, CameraView

DEFAULT_WEIGHTS = "perception.pt"
TRAIN_COMMAND = "drivestack train perception  (same as: python -m nodes.perception.train)"
DET_FIELDS = ("x", "y", "length", "width", "heading", "score")


resolve_weights = resolve_model  # the one model resolver (nodes.share), under the name perception's callers use


def save_weights(net: CenterNet, path: str | Path, meta: dict) -> Path:
    """Write the trained net (BatchNorm not yet fused) with its config and a free-form meta dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    torch.save({"format": "drivestack-perception-v1", "config": net.cfg.to_dict(), "state_dict": state,
                "meta": meta}, path)
    return path


def load_net(path: str | Path) -> tuple[CenterNet, dict]:
    """The net in eval mode, BatchNorm fused, plus its meta dict. ValueError names the path and the command
    that makes the file when it is missing or unreadable."""
    p = require_model(path, "perception", TRAIN_COMMANDS["perception"])
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != "drivestack-perception-v1":
            raise ValueError("not a drivestack perception weights file")
        net = CenterNet(NetConfig.from_dict(blob["config"]))
        net.load_state_dict(blob["state_dict"])
    except Exception as exc:  # any failure to read means the same thing to the user
        raise ValueError(f"perception weights unreadable: {p} ({type(exc).__name__}: {exc}). "
                         f"Remake them with `{TRAIN_COMMAND}`.") from None
    net.eval().fuse()
    return net.to(memory_format=torch.channels_last), dict(blob.get("meta", {}))


class Detector:
    """Frame -> detections: rows of DET_FIELDS (ego-relative [m, m, m, m, rad, -]), best score first."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, threshold: float | None = None,
                 view: CameraView = DEFAULT_VIEW, net: CenterNet | None = None) -> None:
        """weights: file under models/ or a path. threshold: least score kept (None: the one stored with
        the weights, else 0.5). view: the camera that rendered the frames. net: use this net instead of
        loading (training evaluates itself this way)."""
        meta: dict = {}
        if net is None:
            net, meta = load_net(weights)
        self.net = net
        self.view = view
        self.threshold = float(threshold if threshold is not None else meta.get("threshold", 0.5))
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"detector threshold must be in (0, 1), got {self.threshold}")

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.shape != (self.view.height, self.view.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"detector expects ({self.view.height}, {self.view.width}, 3) uint8 frames, "
                             f"got {frame.shape} {frame.dtype}")
        out = self.net(to_input(frame))
        return decode(out, self.threshold, self.view)
