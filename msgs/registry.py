"""The one topic registry: topic name -> message type and nominal rate."""

from __future__ import annotations

from dataclasses import dataclass

from msgs.types import (
    ControlCommand,
    Diagnostics,
    DrivingTarget,
    EgoState,
    EpisodeEvent,
    Image,
    Message,
    ObjectArray,
    Plan,
)


@dataclass(frozen=True)
class TopicSpec:
    type: type[Message]
    rate_hz: float | None  # nominal rate in simulated time; None for events
    per_tick: bool  # exactly one message per control tick (lockstep inputs)
    doc: str


CONTROL_RATE_HZ = 15.0

TOPICS: dict[str, TopicSpec] = {
    "/sim/camera": TopicSpec(Image, CONTROL_RATE_HZ, True, "rendered top-down frame, rgb8"),
    "/sim/ego": TopicSpec(EgoState, CONTROL_RATE_HZ, True, "ego state, world frame"),
    "/sim/objects_gt": TopicSpec(ObjectArray, CONTROL_RATE_HZ, True, "every other vehicle, ground truth"),
    "/sim/episode": TopicSpec(EpisodeEvent, None, False, "episode start and end (with reason)"),
    "/perception/objects": TopicSpec(ObjectArray, CONTROL_RATE_HZ, True, "tracked vehicles in view"),
    "/planning/plan": TopicSpec(Plan, CONTROL_RATE_HZ, True, "meta-action, republished every tick"),
    "/decision/target": TopicSpec(DrivingTarget, CONTROL_RATE_HZ, True, "safe target lane and speed"),
    "/control/cmd": TopicSpec(ControlCommand, CONTROL_RATE_HZ, True, "normalised [accel, steer]"),
    "/diagnostics": TopicSpec(Diagnostics, 1.0, False, "per-node heartbeat and counters (wall clock)"),
}

TYPES_BY_NAME: dict[str, type[Message]] = {spec.type.__name__: spec.type for spec in TOPICS.values()}


def type_of(topic: str) -> type[Message]:
    """The registered type of `topic`; KeyError names the known topics."""
    try:
        return TOPICS[topic].type
    except KeyError:
        raise KeyError(f"unknown topic {topic!r}; registered topics: {', '.join(sorted(TOPICS))}") from None
