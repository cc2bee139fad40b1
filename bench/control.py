"""Control benchmark: our PID controller vs highway-env's own, on an empty highway-v0 road.

Manoeuvres, each run in the real env at 15 Hz (vehicles_count 0, no rendering):
  lane_keep     hold the starting lane at 25 m/s: RMS and peak offset from the lane centre (the kinematic
                world has no disturbance, so a controller that is quiet on the centre scores 0)
  lane_recover  the same, starting 1 m off the centre: time to within 0.05 m for good, overshoot, peak
                |lateral acceleration| (informational, no target)
  lane_change   4 m lane change at 25 m/s, commanded after 1 s: time to within 0.2 m of the new centre
                and stay there, overshoot past it, peak |lateral acceleration|
  speed_step    20 -> 30 m/s (the ego's speed is set to 20 m/s after reset), commanded after 0.5 s:
                time to within 0.5 m/s and stay there, overshoot, longitudinal acceleration range, and the
                peak longitudinal jerk: the largest step of the applied acceleration between consecutive
                ticks / dt, the first command's step from the reset vehicle's 0 m/s^2 included
"ours" is LaneSpeedController fed by HighwaySim; "highway_env" is highway-env's DiscreteMetaAction
controller (MDPVehicle) sent LANE_LEFT/LANE_RIGHT or FASTER once, then IDLE, with target speeds [20, 30]
for the speed step. Lateral acceleration is the CG's acceleration normal to the heading, from second
differences of the position (what the passenger feels, slip-rate effects included); the centripetal
part alone, speed * yaw rate, is shown beside it.

  PYTHONPATH=$PWD python bench/control.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msgs import DrivingTarget  # noqa: E402
from nodes.control.pid import LaneSpeedController  # noqa: E402
from sim.highway import SIM_RATE_HZ, HighwaySim, SimParams, make_env  # noqa: E402

DT = 1.0 / SIM_RATE_HZ  # [s]
SEED = 0
CRUISE = 25.0  # [m/s]
LANE_CMD_S = 1.0  # [s] when the lane change is commanded
SPEED_CMD_S = 0.5  # [s] when the speed step is commanded
SPEED_FROM, SPEED_TO = 20.0, 30.0  # [m/s]

TARGETS = {  # figure -> (limit, "max" | "min")
    "lane_keep.lateral_rms_m": (0.05, "max"),
    "lane_change.settle_time_s": (3.5, "max"),
    "lane_change.overshoot_m": (0.15, "max"),
    "lane_change.peak_lat_accel_mps2": (4.89, "max"),
    "speed_step.settle_time_s": (6.0, "max"),
    "speed_step.overshoot_mps": (0.5, "max"),
    "speed_step.accel_max_mps2": (2.40, "max"),
    "speed_step.accel_min_mps2": (-4.05, "min"),
    "speed_step.jerk_max_abs_mps3": (4.13, "max"),
}


@dataclass
class Trace:
    t: np.ndarray  # [s] after each tick
    x: np.ndarray  # [m]
    y: np.ndarray  # [m]
    heading: np.ndarray  # [rad]
    speed: np.ndarray  # [m/s]
    accel: np.ndarray  # [m/s^2] applied over the tick
    step_us: list[float]  # controller time per tick (ours only)


def lateral_accel(tr: Trace) -> np.ndarray:
    acc = np.diff(np.stack([tr.x, tr.y], axis=1), n=2, axis=0) / DT**2
    h = tr.heading[1:-1]
    return -acc[:, 0] * np.sin(h) + acc[:, 1] * np.cos(h)


def settle_time(t: np.ndarray, value: np.ndarray, final: float, band: float, since: float) -> float:
    """[s] after `since` until |value - final| <= band for good; inf if it is still outside at the end."""
    outside = np.nonzero(np.abs(value - final) > band)[0]
    if len(outside) and outside[-1] == len(t) - 1:
        return math.inf
    last = t[outside[-1]] if len(outside) else since
    return max(0.0, float(last - since))


def record(vehicle, t: float, rows: list) -> None:
    rows.append((t, vehicle.position[0], vehicle.position[1], vehicle.heading, vehicle.speed,
                 float(vehicle.action["acceleration"])))


def to_trace(rows: list, step_us: list[float]) -> Trace:
    a = np.array(rows)
    return Trace(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], step_us)


def run_ours(seconds: float, speed0: float, target_at: Callable[[float, int], DrivingTarget],
             dy0: float = 0.0) -> Trace:
    sim = HighwaySim(SimParams(vehicles_count=0, render=False, duration=seconds + 1.0))
    sim.reset(seed=SEED, episode=0)
    sim.unwrapped.vehicle.speed = speed0
    sim.unwrapped.vehicle.position[1] += dy0
    ctl = LaneSpeedController()
    start_lane = sim.ego_state(sim.header()).lane_index
    rows: list = []
    step_us: list[float] = []
    record(sim.unwrapped.vehicle, 0.0, rows)
    for k in range(round(seconds / DT)):
        ego = sim.ego_state(sim.header())
        t0 = time.perf_counter()
        cmd = ctl.step(ego, target_at(k * DT, start_lane))
        step_us.append((time.perf_counter() - t0) * 1e6)
        sim.step(cmd)
        record(sim.unwrapped.vehicle, (k + 1) * DT, rows)
    sim.close()
    return to_trace(rows, step_us)


def run_highway_env(seconds: float, speed0: float, action_at: Callable[[float, int], str],
                    target_speeds: list[float] | None = None, dy0: float = 0.0) -> Trace:
    action_cfg: dict = {"type": "DiscreteMetaAction"}
    if target_speeds is not None:
        action_cfg["target_speeds"] = target_speeds
    env = make_env(SimParams(vehicles_count=0, render=False, duration=seconds + 1.0), action=action_cfg)
    env.reset(seed=SEED)
    vehicle = env.unwrapped.vehicle
    vehicle.speed = vehicle.target_speed = speed0
    vehicle.speed_index = vehicle.speed_to_index(speed0)
    vehicle.position[1] += dy0
    actions = env.unwrapped.action_type.actions_indexes
    start_lane = vehicle.lane_index[2]
    rows: list = []
    record(vehicle, 0.0, rows)
    for k in range(round(seconds / DT)):
        env.step(actions[action_at(k * DT, start_lane)])
        record(vehicle, (k + 1) * DT, rows)
    env.close()
    return to_trace(rows, [])


def neighbour(lane: int) -> int:
    return lane - 1 if lane > 0 else lane + 1


def lane_keep(tr: Trace, lane: float) -> dict[str, float]:
    err = tr.y - lane * 4.0
    return {"lateral_rms_m": float(np.sqrt(np.mean(err**2))), "lateral_max_m": float(np.abs(err).max())}


def centripetal(tr: Trace) -> float:
    return float(np.abs(tr.speed[1:] * np.diff(tr.heading) / DT).max())


def lane_recover(tr: Trace, lane: int, dy0: float) -> dict[str, float]:
    goal = lane * 4.0
    return {
        "settle_time_s": settle_time(tr.t, tr.y, goal, 0.05, 0.0),
        "overshoot_m": max(0.0, float(np.max((goal - tr.y) * math.copysign(1.0, dy0)))),
        "peak_lat_accel_mps2": float(np.abs(lateral_accel(tr)).max()),
        "peak_centripetal_mps2": centripetal(tr),
    }


def lane_change(tr: Trace, start_lane: int) -> dict[str, float]:
    goal, direction = neighbour(start_lane) * 4.0, math.copysign(1.0, neighbour(start_lane) - start_lane)
    return {
        "settle_time_s": settle_time(tr.t, tr.y, goal, 0.2, LANE_CMD_S),
        "overshoot_m": max(0.0, float(np.max((tr.y - goal) * direction))),
        "peak_lat_accel_mps2": float(np.abs(lateral_accel(tr)).max()),
        "peak_centripetal_mps2": centripetal(tr),
    }


def speed_step(tr: Trace) -> dict[str, float]:
    return {
        "settle_time_s": settle_time(tr.t, tr.speed, SPEED_TO, 0.5, SPEED_CMD_S),
        "overshoot_mps": max(0.0, float(tr.speed.max() - SPEED_TO)),
        "accel_max_mps2": float(tr.accel.max()),
        "accel_min_mps2": float(tr.accel.min()),
        "jerk_max_abs_mps3": float(np.abs(np.diff(tr.accel)).max() / DT),  # accel[0]: before any command
    }


def start_lane_of_seed() -> int:
    sim = HighwaySim(SimParams(vehicles_count=0, render=False))
    sim.reset(seed=SEED, episode=0)
    lane = sim.ego_state(sim.header()).lane_index
    sim.close()
    return lane


def bench(quick: bool) -> dict:
    keep_s, change_s, step_s = (4.0, 6.0, 8.0) if quick else (20.0, 8.0, 10.0)
    lane0 = start_lane_of_seed()
    meta_dir = "LANE_LEFT" if neighbour(lane0) < lane0 else "LANE_RIGHT"

    def keep(t: float, lane: int) -> DrivingTarget:
        return DrivingTarget(target_lane=lane, target_speed=CRUISE)

    def change(t: float, lane: int) -> DrivingTarget:
        return DrivingTarget(target_lane=neighbour(lane) if t >= LANE_CMD_S else lane, target_speed=CRUISE)

    def faster(t: float, lane: int) -> DrivingTarget:
        return DrivingTarget(target_lane=lane, target_speed=SPEED_TO if t >= SPEED_CMD_S else SPEED_FROM)

    def once(name: str, at: float) -> Callable[[float, int], str]:
        return lambda t, lane: name if abs(t - at) < DT / 2 else "IDLE"

    dy0 = 1.0 if lane0 == 0 else -1.0  # [m] start off the centre, on the road
    ours_keep = run_ours(keep_s, CRUISE, keep)
    ours_recover = run_ours(change_s, CRUISE, keep, dy0=dy0)
    ours_change = run_ours(change_s, CRUISE, change)
    ours_step = run_ours(step_s, SPEED_FROM, faster)
    step_us = np.array(ours_keep.step_us + ours_recover.step_us + ours_change.step_us + ours_step.step_us)
    results = {
        "ours": {
            "lane_keep": lane_keep(ours_keep, lane0),
            "lane_recover": lane_recover(ours_recover, lane0, dy0),
            "lane_change": lane_change(ours_change, lane0),
            "speed_step": speed_step(ours_step),
            "controller_step_p50_us": float(np.percentile(step_us, 50)),
            "controller_step_p99_us": float(np.percentile(step_us, 99)),
        },
        "highway_env": {
            "lane_keep": lane_keep(run_highway_env(keep_s, CRUISE, once("IDLE", 0.0)), lane0),
            "lane_recover": lane_recover(run_highway_env(change_s, CRUISE, once("IDLE", 0.0), dy0=dy0),
                                         lane0, dy0),
            "lane_change": lane_change(run_highway_env(change_s, CRUISE, once(meta_dir, LANE_CMD_S)), lane0),
            "speed_step": speed_step(run_highway_env(step_s, SPEED_FROM, once("FASTER", SPEED_CMD_S),
                                                     [SPEED_FROM, SPEED_TO])),
        },
    }
    checks = {}
    for key, (limit, kind) in TARGETS.items():
        group, figure = key.split(".")
        value = results["ours"][group][figure]
        checks[key] = bool(value <= limit if kind == "max" else value >= limit)
    results["pass"] = checks
    results["all_pass"] = all(checks.values())
    results["pass_ratio"] = sum(checks.values()) / len(checks)
    results["quick"] = quick
    results["start_lane"] = lane0
    return results


def fmt(value: float) -> str:
    if math.isinf(value):
        return "never"
    return f"{0.0 if abs(value) < 5e-4 else value:.3f}"  # no "-0.000"


def table(results: dict) -> str:
    lines = [f"{'manoeuvre':<12} {'figure':<22} {'ours':>9} {'highway-env':>12} {'target':>10}  pass",
             "-" * 75]
    for group in ("lane_keep", "lane_recover", "lane_change", "speed_step"):
        for figure, value in results["ours"][group].items():
            key = f"{group}.{figure}"
            theirs = results["highway_env"][group][figure]
            limit = TARGETS.get(key)
            target = "" if limit is None else ("<= " if limit[1] == "max" else ">= ") + f"{limit[0]:g}"
            ok = "" if key not in results["pass"] else ("yes" if results["pass"][key] else "NO")
            lines.append(f"{group:<12} {figure:<22} {fmt(value):>9} {fmt(theirs):>12} {target:>10}  {ok}")
    lines.append(f"controller step p50 {results['ours']['controller_step_p50_us']:.1f} us, "
                 f"p99 {results['ours']['controller_step_p99_us']:.1f} us; "
                 f"all targets met: {results['all_pass']}")
    return "\n".join(lines)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (every row still measured)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    results = bench(args.quick)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(jsonable(results), indent=2))
        print(f"wrote {args.json}")
    return 0 if results["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
