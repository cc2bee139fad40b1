"""The detector network: a small anchor-free CNN (CenterNet-style) in plain torch.

One output cell per STRIDE x STRIDE pixels carries a vehicle-centre heat-map (a logit), the sub-cell offset
of the centre, the vehicle's length and width [m] and its heading [rad]. Training targets are built here
from ego-relative labels through `sim.view`, and decoding maps peaks back through the same transform.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sim.view import DEFAULT_VIEW, CameraView

STRIDE = 4  # [px] per output cell
HEAT, OFF_X, OFF_Y, LEN, WID, HEAD = range(6)
OUT_CHANNELS = 6
MEAN_SIZE = (5.0, 2.0)  # [m] highway-env's car length and width, the size head's starting bias
PIXEL_SCALE = 1.0 / 64.0  # uint8 -> roughly unit-variance input
PIXEL_SHIFT = 2.0


@dataclass(frozen=True)
class NetConfig:
    width: int = 16  # channels of every hidden layer
    dilations: tuple[int, ...] = (1, 2, 4)  # 3x3 residual blocks at stride 4 (receptive field ~60 px)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        return cls(width=int(d["width"]), dilations=tuple(int(x) for x in d["dilations"]))


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class CenterNet(nn.Module):
    """6x6 stride-4 stem -> dilated 3x3 residual blocks at stride 4 -> 1x1 head."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.stem = ConvBN(3, w, kernel=6, stride=4, padding=2)  # each cell sees a 6x6 px patch
        self.blocks = nn.ModuleList(ConvBN(w, w, dilation=d, padding=d) for d in cfg.dilations)
        self.head = nn.Conv2d(w, OUT_CHANNELS, 1)
        with torch.no_grad():
            self.head.bias.zero_()
            self.head.bias[HEAT] = -math.log((1 - 0.01) / 0.01)  # start predicting ~1% centres
            self.head.bias[LEN], self.head.bias[WID] = MEAN_SIZE
            self.head.bias[OFF_X] = self.head.bias[OFF_Y] = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) float, already normalised -> (B, 6, ceil(H/4), W/4)."""
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)

    def fuse(self) -> CenterNet:
        """Fold every BatchNorm into its conv (inference only): same outputs, fewer ops."""
        for m in self.modules():
            if isinstance(m, ConvBN) and isinstance(m.bn, nn.BatchNorm2d):
                bn, conv = m.bn, m.conv
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                  conv.padding, dilation=conv.dilation, bias=True)
                with torch.no_grad():
                    fused.weight.copy_(conv.weight * scale[:, None, None, None])
                    fused.bias.copy_(bn.bias - bn.running_mean * scale)
                m.conv, m.bn = fused, nn.Identity()
        return self


def to_input(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) or (H, W, 3) uint8 -> normalised (B, 3, H, W) float in channels-last memory."""
    if isinstance(frames, np.ndarray) and not frames.flags.writeable:  # e.g. a view of a message's bytes
        frames = frames.copy()
    t = torch.as_tensor(frames)
    if t.dim() == 3:
        t = t.unsqueeze(0)
    return t.float().mul_(PIXEL_SCALE).sub_(PIXEL_SHIFT).permute(0, 3, 1, 2)


def grid_shape(view: CameraView = DEFAULT_VIEW) -> tuple[int, int]:
    return -(-view.height // STRIDE), view.width // STRIDE


def encode(labels: np.ndarray, view: CameraView = DEFAULT_VIEW, min_sigma: float = 0.5
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets of one frame.

    labels: (K, >=9) rows of dataset.LABEL_FIELDS.
    Returns heat (gh, gw) in [0, 1] (elliptic Gaussians, 1 at each centre cell), ignore (gh, gw) bool
    (cells near vehicles only partly in view: no heat-map loss) and reg (K', 8): per fully visible
    vehicle, the centre cell (row, col) and targets (off_x, off_y, length, width, heading) plus 1.
    """
    gh, gw = grid_shape(view)
    heat = np.zeros((gh, gw), np.float32)
    ignore = np.zeros((gh, gw), bool)
    reg = []
    rows = np.arange(gh, dtype=np.float32)[:, None]
    cols = np.arange(gw, dtype=np.float32)[None, :]
    for lab in labels:
        x, y, length, width, heading, in_view = lab[0], lab[1], lab[2], lab[3], lab[4], lab[8]
        col, row = view.to_pixels(x, y)
        cx, cy = float(col) / STRIDE, float(row) / STRIDE
        if in_view < 0.5:
            c0, r0, c1, r1 = view.box_pixels(x, y, length, width)
            ignore[max(0, int(r0 // STRIDE) - 1):max(0, int(r1 // STRIDE) + 2),
                   max(0, int(c0 // STRIDE) - 1):max(0, int(c1 // STRIDE) + 2)] = True
            continue
        ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
        sx = max(min_sigma, length * view.scaling / STRIDE / 6)
        sy = max(min_sigma, width * view.scaling / STRIDE / 6)
        g = np.exp(-((cols - ix) ** 2) / (2 * sx * sx) - ((rows - iy) ** 2) / (2 * sy * sy))
        np.maximum(heat, g, out=heat)
        reg.append((iy, ix, cx - ix, cy - iy, length, width, heading, 1.0))
    ignore &= heat < 0.99  # a visible vehicle's centre is never ignored
    return heat, ignore, np.array(reg, np.float32).reshape(-1, 8)


def loss(out: torch.Tensor, heat: torch.Tensor, ignore: torch.Tensor, reg: list[torch.Tensor],
         weights: tuple[float, float, float] = (1.0, 0.2, 0.5)) -> tuple[torch.Tensor, dict[str, float]]:
    """Focal loss on the heat-map plus L1 on offsets, sizes and heading at the centre cells.

    out: (B, 6, gh, gw) raw network output. heat/ignore: (B, gh, gw). reg: per frame, encode()'s reg.
    weights: (offset, size, heading) relative to the heat-map term.
    """
    logit = out[:, HEAT]
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 0.99
    keep = ~ignore
    pos_loss = -(torch.log(p) * (1 - p) ** 2)[pos].sum()
    neg_w = (1 - heat) ** 4 * p**2
    neg_loss = -(torch.log(1 - p) * neg_w)[keep & ~pos].sum()
    n_pos = max(int(pos.sum()), 1)
    heat_loss = (pos_loss + neg_loss) / n_pos
    b_idx = torch.cat([torch.full((len(r),), i, dtype=torch.long) for i, r in enumerate(reg)])
    allreg = torch.cat(reg)
    if len(allreg):
        iy, ix = allreg[:, 0].long(), allreg[:, 1].long()
        pred = out[b_idx, :, iy, ix]  # (K, 6)
        off = F.l1_loss(pred[:, [OFF_X, OFF_Y]], allreg[:, 2:4])
        size = F.l1_loss(pred[:, [LEN, WID]], allreg[:, 4:6])
        head = F.l1_loss(pred[:, HEAD], allreg[:, 6])
    else:
        off = size = head = out.sum() * 0
    total = heat_loss + weights[0] * off + weights[1] * size + weights[2] * head
    parts = {"heat": heat_loss, "off": off, "size": size, "head": head}
    return total, {k: float(v.detach()) for k, v in parts.items()}


def decode(out: torch.Tensor, threshold: float, view: CameraView = DEFAULT_VIEW, max_det: int = 64
           ) -> np.ndarray:
    """Peaks of one frame's output (1, 6, gh, gw) -> (K, 6) detections: x, y, length, width, heading, score
    (ego-relative [m, m, m, m, rad, -]), highest score first."""
    logit = out[0, HEAT]
    # Peak = local maximum of the logit (monotone in the score), so no sigmoid over the whole grid.
    peak = logit == F.max_pool2d(logit[None, None], 3, 1, 1)[0, 0]
    thr_logit = math.log(threshold / (1 - threshold))
    iy, ix = torch.nonzero(peak & (logit > thr_logit), as_tuple=True)
    if len(iy) == 0:
        return np.zeros((0, 6), np.float32)
    vals = out[0, :, iy, ix].T.numpy()  # (K, 6)
    score = 1.0 / (1.0 + np.exp(-vals[:, HEAT]))
    order = np.argsort(-score)[:max_det]
    vals, score = vals[order], score[order]
    col = (ix.numpy()[order] + vals[:, OFF_X]) * STRIDE
    row = (iy.numpy()[order] + vals[:, OFF_Y]) * STRIDE
    x, y = view.to_world(col, row)
    return np.stack([x, y, vals[:, LEN], vals[:, WID], vals[:, HEAD], score], 1).astype(np.float32)
