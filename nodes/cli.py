"""`drivestack <command>`: tools on a running stack, recordings, evaluation, training and benchmarks.

Every sub-tool gets its own arguments untouched (`drivestack train planner --help` is the trainer's help), output
into a closed pipe ends quietly (`drivestack topic list | head`), and `drivestack --version` says which one runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from nodes.cli_stack import add_parsers as add_stack_parsers

# subcommands whose module has main(argv): everything after the command's name goes to it
TOOLS = {"golden": "nodes.recorder.golden", "evaluate": "evaluation.evaluate", "video": "nodes.viewer.video",
         "info": "nodes.cli_info", "export": "nodes.export", "new": "nodes.cli_new"}
TRAINERS = {"perception": "nodes.perception.train", "planner": "nodes.planning.train",
            "planner-rollouts": "nodes.planning.rollouts"}


def replay(args: argparse.Namespace) -> int:
    from nodes.runtime.launchfile import LaunchError, load_plan
    from nodes.runtime.supervisor import Supervisor
    from nodes.viewer.console import DrivingConsole

    rate = 0.0 if args.rate == "max" else float(args.rate)
    overrides = {"file": str(Path(args.file).resolve()), "rate": rate, "start_offset": args.start_offset,
                 "loop": args.loop, "record": args.record, "topics": args.topics or []}
    if args.exclude is not None:
        overrides["exclude"] = args.exclude
    try:
        plan = load_plan("replay.yaml", overrides)
    except LaunchError as exc:
        print(f"drivestack replay: error: {exc}", file=sys.stderr)
        return 2
    return Supervisor(plan, observers=[DrivingConsole.for_plan(plan)]).run()


def tool(command: str, rest: list[str]) -> int:
    return int(importlib.import_module(TOOLS[command]).main(rest) or 0)


def train(what: str, rest: list[str]) -> int:
    sys.argv = [f"drivestack train {what}", *rest]
    return int(importlib.import_module(TRAINERS[what]).main(rest) or 0)


def bench_dir() -> Path | None:
    """bench/ of a source checkout, or its copy in an installed wheel; None if it is missing."""
    from nodes.share import data_root

    path = data_root() / "bench"
    return path if path.is_dir() and any(path.glob("*.py")) else None


def bench_names() -> list[str]:
    folder = bench_dir()
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")) if folder else []


def bench(name: str, rest: list[str]) -> int:
    folder = bench_dir()
    path = folder / f"{name}.py" if folder else Path(name)
    if not path.is_file():
        from nodes.runtime.launchfile import did_you_mean

        raise SystemExit(f"drivestack: no benchmark {name!r}{did_you_mean(name, bench_names())}; "
                         f"available: {', '.join(bench_names()) or 'none (bench/ is missing)'}")
    sys.argv = [f"drivestack bench {name}", *rest]
    import runpy

    runpy.run_path(str(path), run_name="__main__")
    return 0


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from nodes.share import data_root, is_checkout

    where = f"source checkout {data_root()}" if is_checkout() else f"installed at {Path(__file__).resolve().parent}"
    try:
        return f"drivestack {dist_version('drivestack')} ({where})"
    except PackageNotFoundError:
        return f"drivestack (not installed; {where})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivestack", description="Tools for a drivestack run. "
                                     "`drivestack COMMAND --help` for a command's own options.")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_stack_parsers(sub)

    p = sub.add_parser("replay", help="play a recording back onto the bus (like `ros2 bag play`)",
                       description="Republish a recording's messages with their recorded bytes. Nodes run on "
                       "the simulated time in each message's header, so no /clock topic is needed. Other nodes "
                       "can subscribe while it plays (`drivestack topic echo`), or add them to "
                       "launch/replay.yaml.")
    p.add_argument("file", help="MCAP recording (runs/<stamp>/recording.mcap)")
    p.add_argument("--rate", default="1.0", help="playback speed as a multiple of recorded pace, or 'max'")
    p.add_argument("--topics", nargs="+", help="play only these topics")
    p.add_argument("--exclude", nargs="+", help="leave these topics out (default: /diagnostics)")
    p.add_argument("--start-offset", type=float, default=0.0, help="[s] skip the start of the recording")
    p.add_argument("--loop", action="store_true", help="play forever")
    p.add_argument("--record", action="store_true", help="record what is played to runs/<stamp>/recording.mcap")
    p.set_defaults(func=replay)

    # These take their arguments untouched (see main); the parsers here only list them in the help.
    sub.add_parser("info", help="what a recording holds: duration, episodes, topics, counts (like ros2 bag info)")
    sub.add_parser("evaluate", help="drive seeded episodes with launch files and report closed-loop metrics")
    sub.add_parser("video", help="draw a recording's episodes (boxes, plan, mode, speed) into an mp4")
    sub.add_parser("golden", help="per-node golden replays: check, or --refresh the reference recording")
    sub.add_parser("new", help="scaffold a node of your own with its launch file and test: new node NAME")
    sub.add_parser("export", help="export a network for the ONNX backends: drivestack export perception|planner")
    p = sub.add_parser("train", help="train a model: drivestack train NAME [its args] (NAME --help: its options)")
    p.add_argument("what", choices=sorted(TRAINERS))
    p = sub.add_parser("bench", help="run a benchmark: drivestack bench NAME [its args] (NAME --help: its options)",
                       epilog="benchmarks: " + (", ".join(bench_names()) or "none (bench/ is missing)"))
    p.add_argument("name", help="benchmark name")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except BrokenPipeError:  # the reader went away (`drivestack topic list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return 0
    except KeyboardInterrupt:
        return 130


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    command = argv[0] if argv else ""
    # the rest of the line belongs to the tool, --help included
    if command in TOOLS:
        return tool(command, argv[1:])
    if command in ("train", "bench") and len(argv) > 1 and not argv[1].startswith("-"):
        if command == "train":
            parser.parse_args(argv[:2])  # an unknown trainer: the usual error with the choices
            return train(argv[1], argv[2:])
        return bench(argv[1], argv[2:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
