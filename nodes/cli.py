"""`drivestack <command>`: topic tools, training, benchmarks (and, as they land, evaluate/replay/record)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgspec
import zmq

from msgs import DecodeError, Image, decode
from nodes.runtime.bus import RuntimeDirError, ipc_root

# subcommands whose module has main(argv)
TOOLS = {"golden": "nodes.recorder.golden", "evaluate": "sim.evaluate", "video": "nodes.viewer.video"}
TRAINERS = {"perception": "nodes.perception.train", "planner": "nodes.planning.train"}


def _graph(run: str | None) -> dict[str, Any]:
    try:
        base = Path(run) if run else Path(ipc_root()) / "latest"
    except RuntimeDirError as exc:
        raise SystemExit(f"drivestack: {exc}") from None
    path = base / "graph.json" if base.is_dir() else base
    if not path.is_file():
        raise SystemExit(f"drivestack: no running stack found at {base} (start one with `launch FILE.yaml`, "
                         "or pass --run NAMESPACE_DIR from its runs/<stamp>/launch.json)")
    return json.loads(path.read_text())


def _alive(graph: dict[str, Any]) -> bool:
    try:
        os.kill(int(graph["pid"]), 0)
        return True
    except (OSError, KeyError, ValueError):
        return False


def topic_list(args: argparse.Namespace) -> int:
    graph = _graph(args.run)
    if not _alive(graph):
        print(f"(the stack of {graph.get('launch_file')} is no longer running)")
    subs: dict[str, list[str]] = {}
    for name, node in graph["nodes"].items():
        for topic in node["inputs"].values():
            subs.setdefault(topic, []).append(name)
    for topic in sorted(graph["endpoints"]):
        pubs = ", ".join(sorted(graph["endpoints"][topic]))
        print(f"{topic:<22} {graph['types'][topic]:<15} pub: {pubs:<30} sub: {', '.join(subs.get(topic, []))}")
    return 0


def _subscribe(graph: dict[str, Any], topic: str) -> tuple[zmq.Context, zmq.Socket]:
    if topic not in graph["endpoints"]:
        raise SystemExit(f"drivestack: no node publishes {topic}; topics: {', '.join(sorted(graph['endpoints']))}")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")  # the whole endpoint (one topic): never counted at a start-up barrier
    for endpoint in graph["endpoints"][topic].values():
        sock.connect(endpoint)
    return ctx, sock


def _printable(msg: Any) -> Any:
    data = msgspec.to_builtins(msgspec.structs.replace(msg, data=b"") if isinstance(msg, Image) else msg)
    if isinstance(msg, Image):
        data["data"] = f"<{len(msg.data)} bytes>"
    return data


def topic_echo(args: argparse.Namespace) -> int:
    graph = _graph(args.run)
    _ctx, sock = _subscribe(graph, args.topic)
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while args.count <= 0 or shown < args.count:
        if deadline and time.monotonic() > deadline:
            break
        if not sock.poll(200):
            continue
        frames = sock.recv_multipart()
        try:
            _, msg = decode(frames)
        except DecodeError as exc:
            print(f"# rejected: {exc}", file=sys.stderr)
            continue
        print(json.dumps(_printable(msg)), flush=True)
        shown += 1
    return 0 if shown else 1


def topic_hz(args: argparse.Namespace) -> int:
    graph = _graph(args.run)
    _ctx, sock = _subscribe(graph, args.topic)
    stamps: deque[float] = deque(maxlen=args.window)
    end = time.monotonic() + args.duration
    next_print = time.monotonic() + 1.0
    while time.monotonic() < end:
        if sock.poll(100):
            sock.recv_multipart()
            stamps.append(time.monotonic())
        if time.monotonic() >= next_print and len(stamps) > 1:
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            print(f"{args.topic}: {rate:.1f} Hz over {len(stamps)} messages", flush=True)
            next_print += 1.0
    return 0 if len(stamps) > 1 else 1


def replay(args: argparse.Namespace) -> int:
    from nodes.runtime.launchfile import LaunchError, load_plan
    from nodes.runtime.supervisor import Supervisor

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
    return Supervisor(plan).run()


def tool(args: argparse.Namespace, rest: list[str]) -> int:
    return int(importlib.import_module(TOOLS[args.command]).main(rest) or 0)


def train(args: argparse.Namespace, rest: list[str]) -> int:
    module = importlib.import_module(TRAINERS[args.what])
    return int(module.main(rest) or 0)


def bench(args: argparse.Namespace, rest: list[str]) -> int:
    path = Path(__file__).resolve().parents[1] / "bench" / f"{args.name}.py"
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.py"))
        raise SystemExit(f"drivestack: no benchmark {args.name!r}; available: {', '.join(names)}")
    sys.argv = [str(path), *rest]
    import runpy

    runpy.run_path(str(path), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivestack", description="Tools for a drivestack run.")
    sub = parser.add_subparsers(dest="command", required=True)

    topic = sub.add_parser("topic", help="inspect the topics of a running stack").add_subparsers(
        dest="topic_command", required=True)
    p = topic.add_parser("list", help="topics, their types, publishers and subscribers")
    p.add_argument("--run", help="namespace dir or graph.json of a stack (default: the latest launched)")
    p.set_defaults(func=topic_list)
    p = topic.add_parser("echo", help="print a topic's messages as JSON lines")
    p.add_argument("topic")
    p.add_argument("-n", "--count", type=int, default=0, help="stop after N messages (0: never)")
    p.add_argument("--timeout", type=float, default=0.0, help="[s] stop after this long (0: never)")
    p.add_argument("--run", help="namespace dir or graph.json of a stack (default: the latest launched)")
    p.set_defaults(func=topic_echo)
    p = topic.add_parser("hz", help="measure a topic's rate")
    p.add_argument("topic")
    p.add_argument("--window", type=int, default=100, help="messages in the rate window")
    p.add_argument("--duration", type=float, default=5.0, help="[s] how long to measure")
    p.add_argument("--run", help="namespace dir or graph.json of a stack (default: the latest launched)")
    p.set_defaults(func=topic_hz)

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

    p = sub.add_parser("evaluate", help="drive seeded episodes with launch files and report closed-loop metrics",
                       add_help=False)
    p.set_defaults(func=tool, passthrough=True)
    p = sub.add_parser("video", help="draw a recording's episodes (boxes, plan, mode, speed) into an mp4",
                       add_help=False)
    p.set_defaults(func=tool, passthrough=True)
    p = sub.add_parser("golden", help="per-node golden replays: check, or --refresh the reference recording",
                       add_help=False)
    p.set_defaults(func=tool, passthrough=True)

    p = sub.add_parser("train", help="train a model (arguments after the name go to its trainer; try --help)")
    p.add_argument("what", choices=sorted(TRAINERS))
    p.set_defaults(func=train, passthrough=True)
    p = sub.add_parser("bench", help="run a benchmark from bench/ (arguments go to it; try --help)")
    p.add_argument("name", help="benchmark name, e.g. transport")
    p.set_defaults(func=bench, passthrough=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return args.func(args, rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
