"""Faults through real processes: garbage at every subscriber, Ctrl-C during start-up."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
import zmq

from msgs import TOPICS, ControlCommand, EgoState, encode
from nodes.runtime.node import make_params
from nodes.runtime.spec import InputSpec, NodeSpec, OutputSpec, load_node_class
from tests.conftest import _env, pid_alive, popen_launch

GARBAGE = 10_000
NODES = {  # module -> params (small worlds)
    "nodes.demo.echo": {},
    "nodes.control.node": {},
    "nodes.sim.node": {"vehicles_count": 3, "episodes": 1},
    "nodes.recorder.node": {"topics": ["/sim/ego", "/control/cmd"]},
}


def _garbage(topic: str, rng: np.random.Generator) -> list[list[bytes]]:
    """Random, truncated, wrongly typed, oversize and NaN-carrying messages for `topic`."""
    valid = {
        "/sim/ego": encode("/sim/ego", EgoState(x=1.0, y=4.0, heading=0.0, speed=20.0, vx=20.0, vy=0.0,
                                                lane_index=1, lateral_offset=0.0)),
        "/control/cmd": encode("/control/cmd", ControlCommand(acceleration=0.1, steering=0.0)),
    }
    own = valid.get(topic) or encode(topic, _sample(topic))
    other = valid["/control/cmd"] if topic != "/control/cmd" else valid["/sim/ego"]
    out = []
    for i in range(GARBAGE):
        kind = i % 5
        if kind == 0:
            out.append([topic.encode(), rng.bytes(int(rng.integers(0, 300)))])
        elif kind == 1:
            body = bytes(own[1])
            out.append([topic.encode(), body[: int(rng.integers(0, len(body)))]])
        elif kind == 2:
            out.append([topic.encode(), bytes(other[1])])  # another topic's type
        elif kind == 3:
            out.append([topic.encode(), *[bytes(f) for f in own[1:]], b"extra"] if i % 2 else
                       [topic.encode(), b"\x80" * (1 << 21 if i % 1000 == 8 else 3)])
        else:
            data = msgspec.msgpack.decode(bytes(own[1]))
            key = next(k for k, v in data.items() if isinstance(v, float))
            data[key] = math.nan if i % 2 else -math.inf
            out.append([topic.encode(), msgspec.msgpack.encode(data), *[bytes(f) for f in own[2:]]])
    return out


def _sample(topic: str):
    from tests.msgs.test_messages import SAMPLES

    return SAMPLES[topic]


def _spawn(tmp: Path, module: str, params: dict):
    node_cls = load_node_class(module)
    p = make_params(node_cls, params)
    ctx = zmq.Context()
    raws, inputs = {}, {}
    for port, topic in node_cls.input_ports(p).items():
        ep = f"ipc://{tmp}/in-{port.strip('/').replace('/', '.')}"
        if topic not in raws:
            raws[topic] = ctx.socket(zmq.XPUB)
            raws[topic].setsockopt(zmq.SNDHWM, 0)  # queue everything: the count must be exact
            raws[topic].bind(ep)
        inputs[port] = InputSpec(topic=topic, type=TOPICS[topic].type.__name__, endpoints=[ep])
    outputs = {port: OutputSpec(topic=t, type=TOPICS[t].type.__name__, endpoint=f"ipc://{tmp}/out-{port}")
               for port, t in node_cls.output_ports(p).items()}
    diag_ep = f"ipc://{tmp}/diag"
    spec = NodeSpec(name="victim", module=module, params=params, inputs=inputs, outputs=outputs,
                    diagnostics=OutputSpec(topic="/diagnostics", type="Diagnostics", endpoint=diag_ep, subscribers=1))
    spec_path = tmp / "spec.json"
    spec_path.write_bytes(msgspec.json.encode(spec))
    diag = ctx.socket(zmq.SUB)
    diag.setsockopt(zmq.SUBSCRIBE, b"/diagnostics")
    diag.connect(diag_ep)
    proc = subprocess.Popen([sys.executable, "-m", "nodes.runtime.runner", "--spec", str(spec_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(None),
                            cwd=tmp)
    for sock in raws.values():
        assert sock.poll(30_000), "the node never subscribed"
        sock.recv()
    return ctx, proc, raws, diag


@pytest.mark.parametrize("module", sorted(NODES))
def test_garbage_at_every_subscriber_is_rejected_and_counted(tmp_path, module):
    ctx, proc, raws, diag = _spawn(tmp_path, module, NODES[module])
    try:
        rng = np.random.default_rng(0)
        sent = 0
        for topic, sock in raws.items():
            for frames in _garbage(topic, rng):
                sock.send_multipart(frames)
                sent += 1
        deadline = time.monotonic() + 60
        counters = {}
        while time.monotonic() < deadline:
            if diag.poll(500):
                beat = msgspec.msgpack.decode(diag.recv_multipart()[1])
                counters = beat["counters"]
                if counters.get("rejected_messages", 0) >= sent:
                    break
        assert proc.poll() is None, proc.stdout.read()
        assert counters["rejected_messages"] == sent
        for reason in ("bad_body", "non_finite", "oversize"):
            assert counters.get(f"rejected_{reason}", 0) > 0, counters
        assert counters.get("non_finite_cmd", 0) == 0  # NaN/inf never reached the sim
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        ctx.destroy(linger=0)


def _descendants_of_namespace(ns: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if ns in cmd and pid_alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("delay_s", [0.3, 1.5])
def test_ctrl_c_during_start_up_leaves_no_orphan(workdir, delay_s):
    proc = popen_launch("full_stack.yaml", "vehicles:=3", cwd=workdir)
    try:
        deadline = time.monotonic() + 30
        while not list((workdir / "runs").glob("*/launch.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        ns = json.loads(next((workdir / "runs").glob("*/launch.json")).read_text())["namespace_dir"]
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        # the launcher SIGKILLs a node still running 3 s (GRACE_S, its own clock) after Ctrl-C, so it always
        # ends by itself; 120 s only bounds a hang, with room for a loaded machine
        out, _ = proc.communicate(timeout=120)
        time.sleep(0.2)
        assert _descendants_of_namespace(ns) == [], out
        assert proc.returncode == 130, out
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
