"""A lockstep publisher that gives up a message because its process is stopping (the queue full) sends nothing
after it: what its subscribers get, a recorder included, is a prefix of what was published, never one with a hole.
(A replay stopped by Ctrl-C could record a message of a batch after one it had given up.)"""

from __future__ import annotations

import zmq

from msgs import ControlCommand, Header
from nodes.runtime.bus import Publisher, Subscriber


def _drain(sub: Subscriber) -> list[int]:
    ticks: list[int] = []
    quiet = 0
    while quiet < 3:  # three empty polls of 0.2 s in a row: nothing more is on its way
        item = sub.recv(200)
        if item is None:
            quiet += 1
        else:
            quiet = 0
            ticks.append(item[1].header.tick)
    return ticks


def test_after_a_message_given_up_at_stop_nothing_more_is_sent(tmp_path):
    ctx = zmq.Context()
    stopping = False
    endpoint = f"ipc://{tmp_path}/cmd"
    pub = Publisher(ctx, endpoint, "/control/cmd", ControlCommand, lockstep=True, stop=lambda: stopping)
    sub = Subscriber(ctx, lockstep=True)
    sub.add("/control/cmd", ControlCommand, [endpoint])
    try:
        assert pub.wait_for_subscribers(1, timeout_s=30)
        stopping = True  # from here a send that finds the queue full gives up instead of waiting
        tick = 0
        while pub.unsent == 0 and tick < 1_000_000:  # the subscriber reads nothing yet: the queues fill up
            pub.publish(ControlCommand(header=Header(tick=tick), acceleration=0.0, steering=0.0))
            tick += 1
        assert pub.unsent == 1
        first = _drain(sub)  # the subscriber catches up: the queues have room again
        assert pub.sock.poll(10_000, zmq.POLLOUT)
        pub.publish(ControlCommand(header=Header(tick=tick), acceleration=0.0, steering=0.0))
        got = first + _drain(sub)
        assert got == list(range(len(got))) and len(got) == pub.sent  # a prefix: nothing after the hole
        assert pub.unsent == 2 and pub.sent == tick - 1
    finally:
        ctx.destroy(linger=0)
