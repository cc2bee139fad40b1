"""The one pixel <-> world transform of the top-down camera.

highway-env renders the road with the ego at a fixed place in the frame: a world point (x, y) lands at
column = scaling * (x - x_ego) + centre_col and row = scaling * (y - y_ego) + centre_row, with
centre = centering_position * (width, height). The detector's training labels and the placement of its
detections both go through this module, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraView:
    width: int = 600  # [px]
    height: int = 150  # [px]
    scaling: float = 5.5  # [px/m]
    centering: tuple[float, float] = (0.3, 0.5)  # ego position as a fraction of (width, height)

    @property
    def centre_px(self) -> tuple[float, float]:
        """(col, row) of the ego's centre."""
        return self.centering[0] * self.width, self.centering[1] * self.height

    def to_pixels(self, dx: np.ndarray | float, dy: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Ego-relative world offsets [m] -> (col, row) [px]."""
        c0, r0 = self.centre_px
        return self.scaling * np.asarray(dx) + c0, self.scaling * np.asarray(dy) + r0

    def to_world(self, col: np.ndarray | float, row: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(col, row) [px] -> ego-relative world offsets (dx, dy) [m]."""
        c0, r0 = self.centre_px
        return (np.asarray(col) - c0) / self.scaling, (np.asarray(row) - r0) / self.scaling

    def box_pixels(self, dx: float, dy: float, length: float, width: float) -> tuple[float, float, float, float]:
        """Axis-aligned box (col0, row0, col1, row1) [px] of a vehicle centred at (dx, dy) [m]."""
        c, r = self.to_pixels(dx, dy)
        hl, hw = 0.5 * length * self.scaling, 0.5 * width * self.scaling
        return float(c - hl), float(r - hw), float(c + hl), float(r + hw)

    def fully_in_view(self, dx: float, dy: float, length: float, width: float) -> bool:
        c0, r0, c1, r1 = self.box_pixels(dx, dy, length, width)
        return c0 >= 0 and r0 >= 0 and c1 <= self.width and r1 <= self.height

    def fully_in_view_mask(self, dx: np.ndarray, dy: np.ndarray, length: np.ndarray, width: np.ndarray
                           ) -> np.ndarray:
        """`fully_in_view` for arrays of vehicles, elementwise with the same arithmetic (the same answers)."""
        c, r = self.to_pixels(dx, dy)
        hl, hw = 0.5 * np.asarray(length) * self.scaling, 0.5 * np.asarray(width) * self.scaling
        return (c - hl >= 0) & (r - hw >= 0) & (c + hl <= self.width) & (r + hw <= self.height)

    @property
    def range_m(self) -> tuple[float, float]:
        """(behind, ahead) [m] visible along the road."""
        c0, _ = self.centre_px
        return c0 / self.scaling, (self.width - c0) / self.scaling

    def env_config(self) -> dict:
        """The highway-env rendering keys that produce this view."""
        return {
            "screen_width": self.width,
            "screen_height": self.height,
            "scaling": self.scaling,
            "centering_position": list(self.centering),
        }


DEFAULT_VIEW = CameraView()
