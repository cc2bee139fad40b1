"""Pure conversions between CARLA's quantities and drivestack's: frames, angles, controls, pixels.

No carla import here: every function takes plain numbers (or objects with the attributes named), so the
conversions are tested in closed form and against real carla types alike (tests/sim/test_carla_bridge.py).

Frames. CARLA's world is left-handed: x forward, y to the right, z up, and yaw [deg] turns from +x towards +y
(clockwise seen from above). drivestack's plan view also has y to the right of x (towards higher lane indices,
lane 0 leftmost) and heading [rad] turning from +x towards +y, so in the plan (x, y, yaw) carry over with no
mirror: only z is dropped and degrees become radians. A positive steering angle turns right in both.

The stack expects a straight road (x along it, y across it, lane centres at i * lane_width), so the bridge
publishes in a *road frame*: x is the distance driven along the road since the episode started, y =
lane_index * lane_width + lateral_offset, headings and velocities are taken along the road's direction at each
vehicle's own place. How that frame is made on a real map (curves, junctions): sim.carla_road. The functions here
are the plane conversions it is built from.
"""

from __future__ import annotations

import math

import numpy as np

from sim.view import CameraView

ACCEL_SCALE_MPS2 = 5.0  # [m/s^2] per unit of ControlCommand.acceleration (highway-env's ContinuousAction)
STEER_SCALE_RAD = math.pi / 4  # [rad] front-wheel angle per unit of ControlCommand.steering


def wrap_angle(angle: float) -> float:
    """`angle` [rad] wrapped into [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def yaw_to_heading(yaw_deg: float, road_yaw_deg: float = 0.0) -> float:
    """CARLA yaw [deg] -> heading [rad] relative to a road whose direction is `road_yaw_deg` [deg].

    Both turn from +x towards +y, so only the unit and the reference change.
    """
    return wrap_angle(math.radians(yaw_deg - road_yaw_deg))


def forward_right(yaw_deg: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Unit (forward, right) vectors in CARLA's plan for a yaw [deg] (what Transform.get_forward_vector and
    get_right_vector give, z dropped): right is forward turned +90 degrees, towards +y."""
    yaw = math.radians(yaw_deg)
    c, s = math.cos(yaw), math.sin(yaw)
    return (c, s), (-s, c)


def to_lane_frame(dx: float, dy: float, lane_yaw_deg: float) -> tuple[float, float]:
    """A CARLA plan vector (dx, dy) -> (along, across) a lane of direction `lane_yaw_deg` [deg]:
    along forwards, across + to the right (towards higher lane indices)."""
    (fx, fy), (rx, ry) = forward_right(lane_yaw_deg)
    return dx * fx + dy * fy, dx * rx + dy * ry


def lateral_offset(x: float, y: float, centre_x: float, centre_y: float, lane_yaw_deg: float) -> float:
    """[m] signed distance of CARLA point (x, y) from a lane centre point, + to the right (higher lanes)."""
    return to_lane_frame(x - centre_x, y - centre_y, lane_yaw_deg)[1]


def road_y(lane_index: int, lane_width: float, offset: float) -> float:
    """[m] drivestack's y across the road: lane centres at lane_index * lane_width (as in highway-env)."""
    return lane_index * lane_width + offset


def command_to_control(acceleration: float, steering: float, max_steer_deg: float, full_throttle_mps2: float,
                       full_brake_mps2: float) -> tuple[float, float, float]:
    """A ControlCommand's normalised terms -> CARLA (throttle, steer, brake).

    acceleration: normalised [-1, 1]; x ACCEL_SCALE_MPS2 gives the wanted acceleration [m/s^2].
    steering: normalised [-1, 1]; x STEER_SCALE_RAD gives the wanted front-wheel angle [rad].
    max_steer_deg: [deg] the vehicle's largest front-wheel angle (its WheelPhysicsControl.max_steer_angle),
        which CARLA's steer = 1 commands; the wanted angle is divided by it, so the wheels turn as asked.
    full_throttle_mps2: [m/s^2] acceleration taken to be reached at throttle 1 (linear in between, open loop:
        CARLA's engine, gears and drag make the real figure speed-dependent; the speed PID closes the loop).
    full_brake_mps2: [m/s^2] deceleration taken to be reached at brake 1.
    Throttle and brake are never both non-zero; all outputs are clipped to CARLA's ranges.
    """
    if not (max_steer_deg > 0 and full_throttle_mps2 > 0 and full_brake_mps2 > 0):
        raise ValueError(f"max_steer_deg, full_throttle_mps2 and full_brake_mps2 must be > 0, got "
                         f"{max_steer_deg}, {full_throttle_mps2}, {full_brake_mps2}")
    accel = float(np.clip(acceleration, -1.0, 1.0)) * ACCEL_SCALE_MPS2
    angle_deg = math.degrees(float(np.clip(steering, -1.0, 1.0)) * STEER_SCALE_RAD)
    steer = float(np.clip(angle_deg / max_steer_deg, -1.0, 1.0))
    if accel >= 0:
        return float(min(accel / full_throttle_mps2, 1.0)), steer, 0.0
    return 0.0, steer, float(min(-accel / full_brake_mps2, 1.0))


def control_to_command(throttle: float, steer: float, brake: float, max_steer_deg: float,
                       full_throttle_mps2: float, full_brake_mps2: float) -> tuple[float, float]:
    """The inverse of `command_to_control` inside its ranges: CARLA (throttle, steer, brake) -> normalised
    (acceleration, steering), for what EgoState reports as applied."""
    accel = throttle * full_throttle_mps2 - brake * full_brake_mps2
    angle = math.radians(steer * max_steer_deg)
    return accel / ACCEL_SCALE_MPS2, angle / STEER_SCALE_RAD


def max_steer_deg_of(wheels: list) -> float:
    """[deg] the largest max_steer_angle of a vehicle's wheels (CARLA lists the front wheels first; the
    rear ones have 0). `wheels` is VehiclePhysicsControl.wheels."""
    angle = max((float(w.max_steer_angle) for w in wheels), default=0.0)
    if not angle > 0:
        raise ValueError("the vehicle's physics control has no steering wheel (every max_steer_angle is 0)")
    return angle


def bgra_to_rgb(raw: bytes | memoryview, width: int, height: int) -> np.ndarray:
    """A CARLA camera frame (BGRA, 4 bytes a pixel, rows top to bottom) -> (height, width, 3) uint8 RGB."""
    bgra = np.frombuffer(raw, dtype=np.uint8)
    if bgra.size != width * height * 4:
        raise ValueError(f"camera frame of {bgra.size} bytes, expected {width}x{height}x4")
    return np.ascontiguousarray(bgra.reshape(height, width, 4)[:, :, 2::-1])


def camera_mount(view: CameraView, fov_deg: float) -> dict[str, float]:
    """Where to attach a downward pinhole camera to the ego so its frame has `view`'s layout at ground level.

    Returns x, y, z [m] in the ego's frame (CARLA: forward, right, up) and pitch, yaw [deg]. pitch -90 looks
    down; yaw -90 turns the image so its columns run forwards and its rows to the right, as highway-env's do
    (column = scaling * dx + c0, row = scaling * dy + r0). The height makes `view.scaling` px per metre on the
    ground; things above it (car roofs) look a little larger. The camera turns with the ego (a rigid mount).
    """
    if not 0 < fov_deg < 180:
        raise ValueError(f"camera field of view must be in (0, 180) degrees, got {fov_deg}")
    c0, r0 = view.centre_px
    height = view.width / (2.0 * view.scaling * math.tan(math.radians(fov_deg) / 2))
    return {
        "x": (view.width / 2 - c0) / view.scaling,
        "y": (view.height / 2 - r0) / view.scaling,
        "z": height,
        "pitch": -90.0,
        "yaw": -90.0,
    }
