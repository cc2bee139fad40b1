"""Live view in Foxglove: a Foxglove WebSocket server (foxglove-sdk) on loopback, fed from the bus.

Channels: the recording's Foxglove views, with the same names (nodes/viewer/foxglove_topics.py), so a layout
made on the live view opens a recording too (docs/foxglove_layout.json), plus the live-only drawing:
  /foxglove/sim/camera       [foxglove.RawImage rgb8, or CompressedImage with camera: jpeg|png]
  /foxglove/viewer/annotated [foxglove.CompressedImage] the viewer's drawing (boxes, plan, mode, speeds), JPEG
  /foxglove/sim/objects_gt, /foxglove/perception/objects [SceneUpdate], /foxglove/sim/ego [Odometry], /foxglove/tf
  /foxglove/sim/ego/state, /foxglove/planning/plan, /foxglove/decision/target, /foxglove/control/cmd,
  /foxglove/sim/episode      [JSON, with our JSON Schemas] for Plot, State Transitions and Raw Messages panels
Connect: Foxglove app -> Open connection -> Foxglove WebSocket -> ws://127.0.0.1:8765 (from another
machine, tunnel it first: `ssh -L 8765:127.0.0.1:8765 HOST`).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any, ClassVar

import msgspec

from msgs import EgoState, Image, Message, ObjectArray
from msgs.registry import TOPICS as MSG_TYPES
from nodes.runtime.node import Node, Outputs, Params
from nodes.viewer.draw import Style, draw_scene
from nodes.viewer.foxglove_topics import JSON_VIEWS, TF, json_schema, view_topic
from nodes.viewer.scene import TOPICS, LiveScenes
from sim.view import DEFAULT_VIEW

CAMERA_FORMATS = ("raw", "jpeg", "png")
ANNOTATED = view_topic("/viewer/annotated")
SOURCES = {**TOPICS, "cmd": "/control/cmd", "episode": "/sim/episode"}  # port -> the topic it views


class FoxgloveParams(Params, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"  # address to serve on: loopback only (tunnel with ssh -L to watch from elsewhere)
    port: int = 8765  # [TCP port] 0: any free port (the node prints the one it got)
    camera: str = "raw"  # /sim/camera as "raw" (RawImage rgb8) or compressed "jpeg" / "png"
    annotated: bool = True  # publish the viewer's drawing on /viewer/annotated while a client subscribes
    jpeg_quality: int = 85  # [0-100] of the JPEG images
    scale: int = 2  # upscale factor of the annotated drawing
    scaling: float = DEFAULT_VIEW.scaling  # [px/m] the sim's camera scale (SimParams.scaling)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Subscriptions:
    """Counts client subscriptions per topic (the server calls back from its own thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[str, int] = {}

    def on_subscribe(self, client: Any, channel: Any) -> None:
        with self.lock:
            self.count[channel.topic] = self.count.get(channel.topic, 0) + 1

    def on_unsubscribe(self, client: Any, channel: Any) -> None:
        with self.lock:
            self.count[channel.topic] = max(0, self.count.get(channel.topic, 0) - 1)

    def watched(self, topic: str) -> bool:
        return self.count.get(topic, 0) > 0


class FoxgloveNode(Node):
    name: ClassVar[str] = "foxglove"
    Params: ClassVar[type[Params]] = FoxgloveParams
    inputs: ClassVar[dict[str, str]] = dict(SOURCES)
    lockstep_inputs: ClassVar[bool] = False  # an observer: nothing waits for it

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, FoxgloveParams)
        if not _is_loopback(params.host):
            raise ValueError(f"host: {params.host!r}: the Foxglove server serves loopback only (127.0.0.1); "
                             "to watch from another machine, tunnel it: ssh -L 8765:127.0.0.1:8765 HOST")
        if not 0 <= params.port < 65536:
            raise ValueError(f"port must be in [0, 65535], got {params.port}")
        if params.camera not in CAMERA_FORMATS:
            raise ValueError(f"camera must be one of {CAMERA_FORMATS}, got {params.camera!r}")
        if not 0 <= params.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [0, 100], got {params.jpeg_quality}")
        if params.scale < 1:
            raise ValueError(f"scale must be >= 1, got {params.scale}")
        if not params.scaling > 0:
            raise ValueError(f"scaling must be > 0 px/m, got {params.scaling}")
        try:
            import foxglove  # noqa: F401
        except ImportError:
            raise ValueError("the Foxglove live view needs foxglove-sdk: pip install foxglove-sdk") from None

    def __init__(self, params: FoxgloveParams) -> None:
        super().__init__(params)  # runs check
        import foxglove
        from foxglove import channels as fc

        from nodes.viewer import foxglove_msgs as fm

        self.params: FoxgloveParams = params
        self.fm = fm
        self.style = Style(scale=params.scale)
        self.scenes = LiveScenes()
        self.ego: EgoState | None = None
        self.published = 0
        self.subs = _Subscriptions()
        ctx = self.context = foxglove.Context()
        self.camera = (fc.RawImageChannel if params.camera == "raw" else fc.CompressedImageChannel)(
            view_topic(TOPICS["camera"]), context=ctx)
        self.annotated = fc.CompressedImageChannel(ANNOTATED, context=ctx) if params.annotated else None
        self.gt = fc.SceneUpdateChannel(view_topic(TOPICS["gt"]), context=ctx)
        self.objects = fc.SceneUpdateChannel(view_topic(TOPICS["objects"]), context=ctx)
        self.odometry = fc.OdometryChannel(view_topic(TOPICS["ego"]), context=ctx)
        self.tf = fc.FrameTransformChannel(TF, context=ctx)
        self.json = {port: self._json_channel(foxglove, JSON_VIEWS[topic], MSG_TYPES[topic].type, ctx)
                     for port, topic in SOURCES.items() if topic in JSON_VIEWS}
        try:
            self.server = foxglove.start_server(name="drivestack", host=params.host, port=params.port,
                                                context=ctx, server_listener=self.subs)
        except Exception as exc:  # noqa: BLE001 - the SDK raises its own error types; say which port failed
            raise ValueError(f"cannot serve Foxglove on {params.host}:{params.port}: {exc} (port in use? try "
                             "port: 0 for any free port)") from None
        self.port = self.server.port
        print(f"foxglove: serving ws://{params.host}:{self.port} - in Foxglove: Open connection -> "
              f"Foxglove WebSocket -> ws://{params.host}:{self.port}", flush=True)

    @staticmethod
    def _json_channel(foxglove: Any, topic: str, kind: type[Message], ctx: Any) -> Any:
        name, encoding, data = json_schema(kind)
        schema = foxglove.Schema(name=name, encoding=encoding, data=data)
        return foxglove.Channel(topic, schema=schema, message_encoding="json", context=ctx)

    def on_message(self, port: str, msg: Message) -> None:
        fm, quality = self.fm, self.params.jpeg_quality
        if port == "camera" and isinstance(msg, Image) and self.subs.watched(view_topic(TOPICS["camera"])):
            if self.params.camera == "raw":
                self.camera.log(fm.raw_image(msg))
            else:
                bgr = msg.array()[..., ::-1]
                self.camera.log(fm.compressed_image(bgr, msg.header, self.params.camera, quality))
        elif port == "ego" and isinstance(msg, EgoState):
            self.ego = msg
            self.odometry.log(fm.ego_odometry(msg))
            self.tf.log(fm.ego_transform(msg))
        elif port == "gt" and isinstance(msg, ObjectArray):
            self.gt.log(fm.ground_truth_scene(msg, self.ego))
        elif port == "objects" and isinstance(msg, ObjectArray):
            self.objects.log(fm.objects_scene(msg, "perception", fm.DET_RGBA, labels=True))
        if port in self.json:
            self.json[port].log(msgspec.json.encode(msg))
        self.published += 1
        for scene in self.scenes.add(port, msg):
            if self.annotated is not None and self.subs.watched(ANNOTATED):
                image = draw_scene(scene, self.params.scaling, self.style)
                self.annotated.log(fm.compressed_image(image, scene.camera.header, "jpeg", quality))

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        return []

    def counters(self) -> dict[str, int]:
        return {"forwarded": self.published}

    def close(self) -> None:
        self.server.stop()


NODE = FoxgloveNode
