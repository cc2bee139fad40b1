"""ZeroMQ transport: typed publishers and subscribers, endpoints, and the slow-joiner barrier.

Each (publishing node, topic) pair has its own endpoint, bound by the publisher with an XPUB socket.
Subscribers connect to every publisher of the topics they read. Because an XPUB socket sees each
subscription arrive, a publisher can wait until all the subscribers the launch file expects are
attached before the first message goes out: nothing is lost at start-up, and no sleep is involved.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import zmq

from msgs import DecodeError, Image, Message, decode, encode
from msgs.codec import MAX_BODY_BYTES, MAX_IMAGE_BYTES
from nodes.runtime.security import BusSecurity

log = logging.getLogger(__name__)

LOCKSTEP_HWM = 1000  # [messages] per connection; in lockstep a full queue holds the writer back, never drops
REALTIME_HWM = 16  # [messages] a slow real-time reader loses old messages, never blocks the writer
XPUB_IN_HWM = 64  # [messages] what a publisher's peers may queue towards it (subscriptions only)
SUBSCRIPTION_MAX_BYTES = 1024  # [bytes] largest frame a publisher accepts from a peer (a subscription)
COPY_THRESHOLD = 64 * 1024  # [bytes] frames larger than this are sent zero-copy
SEND_WAIT_MS = 100  # [ms] a writer held back by a full queue checks this often whether it was asked to stop


def frame_limit(kind: type[Message]) -> int:
    """[bytes] the largest frame a subscriber of `kind` accepts: larger ones cut the connection (ZMQ_MAXMSGSIZE).
    Twice what the codec takes, so that a merely oversize message still reaches it and is counted."""
    return 2 * (MAX_BODY_BYTES + (MAX_IMAGE_BYTES if kind is Image else 0))


class RuntimeDirError(RuntimeError):
    """The private runtime directory exists but is not private: someone else could reach the stack."""


def ipc_root() -> str:
    """Per-user directory for ipc:// endpoints (kept short: ipc paths are limited to ~100 bytes).

    It holds every stack's sockets, specs and graph, so it must be this user's alone: a directory that is
    not a real directory, belongs to someone else or that others may enter is refused (RuntimeDirError),
    never used or repaired, since whoever made it may already have put their own files in it."""
    root = os.path.join(tempfile.gettempdir(), f"drivestack-{os.getuid()}")
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    check_private_dir(root)
    return root


def check_private_dir(path: str) -> None:
    """RuntimeDirError unless `path` is a directory (not a link) owned by this user with no access for others."""
    st = os.lstat(path)
    problem = None
    if not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory (a link or a file)"
    elif st.st_uid != os.getuid():
        problem = f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    elif st.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(st.st_mode):04o}: others may enter it (must be 0700)"
    if problem:
        raise RuntimeDirError(f"the private runtime directory {path} {problem}; it may have been planted by "
                              "another user: remove it (or set TMPDIR to a directory of your own) and start again")


def topic_slug(topic: str) -> str:
    return topic.strip("/").replace("/", ".") or "root"


def ipc_endpoint(namespace_dir: str, node: str, topic: str) -> str:
    return f"ipc://{namespace_dir}/{node}@{topic_slug(topic)}"


class Publisher:
    """Publishes one topic's typed messages from one node."""

    def __init__(self, ctx: zmq.Context, endpoint: str, topic: str, kind: type[Message], lockstep: bool,
                 security: BusSecurity | None = None, stop: Callable[[], bool] = lambda: False) -> None:
        """`security`: CURVE keys for tcp endpoints; `stop`: true when a send held back by a full queue should give
        up (the process is stopping)."""
        self.topic = topic
        self.kind = kind
        self.endpoint = endpoint
        self.lockstep = lockstep
        self.stop = stop
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # report every subscription, duplicates included
        self.sock.setsockopt(zmq.SNDHWM, LOCKSTEP_HWM if lockstep else REALTIME_HWM)
        if lockstep:
            self.sock.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue is back-pressure, not a silent loss
        self.sock.setsockopt(zmq.RCVHWM, XPUB_IN_HWM)
        self.sock.setsockopt(zmq.MAXMSGSIZE, SUBSCRIPTION_MAX_BYTES)
        self.sock.setsockopt(zmq.LINGER, 2000)
        if security is not None and endpoint.startswith("tcp://"):
            security.serve(self.sock)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise OSError(f"cannot bind {endpoint} for {topic}: {exc}") from None
        self.subscriptions = 0
        self.sent = 0
        self.foreign = 0  # frames from peers that are not a subscription to this topic (counted, dropped)
        self.unsent = 0  # messages given up because the process stopped while the queue was full
        # lockstep: a subscriber that joins a running stack (a respawned node) gets the last message again, so
        # it can answer the tick its predecessor died in; the others see a duplicate of a tick, which they drop
        self.live = False  # set once the stack runs: a subscription from then on is a rejoin
        self.rejoined = False
        self.resent = 0
        self._last: list[Any] | None = None
        self._subscribe = b"\x01" + topic.encode()
        self._unsubscribe = b"\x00" + topic.encode()

    def drain_subscriptions(self) -> None:
        # A SUB socket sends all its subscriptions down every connection, so count only this topic's.
        while self.sock.poll(0):
            frame = self.sock.recv()
            if frame == self._subscribe:
                self.subscriptions += 1
                self.rejoined = self.rejoined or self.live
            elif frame == self._unsubscribe:
                self.subscriptions -= 1
            elif frame[:1] not in (b"\x00", b"\x01"):  # data pushed at a publisher: nothing may write to it
                self.foreign += 1

    def wait_for_subscribers(self, count: int, timeout_s: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Block until `count` subscribers are attached (True), or the timeout passes or `stop()` (False)."""
        deadline = time.monotonic() + timeout_s
        self.drain_subscriptions()
        while self.subscriptions < count:
            left = deadline - time.monotonic()
            if left <= 0 or stop():
                return False
            if self.sock.poll(int(min(left, 0.1) * 1000)):
                self.drain_subscriptions()
        return True

    def publish(self, msg: Message) -> None:
        if not isinstance(msg, self.kind):
            raise TypeError(f"{self.topic} carries {self.kind.__name__}, not {type(msg).__name__}")
        frames = encode(self.topic, msg)
        if not self.lockstep:
            self.sock.send_multipart(frames, copy=len(frames) < 3 or len(frames[2]) < COPY_THRESHOLD)
            self.sent += 1
            return
        self._last = frames
        if self._send(frames):
            self.sent += 1

    def resend_last(self) -> bool:
        """After a rejoin (see `live`), send the last message once more; True if it did."""
        self.drain_subscriptions()
        if not (self.rejoined and self._last is not None):
            return False
        self.rejoined = False
        self._send(self._last)
        self.resent += 1
        return True

    def _send(self, frames: list[Any]) -> bool:
        """Send, waiting for room (never dropping); False if given up because the process is stopping. Once one
        message is given up, so is every later one: subscribers get a prefix of what was published, with no hole."""
        if self.unsent:
            self.unsent += 1
            return False
        copy = len(frames) < 3 or len(frames[2]) < COPY_THRESHOLD
        while True:  # lockstep: wait for room, never drop; give up only when the process is stopping
            try:
                self.sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=copy)
                return True
            except zmq.Again:
                if self.stop():
                    self.unsent += 1
                    return False
                self.sock.poll(SEND_WAIT_MS, zmq.POLLOUT)
                self.drain_subscriptions()

    def close(self) -> None:
        self.sock.close()


class Subscriber:
    """One SUB socket reading several topics, each validated against its expected type."""

    def __init__(self, ctx: zmq.Context, lockstep: bool, security: BusSecurity | None = None) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, LOCKSTEP_HWM if lockstep else REALTIME_HWM)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.security = security
        self._secured = False
        self.types: dict[str, type[Message]] = {}
        self.rejected: Counter[str] = Counter()
        self.received = 0

    def add(self, topic: str, kind: type[Message], endpoints: list[str]) -> None:
        self.types[topic] = kind
        self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.sock.setsockopt(zmq.MAXMSGSIZE, frame_limit(kind))  # for the connections made next: this topic's
        for endpoint in endpoints:
            if endpoint.startswith("tcp://") and self.security is not None and not self._secured:
                self.security.connect_as_client(self.sock)
                self._secured = True
            self.sock.connect(endpoint)

    def recv(self, timeout_ms: int) -> tuple[str, Message] | None:
        """The next valid message, or None on timeout or on a rejected message (logged and counted)."""
        try:
            first = self.sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            if not self.sock.poll(timeout_ms):
                return None
            first = self.sock.recv()
        frames: list[Any] = [first]
        while self.sock.getsockopt(zmq.RCVMORE):
            # topic and body are small: copied; a third frame (pixels) stays in ZeroMQ's buffer, zero-copy
            frames.append(self.sock.recv(copy=len(frames) < 2))
        return self.check(frames)

    def check(self, frames: list[Any]) -> tuple[str, Message] | None:
        frames = [f.buffer if isinstance(f, zmq.Frame) else f for f in frames]
        topic = bytes(frames[0]).decode(errors="replace")
        kind = self.types.get(topic)
        if kind is None:
            self._reject("unexpected_topic", f"message on unsubscribed topic {topic!r}")
            return None
        try:
            _, msg = decode(frames, kind)
        except DecodeError as exc:
            self._reject(exc.reason, str(exc))
            return None
        self.received += 1
        return topic, msg

    def _reject(self, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        total = sum(self.rejected.values())
        if total <= 10 or total % 1000 == 0:  # log, but do not let a flood of garbage flood the log
            log.warning("rejected message (%s, %d so far): %s", reason, total, detail)

    def close(self) -> None:
        self.sock.close()
