"""Tick rate of the whole loop: multi-process (recorder on and off) against the same nodes in one process,
and the recording's size per simulated minute.

    python bench/loop.py [--quick] [--repeat N] [--json PATH] [name:=value ...]   (launch args for full_stack.yaml)

Multi-process time runs from the launcher's "all nodes ready" to the sim's last episode end (start-up is
reported apart); in-process time is `LocalStack.run()` after construction.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, bench/ comes first on the path: bench/sim.py would shadow sim/


def multiprocess(args: list[str], record: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "nodes.launch", "full_stack.yaml", *args,
                                 f"record:={'true' if record else 'false'}"], cwd=tmp, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = end = None
        ticks = 0
        for line in proc.stdout:
            now = time.monotonic()
            if "all nodes ready" in line:
                ready = now
            if "ended:" in line:
                end = now
            parts = line.split()
            if len(parts) >= 7 and parts[0].isdigit() and parts[2] in ("time_limit", "collision", "offroad"):
                ticks += int(parts[3]) + 1
        if proc.wait() != 0 or ready is None or end is None:
            raise RuntimeError(f"launch failed (exit {proc.returncode})")
        size = sum(p.stat().st_size for p in Path(tmp).glob("runs/*/recording.mcap"))
        return {"ticks": ticks, "startup_s": ready - t0, "loop_s": end - ready, "ticks_per_s": ticks / (end - ready),
                "recording_bytes": size}


def inprocess(args: list[str]) -> dict[str, float]:
    from nodes.runtime.launchfile import load_plan, parse_overrides
    from nodes.runtime.local import LocalStack

    plan = load_plan("full_stack.yaml", {**parse_overrides(args), "record": False})
    stack = LocalStack.from_plan(plan)
    ticks = 0

    def count(topic: str, _msg: object) -> None:
        nonlocal ticks
        ticks += topic == "/control/cmd"

    stack.observers.append(count)
    t0 = time.perf_counter()
    stack.run()
    loop = time.perf_counter() - t0
    return {"ticks": ticks, "loop_s": loop, "ticks_per_s": ticks / loop}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="name:=value")
    parser.add_argument("--quick", action="store_true", help="one short episode per row")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the three rows, interleaved; each row reports its median round (default 3)")
    ns = parser.parse_args(argv)
    base = ["episodes:=1", "duration:=4.0" if ns.quick else "duration:=30.0"] + ns.overrides
    runs: dict[str, list[dict[str, float]]] = {"multiprocess_record": [], "multiprocess_norecord": [],
                                               "inprocess": []}
    rounds = 1 if ns.quick else max(1, ns.repeat)
    for _ in tqdm(range(rounds), desc="rounds", unit="round"):
        runs["multiprocess_record"].append(multiprocess(base, record=True))
        runs["multiprocess_norecord"].append(multiprocess(base, record=False))
        runs["inprocess"].append(inprocess(base))
    rows = {name: {**sorted(rs, key=lambda r: r["ticks_per_s"])[len(rs) // 2],
                   "ticks_per_s_all": [round(r["ticks_per_s"], 2) for r in rs]} for name, rs in runs.items()}
    rec = rows["multiprocess_record"]
    sim_minutes = rec["ticks"] / 15.0 / 60.0
    summary = {
        "multi_vs_inprocess_ratio": rows["multiprocess_record"]["ticks_per_s"] / rows["inprocess"]["ticks_per_s"],
        "recorder_slowdown_ratio": 1 - rec["ticks_per_s"] / rows["multiprocess_norecord"]["ticks_per_s"],
        "recording_mb_per_sim_min": rec["recording_bytes"] / 1e6 / sim_minutes,
    }
    print(f"full_stack.yaml loop, {' '.join(base)}, {os.cpu_count()} CPUs, median of {rounds} interleaved rounds")
    print(f"{'run':<24} {'ticks':>6} {'loop_s':>8} {'ticks_per_s':>12} {'startup_s':>10}  every round's ticks_per_s")
    for name, r in rows.items():
        print(f"{name:<24} {r['ticks']:>6} {r['loop_s']:>8.1f} {r['ticks_per_s']:>12.1f} "
              f"{r.get('startup_s', float('nan')):>10.1f}  {r['ticks_per_s_all']}")
    print(f"multi-process / in-process tick rate: {summary['multi_vs_inprocess_ratio']:.2f} (target >= 0.9)")
    print(f"recorder slowdown: {100 * summary['recorder_slowdown_ratio']:.1f}% (target < 5%)")
    print(f"recording: {summary['recording_mb_per_sim_min']:.1f} MB per simulated minute (target < 20)")
    if ns.json:
        Path(ns.json).write_text(json.dumps({"rows": rows, **summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
