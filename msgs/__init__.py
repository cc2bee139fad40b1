"""Typed messages, the topic registry and the wire codec of drivestack."""

from msgs.codec import DecodeError, decode, encode, encode_body
from msgs.registry import TOPICS, TopicSpec, type_of
from msgs.types import (
    MODE_PRIORITY,
    Action,
    ControlCommand,
    Diagnostics,
    DrivingTarget,
    EgoState,
    EpisodeEvent,
    Header,
    Image,
    Message,
    Mode,
    Object,
    ObjectArray,
    Plan,
)

__all__ = [
    "MODE_PRIORITY", "TOPICS", "Action", "ControlCommand", "DecodeError", "Diagnostics", "DrivingTarget", "EgoState",
    "EpisodeEvent", "Header", "Image", "Message", "Mode", "Object", "ObjectArray", "Plan", "TopicSpec",
    "decode", "encode", "encode_body", "type_of",
]
