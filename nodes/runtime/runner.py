"""Runs one node as its own process: `python -m nodes.runtime.runner --spec FILE.json`.

The runner binds the node's ports to ZeroMQ, waits at the start-up barrier, schedules `step` in lockstep
or real-time mode, publishes a heartbeat on /diagnostics, and exits cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
import time
from collections import Counter

import msgspec
import numpy as np
import zmq

from msgs import Diagnostics, Message
from msgs.registry import TOPICS, TYPES_BY_NAME
from nodes.runtime.bus import Publisher, Subscriber
from nodes.runtime.inbox import LockstepInbox
from nodes.runtime.node import Node, Outputs, make_params
from nodes.runtime.security import BusSecurity, KeyFileError
from nodes.runtime.spec import NodeSpec, load_node_class

log = logging.getLogger("drivestack.runner")

HEARTBEAT_PERIOD_S = 1.0  # [s] wall time between /diagnostics messages
POLL_MS = 20  # [ms] longest wait for input before housekeeping
REJOIN_CHECK_S = 0.2  # [s] how often lockstep publishers look for a subscriber that joined the running stack


class StartupError(RuntimeError):
    pass


class NodeRunner:
    def __init__(self, spec: NodeSpec, node: Node) -> None:
        self.spec = spec
        self.node = node
        self.lockstep = spec.mode == "lockstep"
        self.ctx = zmq.Context()
        self.stop_requested = False
        self.stop_signals = 0  # stop signals received (a second one ends `hold`)
        self.counters: Counter[str] = Counter()
        self.step_times_us: list[float] = []
        self.security = BusSecurity.from_file(spec.bus_key) if spec.bus_key else None
        if self.security is not None:
            self.security.start(self.ctx)

        def stopping() -> bool:
            return self.stop_requested

        self.pubs = {
            port: Publisher(self.ctx, out.endpoint, out.topic, TYPES_BY_NAME[out.type], self.lockstep, self.security,
                            stopping)
            for port, out in spec.outputs.items()
        }
        self.diag = (
            Publisher(self.ctx, spec.diagnostics.endpoint, spec.diagnostics.topic, Diagnostics, False, self.security)
            if spec.diagnostics else None
        )
        self.sub = Subscriber(self.ctx, self.lockstep, self.security)
        self.ports_of_topic: dict[str, list[str]] = {}
        for port, inp in spec.inputs.items():
            if inp.topic not in self.ports_of_topic:  # one subscription per topic, however many ports read it
                self.sub.add(inp.topic, TYPES_BY_NAME[inp.type], inp.endpoints)
            self.ports_of_topic.setdefault(inp.topic, []).append(port)
        self.tick_ports = tuple(p for p, i in spec.inputs.items() if i.per_tick)
        self.inbox = LockstepInbox(self.tick_ports)
        self.latest: dict[str, Message | None] = {port: None for port in spec.inputs}
        self.episode = -1
        self.stall_since: float | None = None

    # -- start-up ---------------------------------------------------------------------------------
    def barrier(self) -> None:
        for out in list(self.pubs.values()) + ([self.diag] if self.diag else []):
            expected = self._expected_subscribers(out.topic)
            if not out.wait_for_subscribers(expected, self.spec.ready_timeout_s, lambda: self.stop_requested):
                if self.stop_requested:
                    return
                raise StartupError(
                    f"{out.topic}: {out.subscriptions} of {expected} subscribers attached after "
                    f"{self.spec.ready_timeout_s:.0f} s"
                )
        if self.spec.control:
            self._handshake(self.spec.control)

    def _expected_subscribers(self, topic: str) -> int:
        if self.diag is not None and topic == self.diag.topic:
            return self.spec.diagnostics.subscribers if self.spec.diagnostics else 0
        for out in self.spec.outputs.values():
            if out.topic == topic:
                return out.subscribers
        return 0

    def _handshake(self, endpoint: str) -> None:
        req = self.ctx.socket(zmq.DEALER)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(endpoint)
        req.send_multipart([b"ready", self.spec.name.encode(), str(os.getpid()).encode()])
        deadline = time.monotonic() + self.spec.ready_timeout_s
        while not self.stop_requested:
            if req.poll(100):
                reply = req.recv_multipart()
                if reply[0] == b"go":
                    break
            if time.monotonic() > deadline:
                raise StartupError(f"no go from the launcher at {endpoint} in {self.spec.ready_timeout_s} s")
        req.close()

    # -- the loop ---------------------------------------------------------------------------------
    def publish(self, outputs: Outputs) -> None:
        for port, msg in outputs:
            self.pubs[port].publish(msg)

    def run(self) -> None:
        self.heartbeat("ok")
        next_beat = time.monotonic() + HEARTBEAT_PERIOD_S
        rejoin_pubs = [p for p in self.pubs.values() if self.lockstep and _per_tick(p.topic, p.kind)]
        for pub in rejoin_pubs:
            pub.live = True
        next_rejoin_check = time.monotonic() + REJOIN_CHECK_S
        self.publish(self.node.start())
        self.node.prepare()
        # real-time sources run on their period; a node with no inputs at all (replay) does in either mode
        period = self.node.realtime_period() if (not self.lockstep or not self.spec.inputs) else None
        next_tick = time.monotonic() + period if period else None
        while not self.stop_requested and not self.node.finished:
            timeout = POLL_MS
            if next_tick is not None:
                timeout = max(0, min(POLL_MS, int((next_tick - time.monotonic()) * 1000)))
            item = self.sub.recv(timeout)
            if item is not None:
                self.on_message(*item)
            now = time.monotonic()
            if next_tick is not None and now >= next_tick:
                self.run_step(dict(self.latest))
                next_tick += period
                if now - next_tick > period:  # fell behind: count it and do not try to catch up
                    self.counters["deadline_misses"] += 1
                    next_tick = now + period
            if self.lockstep and self.spec.stall_timeout_s > 0:
                self.check_stall(now)
            if now >= next_rejoin_check:  # a respawned subscriber gets the tick its predecessor died in
                self.counters["resent_for_rejoin"] += sum(pub.resend_last() for pub in rejoin_pubs)
                next_rejoin_check = now + REJOIN_CHECK_S
            if now >= next_beat:
                self.heartbeat("ok")
                next_beat = now + HEARTBEAT_PERIOD_S
        if self.node.drain_on_stop:
            self.drain(quiet_s=self.node.drain_quiet_s, limit_s=self.node.drain_limit_s)
        self.heartbeat("stopping")

    def hold(self) -> None:
        """Stopped on request: keep every socket open, idle, until a second stop signal or `hold_on_stop_s`, so that
        what was published reaches a recorder that is still reading (see NodeSpec.hold_on_stop_s)."""
        end = time.monotonic() + self.spec.hold_on_stop_s
        while self.stop_signals < 2 and time.monotonic() < end:
            time.sleep(0.02)

    def drain(self, quiet_s: float = 0.2, limit_s: float = 2.0) -> None:
        """Take in what is still queued (publishers stop first), until quiet or the limit passes."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            item = self.sub.recv(int(quiet_s * 1000))
            if item is None:
                break
            self.on_message(*item)

    def on_message(self, topic: str, msg: Message) -> None:
        for port in self.ports_of_topic[topic]:
            self.latest[port] = msg
            if port not in self.tick_ports:
                self.node.on_message(port, msg)
            elif self.lockstep:
                self.inbox.put(port, msg)
            elif port == self.node.trigger:
                self.run_step(dict(self.latest))
        if self.lockstep:
            for _key, inputs in self.inbox.ready():
                self.run_step(inputs)
            self.stall_since = None if self.inbox.oldest_incomplete() is None else self.stall_since

    def check_stall(self, now: float) -> None:
        if self.inbox.oldest_incomplete() is None:
            self.stall_since = None
            return
        if self.stall_since is None:
            self.stall_since = now
        elif now - self.stall_since > self.spec.stall_timeout_s:
            forced = self.inbox.force_oldest()
            if forced:
                self.counters["stalled_ticks"] += 1
                self.run_step(forced[1])
            self.stall_since = now

    def run_step(self, inputs: dict[str, Message | None]) -> None:
        episode = next((m.header.episode for m in inputs.values() if m is not None), self.episode)
        if episode != self.episode:
            self.node.reset(episode)
            self.episode = episode
        t0 = time.perf_counter()
        outputs = self.node.step(inputs)
        self.step_times_us.append((time.perf_counter() - t0) * 1e6)
        self.counters["ticks"] += 1
        self.publish(outputs)
        self.node.prepare()  # overlaps with the nodes that now handle these outputs

    def heartbeat(self, status: str) -> None:
        if self.diag is None:
            return
        counters = dict(self.counters)
        counters.update({f"rejected_{k}": v for k, v in self.sub.rejected.items()})
        counters["rejected_messages"] = sum(self.sub.rejected.values())
        counters["late_messages"] = self.inbox.dropped_late
        for pub in list(self.pubs.values()) + ([self.diag] if self.diag else []):
            pub.drain_subscriptions()  # what peers sent a publisher: subscriptions, or foreign data (counted)
        counters["refused_connections"] = self.security.refused if self.security else 0
        counters["rejected_foreign_frames"] = sum(p.foreign for p in self.pubs.values()) + (
            self.diag.foreign if self.diag else 0)
        counters.update(self.node.counters())
        values: dict[str, float] = {}
        if self.step_times_us:
            recent = np.asarray(self.step_times_us[-1000:])
            values = {"step_p50_us": float(np.percentile(recent, 50)), "step_p99_us": float(np.percentile(recent, 99))}
            del self.step_times_us[:-1000]
        self.diag.publish(Diagnostics(node=self.spec.name, status=status, pid=os.getpid(),
                                      wall_time_ns=time.time_ns(), counters=counters, values=values))

    def close(self) -> None:
        self.node.close()
        for pub in self.pubs.values():
            pub.close()
        if self.diag:
            self.diag.close()
        self.sub.close()
        if self.security is not None:
            self.security.stop()
        self.ctx.term()


def _per_tick(topic: str, kind: type[Message]) -> bool:
    """Whether a topic carries one message per tick (a remapped topic: as the registered topics of its type)."""
    spec = TOPICS.get(topic)
    return spec.per_tick if spec else any(t.per_tick for t in TOPICS.values() if t.type is kind)


def unblock_stop_signals() -> None:
    """Take SIGINT/SIGTERM out of the blocked mask a parent may hand down (Ray's workers block SIGINT, and
    exec keeps the mask): a node must see the launcher's SIGINT to finish its work, e.g. finalise a recording."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies: a node when its launcher dies, a launcher when
    the program that started it (evaluate, a Ray task) dies, so nothing is ever orphaned."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one drivestack node process from a resolved spec.")
    parser.add_argument("--spec", required=True, help="path of the node spec (JSON), written by `launch`")
    args = parser.parse_args(argv)
    die_with_parent()
    with open(args.spec, "rb") as f:
        spec = msgspec.json.decode(f.read(), type=NodeSpec)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
    runner: NodeRunner | None = None

    def request_stop(signum: int, _frame: object) -> None:
        if runner is not None:
            runner.stop_requested = True
            runner.stop_signals += 1
        else:  # still importing or building the node: nothing to finish; an exception raised inside a C
            os._exit(0)  # extension's initialisation could abort the interpreter instead of ending it

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    unblock_stop_signals()
    code = 0
    try:
        node_cls = load_node_class(spec.module)
        node = node_cls(make_params(node_cls, spec.params))
        runner = NodeRunner(spec, node)
        runner.barrier()
        if not runner.stop_requested:
            runner.run()
            if runner.stop_requested and runner.spec.hold_on_stop_s > 0:
                runner.hold()
    except KeyboardInterrupt:
        pass
    except (StartupError, ValueError, OSError, KeyFileError) as exc:
        log.error("%s: %s", spec.name, exc)
        code = 2
    if runner is not None:
        try:
            runner.close()
        except OSError as exc:  # e.g. the disk filled while the recorder finalised its file
            if code == 0:
                log.error("%s: %s", spec.name, exc)
            code = 2
    return code


if __name__ == "__main__":
    sys.exit(main())
