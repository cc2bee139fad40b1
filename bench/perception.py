"""Perception benchmark: the shipped detector and the tracker on freshly rendered frames.

Renders driven sequences on seeds never used in training (BENCH_SEEDS) at highway-v0's traffic density and
at 1.5x, then scores:
  detection   precision and recall over vehicles fully in view (IoU >= 0.5), centre position error
  tracking    relative-velocity error of tracks updated >= 5 times, identity switches, and precision/recall
              of the published tracks
  cost        detector and tracker time per frame on one CPU thread

    python bench/perception.py [--quick] [--json PATH] [--model FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # else bench/sim.py would shadow the sim package

TARGETS = {  # key: (comparison, bound)
    "precision_ratio": (">=", 0.99),
    "recall_ratio": (">=", 0.98),
    "pos_err_median_m": ("<=", 0.2),
    "pos_err_p95_m": ("<=", 0.5),
    "vel_err_median_mps": ("<=", 0.5),
    "detector_p50_ms": ("<=", 5.0),
}


ROW_KEYS = ("frames", "vehicles", "precision_ratio", "recall_ratio", "pos_err_median_m", "pos_err_p95_m",
            "vel_err_median_mps", "vel_err_p95_mps", "vx_err_median_mps", "id_switch_ratio",
            "track_precision_ratio", "track_recall_ratio")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 short sequence per density (every row still runs)")
    p.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    p.add_argument("--model", default="perception.pt", help="weights under models/ or a path (%(default)s)")
    p.add_argument("--seqs", type=int, default=8, help="sequences per density (%(default)s)")
    p.add_argument("--steps", type=int, default=150, help="control steps per sequence, 15 per second")
    p.add_argument("--densities", type=float, nargs="+", default=[1.0, 1.5], help="vehicles_density values")
    a = p.parse_args(argv)
    if a.quick:
        a.seqs, a.steps = 1, 40
    return a


def passes(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    ok = value >= bound if op == ">=" else value <= bound
    return f"{op} {bound:g}  {'ok' if ok else 'MISSED'}"


def bench_scenarios(k: int, density: float, seqs: int, steps: int) -> list:
    """The benchmark's driven sequences for its k-th density: seeds never used in training (also used by
    bench/deploy.py)."""
    from nodes.perception import dataset as ds

    seeds = range(ds.BENCH_SEEDS[0] + 1000 * k, ds.BENCH_SEEDS[0] + 1000 * k + seqs)
    return [ds.Scenario(s, ds.DEFAULT_COUNT, density, steps, 1) for s in seeds]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from nodes.perception import dataset as ds
    from nodes.perception.detector import Detector
    from nodes.perception.evaluate import detect_all, score_detections, track_all

    torch.set_num_threads(1)
    detector = Detector(args.model)
    figures: dict = {"threshold": detector.threshold}
    det_times, trk_times = [], []
    rows: list[tuple[str, str, float]] = []
    for k, density in enumerate(args.densities):
        scs = bench_scenarios(k, density, args.seqs, args.steps)
        t0 = time.time()
        data = ds.build(scs, progress=sys.stderr.isatty())
        render_s = time.time() - t0
        dets, times = detect_all(detector, data)
        det_times.append(times)
        det = score_detections(dets, data).summary()
        vel, trk, ttimes = track_all(dets, data)
        trk_times.append(ttimes)
        tag = f"density_{density:g}"
        fig = {**det, **vel.summary(), "track_precision_ratio": trk.precision,
               "track_recall_ratio": trk.recall, "frames": len(data["frames"]),
               "render_per_s": len(data["frames"]) / max(render_s, 1e-9)}
        figures[tag] = fig
        for key in ROW_KEYS:
            rows.append((f"{density:g}x density", key, float(fig[key])))
    dt = np.concatenate(det_times) * 1e3
    tt = np.concatenate(trk_times) * 1e6
    cost = {"detector_p50_ms": float(np.percentile(dt, 50)), "detector_p95_ms": float(np.percentile(dt, 95)),
            "tracker_p50_us": float(np.percentile(tt, 50)), "tracker_p95_us": float(np.percentile(tt, 95))}
    figures.update(cost)
    rows += [("cost, 1 thread", k, v) for k, v in cost.items()]

    print(f"perception bench: model {args.model}, threshold {detector.threshold:.2f}, "
          f"{args.seqs} x {args.steps} steps per density, seeds from {ds.BENCH_SEEDS[0]} (never trained on)")
    print(f"| {'set':16s} | {'figure':22s} | {'value':>9s} | {'target':18s} |")
    print(f"|{'-' * 18}|{'-' * 24}|{'-' * 11}|{'-' * 20}|")
    for group, key, value in rows:
        shown = f"{value:9.0f}" if key in ("frames", "vehicles") else f"{value:9.4f}"
        print(f"| {group:16s} | {key:22s} | {shown} | {passes(key, value):18s} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
