"""A finite but absurd /sim/ego (a speed of 1e308 m/s, a negative lane width, positions of 1e308 m) sent
through real sockets into a stack of real node processes (perception, planning, decision, control): every
tick is answered with a finite command, and every node keeps running."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import zmq

from msgs import TOPICS, EgoState, Header, Object, ObjectArray, decode, encode
from nodes.runtime.spec import InputSpec, NodeSpec, OutputSpec
from tests.conftest import _env

NS_PER_TICK = 66_666_667
NODES = {  # name -> (module, params, {port: input topic}, {port: output topic})
    "perception": ("nodes.perception.node", {"mode": "gt"},
                   {"objects": "/sim/objects_gt", "ego": "/sim/ego"}, {"objects": "/perception/objects"}),
    "planning": ("nodes.planning.node", {"plan_rate_hz": 15.0},  # a replan every tick: each absurd ego is observed
                 {"objects": "/perception/objects", "ego": "/sim/ego"}, {"plan": "/planning/plan"}),
    "decision": ("nodes.decision.node", {}, {"plan": "/planning/plan", "objects": "/perception/objects",
                                             "ego": "/sim/ego"}, {"target": "/decision/target"}),
    "control": ("nodes.control.node", {}, {"target": "/decision/target", "ego": "/sim/ego"}, {"cmd": "/control/cmd"}),
}


def _ego(tick: int, **absurd: float) -> EgoState:
    speed = 25.0
    fields = dict(header=Header(tick=tick, stamp_ns=tick * NS_PER_TICK), x=tick * speed / 15.0, y=4.0, heading=0.0,
                  speed=speed, vx=speed, vy=0.0, lane_index=1, lateral_offset=0.0)
    return EgoState(**(fields | absurd))


ABSURD = {  # tick -> the absurd fields of that tick's ego
    5: {"speed": 1e308},
    6: {"lane_width": -4.0},
    7: {"speed": 1e308, "vx": -1e308, "vy": 1e308, "x": 1e308, "y": -1e308, "heading": 1e308,
        "lateral_offset": 1e308, "lane_width": 5e-324, "length": -1e308, "width": 1e308, "lanes_count": 0},
    8: {"speed": -1e308, "lane_index": 2**62, "lanes_count": 2**62, "lane_width": 1e308},
}


def _objects(tick: int) -> ObjectArray:
    near = Object(id=1, x=30.0, y=0.0, vx=-2.0, vy=0.0, world_x=0.0, world_y=4.0, speed=23.0, lane_index=1)
    far = Object(id=2, x=1e308 if tick in ABSURD else 60.0, y=-1e308 if tick in ABSURD else 4.0,
                 vx=1e308 if tick in ABSURD else 0.0, vy=0.0, length=1e308 if tick in ABSURD else 5.0)
    return ObjectArray(header=Header(tick=tick, stamp_ns=tick * NS_PER_TICK), objects=[near, far])


def _spawn(tmp: Path, name: str, endpoints: dict[str, str], subscribers: dict[str, int]) -> subprocess.Popen:
    module, params, inputs, outputs = NODES[name]
    spec = NodeSpec(
        name=name, module=module, params=params,
        inputs={p: InputSpec(topic=t, type=TOPICS[t].type.__name__, endpoints=[endpoints[t]])
                for p, t in inputs.items()},
        outputs={p: OutputSpec(topic=t, type=TOPICS[t].type.__name__, endpoint=endpoints[t], subscribers=subscribers[t])
                 for p, t in outputs.items()},
    )
    path = tmp / f"{name}.json"
    path.write_bytes(msgspec.json.encode(spec))
    return subprocess.Popen([sys.executable, "-m", "nodes.runtime.runner", "--spec", str(path)], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(None))


def test_absurd_ego_states_leave_the_stack_running_with_finite_commands(tmp_path):
    topics = {t for *_, ins, outs in NODES.values() for t in (*ins.values(), *outs.values())}
    endpoints = {t: f"ipc://{tmp_path}/{t.strip('/').replace('/', '.')}" for t in topics}
    subscribers = {t: sum(t in ins.values() for *_, ins, _ in NODES.values()) for t in topics}
    subscribers["/control/cmd"] = 1  # this test
    ctx = zmq.Context()
    sim = {}
    for topic in ("/sim/ego", "/sim/objects_gt"):
        sim[topic] = ctx.socket(zmq.XPUB)
        sim[topic].setsockopt(zmq.SNDHWM, 0)
        sim[topic].setsockopt(zmq.XPUB_VERBOSE, 1)  # every node's subscription, not only the first
        sim[topic].bind(endpoints[topic])
    cmd_sub = ctx.socket(zmq.SUB)
    cmd_sub.setsockopt(zmq.SUBSCRIBE, b"/control/cmd")
    cmd_sub.connect(endpoints["/control/cmd"])
    procs = {name: _spawn(tmp_path, name, endpoints, subscribers) for name in NODES}
    try:
        for topic, sock in sim.items():  # every node that reads the topic has subscribed
            joined = 0
            while joined < subscribers[topic]:  # a SUB socket sends all its topics down every connection
                assert sock.poll(120_000), f"a node never subscribed to {topic}"
                joined += sock.recv() == b"\x01" + topic.encode()
        commands = {}
        for tick in range(14):
            sim["/sim/objects_gt"].send_multipart(encode("/sim/objects_gt", _objects(tick)))
            sim["/sim/ego"].send_multipart(encode("/sim/ego", _ego(tick, **ABSURD.get(tick, {}))))
            if not cmd_sub.poll(60_000):
                for proc in procs.values():
                    proc.kill()
                raise AssertionError(f"no command for tick {tick}: " + str(
                    {n: p.communicate()[0][-2000:] for n, p in procs.items()}))
            _, cmd = decode(cmd_sub.recv_multipart())
            commands[cmd.header.tick] = cmd
        assert sorted(commands) == list(range(14))  # every tick answered, the absurd ones and those after
        for cmd in commands.values():
            assert math.isfinite(cmd.acceleration) and math.isfinite(cmd.steering)
            assert -1.0 <= cmd.acceleration <= 1.0 and -1.0 <= cmd.steering <= 1.0
        assert commands[5].acceleration == -1.0 or commands[5].acceleration < commands[4].acceleration  # brakes
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} stopped:\n{proc.stdout.read()}"
            proc.send_signal(signal.SIGINT)
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, f"{name}:\n{out}"
            assert "Traceback" not in out and "Warning" not in out, f"{name}:\n{out}"  # no overflow anywhere
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        ctx.destroy(linger=0)
