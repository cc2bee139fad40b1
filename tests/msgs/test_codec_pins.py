"""The codec and the message helpers pinned to msgs/README.md's wire format: each DecodeError's reason key,
the path of the first non-finite float, the 1 MiB body limit at its boundary, the image checks, the inline
body of recordings and the registry's lookup."""

from __future__ import annotations

import math

import msgpack
import msgspec
import numpy as np
import pytest

from msgs import (
    TOPICS,
    ControlCommand,
    DecodeError,
    Diagnostics,
    EgoState,
    Header,
    Image,
    Object,
    ObjectArray,
    Plan,
    decode,
    encode,
    encode_body,
    type_of,
)
from msgs.codec import MAX_BODY_BYTES, MAX_IMAGE_BYTES

H = Header(episode=1, tick=9, stamp_ns=600_000_000, frame_id="camera")


def image(h: int = 4, w: int = 6) -> Image:
    return Image.from_array(np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3) % 256, H)


def test_from_array_takes_shape_header_and_bytes_row_major():
    pixels = np.arange(4 * 6 * 3).reshape(4, 6, 3) % 256  # int64: cast to uint8
    img = Image.from_array(pixels[:, ::-1], H)  # a non-contiguous view
    assert (img.width, img.height, img.encoding, img.header) == (6, 4, "rgb8", H)
    assert len(img.data) == 4 * 6 * 3
    assert img.data == bytes(pixels[:, ::-1].astype(np.uint8).ravel())  # rows top to bottom, then columns
    np.testing.assert_array_equal(img.array(), pixels[:, ::-1])


def test_is_finite_is_false_when_either_term_is_not():
    assert ControlCommand(acceleration=0.1, steering=-0.2).is_finite()
    for a, s in [(math.nan, 0.0), (0.0, math.inf), (-math.inf, math.nan)]:
        assert not ControlCommand(acceleration=a, steering=s).is_finite()


def test_encode_body_keeps_the_pixels_inline():
    img = image()
    body = msgpack.unpackb(encode_body(img))
    assert body["data"] == img.data and body["width"] == 6 and body["height"] == 4
    assert msgspec.msgpack.decode(encode_body(img), type=Image) == img


def test_type_of_and_its_error_names_the_registered_topics():
    assert type_of("/control/cmd") is ControlCommand
    with pytest.raises(KeyError) as err:
        type_of("/nope")
    text = str(err.value)
    assert "'/nope'" in text and all(topic in text for topic in TOPICS)
    assert ", ".join(sorted(TOPICS)) in text


def reason(frames) -> str:
    with pytest.raises(DecodeError) as err:
        decode(frames)
    return err.value.reason


def cmd_body(**fields) -> bytes:
    return msgspec.msgpack.encode({"header": {}, "acceleration": 0.0, "steering": 0.0, **fields})


def test_each_malformed_frame_list_has_its_reason():
    img_frames = encode("/sim/camera", image())
    assert reason([b"/control/cmd"]) == "bad_frame_count"
    assert reason([b"/control/cmd", cmd_body(), b"", b""]) == "bad_frame_count"
    assert reason([b"\xff\xfe", cmd_body()]) == "bad_topic"
    assert reason([b"/nope", cmd_body()]) == "unknown_topic"
    assert reason([b"/control/cmd", cmd_body(acceleration="fast")]) == "bad_body"
    assert reason([b"/control/cmd", cmd_body(acceleration=math.nan)]) == "non_finite"
    assert reason([b"/control/cmd", cmd_body(), b"pixels"]) == "bad_frame_count"  # no buffer frame
    assert reason(img_frames[:2]) == "bad_frame_count"  # an image without its pixels
    assert reason([img_frames[0], img_frames[1], img_frames[2][:-1]]) == "bad_image"


def test_the_body_limit_is_one_mebibyte_inclusive():
    assert MAX_BODY_BYTES == 1 << 20
    # a Diagnostics whose body is exactly 1 MiB decodes; one byte more is refused as oversize
    base = len(encode_body(Diagnostics(node="")))
    pad = MAX_BODY_BYTES - base - 4  # MessagePack: "" has a 1-byte header (in base), a >= 64 KiB str a 5-byte one
    exact = encode_body(Diagnostics(node="n" * pad))
    assert len(exact) == MAX_BODY_BYTES
    topic, msg = decode([b"/diagnostics", exact])
    assert topic == "/diagnostics" and len(msg.node) == pad
    assert reason([b"/diagnostics", encode_body(Diagnostics(node="n" * (pad + 1)))]) == "oversize"


def test_decode_with_an_expected_type_ignores_the_registry():
    frames = encode("/custom/topic", ControlCommand(header=H, acceleration=0.5, steering=0.0))
    topic, msg = decode(frames, ControlCommand)
    assert topic == "/custom/topic" and msg == ControlCommand(header=H, acceleration=0.5, steering=0.0)


@pytest.mark.parametrize("msg,topic,path", [
    (EgoState(x=0.0, y=0.0, heading=0.0, speed=math.inf, vx=0.0, vy=0.0, lane_index=0, lateral_offset=0.0),
     "/sim/ego", "speed"),
    (ObjectArray(objects=[Object(id=1, x=0.0, y=0.0, vx=0.0, vy=0.0),
                          Object(id=2, x=0.0, y=math.nan, vx=0.0, vy=0.0)]), "/sim/objects_gt", "objects[1].y"),
    (Plan(action=1, q_values=[0.0, 1.0, -math.inf]), "/planning/plan", "q_values[2]"),
    (Diagnostics(node="x", values={"ok": 1.0, "bad": math.nan}), "/diagnostics", "values['bad']"),
])
def test_a_non_finite_float_is_named_by_its_path(msg, topic, path):
    with pytest.raises(DecodeError) as err:
        decode(encode(topic, msg))
    assert err.value.reason == "non_finite"
    assert f"field {path} is NaN" in str(err.value)


def test_a_nested_header_float_free_message_with_finite_values_passes():
    # every field kind the checker walks (struct, list of structs, list of floats, dict of floats), all finite
    for topic, msg in [("/sim/objects_gt", ObjectArray(objects=[Object(id=1, x=1.0, y=2.0, vx=0.0, vy=0.0)])),
                       ("/planning/plan", Plan(action=1, q_values=[0.0, 1.0])),
                       ("/diagnostics", Diagnostics(node="x", values={"a": 1.0}))]:
        assert decode(encode(topic, msg)) == (topic, msg)


@pytest.mark.parametrize("width,height,encoding", [(0, 4, "rgb8"), (6, 0, "rgb8"), (6, 4, "bgr8"),
                                                   (4096, 4097, "rgb8")])
def test_unsupported_images_are_refused(width, height, encoding):
    body = encode_body(Image(header=H, width=width, height=height, encoding=encoding))
    pixels = b"\x00" * max(width * height * 3, 0) if width * height * 3 <= MAX_IMAGE_BYTES else b""
    assert reason([b"/sim/camera", body, pixels]) == "bad_image"


def test_the_largest_image_is_accepted():
    assert MAX_IMAGE_BYTES == 4096 * 4096 * 3
    body = encode_body(Image(header=H, width=4096, height=4096))
    _, msg = decode([b"/sim/camera", body, bytes(MAX_IMAGE_BYTES)])
    assert (msg.width, msg.height, len(msg.data)) == (4096, 4096, MAX_IMAGE_BYTES)


def test_an_images_body_carries_an_empty_data_field():
    frames = encode("/sim/camera", image())
    assert msgpack.unpackb(frames[1])["data"] == b""  # msgs/README.md: the pixels travel in frame 2 only


def test_a_one_pixel_image_is_valid():
    frames = encode("/sim/camera", image(1, 1))
    _, msg = decode(frames)
    assert (msg.width, msg.height, len(msg.data)) == (1, 1, 3)


def message(frames) -> str:
    with pytest.raises(DecodeError) as err:
        decode(frames)
    return str(err.value)


def test_each_error_message_says_what_was_wrong_and_on_which_topic():
    img = encode("/sim/camera", image())
    assert message([b"/control/cmd"]) == "bad_frame_count: 1 frames, expected 2 or 3"
    assert message([b"\xff", cmd_body()]) == "bad_topic: topic frame is not UTF-8"
    assert message([b"/nope", cmd_body()]) == "unknown_topic: topic '/nope' is not registered"
    assert message([b"/sim/ego", b"\x80" * (MAX_BODY_BYTES + 1)]).startswith(
        f"oversize: /sim/ego: body of {MAX_BODY_BYTES + 1} bytes exceeds {MAX_BODY_BYTES}")
    assert message([b"/control/cmd", cmd_body(acceleration="x")]).startswith(
        "bad_body: /control/cmd: not a valid ControlCommand: ")
    assert message([b"/control/cmd", cmd_body(), b"x"]) == \
        "bad_frame_count: /control/cmd: ControlCommand carries no buffer frame"
    assert message(img[:2]) == "bad_frame_count: /sim/camera: an Image needs its pixel frame"
    assert message([img[0], img[1], b"abc"]) == "bad_image: /sim/camera: 3 pixel bytes, expected 72"
    bgr = encode_body(Image(header=H, width=6, height=4, encoding="bgr8"))
    assert message([b"/sim/camera", bgr, b""]) == "bad_image: /sim/camera: unsupported image 6x4 bgr8"
