"""Typed pub/sub over real ZeroMQ sockets."""

import time

import msgspec
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from msgs import ControlCommand, EgoState, Header, encode
from nodes.runtime.bus import Publisher, Subscriber


def _pair(tmp_path, ctx):
    endpoint = f"ipc://{tmp_path}/cmd"
    pub = Publisher(ctx, endpoint, "/control/cmd", ControlCommand, lockstep=True)
    sub = Subscriber(ctx, lockstep=True)
    sub.add("/control/cmd", ControlCommand, [endpoint])
    assert pub.wait_for_subscribers(1, timeout_s=5.0)
    return pub, sub


def test_barrier_then_nothing_lost(tmp_path):
    ctx = zmq.Context()
    pub, sub = _pair(tmp_path, ctx)
    for tick in range(2000):  # sent back to back, straight after the barrier: no slow-joiner loss
        pub.publish(ControlCommand(header=Header(tick=tick), acceleration=0.1, steering=0.0))
    got = [sub.recv(1000) for _ in range(2000)]
    assert [m.header.tick for _, m in got] == list(range(2000))
    ctx.destroy(linger=0)


def test_barrier_times_out_without_subscribers(tmp_path):
    ctx = zmq.Context()
    pub = Publisher(ctx, f"ipc://{tmp_path}/x", "/control/cmd", ControlCommand, lockstep=True)
    t0 = time.monotonic()
    assert not pub.wait_for_subscribers(1, timeout_s=0.3)
    # the point is that the barrier gives up at all (without its timeout it would wait forever); 30 s is 100
    # times the 0.3 s asked for, room for any scheduling delay on a loaded machine
    assert time.monotonic() - t0 < 30.0
    ctx.destroy(linger=0)


def test_publisher_refuses_the_wrong_type(tmp_path):
    ctx = zmq.Context()
    pub = Publisher(ctx, f"ipc://{tmp_path}/y", "/control/cmd", ControlCommand, lockstep=True)
    try:
        pub.publish(EgoState(x=0, y=0, heading=0, speed=0, vx=0, vy=0, lane_index=0, lateral_offset=0))
    except TypeError as exc:
        assert "ControlCommand" in str(exc)
    else:
        raise AssertionError("wrong type was published")
    ctx.destroy(linger=0)


frames_strategy = st.lists(st.binary(max_size=64), min_size=1, max_size=4)
wrong_type = st.builds(lambda tick: encode("/control/cmd", EgoState(
    header=Header(tick=tick), x=1, y=2, heading=0, speed=3, vx=3, vy=0, lane_index=0, lateral_offset=0)),
    st.integers(0, 1000))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(frames_strategy, wrong_type), min_size=1, max_size=40))
def test_fuzz_subscriber_counts_and_survives(tmp_path_factory, batch):
    """Random frames and wrongly typed messages at a real subscriber: each rejected and counted."""
    tmp = tmp_path_factory.mktemp("fuzz")
    ctx = zmq.Context()
    raw = ctx.socket(zmq.XPUB)
    raw.bind(f"ipc://{tmp}/fuzz")
    sub = Subscriber(ctx, lockstep=True)
    sub.add("/control/cmd", ControlCommand, [f"ipc://{tmp}/fuzz"])
    raw.recv()  # the subscription has arrived
    for frames in batch:
        raw.send_multipart([b"/control/cmd", *frames[1:]])
    good = ControlCommand(header=Header(tick=99999), acceleration=0.5, steering=0.0)
    raw.send_multipart(encode("/control/cmd", good))
    accepted = []
    deadline = time.monotonic() + 10
    while good not in accepted and time.monotonic() < deadline:
        item = sub.recv(100)
        if item is not None:
            accepted.append(item[1])
    assert accepted == [good]  # every earlier message was garbage or of the wrong type
    assert sum(sub.rejected.values()) == len(batch)
    ctx.destroy(linger=0)


def test_decoded_image_is_zero_copy_view(tmp_path):
    import numpy as np

    from msgs import Image

    ctx = zmq.Context()
    endpoint = f"ipc://{tmp_path}/cam"
    pub = Publisher(ctx, endpoint, "/sim/camera", Image, lockstep=True)
    sub = Subscriber(ctx, lockstep=True)
    sub.add("/sim/camera", Image, [endpoint])
    assert pub.wait_for_subscribers(1, 5.0)
    frame = np.random.default_rng(0).integers(0, 255, (150, 600, 3), dtype=np.uint8)
    pub.publish(Image.from_array(frame, Header(tick=1)))
    _, img = sub.recv(2000)
    assert isinstance(img.data, memoryview)  # pixels point into the received ZeroMQ frame
    assert np.array_equal(img.array(), frame)
    assert msgspec.structs.replace(img, data=b"").width == 600
    ctx.destroy(linger=0)
