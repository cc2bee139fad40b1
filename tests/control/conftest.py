"""A kinematic bicycle plant for the controller tests: highway-env's own `Vehicle` on a road of
parallel straight lanes (centres at y = lane * 4 m), stepped exactly as the env steps the ego."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from highway_env.vehicle.kinematics import Vehicle

from msgs import ControlCommand, DrivingTarget, EgoState, Header
from nodes.control.pid import ACCEL_RANGE, STEER_RANGE, ControlParams, LaneSpeedController

DT = 1.0 / 15.0  # [s]
LANE_WIDTH = 4.0  # [m]
LANES = 4


@dataclass
class Trace:
    t: np.ndarray  # [s] time after each step
    x: np.ndarray  # [m]
    y: np.ndarray  # [m]
    heading: np.ndarray  # [rad]
    speed: np.ndarray  # [m/s]
    accel: np.ndarray  # [m/s^2] applied
    steer: np.ndarray  # [rad] applied
    commands: list[ControlCommand] = field(default_factory=list)

    def lateral_accel(self) -> np.ndarray:
        """[m/s^2] acceleration normal to the heading, from second differences of the position."""
        pos = np.stack([np.concatenate([[self.x0], self.x]), np.concatenate([[self.y0], self.y])], axis=1)
        acc = np.diff(pos, n=2, axis=0) / DT**2
        h = self.heading[:-1]
        return -acc[:, 0] * np.sin(h) + acc[:, 1] * np.cos(h)

    x0: float = 0.0
    y0: float = 0.0


class Plant:
    def __init__(self, y: float = 0.0, speed: float = 25.0, heading: float = 0.0) -> None:
        self.vehicle = Vehicle(None, np.array([0.0, y]), heading=heading, speed=speed)
        self.tick = 0

    def ego(self) -> EgoState:
        v = self.vehicle
        lane = int(np.clip(round(v.position[1] / LANE_WIDTH), 0, LANES - 1))
        return EgoState(
            header=Header(tick=self.tick, stamp_ns=round(self.tick * DT * 1e9), frame_id="world"),
            x=float(v.position[0]), y=float(v.position[1]), heading=float(v.heading), speed=float(v.speed),
            vx=float(v.velocity[0]), vy=float(v.velocity[1]), lane_index=lane,
            lateral_offset=float(v.position[1] - lane * LANE_WIDTH), lanes_count=LANES, lane_width=LANE_WIDTH,
        )

    def apply(self, cmd: ControlCommand) -> None:
        accel, steer = cmd.acceleration * ACCEL_RANGE, cmd.steering * STEER_RANGE
        self.vehicle.act({"acceleration": accel, "steering": steer})
        self.vehicle.step(DT)
        self.tick += 1


def closed_loop(target: DrivingTarget | list[DrivingTarget], seconds: float, *, y0: float = 0.0,
                speed0: float = 25.0, heading0: float = 0.0, params: ControlParams | None = None) -> Trace:
    """Run the controller on the plant; `target` may be one per tick."""
    plant = Plant(y=y0, speed=speed0, heading=heading0)
    ctl = LaneSpeedController(params or ControlParams())
    n = round(seconds / DT)
    rows, cmds = [], []
    for k in range(n):
        tgt = target[k] if isinstance(target, list) else target
        cmd = ctl.step(plant.ego(), tgt)
        plant.apply(cmd)
        v = plant.vehicle
        rows.append((k * DT + DT, v.position[0], v.position[1], v.heading, v.speed,
                     v.action["acceleration"], v.action["steering"]))
        cmds.append(cmd)
    a = np.array(rows)
    return Trace(*(a[:, i] for i in range(7)), commands=cmds, x0=0.0, y0=y0)


def settle_time(t: np.ndarray, value: np.ndarray, final: float, band: float) -> float:
    """[s] the first time after which |value - final| stays within band (inf if it never does)."""
    outside = np.nonzero(np.abs(value - final) > band)[0]
    if len(outside) == 0:
        return 0.0
    if outside[-1] == len(t) - 1:
        return math.inf
    return float(t[outside[-1]])


@pytest.fixture
def run():
    return closed_loop


@pytest.fixture
def settle():
    return settle_time


@pytest.fixture
def plant():
    return Plant
