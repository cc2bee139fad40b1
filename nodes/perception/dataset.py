"""Rendered frames with ground-truth vehicle boxes, for training and scoring the detector.

Frames come from highway-env's own renderer with the camera of `sim.view.DEFAULT_VIEW`; the labels are the
vehicles' world poses relative to the ego, so pixel positions only ever come from `sim.view` (the one
pixel <-> world transform). The ego is driven by `RandomDriver` (lane keeping with random lane changes and a
wandering target speed) so that frames vary.

A dataset is a plain dict of arrays, cached as a compressed .npz:
  frames  (N, H, W, 3) uint8    rendered frames
  ego     (N, 6) float32        ego x, y, heading, speed, vx, vy (world frame) [m, rad, m/s]
  seq     (N, 2) int64          (sequence index, step within the sequence): consecutive steps are 1/15 s apart
  labels  (M, LABEL_COLS) float32  one row per vehicle overlapping the frame (columns: `LABEL_FIELDS`)
  offsets (N + 1,) int64        labels of frame i are rows offsets[i]:offsets[i + 1]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from msgs.registry import CONTROL_RATE_HZ  # policy and simulation frequency [Hz]
from sim.view import DEFAULT_VIEW, CameraView

if TYPE_CHECKING:
    from sim.highway import SimParams

DATA_VERSION = 2  # bump when rendering, driving or labels change: cached datasets are keyed by it
DEFAULT_DENSITY = 1.0  # highway-v0's vehicles_density
DEFAULT_COUNT = 50  # highway-v0's vehicles_count

# Disjoint seed ranges: training never sees a validation or benchmark seed.
TRAIN_SEEDS = range(0, 100_000)
VAL_SEEDS = range(100_000, 200_000)
BENCH_SEEDS = range(200_000, 300_000)

LABEL_FIELDS = ("x", "y", "length", "width", "heading", "vx", "vy", "id", "in_view")
LABEL_COLS = len(LABEL_FIELDS)
L_X, L_Y, L_LEN, L_WID, L_HEAD, L_VX, L_VY, L_ID, L_IN_VIEW = range(LABEL_COLS)


def sim_params(vehicles_count: int = DEFAULT_COUNT, density: float = DEFAULT_DENSITY,
               view: CameraView = DEFAULT_VIEW, duration: float = 1000.0) -> SimParams:
    """The sim's params for a dataset world: highway-v0 rendering `view` at the control rate, with highway-env's
    own defaults where the stack's sim differs (an ego off the road does not end the episode; its Kinematics
    observation is computed), so the worlds and frames are the ones the detector was trained on.

    vehicles_count: other vehicles on the road.
    density: highway-env's vehicles_density (1 is highway-v0's default).
    duration: episode time limit [s].
    """
    from sim.highway import SimParams  # gymnasium and highway-env: only where a world is built

    return SimParams(vehicles_count=int(vehicles_count), vehicles_density=float(density), duration=float(duration),
                     screen_width=view.width, screen_height=view.height, scaling=view.scaling,
                     offroad_terminal=False, kinematics_obs=True, render=True)


def env_config(vehicles_count: int = DEFAULT_COUNT, density: float = DEFAULT_DENSITY,
               view: CameraView = DEFAULT_VIEW, duration: float = 1000.0) -> dict:
    """highway-v0 config of `sim_params` (the sim's `sim.highway.env_config`), rendering exactly `view`."""
    from sim import highway

    return {**highway.env_config(sim_params(vehicles_count, density, view, duration)), **view.env_config()}


def make_env(vehicles_count: int = DEFAULT_COUNT, density: float = DEFAULT_DENSITY,
             view: CameraView = DEFAULT_VIEW):
    """A highway-v0 env rendering `view` as rgb arrays, on the fast road (the sim's `sim.highway.make_env`)."""
    from sim import highway

    env = highway.make_env(sim_params(vehicles_count, density, view))
    env.unwrapped.configure(view.env_config())  # exactly `view` (SimParams keeps DEFAULT_VIEW's centering)
    return env


def ego_row(vehicle) -> np.ndarray:
    """(x, y, heading, speed, vx, vy) of a highway-env vehicle, world frame."""
    vx, vy = vehicle.velocity
    return np.array([vehicle.position[0], vehicle.position[1], vehicle.heading, vehicle.speed, vx, vy],
                    dtype=np.float64)


def ground_truth(env, view: CameraView = DEFAULT_VIEW) -> np.ndarray:
    """One label row per other vehicle whose box overlaps the frame, ego-relative (see LABEL_FIELDS).

    Positions and velocities are relative to the ego (world axes); in_view is 1 when the whole box is in
    the frame. The id is the vehicle's index in road.vehicles (stable within an episode).
    """
    base = env.unwrapped
    ego = base.vehicle
    ex, ey, _, _, evx, evy = ego_row(ego)
    rows = []
    for i, v in enumerate(base.road.vehicles):
        if v is ego:
            continue
        dx, dy = float(v.position[0] - ex), float(v.position[1] - ey)
        c0, r0, c1, r1 = view.box_pixels(dx, dy, v.LENGTH, v.WIDTH)
        if c1 <= 0 or r1 <= 0 or c0 >= view.width or r0 >= view.height:
            continue
        vx, vy = v.velocity
        rows.append((dx, dy, v.LENGTH, v.WIDTH, v.heading, vx - evx, vy - evy, i,
                     float(view.fully_in_view(dx, dy, v.LENGTH, v.WIDTH))))
    return np.array(rows, dtype=np.float32).reshape(-1, LABEL_COLS)


class RandomDriver:
    """Drives the ego with varied but sane actions: lane keeping towards a target lane that changes at
    random (when the next lane is free), a target speed that wanders, car following (IDM) behind the
    vehicle ahead, and noise on both commands. Returns ContinuousAction terms."""

    TAU_HEADING = 0.2  # [s] heading loop time constant (as highway-env's ControlledVehicle)
    TAU_LATERAL = 0.6  # [s] lateral loop time constant
    MAX_STEER = math.pi / 4  # [rad] ContinuousAction's steering range
    MAX_ACCEL = 5.0  # [m/s^2] ContinuousAction's acceleration range
    IDM_ACCEL, IDM_DECEL = 3.0, 5.0  # [m/s^2] comfortable acceleration and deceleration
    IDM_GAP, IDM_HEADWAY = 6.0, 1.2  # [m] standstill gap, [s] time headway
    CHANGE_CLEARANCE = 12.0  # [m] no lane change while a vehicle is this close (along the road) there

    def __init__(self, rng: np.random.Generator, careful: bool = True, lanes_count: int = 4,
                 lane_width: float = 4.0, dt: float = 1.0 / CONTROL_RATE_HZ) -> None:
        """careful: follow the vehicle ahead and change lanes only into a gap; False drives blind (it
        crashes, which puts crashed, red and overlapping vehicles in the training frames)."""
        self.rng, self.careful, self.dt = rng, careful, dt
        self.lanes, self.lane_width = lanes_count, lane_width
        self.target_lane = -1
        self.target_speed = float(rng.uniform(18.0, 34.0))  # [m/s]
        self.accel_noise = 0.0  # [m/s^2] slowly varying (Ornstein-Uhlenbeck)

    def act(self, vehicle) -> np.ndarray:
        rng = self.rng
        y, heading, speed = vehicle.position[1], vehicle.heading, vehicle.speed
        if self.target_lane < 0:
            self.target_lane = int(np.clip(round(y / self.lane_width), 0, self.lanes - 1))
        if rng.random() < self.dt / 4.0:  # try a lane change every ~4 s
            lane = int(np.clip(self.target_lane + rng.choice([-1, 1]), 0, self.lanes - 1))
            if not self.careful or self._clearance(vehicle, lane) > self.CHANGE_CLEARANCE:
                self.target_lane = lane
        if rng.random() < self.dt / 5.0:
            self.target_speed = float(rng.uniform(18.0, 34.0))
        v = max(speed, 1.0)
        lateral_speed = -(y - self.target_lane * self.lane_width) / self.TAU_LATERAL
        heading_ref = float(np.arcsin(np.clip(lateral_speed / v, -1.0, 1.0)))
        heading_rate = (heading_ref - heading) / self.TAU_HEADING
        slip = float(np.arcsin(np.clip(vehicle.LENGTH / 2 / v * heading_rate, -1.0, 1.0)))
        steer = math.atan(2 * math.tan(slip)) + rng.normal(0.0, 0.02)
        self.accel_noise += -self.accel_noise * self.dt / 1.0 + rng.normal(0.0, 1.5 * math.sqrt(self.dt))
        free = 0.8 * (self.target_speed - speed)
        accel = (self._idm(vehicle) if self.careful else free) + self.accel_noise
        return np.array([np.clip(accel / self.MAX_ACCEL, -1, 1), np.clip(steer / self.MAX_STEER, -1, 1)],
                        dtype=np.float32)

    def _clearance(self, vehicle, lane: int) -> float:
        """Smallest |dx| [m] to a vehicle in `lane`."""
        dxs = [abs(v.position[0] - vehicle.position[0]) for v in vehicle.road.vehicles
               if v is not vehicle and abs(v.position[1] - lane * self.lane_width) < self.lane_width / 2]
        return min(dxs, default=math.inf)

    def _idm(self, vehicle) -> float:
        """Intelligent-driver-model acceleration [m/s^2] behind the nearest vehicle ahead in the current or
        target lane."""
        speed = max(vehicle.speed, 0.0)
        accel = self.IDM_ACCEL * (1 - (speed / self.target_speed) ** 4)
        current = int(np.clip(round(vehicle.position[1] / self.lane_width), 0, self.lanes - 1))
        for lane in {current, self.target_lane}:
            gap, lead_speed = self._lead(vehicle, lane)
            if math.isfinite(gap):
                wanted = self.IDM_GAP + speed * self.IDM_HEADWAY + speed * (speed - lead_speed) / (
                    2 * math.sqrt(self.IDM_ACCEL * self.IDM_DECEL))
                accel = min(accel, self.IDM_ACCEL * (1 - (speed / self.target_speed) ** 4
                                                     - (max(wanted, 0.0) / max(gap, 0.1)) ** 2))
        return accel

    def _lead(self, vehicle, lane: int) -> tuple[float, float]:
        """(gap [m], speed [m/s]) to the nearest vehicle ahead in `lane`; gap is inf when there is none."""
        gap, lead_speed = math.inf, 0.0
        for v in vehicle.road.vehicles:
            if v is vehicle or abs(v.position[1] - lane * self.lane_width) > self.lane_width / 2 + 1.0:
                continue
            g = v.position[0] - vehicle.position[0] - vehicle.LENGTH
            if -vehicle.LENGTH < g < gap:
                gap, lead_speed = max(g, 0.0), v.speed
        return gap, lead_speed


@dataclass(frozen=True)
class Scenario:
    """One rendered sequence."""

    seed: int
    vehicles_count: int = DEFAULT_COUNT
    density: float = DEFAULT_DENSITY
    steps: int = 150  # control steps driven after reset
    every: int = 1  # keep one frame in `every` steps
    careful: bool = True  # the ego follows traffic (False: drives blind and may crash)


def render_sequence(sc: Scenario, view: CameraView = DEFAULT_VIEW, env=None
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yields (step, frame, ego_row, labels) along one driven sequence; stops early on a crash."""
    own = env is None
    if own:
        env = make_env(sc.vehicles_count, sc.density, view)
    try:
        env.unwrapped.configure(env_config(sc.vehicles_count, sc.density, view))
        env.reset(seed=sc.seed)
        driver = RandomDriver(np.random.default_rng(sc.seed), sc.careful)
        for step in range(sc.steps):
            _, _, terminated, truncated, _ = env.step(driver.act(env.unwrapped.vehicle))
            if step % sc.every == 0:
                yield step, env.render(), ego_row(env.unwrapped.vehicle), ground_truth(env, view)
            if terminated or truncated:
                return
    finally:
        if own:
            env.close()


def scenarios(seeds: Sequence[int], steps: int, every: int, rng: np.random.Generator,
              densities: Sequence[float] = (0.8, 1.0, 1.5, 2.0), counts: Sequence[int] = (20, 35, 50),
              blind: float = 0.15) -> list[Scenario]:
    """Scenarios over `seeds` with densities and vehicle counts drawn from the given sets; a `blind`
    fraction of them driven without regard for traffic."""
    return [Scenario(int(s), int(rng.choice(counts)), float(rng.choice(densities)), steps, every,
                     bool(rng.random() >= blind)) for s in seeds]


def build(scs: Sequence[Scenario], view: CameraView = DEFAULT_VIEW, progress: bool = True) -> dict:
    """Render every scenario into one dataset dict (see the module docstring)."""
    from tqdm import tqdm

    frames, egos, seqs, labels, offsets = [], [], [], [], [0]
    env = make_env(view=view)
    total = sum(-(-sc.steps // sc.every) for sc in scs)
    bar = tqdm(total=total, desc="rendering", unit="frame", disable=not progress)
    try:
        for k, sc in enumerate(scs):
            for step, frame, ego, lab in render_sequence(sc, view, env):
                frames.append(frame)
                egos.append(ego)
                seqs.append((k, step))
                labels.append(lab)
                offsets.append(offsets[-1] + len(lab))
                bar.update()
    finally:
        bar.close()
        env.close()
    return {
        "frames": np.stack(frames) if frames else np.zeros((0, view.height, view.width, 3), np.uint8),
        "ego": np.array(egos, np.float32).reshape(-1, 6),
        "seq": np.array(seqs, np.int64).reshape(-1, 2),
        "labels": np.concatenate(labels) if labels else np.zeros((0, LABEL_COLS), np.float32),
        "offsets": np.array(offsets, np.int64),
    }


def save(data: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)


def load(path: str | Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def frame_labels(data: dict, i: int) -> np.ndarray:
    return data["labels"][data["offsets"][i]:data["offsets"][i + 1]]
