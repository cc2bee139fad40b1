"""The one observation builder of the planner, shared by training and by the planning node.

Two kinds, chosen by `ObservationConfig.kind`; a trained model's observation shape tells which it uses
(`ObservationConfig.for_shape`).

"kinematics" (the default). From an `ObjectArray` and the `EgoState` it builds highway-env's Kinematics
observation (features presence, x, y, vx, vy; ego first, then the nearest other vehicles) with the same
normalisation as highway-env 1.12's `KinematicObservation(absolute=False, order="sorted", normalize=True,
clip=True)`:

- the ego row holds its world x, y, vx, vy; the other rows hold values relative to the ego;
- x is mapped from [-5 * MAX_SPEED, 5 * MAX_SPEED], y from [-lane_width * lanes, +lane_width * lanes],
  vx and vy from [-2 * MAX_SPEED, 2 * MAX_SPEED] onto [-1, 1], then clipped to [-1, 1];
- the other vehicles are those within PERCEPTION_DISTANCE of the ego, ordered by their distance
  along the road (|dx|), the first `vehicles_count - 1` of them; missing rows are zeros.

"lanes". A (4, 7) summary per lane: which lane is free ahead, which gap is open. Row 0 is the ego
(EGO_FEATURES); rows 1-3 are the lane left of the ego, the ego's lane and the lane right of it
(LANE_FEATURES): the two nearest vehicles ahead in that lane and the nearest behind, each as a
bumper-to-bumper gap and a speed relative to the ego. A vehicle's lane comes from its lateral position.
All values lie in [-1, 1]:

- gaps ahead map [0, LEAD_GAP_RANGE] m, the gap behind [0, REAR_GAP_RANGE] m, relative speeds
  [-REL_SPEED_RANGE, +REL_SPEED_RANGE] m/s onto [-1, 1], clipped;
- a missing vehicle reads as far (gap 1) and harmless (relative speed +1 ahead, -1 behind);
- a lane that does not exist reads as blocked: presence -1, gaps -1, relative speeds -1 ahead, +1 behind.

The planner sees only what the camera sees: objects whose `in_view` flag is False are dropped first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from msgs import EgoState, Object
from msgs.limits import bounded_ego, bounded_objects

FEATURES: tuple[str, ...] = ("presence", "x", "y", "vx", "vy")
EGO_FEATURES: tuple[str, ...] = ("presence", "speed", "lane", "lateral_offset", "vy", "leftmost", "rightmost")
LANE_FEATURES: tuple[str, ...] = ("exists", "lead_gap", "lead_dv", "lead2_gap", "lead2_dv", "rear_gap", "rear_dv")
LANE_ROWS = 4  # the ego, then the lanes left of it, its own and right of it
KINDS: tuple[str, ...] = ("kinematics", "lanes")
LEAD_GAP_RANGE = 100.0  # [m] gaps ahead at or beyond this read as 1 ("lanes")
REAR_GAP_RANGE = 60.0  # [m] gaps behind at or beyond this read as 1 ("lanes")
REL_SPEED_RANGE = 10.0  # [m/s] relative speeds map [-this, +this] onto [-1, 1] ("lanes")
MAX_SPEED = 40.0  # [m/s] highway-env's Vehicle.MAX_SPEED, the scale of the normalisation
PERCEPTION_DISTANCE = 5.0 * MAX_SPEED  # [m] highway-env's AbstractEnv.PERCEPTION_DISTANCE
EGO_LENGTH = 5.0  # [m] highway-env's Vehicle.LENGTH, used by its see_behind cut


@dataclass(frozen=True)
class ObservationConfig:
    """Shape and content of the observation. The defaults are the Kinematics observation of the planners
    trained before the "lanes" kind existed."""

    vehicles_count: int = 7  # rows, the ego included ("kinematics")
    see_behind: bool = True  # False: like highway-env's default, drop vehicles more than 2 ego lengths behind
    only_in_view: bool = True  # drop objects outside the camera's field of view
    kind: str = "kinematics"  # "kinematics" or "lanes" (the module's docstring)

    def __post_init__(self) -> None:
        self.check()  # a value object: refused when made

    def check(self) -> ObservationConfig:
        """ValueError naming the first bad field; returns self so it chains."""
        if self.kind not in KINDS:
            raise ValueError(f"ObservationConfig.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.vehicles_count < 1:
            raise ValueError(f"ObservationConfig.vehicles_count must be >= 1, got {self.vehicles_count}")
        return self

    @property
    def shape(self) -> tuple[int, int]:
        if self.kind == "lanes":
            return LANE_ROWS, len(LANE_FEATURES)
        return self.vehicles_count, len(FEATURES)

    @classmethod
    def for_shape(cls, shape: Sequence[int], see_behind: bool = True) -> ObservationConfig:
        """The config whose observation has `shape` (a trained model's observation space)."""
        shape = tuple(int(n) for n in shape)
        if shape == (LANE_ROWS, len(LANE_FEATURES)):
            return cls(kind="lanes", see_behind=see_behind)
        if len(shape) == 2 and shape[1] == len(FEATURES) and shape[0] >= 1:
            return cls(vehicles_count=shape[0], see_behind=see_behind)
        raise ValueError(f"no planner observation has shape {shape}: 'kinematics' is (vehicles, {len(FEATURES)}), "
                         f"'lanes' is ({LANE_ROWS}, {len(LANE_FEATURES)})")

    def highway_env_config(self) -> dict:
        """The highway-env `observation` config whose KinematicObservation this builder reproduces."""
        if self.kind != "kinematics":
            raise ValueError(f"highway-env has no counterpart of the {self.kind!r} observation")
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
    """The float32 observation of `ego` among `objects`, of shape `config.shape`.

    objects: other vehicles in the ego frame (x, y, vx, vy relative to the ego), e.g. /perception/objects.
    ego: the ego in the world frame (/sim/ego).
    config: kind, rows and filters; must match the one the policy was trained with.

    Any finite input gives an observation in [-1, 1]: a physically meaningless value (a speed of 1e308 m/s,
    a lane width <= 0, no lanes) is first clamped into the envelope of msgs.limits, as the sim could never
    send it; a value inside the envelope is used as it is.
    """
    ego = bounded_ego(ego)
    objects = bounded_objects(list(objects))
    if config.kind == "lanes":
        return _lanes(objects, ego, config)
    y_range = ego.lane_width * ego.lanes_count
    obs = np.zeros(config.shape, dtype=np.float32)
    obs[0] = _row(ego.x, ego.y, ego.vx, ego.vy, y_range)
    for i, o in enumerate(visible_neighbours(objects, config), start=1):
        obs[i] = _row(o.x, o.y, o.vx, o.vy, y_range)
    return obs


def _lane_row(in_lane: list[Object], ego: EgoState) -> list[float]:
    ahead = sorted((o for o in in_lane if o.x >= 0.0), key=lambda o: o.x)
    behind = max((o for o in in_lane if o.x < 0.0), key=lambda o: o.x, default=None)
    row = [1.0]
    for k in range(2):
        if k < len(ahead):
            o = ahead[k]
            gap = o.x - 0.5 * (o.length + ego.length)
            row += [_normalise(gap, 0.0, LEAD_GAP_RANGE), _normalise(o.vx, -REL_SPEED_RANGE, REL_SPEED_RANGE)]
        else:
            row += [1.0, 1.0]
    if behind is None:
        row += [1.0, -1.0]
    else:
        gap = -behind.x - 0.5 * (behind.length + ego.length)
        row += [_normalise(gap, 0.0, REAR_GAP_RANGE), _normalise(behind.vx, -REL_SPEED_RANGE, REL_SPEED_RANGE)]
    return row


def _lanes(objects: Sequence[Object], ego: EgoState, config: ObservationConfig) -> np.ndarray:
    n, width = ego.lanes_count, ego.lane_width
    obs = np.zeros(config.shape, dtype=np.float32)
    obs[0] = [
        1.0,
        _normalise(ego.vx, 0.0, MAX_SPEED),
        _normalise(ego.lane_index, 0.0, max(n - 1, 1)),
        _normalise(ego.lateral_offset, -width, width),
        _normalise(ego.vy, -REL_SPEED_RANGE / 2.0, REL_SPEED_RANGE / 2.0),
        1.0 if ego.lane_index == 0 else -1.0,
        1.0 if ego.lane_index == n - 1 else -1.0,
    ]
    by_lane: dict[int, list[Object]] = {}
    for o in objects:
        if o.in_view or not config.only_in_view:
            by_lane.setdefault(round((ego.y + o.y) / width), []).append(o)
    for row, lane in enumerate((ego.lane_index - 1, ego.lane_index, ego.lane_index + 1), start=1):
        if 0 <= lane < n:
            obs[row] = _lane_row(by_lane.get(lane, []), ego)
        else:
            obs[row] = [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 1.0]
    return obs
