"""README claims about the whole stack through real processes: the multi-process stack with the CNN detector and
the DQN planner publishes the same bytes as the same nodes in one process; `launch full_stack.yaml foxglove:=true`
serves the running stack to Foxglove on ws://127.0.0.1:8765."""

from __future__ import annotations

import json
import signal
import socket
import struct
import time

import pytest

from msgs import encode_body
from nodes.runtime.launchfile import load_plan
from nodes.runtime.local import LocalStack
from nodes.runtime.mcap_io import read_records
from tests.conftest import popen_launch, recorded_bodies, run_launch

ARGS = {"episodes": 2, "duration": 2.0, "vehicles": 10, "seed": 4242}  # 2 x 31 ticks, two replans each at 1 Hz


@pytest.mark.slow
def test_the_full_stack_with_the_cnn_publishes_the_same_bytes_in_one_process(workdir):
    """Parity of the whole stack as shipped (camera, CNN detector on its default backend, DQN planner, decision,
    control), across an episode boundary; tests/test_stack_processes.py has it for sim + scripted + control."""
    res = run_launch("full_stack.yaml", *(f"{k}:={v}" for k, v in ARGS.items()), cwd=workdir, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (rec,) = list(workdir.glob("runs/*/recording.mcap"))
    recorded = recorded_bodies(rec)
    plan = load_plan("full_stack.yaml", {**ARGS, "record": False})
    assert plan.node("perception").params.mode == "cnn"
    stack = LocalStack.from_plan(plan)
    local: dict[str, list[bytes]] = {}
    stack.observers.append(lambda topic, msg: local.setdefault(topic, []).append(encode_body(msg)))
    stack.run()
    assert set(local) == set(recorded) == {"/sim/camera", "/sim/ego", "/sim/objects_gt", "/sim/episode",
                                            "/perception/objects", "/planning/plan", "/decision/target",
                                            "/control/cmd"}
    assert len(recorded["/sim/ego"]) == 62
    seen = [r.decode() for r in read_records(rec, {"/perception/objects"})]
    assert sum(len(o.objects) for o in seen) > len(seen)  # the CNN saw vehicles: the bytes are not all empty lists
    for topic in local:
        assert local[topic] == recorded[topic], topic


FOXGLOVE_PORT = 8765  # the live view's port in full_stack.yaml (README: ws://127.0.0.1:8765)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_foxglove_true_serves_the_running_stack(workdir):
    pytest.importorskip("foxglove", reason="foxglove-sdk is not installed (pip install foxglove-sdk)")
    ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")
    from tests.viewer.test_foxglove_node import EXPECTED, MESSAGE_DATA, SUBPROTOCOLS

    if not _port_free(FOXGLOVE_PORT):
        pytest.skip(f"another program holds 127.0.0.1:{FOXGLOVE_PORT}, the port full_stack.yaml serves Foxglove on")
    # 1000 episodes: the stack must still be driving at the SIGINT below. Lockstep runs as fast as the machine
    # allows: one 60 s episode (900 ticks) was over in seconds, before this test had read its three ticks on a
    # loaded machine, and the launcher then exited 0 instead of being interrupted.
    proc = popen_launch("full_stack.yaml", "foxglove:=true", "perception:=gt", "vehicles:=5", "episodes:=1000",
                        "duration:=60", "record:=false", cwd=workdir)
    try:
        deadline = time.monotonic() + 90  # the stack's start-up, far beyond it even on a loaded machine
        ws = None
        while ws is None:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                ws = ws_client.connect(f"ws://127.0.0.1:{FOXGLOVE_PORT}", subprotocols=SUBPROTOCOLS, open_timeout=5)
            except OSError:
                assert time.monotonic() < deadline, "nothing served on the Foxglove port"
                time.sleep(0.2)
        with ws:
            channels: dict[str, dict] = {}
            while not set(EXPECTED) <= set(channels):
                msg = json.loads(ws.recv(timeout=30))
                if msg["op"] == "advertise":
                    channels.update({c["topic"]: c for c in msg["channels"]})
            assert {topic: c["schemaName"] for topic, c in channels.items()} == EXPECTED
            ego = channels["/foxglove/sim/ego/state"]
            ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 1, "channelId": ego["id"]}]}))
            ticks: list[int] = []
            while len(ticks) < 3:  # the running sim's ego, tick after tick
                frame = ws.recv(timeout=30)
                if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
                    sub, _log_time = struct.unpack_from("<IQ", frame, 1)
                    assert sub == 1
                    ticks.append(json.loads(frame[13:])["header"]["tick"])
            assert ticks == sorted(ticks) and ticks[-1] > ticks[0]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert _port_free(FOXGLOVE_PORT)  # the live view let go of its port with the stack


def test_the_stack_files_serve_foxglove_on_the_readme_s_port():
    plan = load_plan("full_stack.yaml", {"foxglove": True})
    assert plan.node("foxglove").params.port == FOXGLOVE_PORT
    assert plan.node("foxglove").params.host == "127.0.0.1"
