"""highway-env's lane markings drawn with the same pixels in a fraction of the calls (used by sim.fast_road).

highway-env draws ~60 stripes per lane line every frame, each through two `lane.position` and two
`vec2pix` calls, and most of them fall outside the 600x150 frame. For the lanes of a fast road,
`draw_stripes` computes every stripe's pixel end points at once with stock's arithmetic (the same
elementwise products and sums, truncated to int like `int()`) and skips the stripes that lie wholly
outside the surface, where pygame draws nothing; the rest are drawn by the same `pygame.draw.line` calls.
Lanes of a stock road are drawn by highway-env's own code.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import pygame
from highway_env.road.graphics import LaneGraphics
from highway_env.road.lane import StraightLane

_FAST_LANES: weakref.WeakSet = weakref.WeakSet()
_STOCK_DRAW_STRIPES = LaneGraphics.__dict__["draw_stripes"]
OFF_SURFACE_MARGIN = 4  # [px] beyond a line's width: a stripe this far outside is surely not drawn


def register(lanes: Iterable[StraightLane]) -> None:
    """Draw these lanes' markings the fast way (straight lanes along +x of a fast road)."""
    if LaneGraphics.__dict__["draw_stripes"] is _STOCK_DRAW_STRIPES:
        LaneGraphics.draw_stripes = classmethod(_draw_stripes)
    _FAST_LANES.update(lanes)


def _draw_stripes(cls: type, lane: Any, surface: Any, starts: Any, ends: Any, lats: Any) -> None:
    """LaneGraphics.draw_stripes (same arguments, same pixels)."""
    if lane not in _FAST_LANES:
        return _STOCK_DRAW_STRIPES.__func__(cls, lane, surface, starts, ends, lats)
    starts = np.clip(starts, 0, lane.length)
    ends = np.clip(ends, 0, lane.length)
    keep = np.abs(starts - ends) > 0.5 * cls.STRIPE_LENGTH
    if not keep.any():
        return None
    lats = np.asarray(lats, dtype=np.float64)[keep]
    width = max(surface.pix(cls.STRIPE_WIDTH), 1)

    def pixels(longitudinal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # lane.position(s, lat) = start + s * direction + lat * direction_lateral; then WorldSurface.vec2pix
        x = lane.start[0] + longitudinal * lane.direction[0] + lats * lane.direction_lateral[0]
        y = lane.start[1] + longitudinal * lane.direction[1] + lats * lane.direction_lateral[1]
        return ((x - surface.origin[0]) * surface.scaling).astype(np.int64), \
            ((y - surface.origin[1]) * surface.scaling).astype(np.int64)

    x0, y0 = pixels(starts[keep])
    x1, y1 = pixels(ends[keep])
    m = width + OFF_SURFACE_MARGIN
    w, h = surface.get_width(), surface.get_height()
    outside = (((x0 < -m) & (x1 < -m)) | ((x0 > w + m) & (x1 > w + m))
               | ((y0 < -m) & (y1 < -m)) | ((y0 > h + m) & (y1 > h + m)))
    for a, b, c, d in zip(*(v[~outside].tolist() for v in (x0, y0, x1, y1)), strict=True):
        pygame.draw.line(surface, surface.WHITE, (a, b), (c, d), width)
    return None
