"""Reaching CARLA: the `carla` package (imported only here, only when connecting), the params that say which
server and world, and the errors that say what to do when either is missing.

Both errors are OSErrors, so the node runner reports them as one line and exits 2 (no traceback), and the
launcher stops the stack with that line.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec

from sim.view import DEFAULT_VIEW, CameraView

log = logging.getLogger("drivestack.carla")

INSTALL_HINT = 'pip install "drivestack[carla]"  (the CARLA 0.9.16 client: pip install carla==0.9.16)'
SERVER_HINT = ("start one first, e.g. `./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}` in a CARLA 0.9.16 "
               "install, or `docker run --rm --gpus all --net=host carlasim/carla:0.9.16 ./CarlaUE4.sh "
               "-RenderOffScreen -carla-rpc-port={port}`; then launch with host:=HOST port:=PORT")


class CarlaUnavailableError(OSError):
    """CARLA cannot be used from here. An OSError, so a node process reports it in one line and exits 2."""


class CarlaNotInstalledError(CarlaUnavailableError):
    """The `carla` client package is not importable."""


class CarlaConnectionError(CarlaUnavailableError, ConnectionError):
    """No CARLA server answered at host:port within the timeout."""


def import_carla() -> Any:
    """The `carla` module, or CarlaNotInstalledError saying how to install it."""
    try:
        import carla
    except ImportError as exc:
        raise CarlaNotInstalledError(f"the CARLA bridge needs the `carla` client package ({exc}); install it with "
                                     f"{INSTALL_HINT}") from None
    return carla


class CarlaParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which server, which world, how to drive it. Every field has a default; unknown keys are rejected."""

    host: str = "127.0.0.1"  # CARLA server address
    port: int = 2000  # CARLA server RPC port (the server also uses port + 1 for sensor data)
    timeout_s: float = 10.0  # [s] to connect and for each call to the server afterwards
    map_timeout_s: float = 120.0  # [s] allowed for loading `town`
    town: str = "Town04"  # map with a multi-lane highway
    min_lanes: int = 3  # the ego starts on a road with at least this many lanes running its way
    vehicles_count: int = 30  # traffic vehicles spawned around the ego each episode
    traffic_spacing_m: float = 20.0  # [m] between traffic spawn slots along a lane
    traffic_reach_m: float = 160.0  # [m] traffic spawns at most this far ahead of or behind the ego
    traffic_speed: float = 25.0  # [m/s] traffic's mean desired speed (Traffic Manager's set_desired_speed)
    traffic_speed_spread: float = 20.0  # [%] each traffic vehicle's desired speed is up to this much off the mean
    traffic_lane_changes: bool = True  # the Traffic Manager changes the traffic's lanes on its own
    start_speed: float = 20.0  # [m/s] every vehicle's speed along its lane when an episode starts
    duration: float = 40.0  # [s] episode time limit (simulated)
    ego_blueprint: str = "vehicle.tesla.model3"  # blueprint id of the ego
    traffic_filter: str = "vehicle.*"  # blueprint filter for traffic (four-wheeled ones are used)
    tm_port: int = 8000  # Traffic Manager port
    full_throttle_mps2: float = 4.0  # [m/s^2] acceleration taken as throttle 1 (see carla_frames)
    full_brake_mps2: float = 8.0  # [m/s^2] deceleration taken as brake 1
    render: bool = True  # attach the camera and publish /sim/camera
    screen_width: int = DEFAULT_VIEW.width  # [px] camera width
    screen_height: int = DEFAULT_VIEW.height  # [px] camera height
    scaling: float = DEFAULT_VIEW.scaling  # [px/m] camera scale on the ground
    camera_fov: float = 90.0  # [deg] horizontal field of view (sets the camera's height)
    camera_timeout_s: float = 1.0  # [s] wait this long for a tick's camera frame; then warn and reuse the last one

    def check(self) -> CarlaParams:
        """ValueError naming the first bad field; returns self so it chains. Run by `CarlaSim` and the CARLA
        sim node's `check` (so by `launch --check`)."""
        if not (0 < self.port < 65535):
            raise ValueError(f"CarlaParams.port must be in 1..65534, got {self.port}")
        positive = ("timeout_s", "map_timeout_s", "traffic_spacing_m", "traffic_reach_m", "duration",
                    "full_throttle_mps2", "full_brake_mps2", "scaling", "traffic_speed", "camera_timeout_s")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"CarlaParams.{name} must be > 0, got {value}")
        for name, low in (("min_lanes", 1), ("vehicles_count", 0), ("screen_width", 1), ("screen_height", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"CarlaParams.{name} must be >= {low}, got {getattr(self, name)}")
        if not 0 <= self.traffic_speed_spread < 100:
            raise ValueError(f"CarlaParams.traffic_speed_spread must be in [0, 100) %, got {self.traffic_speed_spread}")
        if not self.start_speed >= 0:
            raise ValueError(f"CarlaParams.start_speed must be >= 0 m/s, got {self.start_speed}")
        if not 0 < self.camera_fov < 180:
            raise ValueError(f"CarlaParams.camera_fov must be in (0, 180) degrees, got {self.camera_fov}")
        return self

    @property
    def view(self) -> CameraView:
        return CameraView(width=self.screen_width, height=self.screen_height, scaling=self.scaling,
                          centering=DEFAULT_VIEW.centering)


def connect(carla: Any, params: CarlaParams) -> Any:
    """A carla.Client attached to a live server, or CarlaConnectionError (within params.timeout_s) naming the
    address and how to start a server."""
    address = f"{params.host}:{params.port}"
    client = carla.Client(params.host, params.port)
    client.set_timeout(params.timeout_s)
    try:
        server = client.get_server_version()
    except RuntimeError as exc:
        raise CarlaConnectionError(f"no CARLA server answered at {address} within {params.timeout_s:g} s ({exc}); "
                                   + SERVER_HINT.format(port=params.port)) from None
    if server != client.get_client_version():
        log.warning("CARLA server %s at %s, client %s: versions differ", server, address, client.get_client_version())
    return client
