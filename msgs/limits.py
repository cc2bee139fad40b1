"""The physical envelope of the messages a driving logic reads, and the clamp into it.

The codec rejects NaN and infinity, but a finite value can still be physically meaningless: a speed of
1e308 m/s, a negative lane width, a lane index of 2**63. Such a value is not an error of the wire (it
decodes) but of whoever sent it, and a logic that computes with it can overflow (`speed**2`), divide by
zero or produce NaN, and then stop the stack or send a command the sim cannot apply. So every pure logic
(control, decision, the planner's observation, the tracker) clamps what it reads into this envelope at its
entry: a value inside it comes back unchanged (the very object, so normal driving is bit-for-bit what it
was), a value outside it is moved to the nearest bound. The bounds are far beyond anything a road vehicle
does, so a clamped value is always one that had no physical meaning to begin with.
"""

from __future__ import annotations

import math

import msgspec

from msgs.types import DrivingTarget, EgoState, Object

# A road vehicle's speed (world or relative to another) stays far below this; 150 m/s is 540 km/h, faster
# than any production car, and still small enough that speed**2 / length-scale terms stay finite.
MAX_SPEED = 150.0  # [m/s]
MAX_RELATIVE_SPEED = 2.0 * MAX_SPEED  # [m/s] two vehicles at MAX_SPEED in opposite directions
# Positions along and across the road: 10,000 km, a quarter of the Earth's circumference. A product of a
# position and any other bounded quantity here stays finite.
MAX_POSITION = 1.0e7  # [m]
MAX_LANES = 64  # lanes of one road, far more than any highway has
LANE_WIDTH_RANGE = (1.0, 20.0)  # [m] real lanes are 2.5 to 5 m; below 1 m a lane cannot hold any vehicle
MAX_VEHICLE_SIZE = 100.0  # [m] length or width; a road train is about 53 m long
MAX_ACCELERATION = 100.0  # [m/s^2] ~10 g, beyond what tyres on a road can transmit
MAX_TIME = 1.0e10  # [s] simulated time, ~317 years: past any episode (a header stamp in ns fits 9.2e9 s)


def clamp(value: float, lo: float, hi: float) -> float:
    return lo if value < lo else hi if value > hi else value


def wrap_angle(angle: float) -> float:
    """[rad] into [-pi, pi]; an angle already there is returned as it is (no rounding)."""
    return angle if -math.pi <= angle <= math.pi else math.remainder(angle, 2.0 * math.pi)


def _clamp_fields(msg: msgspec.Struct, bounds: dict[str, tuple[float, float]], angles: tuple[str, ...]
                  ) -> msgspec.Struct:
    changes: dict[str, float] = {}
    for name, (lo, hi) in bounds.items():
        value = getattr(msg, name)
        if not lo <= value <= hi:
            changes[name] = clamp(value, lo, hi)
    for name in angles:
        value = getattr(msg, name)
        if not -math.pi <= value <= math.pi:
            changes[name] = wrap_angle(value)
    return msgspec.structs.replace(msg, **changes) if changes else msg


def bounded_ego(ego: EgoState) -> EgoState:
    """`ego` inside the physical envelope (itself when it already is)."""
    lanes = int(clamp(ego.lanes_count, 1, MAX_LANES))
    bounds = {
        "x": (-MAX_POSITION, MAX_POSITION), "y": (-MAX_POSITION, MAX_POSITION),
        "speed": (-MAX_SPEED, MAX_SPEED), "vx": (-MAX_SPEED, MAX_SPEED), "vy": (-MAX_SPEED, MAX_SPEED),
        "lanes_count": (1, MAX_LANES), "lane_index": (0, lanes - 1),
        "lateral_offset": (-MAX_POSITION, MAX_POSITION), "lane_width": LANE_WIDTH_RANGE,
        "length": (0.0, MAX_VEHICLE_SIZE), "width": (0.0, MAX_VEHICLE_SIZE),
        "acceleration": (-MAX_ACCELERATION, MAX_ACCELERATION), "steering": (-math.pi, math.pi),
        "reward": (0.0, 1.0),
    }
    return _clamp_fields(ego, bounds, ("heading",))  # type: ignore[return-value]


_OBJECT_BOUNDS = {
    "x": (-MAX_POSITION, MAX_POSITION), "y": (-MAX_POSITION, MAX_POSITION),
    "vx": (-MAX_RELATIVE_SPEED, MAX_RELATIVE_SPEED), "vy": (-MAX_RELATIVE_SPEED, MAX_RELATIVE_SPEED),
    "length": (0.0, MAX_VEHICLE_SIZE), "width": (0.0, MAX_VEHICLE_SIZE),
    "world_x": (-MAX_POSITION, MAX_POSITION), "world_y": (-MAX_POSITION, MAX_POSITION),
    "speed": (-MAX_SPEED, MAX_SPEED), "lane_index": (-1, MAX_LANES - 1), "score": (0.0, 1.0),
}


def bounded_object(obj: Object) -> Object:
    """`obj` inside the physical envelope (itself when it already is); lane_index -1 (unknown) stays."""
    return _clamp_fields(obj, _OBJECT_BOUNDS, ("heading",))  # type: ignore[return-value]


def bounded_objects(objects: list[Object]) -> list[Object]:
    """The objects inside the envelope; the same list when every one already is."""
    out = [bounded_object(o) for o in objects]
    return objects if all(a is b for a, b in zip(out, objects, strict=True)) else out


def bounded_target(target: DrivingTarget) -> DrivingTarget:
    """`target` inside the physical envelope: a lane of some road, a speed a vehicle can have, a braking
    demand no larger than a road allows (itself when it already is)."""
    bounds = {"target_lane": (0, MAX_LANES - 1), "target_speed": (-MAX_SPEED, MAX_SPEED),
              "max_decel": (-MAX_ACCELERATION, MAX_ACCELERATION)}
    return _clamp_fields(target, bounds, ())  # type: ignore[return-value]
