"""Starts a launch plan's nodes as processes, holds the start-up barrier, supervises, stops cleanly.

It knows processes, topics and ready/stop signals: what the console shows of the run beyond the nodes' own output
(episode lines, a status line, a summary) comes from the observers its caller hands it (observer.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

import msgspec
import zmq

from msgs.codec import MAX_BODY_BYTES, DecodeError, decode
from nodes.runtime.bus import LOCKSTEP_HWM, RuntimeDirError, ipc_root
from nodes.runtime.children import COLOURS, Child, Console
from nodes.runtime.graph import Graph, build_specs, check_endpoints_free, lock_ports
from nodes.runtime.launchfile import LaunchError, LaunchPlan, namespace_id
from nodes.runtime.observer import Observer, StackView
from nodes.runtime.runner import unblock_stop_signals
from nodes.runtime.security import BusSecurity, KeyFileError, default_key_path, load_keys

GRACE_S = 3.0  # [s] between SIGTERM and SIGKILL at shutdown
RECORD_GRACE_S = 10.0  # [s] the same for a node that keeps the run's record (it drains and finalises its file)
HOLD_S = RECORD_GRACE_S  # [s] the longest a node holds its sockets open at a stop, waiting for the record to drain
DRAIN_BATCH = 1000  # [messages] watched messages handled per turn of the loop, between looks at the nodes
STATUS_PERIOD_S = 0.2  # [s] between redraws of the live status line


def make_run_dir(base: Path | None = None) -> Path:
    """`runs/<timestamp>/` under the current directory (never inside the installed package)."""
    root = (base or Path.cwd()) / "runs"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {root}")


def _route(observers: list[Observer], graph: Graph, local_nodes: set[str], live: bool
           ) -> tuple[dict[str, list[Observer]], dict[str, int]]:
    """Each watched topic's observers, and the extra subscriber (the launcher) of each topic watched in full that
    a node of this launch publishes."""
    published = frozenset(graph.endpoints)
    local = frozenset(t for t, by_node in graph.endpoints.items() if local_nodes & set(by_node))
    view = StackView(published=published, local=local, live=live)
    routes: dict[str, list[Observer]] = {}
    counted: dict[str, int] = {}
    for observer in observers:
        for watch in observer.watches(view):
            if watch.topic not in published:
                continue
            readers = routes.setdefault(watch.topic, [])
            if observer not in readers:
                readers.append(observer)
            if watch.complete and watch.topic in local:
                counted[watch.topic] = 1
    return routes, counted


class Supervisor:
    """Runs a plan. `run()` returns the process exit code: 0 done, 1 a node failed, 130 interrupted."""

    def __init__(self, plan: LaunchPlan, run_dir: Path | None = None, out: TextIO | None = None,
                 ready_timeout_s: float = 60.0, only: list[str] | None = None,
                 observers: Sequence[Observer] = ()) -> None:
        """`only`: start just these nodes of the plan (the rest run in other launches, over tcp).
        `observers`: readers of the run's topics whose lines, status line and report the console shows
        (nodes/runtime/observer.py); none: the console shows the nodes' output and the launcher's own lines."""
        self.plan = plan
        self.only = only or [n.name for n in plan.nodes]
        unknown = sorted(set(self.only) - {n.name for n in plan.nodes})
        if unknown:
            raise LaunchError(plan.file, f"--only names node(s) {unknown} that the launch does not start; "
                              f"its nodes: {[n.name for n in plan.nodes]}")
        if only and not plan.base_port:
            raise LaunchError(plan.file, "splitting a stack across launches (--only) needs tcp endpoints: set "
                              "base_port (e.g. base_port:=7600)", fieldname="base_port")
        local = [n for n in plan.nodes if n.name in self.only]
        self.out = out or sys.stdout
        try:
            self.namespace_dir = os.path.join(ipc_root(), namespace_id())
        except RuntimeDirError as exc:
            raise LaunchError(plan.file, str(exc)) from None
        self.ready_timeout_s = ready_timeout_s
        self.console = Console(self.out)
        self.next_status = 0.0
        self.stop_reason: str | None = None
        _, graph = build_specs(plan, self.namespace_dir, Path("."), {})
        self.observers = list(observers)
        # topic -> its observers; a complete watch of a topic this launch publishes counts the launcher as one
        # of the publisher's subscribers (the start-up barrier waits for it: no message is missed)
        self.routes, counted = _route(self.observers, graph, {n.name for n in local}, self.console.live)
        check_endpoints_free(plan, graph, self.only)  # before anything is created or started
        self._port_locks = lock_ports(plan, graph, self.only)  # atomic against another launch doing the same
        self.security: BusSecurity | None = None
        key_path = ""
        if plan.base_port:  # tcp endpoints: CURVE with the user's key, shared by every launch of the stack
            key_path = str(default_key_path())
            try:
                self.security = BusSecurity(*load_keys(Path(key_path), create=True))
            except KeyFileError as exc:
                raise LaunchError(plan.file, str(exc), fieldname="base_port") from None
        try:
            self.run_dir = run_dir or make_run_dir()
        except OSError as exc:
            raise LaunchError(plan.file, f"cannot create the run's output directory under {Path.cwd()}: "
                              f"{exc.strerror}; start it from a directory you can write to") from None
        specs, self.graph = build_specs(plan, self.namespace_dir, self.run_dir, counted, key_path)
        specs = {name: spec for name, spec in specs.items() if name in self.only}
        self.counted = set(counted)
        os.makedirs(self.namespace_dir, mode=0o700)
        colour = self.out.isatty() and not os.environ.get("NO_COLOR")
        self.children: dict[str, Child] = {}
        # files that are the run's record: sealed if their writer dies, and their loss is an error
        self.records: dict[str, Path] = {}
        for name in specs:
            planned = plan.node(name)
            record = planned.node_cls.record_file(planned.params, str(self.run_dir))
            if planned.node_cls.keeps_record and record:
                self.records[name] = Path(record)
        if self.records:  # every other node holds its sockets open at a stop until the record is drained
            specs = {name: spec if name in self.records else msgspec.structs.replace(spec, hold_on_stop_s=HOLD_S)
                     for name, spec in specs.items()}
        self.interrupts = 0
        self.started = False  # every node was ready and the run began
        for i, (name, spec) in enumerate(specs.items()):
            path = Path(self.namespace_dir) / f"{name}.json"
            path.write_bytes(msgspec.json.encode(spec))
            self.children[name] = Child(name, path, plan.node(name), self.console,
                                        COLOURS[i % len(COLOURS)] if colour else "", self.run_dir)
        self._write_run_files()

    def _write_run_files(self) -> None:
        info = {
            "launch_file": str(self.plan.file), "args": self.plan.args, "mode": self.plan.mode,
            "run_dir": str(self.run_dir.resolve()), "pid": os.getpid(), **self.graph.to_json(),
            "nodes": {n.name: {"module": n.module, "params": n.raw_params, "inputs": n.inputs,
                               "outputs": n.outputs} for n in self.plan.nodes},
        }
        text = json.dumps(info, indent=2, default=str)
        (self.run_dir / "launch.json").write_text(text)
        Path(self.namespace_dir, "graph.json").write_text(text)

    def _point_latest_here(self) -> None:
        latest = Path(ipc_root()) / "latest"
        tmp = Path(ipc_root()) / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.namespace_dir)
        tmp.replace(latest)

    def discard(self) -> None:
        """Undo what the constructor made, for a launch stopped before `run` (its run directory stays)."""
        shutil.rmtree(self.namespace_dir, ignore_errors=True)
        for lock in self._port_locks:
            lock.close()

    def _retarget_latest(self) -> None:
        """`latest` names the newest stack still running (tools default to it), never one that has ended."""
        root = Path(ipc_root())
        latest = root / "latest"
        try:
            if os.readlink(latest) != self.namespace_dir:
                return  # a newer launch took it
        except OSError:
            return
        running = []
        for graph in root.glob("*/graph.json"):
            try:
                pid = int(json.loads(graph.read_text())["pid"])
                os.kill(pid, 0)
                running.append((graph.stat().st_mtime, str(graph.parent)))
            except (OSError, ValueError, KeyError):
                continue
        if running:
            tmp = root / f".latest-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(max(running)[1])
            tmp.replace(latest)
        else:
            latest.unlink(missing_ok=True)

    def say(self, text: str) -> None:
        self.console.line(f"[launch] {text}")

    # -- main ---------------------------------------------------------------------------------------
    def run(self) -> int:
        # first of all: from here on a Ctrl-C is a stop request, and the finally below always cleans up
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        unblock_stop_signals()
        try:
            return self._run()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _sockets(self, ctx: zmq.Context) -> tuple[zmq.Socket, zmq.Socket]:
        """The launcher's control socket (readiness, go) and its watch on the observers' topics."""
        control = ctx.socket(zmq.ROUTER)
        control.setsockopt(zmq.LINGER, 0)
        control.bind(f"ipc://{self.namespace_dir}/control")
        control.setsockopt(zmq.MAXMSGSIZE, 1024)
        watch = ctx.socket(zmq.SUB)
        watch.setsockopt(zmq.RCVHWM, LOCKSTEP_HWM)
        watch.setsockopt(zmq.MAXMSGSIZE, MAX_BODY_BYTES)  # a frame over it ends the connection (see Watch)
        watch.setsockopt(zmq.LINGER, 0)
        if self.security is not None:
            self.security.connect_as_client(watch)
        # Counted subscriptions name their topic; watches that the barrier must not count (a status line's
        # topics, a topic published by another launch) subscribe to the empty prefix, which each single-topic
        # endpoint delivers in full but a publisher does not take for one of its expected subscribers.
        uncounted = [t for t in self.routes if t not in self.counted]
        for topic in sorted(self.counted):
            watch.setsockopt(zmq.SUBSCRIBE, topic.encode())
        if uncounted:
            watch.setsockopt(zmq.SUBSCRIBE, b"")
        for topic in self.routes:
            for endpoint in self.graph.endpoints[topic].values():
                watch.connect(endpoint)
        return control, watch

    def _run(self) -> int:
        self._point_latest_here()
        ctx = zmq.Context()
        control: zmq.Socket | None = None
        watch: zmq.Socket | None = None
        code = 1
        try:
            control, watch = self._sockets(ctx)
            self.say(f"{self.plan.file.name}: {len(self.children)} nodes, {self.plan.mode} mode, "
                     f"outputs in {self.run_dir}")
            for w in self.plan.warnings:
                self.say(f"warning: {w}")
            for child in self.children.values():
                child.start()
            code = self._supervise(control, watch)
        finally:
            self._shutdown()
            for sock in (control, watch):
                if sock is not None:
                    sock.close()
            ctx.term()
            shutil.rmtree(self.namespace_dir, ignore_errors=True)
            self._retarget_latest()
            for lock in self._port_locks:
                lock.close()
        code = self._seal_records(code)
        self._report(code)
        return code

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.interrupts += 1
        if self.stop_reason is None:
            self.stop_reason = "interrupted"
            return
        # a second Ctrl-C: stop waiting for the grace period, except for the nodes finalising the run's record
        # (they take well under a second); a third one kills those too, and their files are sealed as cut
        for name, child in self.children.items():
            if name not in self.records or self.interrupts > 2:
                child.signal(signal.SIGKILL)

    def _supervise(self, control: zmq.Socket, watch: zmq.Socket) -> int:
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(watch, zmq.POLLIN)
        started = time.monotonic()
        all_ready = False
        while self.stop_reason is None:
            events = dict(poller.poll(50))
            if control in events:
                self._on_control(control, all_ready)
            if watch in events:
                self._drain_watch(watch)
                self._show_status()
            if not all_ready:
                if all(c.ready for c in self.children.values()):
                    all_ready = self.started = True
                    for child in self.children.values():
                        control.send_multipart([child.identity, b"go"])
                    self.say(f"all nodes ready in {time.monotonic() - started:.1f} s")
                elif time.monotonic() - started > self.ready_timeout_s:
                    late = [c.name for c in self.children.values() if not c.ready]
                    self.say(f"error: node(s) {', '.join(late)} not ready after {self.ready_timeout_s:.0f} s")
                    return 1
            code = self._check_children(all_ready)
            if code is not None:
                while self._drain_watch(watch):  # what the nodes said before they ended, to the last message
                    pass
                return code
        return 0 if self.stop_reason == "finished" else 130

    def _on_control(self, control: zmq.Socket, all_ready: bool) -> None:
        while control.poll(0):
            identity, *msg = control.recv_multipart()
            if msg and msg[0] == b"ready":
                child = self.children.get(msg[1].decode())
                if child is None:
                    continue
                child.identity = identity
                child.ready = True
                if all_ready:  # a respawned node rejoins a running stack
                    control.send_multipart([identity, b"go"])
                    self.say(f"node '{child.name}' rejoined")

    def _drain_watch(self, watch: zmq.Socket) -> bool:
        """Hand up to DRAIN_BATCH waiting messages to their observers (a bounded turn, so a fast stack cannot
        keep the loop from the nodes); True if more are waiting."""
        for _ in range(DRAIN_BATCH):
            if not watch.poll(0):
                return False
            frames = watch.recv_multipart()
            try:
                topic, msg = decode(frames)
            except DecodeError:
                continue
            for observer in self.routes.get(topic, ()):
                for text in observer.on_message(topic, msg):
                    self.say(text)
                if observer.finished() and self.stop_reason is None:
                    self.stop_reason = "finished"
        return bool(watch.poll(0))

    def _show_status(self) -> None:
        now = time.monotonic()
        if not self.console.live or now < self.next_status:
            return
        texts = [text for observer in self.observers if (text := observer.status())]
        if texts:
            self.next_status = now + STATUS_PERIOD_S
            self.console.set_status(" | ".join(texts))

    def _check_children(self, all_ready: bool) -> int | None:
        for child in self.children.values():
            rc = child.poll()
            if rc is None:
                continue
            child.wait_output()
            if child.name in self.records:  # its death loses the rest of the run's record
                self.say(f"error: node '{child.name}' died (exit {rc}), so the run is no longer recorded; "
                         "stopping the stack")
                return 1
            if rc == 0 and child.planned.required:
                self.say(f"required node '{child.name}' finished: stopping the stack")
                return 0
            if child.planned.respawn and rc != 0:
                child.restarts += 1
                self.say(f"node '{child.name}' died (exit {rc}); respawning (restart {child.restarts})")
                child.start()
                continue
            if rc == 0:
                self.say(f"node '{child.name}' finished")
                child.proc = None
                continue
            detail = "\n".join(f"    {line}" for line in child.last_lines) or "    (no output)"
            what = "required " if child.planned.required else ""
            if child.planned.required or not all_ready:
                self.say(f"error: {what}node '{child.name}' died (exit {rc}); its last output:\n{detail}")
                return 1
            self.say(f"warning: node '{child.name}' died (exit {rc}); the stack goes on without it")
            child.proc = None
        return None

    def _shutdown(self) -> None:
        # The nodes that keep the run's record stop last. A recorder under load runs behind, and ZeroMQ drops
        # what a subscriber has not yet read when its publisher disconnects, so the other nodes are asked to stop
        # first and hold their sockets open, idle (NodeSpec.hold_on_stop_s); the recorder then drains every
        # message already sent and finalises its file; a second SIGTERM lets the others close and exit.
        running = [c for c in self.children.values() if c.poll() is None and c.proc is not None]
        others = [c for c in running if c.name not in self.records]
        recorders = [c for c in running if c.name in self.records]
        if recorders:
            for child in others:
                child.signal(signal.SIGTERM)
            self._stop(recorders)
        self._stop(others)

    def _stop(self, running: list[Child]) -> None:
        for child in running:
            # SIGTERM, not SIGINT: a node still starting Python (no handler yet) just ends, without a traceback
            child.signal(signal.SIGTERM)
        start = time.monotonic()
        while any(c.poll() is None for c in running):
            now = time.monotonic() - start
            for child in running:
                grace = RECORD_GRACE_S if child.name in self.records else GRACE_S
                if child.poll() is None and now > grace:
                    self.say(f"node '{child.name}' did not stop in {grace:.0f} s: killing it")
                    child.signal(signal.SIGKILL)
            time.sleep(0.02)
        for child in running:
            if child.proc is not None:
                child.proc.wait()
            child.wait_output()

    def _seal_records(self, code: int) -> int:
        """Every record file readable by the standard MCAP reader; a cut or lost one is an error line."""
        from nodes.runtime.seal import RecordingError, seal

        for name, path in self.records.items():
            rc = self.children[name].poll()
            how = f"was killed by signal {-rc}" if rc is not None and rc < 0 else f"exited {rc}"
            if not path.is_file():
                if self.started:  # else the run never began: there was nothing to record
                    self.say(f"error: no recording: node '{name}' {how} before it wrote {path}")
                    code = 1
                continue
            try:
                state = seal(path, f"node '{name}' {how}")
            except (RecordingError, OSError) as exc:
                self.say(f"error: recording {path} is cut and could not be sealed: {exc}")
                code = 1
                continue
            if not state.complete and self.started:  # (before the run began there was nothing to lose)
                self.say(f"error: recording {path} is cut: node '{name}' {how}; sealed, it holds what was "
                         "recorded up to then and nothing after")
                code = 1
        return code

    def _report(self, code: int) -> None:
        self.console.clear_status()
        for observer in self.observers:
            for text in observer.report():
                self.say(text)
        recordings = sorted(self.run_dir.glob("*.mcap"))
        for rec in recordings:
            self.say(f"recording: {rec}")
        self.say({0: "done", 130: "interrupted: all nodes stopped"}.get(code, f"failed (exit {code})")
                 + f"; outputs in {self.run_dir}")
