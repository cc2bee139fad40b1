"""`drivestack evaluate`: drive seeded episodes with a launch file and score them from ground truth.

Each launch file is run over the same seeds: by default with its nodes composed in one process per job
(`--jobs J` side by side; the node classes the launch file names, with its params and wiring, in lockstep),
as real multi-process stacks (`--multiprocess`: every node its own process, as `launch` runs it, each stack
in its own namespace), or as Ray tasks of multi-process stacks (`--ray [ADDRESS]`, seed chunks on a local Ray
instance or a cluster; see evaluation/ray_eval.py). All give the same per-episode results
(tests/evaluation/test_evaluate.py); composed, a tick costs about a third of the CPU, without the hops
between processes and the recorder's re-encoding. Every run is recorded; the metrics are computed from the
recordings, so `--recordings DIR` scores earlier runs the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluation.runner import Job, known_overrides, run_inprocess, run_multiprocess, split_seeds
from nodes.planning.seeds import BENCH_SEED_BASE
from nodes.runtime.launchfile import (
    LaunchError,
    did_you_mean,
    load_plan,
    parse_overrides,
    split_launch_args,
)

# launch args that evaluate gives every run itself: a name:=value for them would be overwritten without a word
EVALUATE_SETS = {"episodes": "use --episodes", "seed": "use --seed", "record": "every run is recorded",
                 "gui": "runs are headless"}


def episode_rows(recordings: list[Path]) -> list[dict[str, Any]]:
    """Per-episode metrics of every episode in the recordings, ordered by seed."""
    from evaluation.metrics import episode_metrics
    from evaluation.trace import traces_from_recording

    rows = []
    for path in recordings:
        for trace in traces_from_recording(path):
            rows.append(episode_metrics(trace))
    return sorted(rows, key=lambda r: r["seed"])


def recorded_rows(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-episode rows of the whole episodes recorded under `folder`, by seed, and a line for each file or
    episode left out (not a recording, never sealed, or an episode without its end: cut or interrupted).
    ValueError when the same seed is recorded twice (one evaluation per folder) or nothing can be scored."""
    from evaluation.metrics import episode_metrics
    from evaluation.trace import traces_from_recording
    from nodes.runtime.seal import RecordingError, check_usable

    files = sorted(folder.rglob("*.mcap"))
    if not files:
        raise ValueError(f"no .mcap under {folder}")
    rows: list[dict[str, Any]] = []
    left_out: list[str] = []
    seen: dict[int, Path] = {}
    for path in files:
        try:
            state = check_usable(path)
        except RecordingError as exc:
            left_out.append(f"left out {exc}")
            continue
        if not state.complete:
            left_out.append(f"{path} was cut ({state.reason}): only its episodes that ended are scored")
        for trace in traces_from_recording(path):
            if trace.end_reason in ("", "shutdown"):
                why = "has no end (the recording stops inside it)" if not trace.end_reason else "was interrupted"
                left_out.append(f"left out episode {trace.episode} (seed {trace.seed}) of {path}: it {why}")
                continue
            if trace.seed in seen:
                raise ValueError(f"seed {trace.seed} is recorded twice, in {seen[trace.seed]} and {path}: give each "
                                 "evaluation's recordings a folder of their own (one config per folder)")
            seen[trace.seed] = path
            rows.append(episode_metrics(trace))
    if not rows:
        raise ValueError(f"no whole episode to score under {folder}: " + "; ".join(left_out))
    return sorted(rows, key=lambda r: r["seed"]), left_out


def _drive(configs: list[str], overrides: dict[str, Any], args: argparse.Namespace, out: Path,
           meta: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Drive every config over the seeds (locally or on Ray); per-episode rows per config name."""
    results: dict[str, list[dict[str, Any]]] = {}
    wall: dict[str, float] = {}
    meta["wall_s"] = wall

    def drive(runner: Any, tasks: int) -> None:
        with tqdm(total=args.episodes * len(configs), unit="episode", desc="evaluate") as progress:
            for config in configs:
                name = Path(config).name
                jobs = [Job(config, s, n, out / Path(name).stem / f"job{j}", overrides)
                        for j, (s, n) in enumerate(split_seeds(args.seed, args.episodes, tasks))]
                t0 = time.perf_counter()
                recordings = runner(jobs, progress)
                wall[name] = time.perf_counter() - t0
                results[name] = episode_rows(recordings)

    if args.ray is None:
        drive(run_inprocess if args.inprocess else run_multiprocess, args.jobs or 1)
        return results
    from evaluation.ray_eval import chunk_count, ray_session, run_ray

    hosts: dict[str, int] = {}  # episodes driven per machine, filled by run_ray
    with ray_session(args.ray or None, None if args.ray else args.jobs) as cpus:
        tasks = chunk_count(args.episodes, cpus, args.chunk)
        meta["ray"] = {"address": args.ray or "local", "cpus": cpus, "tasks_per_config": tasks, "hosts": hosts}
        drive(lambda jobs, progress: run_ray(jobs, progress, hosts), tasks)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivestack evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("launch_file", nargs="?", help="launch file to evaluate (default: full_stack.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="name:=value",
                        help="launch args for every run, anywhere on the line (episodes and seed: --episodes, --seed)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per launch file")
    parser.add_argument("--seed", type=int, default=BENCH_SEED_BASE,
                        help="seed of the first episode (the default range is never used in training; it is "
                        "full_stack.yaml's default too)")
    parser.add_argument("--jobs", type=int, help="stacks run side by side (default 1); with --ray and no ADDRESS: "
                        "the local Ray instance's CPUs (default: all)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="run seed chunks as Ray tasks: on a new local instance, or on the cluster at ADDRESS "
                        "(auto, ray://HOST:10001); needs the [ray] extra")
    parser.add_argument("--chunk", type=int, help="with --ray: episodes per task (default: two waves over the CPUs)")
    parser.add_argument("--multiprocess", action="store_true",
                        help="run every node as its own process, as `launch` does (same results, about 3x the CPU)")
    parser.add_argument("--inprocess", action="store_true",
                        help="compose the nodes in one process per job (the default without --multiprocess or --ray)")
    parser.add_argument("--compare", nargs="+", metavar="FILE.yaml", help="evaluate several launch files")
    parser.add_argument("--recordings", type=Path, nargs="+", metavar="DIR",
                        help="score the recordings under each DIR (one config per DIR) instead of driving")
    parser.add_argument("--limit", type=int, help="with --recordings: score only the first N episodes (by seed)")
    parser.add_argument("--out", type=Path, help="report directory (default: runs/eval-<stamp>)")
    # name:=value pairs are taken out first, wherever they stand: after an option (`--episodes 1 duration:=10`)
    # or after --compare's files they would otherwise become a launch file or be dropped
    pairs, rest = split_launch_args(sys.argv[1:] if argv is None else argv)
    flags = sorted(parser._option_string_actions)
    for token in rest:
        flag = token.partition("=")[0]
        if flag.startswith("--") and not any(known.startswith(flag) for known in flags):
            parser.error(f"unrecognised option {flag!r}{did_you_mean(flag, flags)}")
    args = parser.parse_intermixed_args(rest)
    args.overrides += pairs
    if args.compare and args.launch_file:
        parser.error(f"{args.launch_file!r} and --compare: give the launch files either as one FILE or all after "
                     "--compare")
    if stray := [a for a in args.overrides if ":=" not in a]:
        parser.error(f"{stray[0]!r} is not a launch arg (name:=value); one launch file, or several after --compare")
    if args.ray and args.ray.endswith((".yaml", ".yml")):
        parser.error(f"--ray took {args.ray!r} as the Ray ADDRESS: put the launch file before --ray "
                     "(drivestack evaluate FILE.yaml --ray [ADDRESS])")
    if args.recordings and (args.overrides or args.launch_file or args.compare):
        parser.error("--recordings scores recorded runs: launch files and name:=value args do not apply")
    if args.ray is not None and (args.inprocess or args.recordings):
        parser.error("--ray drives multi-process stacks: it cannot be combined with --inprocess or --recordings")
    if args.inprocess and args.multiprocess:
        parser.error("--inprocess and --multiprocess: choose one (the default is --inprocess)")
    args.inprocess = not args.multiprocess and args.ray is None
    from evaluation.report import format_table, write_report

    out = args.out or Path("runs") / f"eval-{datetime.now():%Y%m%d-%H%M%S}"
    results: dict[str, list[dict[str, Any]]] = {}
    started = datetime.now().isoformat(timespec="seconds")
    meta: dict[str, Any] = (
        {"recordings": [str(folder) for folder in args.recordings], "limit": args.limit, "started": started}
        if args.recordings else
        {"episodes": args.episodes, "seed": args.seed, "jobs": args.jobs or 1, "inprocess": args.inprocess,
         "started": started})
    if args.recordings:
        for folder in args.recordings:
            try:
                rows, left_out = recorded_rows(folder)
            except ValueError as exc:
                print(f"drivestack evaluate: error: {exc}", file=sys.stderr)
                return 2
            for note in left_out:
                print(f"drivestack evaluate: warning: {note}", file=sys.stderr)
            meta.setdefault("left_out", {})[folder.name] = left_out
            results[folder.name] = rows[: args.limit]
    else:
        configs = args.compare or [args.launch_file or "full_stack.yaml"]
        try:
            overrides = parse_overrides(args.overrides)
            if owned := sorted(set(overrides) & set(EVALUATE_SETS)):
                raise ValueError("; ".join(f"{k}:= is set by evaluate itself ({EVALUATE_SETS[k]})" for k in owned))
            taken: set[str] = set()
            for config in configs:
                taken |= set(load_plan(config, known_overrides(config, overrides)).args)  # all valid first
            if unknown := sorted(set(overrides) - taken):
                raise ValueError(f"{', '.join(configs)}: unknown arg(s) {unknown}; taken: {sorted(taken)}")
        except (LaunchError, ValueError) as exc:
            print(f"drivestack evaluate: error: {exc}", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        try:
            results.update(_drive(configs, overrides, args, out, meta))
        except RuntimeError as exc:
            print(f"drivestack evaluate: error: {exc}", file=sys.stderr)
            return 1
    paths = write_report(out, results, meta)
    print(format_table(results))
    print(f"report: {out} ({', '.join(sorted(p.name for p in paths))})" if paths else f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
