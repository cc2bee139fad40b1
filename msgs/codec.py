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


def _float_checker(kind: type) -> Any:
    """A function returning the path of the first non-finite float in a `kind` value, or None.

    Built once per type from its annotations, so a flat message costs a few isfinite calls."""
    import typing

    hints = typing.get_type_hints(kind)
    checks: list[tuple[str, str, Any]] = []
    for name in kind.__struct_fields__:
        hint = hints[name]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is float:
            checks.append((name, "float", None))
        elif isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            checks.append((name, "struct", _float_checker(hint)))
        elif origin is list and args and args[0] is float:
            checks.append((name, "floats", None))
        elif origin is list and args and isinstance(args[0], type) and issubclass(args[0], msgspec.Struct):
            checks.append((name, "structs", _float_checker(args[0])))
        elif origin is dict and len(args) == 2 and args[1] is float:
            checks.append((name, "float_values", None))

    def check(value: Any, path: str = "") -> str | None:
        for name, how, sub in checks:
            v = getattr(value, name)
            where = f"{path}.{name}" if path else name
            if how == "float":
                if not math.isfinite(v):
                    return where
            elif how == "struct":
                bad = sub(v, where)
                if bad:
                    return bad
            elif how == "floats":
                for i, x in enumerate(v):
                    if not math.isfinite(x):
                        return f"{where}[{i}]"
            elif how == "structs":
                for i, item in enumerate(v):
                    bad = sub(item, f"{where}[{i}]")
                    if bad:
                        return bad
            else:
                for key, x in v.items():
                    if not math.isfinite(x):
                        return f"{where}[{key!r}]"
        return None

    return check


_checkers: dict[type, Any] = {}


def _non_finite_field(msg: Message) -> str | None:
    kind = type(msg)
    checker = _checkers.get(kind)
    if checker is None:
        checker = _checkers[kind] = _float_checker(kind)
    return checker(msg)


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
    bad = _non_finite_field(msg)
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
