"""Wire codec: a message <-> a ZeroMQ multipart frame list. The format is documented in msgs/README.md."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from msgs.registry import TOPICS
from msgs.types import Image, Message

MAX_BODY_BYTES = 1 << 20  # [bytes] larger bodies are rejected: no legitimate message comes near it
MAX_IMAGE_BYTES = 4096 * 4096 * 3  # [bytes]


class DecodeError(ValueError):
    """A frame list that is not a valid message of its topic's type. `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder] = {}


def _decoder(kind: type[Message]) -> msgspec.msgpack.Decoder:
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    return dec


def encode(topic: str, msg: Message) -> list[Any]:
    """Frames for `msg` on `topic`: [topic, body] or, for an Image, [topic, body, pixels]."""
    if isinstance(msg, Image):
        body = _encoder.encode(msgspec.structs.replace(msg, data=b""))
        return [topic.encode(), body, msg.data]
    return [topic.encode(), _encoder.encode(msg)]


def encode_body(msg: Message) -> bytes:
    """The MessagePack body alone, pixels inline (used by recordings, where one blob is simpler)."""
    return _encoder.encode(msg)


def _non_finite_field(value: Any, path: str) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            bad = _non_finite_field(getattr(value, name), f"{path}.{name}" if path else name)
            if bad:
                return bad
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad = _non_finite_field(item, f"{path}[{i}]")
            if bad:
                return bad
    elif isinstance(value, dict):
        for key, item in value.items():
            bad = _non_finite_field(item, f"{path}[{key!r}]")
            if bad:
                return bad
    return None


def decode(frames: list[Any], expected_type: type[Message] | None = None) -> tuple[str, Message]:
    """(topic, message) from received frames; DecodeError on anything malformed, never another error.

    `expected_type` defaults to the registry's type for the topic. Non-finite floats are rejected:
    NaN or inf never reach a node's logic.
    """
    if len(frames) not in (2, 3):
        raise DecodeError("bad_frame_count", f"{len(frames)} frames, expected 2 or 3")
    try:
        topic = bytes(frames[0]).decode()
    except UnicodeDecodeError:
        raise DecodeError("bad_topic", "topic frame is not UTF-8") from None
    kind = expected_type
    if kind is None:
        spec = TOPICS.get(topic)
        if spec is None:
            raise DecodeError("unknown_topic", f"topic {topic!r} is not registered")
        kind = spec.type
    body = frames[1]
    if len(body) > MAX_BODY_BYTES:
        raise DecodeError("oversize", f"{topic}: body of {len(body)} bytes exceeds {MAX_BODY_BYTES}")
    try:
        msg = _decoder(kind).decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError, OverflowError) as exc:
        # ValueError covers invalid UTF-8 in a str field, which msgspec reports as UnicodeDecodeError
        raise DecodeError("bad_body", f"{topic}: not a valid {kind.__name__}: {exc}") from None
    bad = _non_finite_field(msg, "")
    if bad:
        raise DecodeError("non_finite", f"{topic}: field {bad} is NaN or infinite")
    if kind is Image:
        msg = _attach_pixels(topic, msg, frames)
    elif len(frames) != 2:
        raise DecodeError("bad_frame_count", f"{topic}: {kind.__name__} carries no buffer frame")
    return topic, msg


def _attach_pixels(topic: str, msg: Image, frames: list[Any]) -> Image:
    if len(frames) != 3:
        raise DecodeError("bad_frame_count", f"{topic}: an Image needs its pixel frame")
    pixels = frames[2]
    expected = msg.width * msg.height * 3
    if msg.encoding != "rgb8" or msg.width <= 0 or msg.height <= 0 or expected > MAX_IMAGE_BYTES:
        raise DecodeError("bad_image", f"{topic}: unsupported image {msg.width}x{msg.height} {msg.encoding}")
    if len(pixels) != expected:
        raise DecodeError("bad_image", f"{topic}: {len(pixels)} pixel bytes, expected {expected}")
    return msgspec.structs.replace(msg, data=pixels)
