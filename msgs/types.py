"""Every message that crosses a socket: frozen, typed msgspec structs.

Units are SI (m, m/s, rad, s) unless a field says otherwise. Positions in the *ego frame* are relative
to the ego vehicle's centre with the road's axes (x along the road, forwards; y across it, towards
higher lane indices), which is also how highway-env's Kinematics observation measures them.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec
import numpy as np


class Header(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Carried by every message: where in the run it belongs."""

    episode: int = 0  # episode index within the run
    tick: int = 0  # control tick within the episode (0 at reset)
    stamp_ns: int = 0  # simulated time since the episode started [ns]
    frame_id: str = ""  # coordinate frame of the payload ("world", "ego", "camera")


class Message(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every message type."""

    header: Header = Header()


class Image(Message, frozen=True, kw_only=True):
    """A camera frame. On the wire, `data` travels as its own zero-copy frame (see msgs/README.md)."""

    width: int
    height: int
    encoding: str = "rgb8"  # 3 bytes per pixel, row-major, rows top to bottom
    data: bytes = b""

    def array(self) -> np.ndarray:
        """The pixels as a read-only (height, width, 3) uint8 view; no copy."""
        return np.frombuffer(self.data, dtype=np.uint8).reshape(self.height, self.width, 3)

    @classmethod
    def from_array(cls, pixels: np.ndarray, header: Header) -> Image:
        h, w = pixels.shape[:2]
        return cls(header=header, width=w, height=h, data=np.ascontiguousarray(pixels, np.uint8).tobytes())


class EgoState(Message, frozen=True, kw_only=True):
    """The ego vehicle, in the world frame."""

    x: float  # [m] along the road
    y: float  # [m] across the road; lane centres at 0, 4, 8, ... (lane 0 on top of the image)
    heading: float  # [rad], 0 along the road
    speed: float  # [m/s]
    vx: float  # [m/s]
    vy: float  # [m/s]
    lane_index: int  # 0 = leftmost (top) lane
    lateral_offset: float  # [m] signed distance from the centre of `lane_index`, + towards higher lanes
    lanes_count: int = 4
    lane_width: float = 4.0  # [m]
    length: float = 5.0  # [m]
    width: float = 2.0  # [m]
    acceleration: float = 0.0  # [m/s^2] applied over the last tick
    steering: float = 0.0  # [rad] applied over the last tick
    crashed: bool = False
    on_road: bool = True
    reward: float = 0.0  # highway-env's normalised reward for the last tick, in [0, 1]


class Object(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One other vehicle. Positions and velocities relative to the ego (ego frame); world values too."""

    id: int  # stable track id (perception) or vehicle id (ground truth)
    x: float  # [m] ahead of the ego (negative: behind)
    y: float  # [m] across the road from the ego
    vx: float  # [m/s] relative to the ego
    vy: float  # [m/s] relative to the ego
    heading: float = 0.0  # [rad] world
    length: float = 5.0  # [m]
    width: float = 2.0  # [m]
    world_x: float = 0.0  # [m]
    world_y: float = 0.0  # [m]
    speed: float = 0.0  # [m/s] world
    lane_index: int = -1  # -1 when unknown
    score: float = 1.0  # detection confidence, 1 for ground truth
    in_view: bool = True  # fully inside the camera's field of view


class ObjectArray(Message, frozen=True, kw_only=True):
    objects: list[Object] = []


class Action(IntEnum):
    """highway-env's DiscreteMetaAction order."""

    LANE_LEFT = 0
    IDLE = 1
    LANE_RIGHT = 2
    FASTER = 3
    SLOWER = 4


class Plan(Message, frozen=True, kw_only=True):
    action: int  # an `Action`
    q_values: list[float] = []  # one per action, empty when the planner is not a Q-network
    replanned: bool = False  # True on the tick the action was chosen; False when the held plan is republished
    plan_tick: int = 0  # tick at which the held action was chosen


class Mode(IntEnum):
    """What the decision layer did with the plan on a tick. FOLLOWING is part of normal driving; OVERRIDE,
    EMERGENCY and MINIMAL_RISK are interventions. Values are wire values (FOLLOWING came last); which mode
    wins when several apply is `MODE_PRIORITY`, not the value."""

    NOMINAL = 0  # the plan is followed
    OVERRIDE = 1  # intervention: a lane change refused or aborted (gap acceptance)
    EMERGENCY = 2  # intervention: hard braking, time-to-collision below threshold
    MINIMAL_RISK = 3  # intervention: inputs stale, hold the lane and slow down
    FOLLOWING = 4  # adaptive cruise: the set-point capped behind a slower lead vehicle

    @property
    def is_intervention(self) -> bool:
        return self in (Mode.OVERRIDE, Mode.EMERGENCY, Mode.MINIMAL_RISK)


MODE_PRIORITY = (Mode.NOMINAL, Mode.FOLLOWING, Mode.OVERRIDE, Mode.EMERGENCY, Mode.MINIMAL_RISK)  # lowest first


class DrivingTarget(Message, frozen=True, kw_only=True):
    target_lane: int  # lane index to drive in the centre of
    target_speed: float  # [m/s]
    mode: int = Mode.NOMINAL  # a `Mode`
    reason: str = ""  # "kind: details" per mode that applies, joined by "; "; empty in NOMINAL
    plan_action: int = Action.IDLE  # the action that was asked for
    max_decel: float = 0.0  # [m/s^2] > 0 asks control for at least this deceleration (emergency)


class ControlCommand(Message, frozen=True, kw_only=True):
    """highway-env ContinuousAction terms: both normalised to [-1, 1]."""

    acceleration: float  # x 5 m/s^2
    steering: float  # x pi/4 rad

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.acceleration) and np.isfinite(self.steering))


class EpisodeEvent(Message, frozen=True, kw_only=True):
    kind: str  # "start" | "end"
    seed: int = 0
    reason: str = ""  # on "end": "collision" | "offroad" | "time_limit" | "shutdown"
    last: bool = False  # True on the end of the run's last episode


class Diagnostics(Message, frozen=True, kw_only=True):
    """A node's heartbeat and counters (published about once per second of wall time)."""

    node: str
    status: str = "ok"  # "starting" | "ok" | "degraded" | "stopping"
    pid: int = 0
    wall_time_ns: int = 0
    counters: dict[str, int] = {}  # e.g. rejected_messages, ticks
    values: dict[str, float] = {}  # e.g. step_p50_us
