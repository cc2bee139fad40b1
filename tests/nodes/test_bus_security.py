"""Nobody in: tcp endpoints are CURVE-authenticated, sockets have frame limits and bounded queues.

The intruder in these tests is a process of its own with real ZeroMQ sockets that does not hold the user's bus
key (the file `launch` makes, mode 0600): it takes the port of a split stack's missing half, or connects to a
publisher and pushes data at it.
"""

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import msgspec
import pytest
import zmq

from msgs import ControlCommand, Header
from nodes.runtime.bus import LOCKSTEP_HWM, Publisher, Subscriber
from nodes.runtime.graph import build_specs
from nodes.runtime.launchfile import load_plan
from tests.conftest import ROOT, _env, popen_launch

DATA = Path(__file__).parents[1] / "data"
INTRUDER = textwrap.dedent("""
    import sys, time, zmq
    from msgs import ControlCommand, EpisodeEvent, Header, encode
    endpoint, topic, curve = sys.argv[1], sys.argv[2], sys.argv[3] == "curve"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    if curve:  # a CURVE server with a key pair of its own
        public, secret = zmq.curve_keypair()
        sock.curve_server, sock.curve_secretkey, sock.curve_publickey = True, secret, public
    sock.bind(endpoint)
    end = time.monotonic() + float(sys.argv[4])
    tick = 0
    while time.monotonic() < end:
        if topic == "/sim/episode":
            msg = EpisodeEvent(header=Header(tick=tick), kind="end", reason="time_limit", last=True)
        else:
            msg = ControlCommand(header=Header(tick=tick), acceleration=1.0, steering=1.0)  # off the road
        sock.send_multipart(encode(topic, msg))
        tick += 1
        time.sleep(0.01)
    print("sent", tick, flush=True)
""")


def _endpoint(file: Path, base_port: int, topic: str, node: str) -> str:
    plan = load_plan(file, {"base_port": base_port})
    _, graph = build_specs(plan, "/unused", Path("."), {})
    return graph.endpoints[topic][node]


def _intrude(endpoint: str, topic: str, curve: bool, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", INTRUDER, endpoint, topic, "curve" if curve else "plain",
                             str(seconds)], cwd=ROOT, env=_env(None), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "own-curve-key"])
def test_a_forged_end_of_run_does_not_stop_the_other_half(tmp_path, curve):
    """The half without the sim listens for the sim's last episode end; an intruder on the sim's port says it."""
    port = 7900 + 20 * curve
    second = popen_launch(str(DATA / "lane_change.yaml"), f"base_port:={port}", "--only", "scripted_target,control",
                          cwd=tmp_path)
    intruder = _intrude(_endpoint(DATA / "lane_change.yaml", port, "/sim/episode", "sim"), "/sim/episode", curve, 6)
    try:
        assert "sent" in intruder.communicate(timeout=60)[0]
        assert second.poll() is None, second.communicate()[0]  # not stopped by the forged end
        second.send_signal(signal.SIGINT)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 130, out
        assert "finished its last episode" not in out
    finally:
        for proc in (second, intruder):
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "own-curve-key"])
def test_an_intruder_on_the_missing_half_cannot_steer(tmp_path, curve):
    """The sim's half is up; an intruder takes the port of control's /control/cmd and sends steering."""
    port = 7940 + 20 * curve
    first = popen_launch(str(DATA / "lane_change.yaml"), f"base_port:={port}", "--only", "sim,recorder",
                         cwd=tmp_path)
    intruder = _intrude(_endpoint(DATA / "lane_change.yaml", port, "/control/cmd", "control"), "/control/cmd",
                        curve, 8)
    try:
        assert "sent" in intruder.communicate(timeout=60)[0]
        assert first.poll() is None
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=30)
    finally:
        for proc in (first, intruder):
            if proc.poll() is None:
                proc.kill()
    assert first.returncode == 130, out
    assert "all nodes ready" not in out  # the sim never got a command, so it never stepped
    from nodes.runtime.mcap_io import read_records

    recorded = [r.topic for rec in tmp_path.glob("runs/*/recording.mcap") for r in read_records(rec)]
    assert "/control/cmd" not in recorded


def test_a_leaked_public_key_is_not_enough_to_listen(tmp_path):
    """A client that knows the stack's public key but holds another key pair is refused by the ZAP handler."""
    from nodes.runtime.security import default_key_path, load_keys

    first = popen_launch(str(DATA / "lane_change.yaml"), "base_port:=7990", "--only", "sim,recorder", cwd=tmp_path)
    ctx = zmq.Context()
    try:
        ego = _endpoint(DATA / "lane_change.yaml", 7990, "/sim/ego", "sim")
        deadline = time.monotonic() + 30
        while not default_key_path().exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        public, _ = load_keys(default_key_path())
        _wait_listening(ego)
        sock = ctx.socket(zmq.SUB)
        own_public, own_secret = zmq.curve_keypair()
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = public, own_public, own_secret
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(ego)
        assert not sock.poll(5000)  # nothing comes through
        first.send_signal(signal.SIGINT)
        out, _ = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        ctx.destroy(linger=0)
    assert "refused a tcp connection whose CURVE key is not this stack's bus key" in out, out


def _wait_listening(endpoint: str, timeout_s: float = 60.0) -> None:
    import socket

    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {endpoint}")


def test_the_bus_key_is_private_and_a_readable_one_is_refused(tmp_path):
    key = tmp_path / "conf" / "bus.key"
    env = {"DRIVESTACK_BUS_KEY": str(key)}
    proc = popen_launch(str(DATA / "lane_change.yaml"), "base_port:=7980", "record:=false", cwd=tmp_path, env=env)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out  # a whole run over tcp with a key made on the spot
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert key.stat().st_uid == os.getuid()
    os.chmod(key, 0o644)
    proc = popen_launch(str(DATA / "lane_change.yaml"), "base_port:=7980", cwd=tmp_path, env=env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "has mode 0644: others may read it" in out, out
    assert len(list(tmp_path.glob("runs/*"))) == 1  # refused before a run directory was made


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_data_pushed_at_a_publisher_is_bounded_and_counted(tmp_path):
    """A foreign XSUB connected to a node's publisher pushes big and small frames: dropped, counted, RSS flat."""
    from tests.nodes.test_faults import _spawn

    ctx, proc, raws, diag = _spawn(tmp_path, "nodes.control.node", {})
    intruder = zmq.Context()
    try:
        push = intruder.socket(zmq.XSUB)
        push.setsockopt(zmq.SNDHWM, 0)
        push.connect(f"ipc://{tmp_path}/out-cmd")
        time.sleep(0.5)
        rss0 = _rss_kib(proc.pid)
        big, small = b"\x02" + os.urandom(1 << 20), b"\x02garbage"
        for i in range(1500):  # 1.5 GB of big frames if they were all kept
            push.send(big if i % 3 else small)
        deadline, counters = time.monotonic() + 30, {}
        while time.monotonic() < deadline and counters.get("rejected_foreign_frames", 0) == 0:
            if diag.poll(500):
                counters = msgspec.msgpack.decode(diag.recv_multipart()[1])["counters"]
        assert counters.get("rejected_foreign_frames", 0) > 0, counters
        assert proc.poll() is None
        assert _rss_kib(proc.pid) - rss0 < 100 * 1024  # [KiB] bounded: not the 1.5 GB pushed
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        intruder.destroy(linger=0)
        ctx.destroy(linger=0)


def test_a_lockstep_writer_is_held_back_by_a_full_queue_and_loses_nothing(tmp_path):
    ctx = zmq.Context()
    stop = threading.Event()
    endpoint = f"ipc://{tmp_path}/cmd"
    pub = Publisher(ctx, endpoint, "/control/cmd", ControlCommand, lockstep=True, stop=stop.is_set)
    sub = Subscriber(ctx, lockstep=True)
    sub.add("/control/cmd", ControlCommand, [endpoint])
    assert pub.wait_for_subscribers(1, timeout_s=5.0)

    def write() -> None:
        for tick in range(10 * LOCKSTEP_HWM):
            pub.publish(ControlCommand(header=Header(tick=tick), acceleration=0.0, steering=0.0))
            if pub.unsent:
                return

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(2.0)  # the reader reads nothing meanwhile
    stop.set()
    writer.join(timeout=10)
    assert not writer.is_alive()
    # held back, not queued without end: both ends' queues (2 x HWM) and what the kernel's socket buffer holds
    assert pub.unsent == 1 and LOCKSTEP_HWM <= pub.sent <= 4 * LOCKSTEP_HWM
    got = []
    while (item := sub.recv(200)) is not None:
        got.append(item[1].header.tick)
    assert got == list(range(pub.sent))  # everything it sent arrives, in order, none dropped
    ctx.destroy(linger=0)
