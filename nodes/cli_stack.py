"""Tools on a running stack, like ros2's: `topic list|echo|hz|info`, `node list`, `param list|get`.

A launch writes its graph (nodes, params, topics, endpoints, the launcher's pid) to graph.json in its namespace
directory; `<ipc root>/latest` points at the latest one. Each tool reads that file and, for messages,
subscribes to the publishers' endpoints directly. The tools that wait for messages stop, with a line saying
so, when the launcher of the stack is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgspec
import zmq

from msgs import DecodeError, Diagnostics, Image, decode
from msgs.registry import TOPICS
from nodes.runtime.bus import RuntimeDirError, ipc_root
from nodes.runtime.security import KeyFileError, secure_client

ALIVE_CHECK_S = 1.0  # [s] how often a waiting tool checks that the stack's launcher still runs


def load_graph(run: str | None) -> dict[str, Any]:
    try:
        base = Path(run) if run else Path(ipc_root()) / "latest"
    except RuntimeDirError as exc:
        raise SystemExit(f"drivestack: {exc}") from None
    path = base / "graph.json" if base.is_dir() else base
    if not path.is_file():
        raise SystemExit(f"drivestack: no running stack found at {base} (start one with `launch FILE.yaml`, "
                         "or pass --run NAMESPACE_DIR from its runs/<stamp>/launch.json)")
    return json.loads(path.read_text())


def alive(graph: dict[str, Any]) -> bool:
    """Whether the stack's launcher still runs (an exited one its parent has not reaped yet does not)."""
    try:
        pid = int(graph["pid"])
        os.kill(pid, 0)
    except (OSError, KeyError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(") ")[2][:1] != "Z"
    except OSError:
        return True  # no /proc (macOS): the signal test above is all there is


def _ended_note(graph: dict[str, Any]) -> str:
    return f"(the stack of {graph.get('launch_file')} is no longer running)"


def _subscribers(graph: dict[str, Any]) -> dict[str, list[str]]:
    subs: dict[str, list[str]] = {}
    for name, node in graph["nodes"].items():
        for topic in node["inputs"].values():
            subs.setdefault(topic, []).append(name)
    return subs


def topic_list(args: argparse.Namespace) -> int:
    graph = load_graph(args.run)
    if not alive(graph):
        print(_ended_note(graph), file=sys.stderr)
    subs = _subscribers(graph)
    for topic in sorted(graph["endpoints"]):
        pubs = ", ".join(sorted(graph["endpoints"][topic]))
        print(f"{topic:<22} {graph['types'][topic]:<15} pub: {pubs:<30} sub: {', '.join(subs.get(topic, []))}")
    return 0


def topic_info(args: argparse.Namespace) -> int:
    graph = load_graph(args.run)
    if args.topic not in graph["endpoints"]:
        raise SystemExit(f"drivestack: no node publishes {args.topic}; topics: {', '.join(sorted(graph['endpoints']))}")
    spec = TOPICS.get(args.topic)
    kind = graph["types"][args.topic]
    pubs = graph["endpoints"][args.topic]
    subs = _subscribers(graph).get(args.topic, [])
    print(f"Topic: {args.topic}")
    print(f"Type: {kind}" + (f"  ({spec.doc})" if spec else ""))
    if spec is not None:
        print("Rate: " + (f"{spec.rate_hz:g} Hz (simulated time)" if spec.rate_hz else "events") +
              (", one message per tick" if spec.per_tick else ""))
        fields = ", ".join(f"{f}" for f in spec.type.__struct_fields__)
        print(f"Fields: {fields}")
    print(f"Publisher count: {len(pubs)}")
    for node, endpoint in sorted(pubs.items()):
        print(f"  {node}  {endpoint}")
    print(f"Subscription count: {len(subs)}")
    for node in sorted(subs):
        print(f"  {node}")
    if not alive(graph):
        print(_ended_note(graph), file=sys.stderr)
    return 0


def _subscribe(graph: dict[str, Any], topic: str) -> tuple[zmq.Context, zmq.Socket]:
    if topic not in graph["endpoints"]:
        raise SystemExit(f"drivestack: no node publishes {topic}; topics: {', '.join(sorted(graph['endpoints']))}")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")  # the whole endpoint (one topic): never counted at a start-up barrier
    try:
        secure_client(sock, list(graph["endpoints"][topic].values()))  # a tcp stack: CURVE with the user's key
    except KeyFileError as exc:
        raise SystemExit(f"drivestack: {exc}") from None
    for endpoint in graph["endpoints"][topic].values():
        sock.connect(endpoint)
    return ctx, sock


class _Watch:
    """Whether the stack still runs, asked at most once per ALIVE_CHECK_S."""

    def __init__(self, graph: dict[str, Any]) -> None:
        self.graph, self.next = graph, 0.0

    def ended(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + ALIVE_CHECK_S
        return not alive(self.graph)


def _printable(msg: Any) -> Any:
    data = msgspec.to_builtins(msgspec.structs.replace(msg, data=b"") if isinstance(msg, Image) else msg)
    if isinstance(msg, Image):
        data["data"] = f"<{len(msg.data)} bytes>"
    return data


def topic_echo(args: argparse.Namespace) -> int:
    graph = load_graph(args.run)
    _ctx, sock = _subscribe(graph, args.topic)
    watch = _Watch(graph)
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while args.count <= 0 or shown < args.count:
        if deadline and time.monotonic() > deadline:
            break
        if not sock.poll(200):
            if watch.ended():
                print(_ended_note(graph), file=sys.stderr)
                break
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
    """The rate over the last `window` messages, once a second; a second without any says so instead of
    repeating the last rate, and the tool stops when the stack has ended."""
    graph = load_graph(args.run)
    _ctx, sock = _subscribe(graph, args.topic)
    watch = _Watch(graph)
    stamps: deque[float] = deque(maxlen=args.window)
    end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
    next_print = time.monotonic() + 1.0
    received = 0  # since the last line
    total = 0
    while time.monotonic() < end:
        if sock.poll(100):
            sock.recv_multipart()
            stamps.append(time.monotonic())
            received += 1
            total += 1
        if time.monotonic() < next_print:
            continue
        next_print += 1.0
        if received and len(stamps) > 1:
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            print(f"{args.topic}: {rate:.1f} Hz over {len(stamps)} messages", flush=True)
        elif watch.ended():
            print(_ended_note(graph), flush=True)
            break
        else:
            print(f"{args.topic}: no new messages", flush=True)
        received = 0
    return 0 if total > 1 else 1


def _heartbeats(graph: dict[str, Any], wait_s: float) -> dict[str, Diagnostics]:
    """The latest /diagnostics heartbeat of each node, listening for up to `wait_s`."""
    if "/diagnostics" not in graph["endpoints"] or not alive(graph):
        return {}
    _ctx, sock = _subscribe(graph, "/diagnostics")
    beats: dict[str, Diagnostics] = {}
    end = time.monotonic() + wait_s
    while time.monotonic() < end and len(beats) < len(graph["nodes"]):
        if sock.poll(100):
            try:
                _, msg = decode(sock.recv_multipart())
            except DecodeError:
                continue
            if isinstance(msg, Diagnostics):
                beats[msg.node] = msg
    return beats


def node_list(args: argparse.Namespace) -> int:
    graph = load_graph(args.run)
    running = alive(graph)
    beats = _heartbeats(graph, args.wait) if running else {}
    for name, node in graph["nodes"].items():
        beat = beats.get(name)
        state = f"{beat.status:<9} pid {beat.pid}" if beat else ("no heartbeat" if running else "ended")
        print(f"{name:<14} {node['module']:<32} {state}")
    if not running:
        print(_ended_note(graph), file=sys.stderr)
    return 0


def _node_params(graph: dict[str, Any], node: str) -> msgspec.Struct:
    from nodes.runtime.node import make_params
    from nodes.runtime.spec import load_node_class

    if node not in graph["nodes"]:
        raise SystemExit(f"drivestack: no node {node!r} in this stack; nodes: {', '.join(graph['nodes'])}")
    entry = graph["nodes"][node]
    node_cls = load_node_class(entry["module"])
    return make_params(node_cls, entry["params"])


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def param_list(args: argparse.Namespace) -> int:
    params = msgspec.to_builtins(_node_params(load_graph(args.run), args.node))
    for name, value in _flatten(params).items():
        print(f"{name}: {json.dumps(value)}")
    return 0


def param_get(args: argparse.Namespace) -> int:
    """A param's value in effect (the launch file's value, else the node's default); dotted for nested ones."""
    params = msgspec.to_builtins(_node_params(load_graph(args.run), args.node))
    flat = _flatten(params)
    value: Any = params
    for part in args.name.split("."):
        if not isinstance(value, dict) or part not in value:
            from nodes.runtime.launchfile import did_you_mean

            names = sorted(set(flat) | set(params))
            raise SystemExit(f"drivestack: node {args.node!r} has no param {args.name!r}"
                             f"{did_you_mean(args.name, names)}; its params: {', '.join(sorted(flat))}")
        value = value[part]
    print(json.dumps(value) if not isinstance(value, str) else value)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    run_help = "namespace dir or graph.json of a stack (default: the latest launched)"
    topic = sub.add_parser("topic", help="inspect the topics of a running stack").add_subparsers(
        dest="topic_command", required=True)
    p = topic.add_parser("list", help="topics, their types, publishers and subscribers")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=topic_list)
    p = topic.add_parser("info", help="a topic's type, rate, fields, publishers and subscribers")
    p.add_argument("topic")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=topic_info)
    p = topic.add_parser("echo", help="print a topic's messages as JSON lines")
    p.add_argument("topic")
    p.add_argument("-n", "--count", type=int, default=0, help="stop after N messages (0: never)")
    p.add_argument("--timeout", type=float, default=0.0, help="[s] stop after this long (0: never)")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=topic_echo)
    p = topic.add_parser("hz", help="measure a topic's rate")
    p.add_argument("topic")
    p.add_argument("--window", type=int, default=100, help="messages in the rate window")
    p.add_argument("--duration", type=float, default=5.0, help="[s] how long to measure (0: until the stack ends)")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=topic_hz)

    node = sub.add_parser("node", help="the nodes of a running stack").add_subparsers(
        dest="node_command", required=True)
    p = node.add_parser("list", help="each node's name, module, status and pid (from its heartbeat)")
    p.add_argument("--wait", type=float, default=1.5, help="[s] how long to listen for heartbeats")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=node_list)

    param = sub.add_parser("param", help="the params a running node was started with").add_subparsers(
        dest="param_command", required=True)
    p = param.add_parser("list", help="every param of a node with its value (defaults included)")
    p.add_argument("node")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=param_list)
    p = param.add_parser("get", help="one param's value (nested ones dotted: pid.kp_speed)")
    p.add_argument("node")
    p.add_argument("name")
    p.add_argument("--run", help=run_help)
    p.set_defaults(func=param_get)
