"""Deployment benchmark: every backend of the detector and of the planner side by side (nodes/deploy.py).

Per backend (torch, onnx, onnx_int8):
  file_kb           size of the file the backend loads (torch: the .pt / the SB3 zip)
  load_s, rss_mb    in a fresh process, as a node starts it: imports, loading and a first call [s], and the
                    process's peak resident memory [MB] (the ONNX backends import neither torch nor SB3)
  cpu_p50_us        CPU time of one call on the calling thread (thread_time), median: what the call costs,
                    whatever else the shared machine runs; the default is chosen on it
  p50_us, p99_us    latency of one call on one thread, interleaved across backends call by call so that
                    they share the machine's load alike: frame -> detections (decoding included), or
                    observation -> action
  detector          precision, recall, centre position error against ground truth on bench/perception.py's
                    frames (the same seeds and sequences, never used in training or calibration)
  planner           action agreement with the torch policy on the observations it met driving the closed
                    loop below; closed loop on the model-selection episodes (SELECTION_SEED_BASE + i, 50
                    vehicles, 40 s, decision's overrides on, bench/planner.py's runner): collision rate, mean speed
A compressed backend is offered only within nodes/deploy.py's BOUNDS (P >= 0.99, R >= 0.98, median error
<= 0.2 m; actions agree >= 99%); the default is the fastest backend within them (CPU time a call).

Exported files are taken from beside the weights (models/*.onnx, as `drivestack export` writes them) when they
are there and current; the others (an int8 file export refused to write) are exported into a temporary folder
the same way, without the accuracy gate, so that their figures can be shown.

    python bench/deploy.py [--quick] [--json PATH] [--episodes 20] [--seqs 8] [--steps 150]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodes.deploy import BACKENDS, BOUNDS, bound_failures, exported_path, file_sha256  # noqa: E402


def _bench_module(name: str):
    """Another benchmark of bench/ as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _current(path: Path, source: Path) -> bool:
    """`path` exists and was exported from `source` (its stamped sha256)."""
    if not path.is_file():
        return False
    import onnx

    from nodes.deploy import SOURCE_KEY

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return meta.get(SOURCE_KEY) == file_sha256(source)


LOAD_SCRIPT = """
import sys, time
start = time.perf_counter()
network, backend, source, path = sys.argv[1:5]
import numpy as np
if network == "detector":
    from nodes.perception.backends import OnnxDetector, make_detector
    net = make_detector(source) if backend == "torch" else OnnxDetector(source, backend, path=path)
    net(np.zeros((net.view.height, net.view.width, 3), np.uint8))
else:
    from nodes.planning.backends import OnnxPolicy
    from nodes.planning.policy import DQNPolicy
    net = DQNPolicy(source) if backend == "torch" else OnnxPolicy(source, backend, path=path)
    net.act(np.zeros(net.observation_shape, np.float32))
elapsed = time.perf_counter() - start
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(elapsed, peak_kb / 1024)
"""


def load_cost(network: str, backend: str, source: Path, path: Path) -> dict[str, float]:
    """What a node pays to bring the backend up, in a fresh process: imports, loading and a first call [s],
    and the process's peak resident memory [MB]."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, network, backend, str(source), str(path)],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout.split()
    return {"load_s": float(out[-2]), "rss_mb": float(out[-1])}


def _percentiles(seconds: list[tuple[float, float]]) -> dict[str, float]:
    """seconds: (wall, thread CPU) per call."""
    us = np.asarray(seconds) * 1e6
    return {"cpu_p50_us": float(np.percentile(us[:, 1], 50)), "p50_us": float(np.percentile(us[:, 0], 50)),
            "p99_us": float(np.percentile(us[:, 0], 99))}


def timed(call, *args):
    """call(*args) and its (wall, thread CPU) time [s]. onnxruntime with one intra-op thread and torch with one
    thread both compute on the calling thread."""
    wall, cpu = time.perf_counter(), time.thread_time()
    out = call(*args)
    return out, (time.perf_counter() - wall, time.thread_time() - cpu)


def pick_files(source: Path, export_here) -> tuple[dict[str, Path], list[str]]:
    """backend -> the file it loads: beside `source` when current, else from export_here() (called once,
    returns backend -> file exported into the temporary folder)."""
    files, notes, here = {"torch": source}, [], None
    for backend in BACKENDS[1:]:
        path = exported_path(source, backend)
        if not _current(path, source):
            here = here or export_here()
            path = here[backend]
            notes.append(f"{source.name} {backend}: exported for this run ({path.name} beside it is missing or "
                         "stale)")
        files[backend] = path
    return files, notes


def bench_perception(args: argparse.Namespace, tmp: Path) -> tuple[list[dict], list[str]]:
    from nodes.perception import dataset as ds
    from nodes.perception import export as pex
    from nodes.perception.backends import OnnxDetector, make_detector, resolve_weights
    from nodes.perception.metrics import DetectionScore

    source = resolve_weights("perception.pt")

    def export_here() -> dict[str, Path]:
        fp32 = pex.export_onnx(source, exported_path(source, "onnx", tmp))
        frames = pex.calibration_data()["frames"]
        return {"onnx": fp32, "onnx_int8": pex.quantize_int8(fp32, exported_path(source, "onnx_int8", tmp), frames)}

    files, notes = pick_files(source, export_here)
    detectors = {"torch": make_detector(source, "torch")}
    for backend in BACKENDS[1:]:
        detectors[backend] = OnnxDetector(source, backend, path=files[backend])
    percept = _bench_module("perception")
    dets: dict[str, list[np.ndarray]] = {b: [] for b in detectors}
    times: dict[str, list[float]] = {b: [] for b in detectors}
    datasets = []
    for k, density in enumerate(args.densities):
        data = ds.build(percept.bench_scenarios(k, density, args.seqs, args.steps), progress=sys.stderr.isatty())
        datasets.append(data)
        for detect in detectors.values():  # warm up
            detect(data["frames"][0])
        for frame in data["frames"]:
            for backend, detect in detectors.items():
                found, spent = timed(detect, frame)
                dets[backend].append(found)
                times[backend].append(spent)
    rows = []
    for backend in detectors:
        score = DetectionScore()
        labels = [ds.frame_labels(data, j) for data in datasets for j in range(len(data["frames"]))]
        for found, truth in zip(dets[backend], labels, strict=True):
            score.add(found, truth)
        rows.append({"network": "detector", "backend": backend, "file_kb": files[backend].stat().st_size / 1024,
                     **_percentiles(times[backend]), **load_cost("detector", backend, source, files[backend]),
                     "frames": len(dets[backend]), **score.summary()})
    return rows, notes


class Recording:
    """A policy that keeps every observation it is asked about (the recorded observations)."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.observation_shape = policy.observation_shape
        self.seen: list[np.ndarray] = []

    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        self.seen.append(np.array(obs, np.float32))
        return self.policy.act(obs)


def bench_planner(args: argparse.Namespace, tmp: Path) -> tuple[list[dict], list[str]]:
    from tqdm import tqdm

    from nodes.planning import export as plx
    from nodes.planning.backends import OnnxPolicy
    from nodes.planning.policy import DQNPolicy, resolve_model_path
    from nodes.planning.seeds import SELECTION_SEED_BASE

    source = resolve_model_path(args.planner_model)
    policies = {"torch": DQNPolicy(source)}

    def export_here() -> dict[str, Path]:
        fp32 = plx.export_onnx(source, exported_path(source, "onnx", tmp), policies["torch"])
        obs = plx.calibration_observations(policies["torch"])
        return {"onnx": fp32, "onnx_int8": plx.quantize_int8(fp32, exported_path(source, "onnx_int8", tmp), obs)}

    files, notes = pick_files(source, export_here)
    for backend in BACKENDS[1:]:
        policies[backend] = OnnxPolicy(source, backend, path=files[backend])
    planner = _bench_module("planner")
    seeds = [SELECTION_SEED_BASE + i for i in range(args.episodes)]
    closed: dict[str, dict] = {}
    recorded = Recording(policies["torch"])
    for backend, policy in policies.items():
        run = planner.planner_runner(recorded if backend == "torch" else policy, overrides=True)
        start = time.perf_counter()
        episodes = [run(s) for s in tqdm(seeds, desc=f"planner {backend}", unit="ep", disable=not sys.stderr.isatty())]
        closed[backend] = planner.summarise(backend, episodes, time.perf_counter() - start, True)
    observations = recorded.seen
    actions = {b: [] for b in policies}
    times: dict[str, list[float]] = {b: [] for b in policies}
    for obs in observations:
        for backend, policy in policies.items():
            (action, _), spent = timed(policy.act, obs)
            actions[backend].append(action)
            times[backend].append(spent)
    reference = np.asarray(actions["torch"])
    rows = []
    for backend in policies:
        rows.append({"network": "planner", "backend": backend, "file_kb": files[backend].stat().st_size / 1024,
                     **_percentiles(times[backend]), **load_cost("planner", backend, source, files[backend]),
                     "observations": len(observations),
                     "action_agreement_ratio": float(np.mean(np.asarray(actions[backend]) == reference)),
                     "collision_rate": closed[backend]["collision_rate"],
                     "mean_speed_mps": closed[backend]["mean_speed_mps"], "episodes": len(seeds)})
    return rows, notes


def choose(rows: list[dict]) -> None:
    """Mark each row offered (within BOUNDS) and the default (the fastest offered, by CPU time a call)."""
    for row in rows:
        misses = [] if row["backend"] == "torch" else bound_failures(row)
        row["offered"] = not misses
        row["misses"] = misses
    for network in {r["network"] for r in rows}:
        offered = [r for r in rows if r["network"] == network and r["offered"]]
        best = min(offered, key=lambda r: r["cpu_p50_us"])
        for r in rows:
            if r["network"] == network:
                r["default"] = r is best


def table(rows: list[dict]) -> str:
    def cell(row: dict, key: str, fmt: str) -> str:
        return format(row[key], fmt) if key in row else "-"

    head = ("| network | backend | file KB | CPU p50 us | p50 us | p99 us | load s | RSS MB | precision | recall | "
            "pos err median m | action agreement | collision rate | mean speed m/s | offered |")
    lines = [head, "|" + "|".join("---" if i < 2 else "---:" for i in range(head.count("|") - 1)) + "|"]
    for r in rows:
        offered = ("default" if r["default"] else "yes") if r["offered"] else "no: " + "; ".join(r["misses"])
        lines.append(f"| {r['network']} | {r['backend']} | {r['file_kb']:.0f} | {r['cpu_p50_us']:.0f} | "
                     f"{r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['load_s']:.1f} | {r['rss_mb']:.0f} | "
                     f"{cell(r, 'precision_ratio', '.4f')} | {cell(r, 'recall_ratio', '.4f')} | "
                     f"{cell(r, 'pos_err_median_m', '.3f')} | {cell(r, 'action_agreement_ratio', '.1%')} | "
                     f"{cell(r, 'collision_rate', '.0%')} | {cell(r, 'mean_speed_mps', '.2f')} | {offered} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 short sequence per density, 2 episodes")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--episodes", type=int, default=20, help="model-selection episodes per planner backend")
    p.add_argument("--seqs", type=int, default=8, help="perception bench sequences per density (%(default)s)")
    p.add_argument("--steps", type=int, default=150, help="control steps per sequence (%(default)s)")
    p.add_argument("--densities", type=float, nargs="+", default=[1.0, 1.5], help="vehicles_density values")
    p.add_argument("--planner-model", default="models/planner_dqn.zip", help="the planner's SB3 zip")
    p.add_argument("--only", choices=["detector", "planner"], help="bench one network")
    args = p.parse_args(argv)
    if args.quick:
        args.seqs, args.steps, args.episodes = 1, 40, 2
    import onnxruntime
    import torch

    torch.set_num_threads(1)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "planner":
            r, n = bench_perception(args, Path(tmp))
            rows += r
            notes += n
        if args.only != "detector":
            r, n = bench_planner(args, Path(tmp))
            rows += r
            notes += n
    choose(rows)
    det = next((r for r in rows if r["network"] == "detector"), None)
    plan = next((r for r in rows if r["network"] == "planner"), None)
    print(f"\ndeploy bench: torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, one thread; "
          + (f"detector on {det['frames']} perception-bench frames ({args.seqs} x {args.steps} steps per density "
             f"{', '.join(f'{d:g}' for d in args.densities)}); " if det else "")
          + (f"planner on {plan['observations']} recorded observations and {plan['episodes']} model-selection "
             "episodes" if plan else ""))
    print(table(rows))
    print("bounds for a compressed backend: " + ", ".join(f"{k} {op} {b:g}" for k, (op, b) in BOUNDS.items()))
    for note in notes:
        print(note)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "notes": notes, "quick": args.quick}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
