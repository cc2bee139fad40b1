import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgs import (
    TOPICS,
    ControlCommand,
    DecodeError,
    Diagnostics,
    DrivingTarget,
    EgoState,
    EpisodeEvent,
    Header,
    Image,
    Object,
    ObjectArray,
    Plan,
    decode,
    encode,
)

H = Header(episode=2, tick=17, stamp_ns=1_133_333_333, frame_id="ego")
SAMPLES = {
    "/sim/camera": Image.from_array(np.arange(150 * 600 * 3, dtype=np.uint8).reshape(150, 600, 3), H),
    "/sim/ego": EgoState(header=H, x=10.5, y=4.0, heading=0.01, speed=25.0, vx=25.0, vy=0.2, lane_index=1,
                         lateral_offset=-0.3, crashed=False, reward=0.8),
    "/sim/objects_gt": ObjectArray(header=H, objects=[Object(id=3, x=20.0, y=4.0, vx=-2.0, vy=0.0, speed=23.0)]),
    "/perception/objects": ObjectArray(header=H, objects=[]),
    "/planning/plan": Plan(header=H, action=3, q_values=[0.1, 0.2, 0.3, 0.4, 0.5], replanned=True, plan_tick=15),
    "/decision/target": DrivingTarget(header=H, target_lane=2, target_speed=30.0, mode=1, reason="gap"),
    "/control/cmd": ControlCommand(header=H, acceleration=0.25, steering=-0.1),
    "/sim/episode": EpisodeEvent(header=H, kind="end", seed=7, reason="collision", last=True),
    "/diagnostics": Diagnostics(node="sim", counters={"ticks": 3}, values={"step_p50_us": 12.5}),
}


def test_every_registered_topic_has_a_sample():
    assert set(SAMPLES) == set(TOPICS)


@pytest.mark.parametrize("topic", sorted(SAMPLES))
def test_typed_round_trip(topic):
    msg = SAMPLES[topic]
    frames = encode(topic, msg)
    got_topic, got = decode([bytes(f) for f in frames])
    assert got_topic == topic
    assert type(got) is TOPICS[topic].type
    if isinstance(msg, Image):
        assert bytes(got.data) == msg.data and got.array().shape == (150, 600, 3)
        assert msgspec.structs.replace(got, data=b"") == msgspec.structs.replace(msg, data=b"")
    else:
        assert got == msg


def test_image_pixels_travel_as_their_own_frame():
    frames = encode("/sim/camera", SAMPLES["/sim/camera"])
    assert len(frames) == 3 and len(frames[2]) == 150 * 600 * 3
    assert len(frames[1]) < 200  # the body carries no pixels


def test_wire_format_decodes_with_plain_msgpack():
    """A client with only msgpack can read a message: the body is a MessagePack map of field names."""
    import msgpack

    frames = encode("/control/cmd", SAMPLES["/control/cmd"])
    body = msgpack.unpackb(frames[1])
    assert body["acceleration"] == 0.25 and body["header"]["tick"] == 17


@pytest.mark.parametrize("bad", [
    [b"/control/cmd", msgspec.msgpack.encode({"header": {}, "acceleration": "fast", "steering": 0.0})],
    [b"/control/cmd", msgspec.msgpack.encode({"header": {}, "acceleration": math.nan, "steering": 0.0})],
    [b"/control/cmd", msgspec.msgpack.encode({"header": {}, "acceleration": math.inf, "steering": 0.0})],
    [b"/control/cmd", b"\xc1garbage"],
    [b"/nope", b"\x80"],
    [b"/control/cmd"],
    [b"/sim/camera", encode("/sim/camera", SAMPLES["/sim/camera"])[1], b"short"],
    [b"/sim/camera", encode("/sim/camera", SAMPLES["/sim/camera"])[1]],
    [b"/sim/ego", b"\x80" * (2 << 20)],
    [b"/decision/target", msgspec.msgpack.encode({"header": {}, "target_lane": 1, "target_speed": 3.0,
                                                   "reason": 1})[:-1] + b"\xa2\x80\xff"],
])
def test_malformed_frames_raise_decode_error(bad):
    with pytest.raises(DecodeError):
        decode(bad)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=4))
def test_decode_random_frames_never_raises_anything_else(frames):
    try:
        decode(frames)
    except DecodeError:
        pass
