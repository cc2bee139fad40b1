"""Foxglove views beside the recorded topics: the camera, the boxes and the ego in Foxglove's well-known
schemas (protobuf, from foxglove-sdk), on companion channels under /foxglove/..., so a recording opened in
Foxglove shows an Image panel and 3D boxes without any extension. The drivestack topics themselves stay
as they are (MessagePack, our JSON Schemas) for lossless replay.

  /foxglove/sim/camera          foxglove.RawImage (rgb8)            from /sim/camera
  /foxglove/sim/objects_gt      foxglove.SceneUpdate, frame `ego`    from /sim/objects_gt (with the ego's box)
  /foxglove/perception/objects  foxglove.SceneUpdate, frame `ego`    from /perception/objects (track ids)
  /foxglove/sim/ego             foxglove.Odometry, frame `world`     from /sim/ego
  /foxglove/tf                  foxglove.FrameTransform world->ego   from /sim/ego
and JSON views of the ego, plan, target, command and episode events (nodes/viewer/foxglove_topics.py lists
every channel; the live Foxglove node serves the same names).
"""

from __future__ import annotations

from typing import Any

from msgs import EgoState, Image, Message, ObjectArray
from nodes.viewer.foxglove_topics import json_view

PREFIX = "/foxglove"
ENCODING = "protobuf"


class FoxgloveViews:
    """Turns recorded messages into (companion topic, schema, protobuf bytes). Needs foxglove-sdk: building
    one raises ImportError without it."""

    def __init__(self) -> None:
        from nodes.viewer import foxglove_msgs

        self.fm = foxglove_msgs
        self.ego: EgoState | None = None
        self._schemas: dict[type, tuple[str, str, bytes]] = {}

    def _schema(self, message: Any) -> tuple[str, str, bytes]:
        kind = type(message)
        schema = self._schemas.get(kind)
        if schema is None:
            s = kind.get_schema()
            schema = self._schemas[kind] = (s.name, s.encoding, bytes(s.data))
        return schema

    def convert(self, topic: str, msg: Message) -> list[tuple[str, tuple[str, str, bytes], bytes]]:
        fm = self.fm
        views: list[tuple[str, Any]] = []
        if isinstance(msg, Image) and topic == "/sim/camera":
            views.append((topic, fm.raw_image(msg)))
        elif isinstance(msg, EgoState):
            self.ego = msg
            views += [(topic, fm.ego_odometry(msg)), ("/tf", fm.ego_transform(msg))]
        elif isinstance(msg, ObjectArray) and topic == "/sim/objects_gt":
            views.append((topic, fm.ground_truth_scene(msg, self.ego)))
        elif isinstance(msg, ObjectArray) and topic == "/perception/objects":
            views.append((topic, fm.objects_scene(msg, "perception", fm.DET_RGBA, labels=True)))
        out = [(PREFIX + name, self._schema(view), view.encode()) for name, view in views]
        as_json = json_view(topic, msg)  # plan, target, mode, reason, command, episodes, ego: for plots
        return out + [as_json] if as_json else out
