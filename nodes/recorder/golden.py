"""Per-node golden replays: feed one node the recorded inputs of a run and compare what it publishes with
what was recorded (openpilot's process replay, for drivestack).

The node is rebuilt from the module and params stored in the recording's metadata, driven by the same
lockstep scheduling as in the stack, and its outputs are compared byte for byte (or, for a node whose
arithmetic may differ across machines, field by field within a tolerance).

    drivestack golden            # check every node of the golden recording
    drivestack golden --refresh  # re-record it after an intended change of behaviour
    drivestack golden --dir DIR  # the same with DIR/golden_stack.yaml and DIR/golden_stack.mcap

The golden folder is a parameter (`--dir`, `golden_paths(folder)`); its default, nodes.share.golden_dir(), is
tests/golden/ of the checkout (or its copy in an installed wheel). Nothing here reads it unless asked to.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from msgs import Message, encode_body
from nodes.runtime.local import LocalNode, LocalStack
from nodes.runtime.mcap_io import read_metadata, read_records
from nodes.runtime.node import make_params
from nodes.runtime.spec import load_node_class
from nodes.share import golden_dir

LAUNCH_NAME = "golden_stack.yaml"  # the golden stack, in the golden folder
RECORDING_NAME = "golden_stack.mcap"  # its reference recording, beside it


def golden_paths(folder: str | Path | None = None) -> tuple[Path, Path]:
    """(launch file, recording) of the golden folder `folder`; None: nodes.share.golden_dir(), the checkout's."""
    folder = golden_dir() if folder is None else Path(folder)
    return folder / LAUNCH_NAME, folder / RECORDING_NAME


GOLDEN_LAUNCH, GOLDEN_FILE = golden_paths()  # the defaults, for the tests and tools that check the shipped one
# Node modules that moved since a recording was made: its launch metadata names the module of its day.
MOVED_MODULES = {"sim.node": "nodes.sim.node", "sim.carla_node": "nodes.sim.carla_node"}


def with_moved_modules(launch_text: str) -> str:
    """A recorded launch file's text with its moved node modules renamed (`module: sim.node` -> nodes.sim.node)."""
    for old, new in MOVED_MODULES.items():
        launch_text = re.sub(rf"(\bmodule:\s*){re.escape(old)}\b", rf"\g<1>{new}", launch_text)
    return launch_text


@dataclass
class NodeReplay:
    node: str
    produced: dict[str, list[Message]] = field(default_factory=dict)
    recorded: dict[str, list[Message]] = field(default_factory=dict)

    def mismatches(self, tolerance: float = 0.0) -> list[str]:
        """Human-readable differences; empty when the node reproduced its recorded outputs."""
        problems = []
        for topic in sorted(set(self.produced) | set(self.recorded)):
            got, want = self.produced.get(topic, []), self.recorded.get(topic, [])
            if len(got) != len(want):
                problems.append(f"{topic}: {len(got)} messages, recorded {len(want)}")
                continue
            for a, b in zip(got, want, strict=True):
                if tolerance == 0.0:
                    if encode_body(a) != encode_body(b):
                        problems.append(f"{topic} tick {b.header.tick}: {_first_difference(a, b)}")
                        break
                elif not _close(msgspec.to_builtins(a), msgspec.to_builtins(b), tolerance):
                    problems.append(f"{topic} tick {b.header.tick}: {_first_difference(a, b)}")
                    break
        return problems


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=tol)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def _first_difference(a: Message, b: Message) -> str:
    da, db = msgspec.to_builtins(a), msgspec.to_builtins(b)
    for key in da:
        if da[key] != db.get(key):
            return f"{key}: produced {str(da[key])[:80]}, recorded {str(db.get(key))[:80]}"
    return "encodings differ"


def replay_node(recording: str | Path, node_name: str) -> NodeReplay:
    """Rebuild `node_name` from the recording's launch metadata and feed it its recorded inputs."""
    meta = read_metadata(recording)
    if "launch" not in meta:
        raise ValueError(f"{recording} has no launch metadata (was it written by the recorder node?)")
    nodes = json.loads(meta["launch"]["resolved"])["nodes"]
    if node_name not in nodes:
        raise ValueError(f"{recording}: no node {node_name!r}; recorded nodes: {sorted(nodes)}")
    entry = nodes[node_name]
    node_cls = load_node_class(MOVED_MODULES.get(entry["module"], entry["module"]))
    node = node_cls(make_params(node_cls, entry["params"]))
    inputs, outputs = dict(entry["inputs"]), dict(entry["outputs"])
    local = LocalNode(node_name, node, inputs, outputs)
    stack = LocalStack([local])
    result = NodeReplay(node_name)
    for port, produced in node.start():  # a source (the sim) publishes its first tick unprompted
        result.produced.setdefault(outputs[port], []).append(produced)
    out_topics = set(outputs.values())
    in_topics = set(inputs.values())
    for rec in read_records(recording, in_topics | out_topics):
        msg = rec.decode()
        if rec.topic in out_topics:
            result.recorded.setdefault(rec.topic, []).append(msg)
        if rec.topic in in_topics:
            for topic, produced in stack.feed(rec.topic, msg):
                result.produced.setdefault(topic, []).append(produced)
    node.close()
    return result


def refresh(launch_file: Path = GOLDEN_LAUNCH, out: Path = GOLDEN_FILE) -> Path:
    """Run the golden stack through real processes and keep its recording as the new reference."""
    import tempfile

    from nodes.runtime.launchfile import load_plan
    from nodes.runtime.supervisor import Supervisor
    from nodes.viewer.console import DrivingConsole

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        plan = load_plan(launch_file)
        code = Supervisor(plan, run_dir=run_dir, observers=[DrivingConsole.for_plan(plan)]).run()
        if code != 0:
            raise RuntimeError(f"the golden stack failed (exit {code})")
        shutil.copyfile(run_dir / "recording.mcap", out)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="drivestack golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refresh", action="store_true", help="re-record the golden file from the golden stack")
    parser.add_argument("--dir", type=Path, default=None, metavar="DIR",
                        help=f"the golden folder, holding {LAUNCH_NAME} and {RECORDING_NAME} (default: "
                        "tests/golden of the checkout)")
    parser.add_argument("--file", type=Path, default=None,
                        help=f"the golden recording (default: {RECORDING_NAME} in the golden folder)")
    args = parser.parse_args(argv)
    launch_file, default_file = golden_paths(args.dir)
    args.file = args.file or default_file
    if args.refresh:
        from nodes.share import is_checkout

        if not is_checkout() and args.file == GOLDEN_FILE:
            print("drivestack golden: --refresh rewrites tests/golden/ of a source checkout; this is an installed "
                  "copy (give --dir DIR or --file PATH to record elsewhere)", file=sys.stderr)
            return 2
        print(f"golden recording written to {refresh(launch_file, out=args.file)}")
    if not args.file.is_file():
        print(f"drivestack golden: no golden recording at {args.file} (--dir DIR: the folder holding "
              f"{RECORDING_NAME}; --refresh records it)", file=sys.stderr)
        return 2
    nodes = json.loads(read_metadata(args.file)["launch"]["resolved"])["nodes"]
    failed = 0
    for name, entry in nodes.items():
        if not entry["outputs"]:
            continue
        problems = replay_node(args.file, name).mismatches()
        failed += bool(problems)
        print(f"{name:<16} {'OK' if not problems else 'DIFFERS: ' + '; '.join(problems)}")
    return 1 if failed else 0
