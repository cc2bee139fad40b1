"""The Foxglove channels of drivestack, the same live (the foxglove node) and in a recording (the recorder's views).

Foxglove reads JSON (schema encoding `jsonschema`, message encoding `json`), Protobuf, ROS 1/2 and FlatBuffers,
not MessagePack, so beside the drivestack topics (MessagePack, kept as they are for lossless replay) every
view is a channel under /foxglove/... in an encoding Foxglove and the `mcap` reader decode:

  /foxglove/sim/camera          foxglove.RawImage (protobuf)          from /sim/camera
  /foxglove/sim/objects_gt      foxglove.SceneUpdate, frame `ego`     from /sim/objects_gt (with the ego's box)
  /foxglove/perception/objects  foxglove.SceneUpdate, frame `ego`     from /perception/objects (track ids)
  /foxglove/sim/ego             foxglove.Odometry, frame `world`      from /sim/ego
  /foxglove/tf                  foxglove.FrameTransform world->ego    from /sim/ego
  /foxglove/sim/ego/state       drivestack.EgoState (json)            from /sim/ego: speed, lane, ... for plots
  /foxglove/planning/plan       drivestack.Plan (json)                from /planning/plan
  /foxglove/decision/target     drivestack.DrivingTarget (json)       from /decision/target: target speed, mode,
                                                                      reason
  /foxglove/control/cmd         drivestack.ControlCommand (json)      from /control/cmd
  /foxglove/sim/episode         drivestack.EpisodeEvent (json)        from /sim/episode: seeds, end reasons

The JSON views are each message's fields as JSON (msgspec), with a JSON Schema whose top level is the
message's object (Foxglove wants `"type": "object"` there; the nested types are `$defs`).
"""

from __future__ import annotations

import json
from functools import cache

import msgspec

from msgs import Message
from msgs.registry import TOPICS

PREFIX = "/foxglove"
TF = PREFIX + "/tf"
JSON_ENCODING = "json"
JSON_VIEWS: dict[str, str] = {  # drivestack topic -> its JSON view
    "/sim/ego": PREFIX + "/sim/ego/state",
    "/planning/plan": PREFIX + "/planning/plan",
    "/decision/target": PREFIX + "/decision/target",
    "/control/cmd": PREFIX + "/control/cmd",
    "/sim/episode": PREFIX + "/sim/episode",
}


def view_topic(topic: str) -> str:
    """The name of a protobuf view of `topic` (/sim/camera -> /foxglove/sim/camera)."""
    return PREFIX + topic


@cache
def json_schema(kind: type[Message]) -> tuple[str, str, bytes]:
    """(name, encoding, data) of `kind`'s JSON Schema with the message's own object at the top level."""
    schema = msgspec.json.schema(kind)
    defs = schema.get("$defs", {})
    top = {**defs.get(kind.__name__, schema), "$defs": defs}
    return f"drivestack.{kind.__name__}", "jsonschema", json.dumps(top).encode()


def json_view(topic: str, msg: Message) -> tuple[str, tuple[str, str, bytes], bytes] | None:
    """(view topic, schema, JSON bytes) of a message on a topic that has a JSON view, else None."""
    view = JSON_VIEWS.get(topic)
    if view is None or not isinstance(msg, TOPICS[topic].type):
        return None
    return view, json_schema(type(msg)), msgspec.json.encode(msg)


def message_encoding(schema: tuple[str, str, bytes]) -> str:
    """The message encoding of a view with this (name, encoding, data) schema: json or protobuf."""
    return JSON_ENCODING if schema[1] == "jsonschema" else "protobuf"
