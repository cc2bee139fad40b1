"""Sim steps per second: highway-env's stock Road against sim.fast_road, at 20, 50 and 100 vehicles.

    python bench/sim.py [--quick] [--repeat N] [--ticks N] [--json PATH]

HighwaySim (highway-v0, 4 lanes, 15 Hz, no camera) steps with the ego holding its speed; an episode that
ends early is followed by the next seed. Both roads drive the same seeds, interleaved round by round, and
each row reports its median round; `same` says whether both ended every episode in the same state, bit
for bit (tests/sim/test_fast_road.py checks every tick). Rates are steps per second of this process's CPU
time (on a shared machine, wall time also counts the waits for a core; the wall-time ratio is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msgs import ControlCommand  # noqa: E402
from sim.highway import HighwaySim, SimParams  # noqa: E402

VEHICLES = (20, 50, 100)
HOLD_SPEED = ControlCommand(acceleration=0.0, steering=0.0)
TARGET_RATIO_AT_50 = 4.0


def world_state(sim: HighwaySim) -> bytes:
    """Every vehicle's position, heading, speed and crash flag, as bytes."""
    return b"".join(v.position.tobytes() + repr((float(v.heading), float(v.speed), bool(v.crashed))).encode()
                    for v in sim.unwrapped.road.vehicles)


def run(road: str, vehicles: int, ticks: int, seed0: int) -> tuple[float, float, list[bytes]]:
    """Steps per CPU second and per wall second over `ticks` steps, and the world's state at the end of
    each episode."""
    sim = HighwaySim(SimParams(vehicles_count=vehicles, render=False, road=road))
    seed, done, cpu, wall, ends = seed0, 0, 0.0, 0.0, []
    while done < ticks:
        sim.reset(seed, 0)
        while done < ticks and sim.end_reason is None:
            c0, t0 = time.process_time(), time.perf_counter()
            sim.step(HOLD_SPEED)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - t0
            done += 1
        ends.append(world_state(sim))
        seed += 1
    sim.close()
    return ticks / cpu, ticks / wall, ends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round per row")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; each row reports its median")
    parser.add_argument("--ticks", type=int, default=300, help="sim steps per road, row and round (default 300)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    ns = parser.parse_args(argv)
    rounds, ticks = (1, 45) if ns.quick else (max(1, ns.repeat), max(1, ns.ticks))
    rows: dict[str, dict] = {}
    for n in VEHICLES:
        rates: dict[str, list[float]] = {"stock": [], "fast": []}
        walls: dict[str, list[float]] = {"stock": [], "fast": []}
        same = True
        for r in range(rounds):
            ends = {}
            for road in ("stock", "fast"):
                rate, wall, ends[road] = run(road, n, ticks, seed0=1000 * r)
                rates[road].append(rate)
                walls[road].append(wall)
            same &= ends["stock"] == ends["fast"]
        stock, fast = (sorted(rates[k])[len(rates[k]) // 2] for k in ("stock", "fast"))
        stock_wall, fast_wall = (sorted(walls[k])[len(walls[k]) // 2] for k in ("stock", "fast"))
        rows[f"vehicles_{n}"] = {"vehicles": n, "stock_steps_per_s": stock, "fast_steps_per_s": fast,
                                 "fast_vs_stock_ratio": fast / stock, "same_trajectories": same,
                                 "stock_wall_steps_per_s": stock_wall, "fast_wall_steps_per_s": fast_wall,
                                 "fast_vs_stock_wall_ratio": fast_wall / stock_wall,
                                 "stock_steps_per_s_all": [round(x, 1) for x in rates["stock"]],
                                 "fast_steps_per_s_all": [round(x, 1) for x in rates["fast"]]}
    ratios = [row["fast_vs_stock_ratio"] for row in rows.values()]
    summary = {"ratio_at_50_met": rows["vehicles_50"]["fast_vs_stock_ratio"] >= TARGET_RATIO_AT_50,
               "ratio_grows_with_vehicles": all(a < b for a, b in zip(ratios, ratios[1:], strict=False)),
               "same_trajectories": all(row["same_trajectories"] for row in rows.values())}
    load = os.getloadavg()[0]
    print(f"highway-v0 sim steps per CPU second (no camera), {ticks} steps per row and road, median of {rounds} "
          f"interleaved rounds, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"{'vehicles':>8} {'stock_steps_per_s':>18} {'fast_steps_per_s':>17} {'fast/stock':>11} {'wall':>6} "
          f"{'same':>5}  every round's stock | fast")
    for row in rows.values():
        print(f"{row['vehicles']:>8} {row['stock_steps_per_s']:>18.1f} {row['fast_steps_per_s']:>17.1f} "
              f"{row['fast_vs_stock_ratio']:>11.2f} {row['fast_vs_stock_wall_ratio']:>6.2f} "
              f"{'yes' if row['same_trajectories'] else 'NO':>5}"
              f"  {row['stock_steps_per_s_all']} | {row['fast_steps_per_s_all']}")
    print(f"fast/stock at 50 vehicles >= {TARGET_RATIO_AT_50}: {'met' if summary['ratio_at_50_met'] else 'NOT met'}; "
          f"ratio grows with vehicles: {'yes' if summary['ratio_grows_with_vehicles'] else 'no'}; "
          f"same end states: {'yes' if summary['same_trajectories'] else 'NO'}")
    if ns.json:
        Path(ns.json).write_text(json.dumps({"rows": rows, **summary, "load_average": load}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
