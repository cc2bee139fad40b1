"""The one observation builder of the planner, shared by training and by the planning node.

From an `ObjectArray` and the `EgoState` it builds highway-env's Kinematics observation (features
presence, x, y, vx, vy; ego first, then the nearest other vehicles) with the same normalisation as
highway-env 1.12's `KinematicObservation(absolute=False, order="sorted", normalize=True, clip=True)`:

- the ego row holds its world x, y, vx, vy; the other rows hold values relative to the ego;
- x is mapped from [-5 * MAX_SPEED, 5 * MAX_SPEED], y from [-lane_width * lanes, +lane_width * lanes],
  vx and vy from [-2 * MAX_SPEED, 2 * MAX_SPEED] onto [-1, 1], then clipped to [-1, 1];
- the other vehicles are those within PERCEPTION_DISTANCE of the ego, ordered by their distance
  along the road (|dx|), the first `vehicles_count - 1` of them; missing rows are zeros.

The planner sees only what the camera sees: objects whose `in_view` flag is False are dropped first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from msgs import EgoState, Object

FEATURES: tuple[str, ...] = ("presence", "x", "y", "vx", "vy")
MAX_SPEED = 40.0  # [m/s] highway-env's Vehicle.MAX_SPEED, the scale of the normalisation
PERCEPTION_DISTANCE = 5.0 * MAX_SPEED  # [m] highway-env's AbstractEnv.PERCEPTION_DISTANCE
EGO_LENGTH = 5.0  # [m] highway-env's Vehicle.LENGTH, used by its see_behind cut


@dataclass(frozen=True)
class ObservationConfig:
    """Shape and content of the observation. The defaults are what the shipped planner was trained with."""

    vehicles_count: int = 7  # rows, the ego included
    see_behind: bool = True  # False: like highway-env's default, drop vehicles more than 2 ego lengths behind
    only_in_view: bool = True  # drop objects outside the camera's field of view

    def __post_init__(self) -> None:
        if self.vehicles_count < 1:
            raise ValueError(f"ObservationConfig.vehicles_count must be >= 1, got {self.vehicles_count}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.vehicles_count, len(FEATURES)

    def highway_env_config(self) -> dict:
        """The highway-env `observation` config whose KinematicObservation this builder reproduces."""
        return {
            "type": "Kinematics",
            "vehicles_count": self.vehicles_count,
            "features": list(FEATURES),
            "absolute": False,
            "order": "sorted",
            "normalize": True,
            "clip": True,
            "see_behind": self.see_behind,
        }


def _normalise(value: float, low: float, high: float) -> float:
    return min(1.0, max(-1.0, -1.0 + (value - low) * 2.0 / (high - low)))


def _row(x: float, y: float, vx: float, vy: float, y_range: float) -> list[float]:
    return [
        1.0,
        _normalise(x, -PERCEPTION_DISTANCE, PERCEPTION_DISTANCE),
        _normalise(y, -y_range, y_range),
        _normalise(vx, -2.0 * MAX_SPEED, 2.0 * MAX_SPEED),
        _normalise(vy, -2.0 * MAX_SPEED, 2.0 * MAX_SPEED),
    ]


def visible_neighbours(objects: Sequence[Object], config: ObservationConfig) -> list[Object]:
    """The objects that make the observation's rows after the ego, nearest (along the road) first."""
    kept = [
        o
        for o in objects
        if (o.in_view or not config.only_in_view)
        and math.hypot(o.x, o.y) < PERCEPTION_DISTANCE
        and (config.see_behind or o.x > -2.0 * EGO_LENGTH)
    ]
    kept.sort(key=lambda o: abs(o.x))  # stable, like highway-env's sorted()
    return kept[: config.vehicles_count - 1]


def build_observation(
    objects: Sequence[Object], ego: EgoState, config: ObservationConfig = ObservationConfig()
) -> np.ndarray:
    """The (vehicles_count, 5) float32 Kinematics observation of `ego` among `objects`.

    objects: other vehicles in the ego frame (x, y, vx, vy relative to the ego), e.g. /perception/objects.
    ego: the ego in the world frame (/sim/ego).
    config: rows and filters; must match the one the policy was trained with.
    """
    if ego.lanes_count < 1 or ego.lane_width <= 0.0:
        raise ValueError(f"EgoState needs lanes_count >= 1 and lane_width > 0, got {ego.lanes_count}, "
                         f"{ego.lane_width}")
    y_range = ego.lane_width * ego.lanes_count
    obs = np.zeros(config.shape, dtype=np.float32)
    obs[0] = _row(ego.x, ego.y, ego.vx, ego.vy, y_range)
    for i, o in enumerate(visible_neighbours(objects, config), start=1):
        obs[i] = _row(o.x, o.y, o.vx, o.vy, y_range)
    return obs
