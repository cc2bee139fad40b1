"""The Foxglove live view: a WebSocket client on loopback sees the channels and receives a tick's data."""

from __future__ import annotations

import json
import struct
import time

import pytest

pytest.importorskip("foxglove", reason="foxglove-sdk is not installed (pip install foxglove-sdk)")
ws_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")

from msgs import ControlCommand  # noqa: E402
from nodes.runtime.node import make_params, tick_header  # noqa: E402
from nodes.viewer.foxglove_node import ANNOTATED, FoxgloveNode  # noqa: E402
from sim.highway import HighwaySim, SimParams  # noqa: E402

SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]  # the SDK's, then the older name
EXPECTED = {  # the same names as the recorder's Foxglove views (tests/nodes/test_cli_recordings.py)
    "/foxglove/sim/camera": "foxglove.RawImage",
    ANNOTATED: "foxglove.CompressedImage",
    "/foxglove/sim/objects_gt": "foxglove.SceneUpdate",
    "/foxglove/perception/objects": "foxglove.SceneUpdate",
    "/foxglove/sim/ego": "foxglove.Odometry",
    "/foxglove/tf": "foxglove.FrameTransform",
    "/foxglove/sim/ego/state": "drivestack.EgoState",
    "/foxglove/planning/plan": "drivestack.Plan",
    "/foxglove/decision/target": "drivestack.DrivingTarget",
    "/foxglove/control/cmd": "drivestack.ControlCommand",
    "/foxglove/sim/episode": "drivestack.EpisodeEvent",
}
MESSAGE_DATA = 0x01  # binary opcode of a server -> client message
WAIT_S = 30.0  # [s] for the server to answer: it does in milliseconds; 30 s only bounds a hang on a loaded machine


@pytest.fixture
def node():
    n = FoxgloveNode(make_params(FoxgloveNode, {"port": 0}))
    yield n
    n.close()


def connect(port: int):
    return ws_client.connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS, open_timeout=WAIT_S)


def advertised(ws) -> dict[str, dict]:
    channels: dict[str, dict] = {}
    end = time.monotonic() + WAIT_S
    while not set(EXPECTED) <= set(channels) and time.monotonic() < end:
        msg = json.loads(ws.recv(timeout=WAIT_S))
        if msg["op"] == "advertise":
            channels.update({c["topic"]: c for c in msg["channels"]})
    return channels


def test_a_loopback_client_sees_every_channel_with_foxglove_schemas(node: FoxgloveNode):
    assert node.port > 0
    with connect(node.port) as ws:
        assert ws.subprotocol in SUBPROTOCOLS
        channels = advertised(ws)
    assert {topic: c["schemaName"] for topic, c in channels.items()} == EXPECTED


def test_a_subscribed_client_receives_the_camera_and_the_drawing(node: FoxgloveNode):
    sim = HighwaySim(SimParams(vehicles_count=5))
    sim.reset(seed=3, episode=0)
    with connect(node.port) as ws:
        channels = advertised(ws)
        wanted = {1: "/foxglove/sim/camera", 2: ANNOTATED, 3: "/foxglove/sim/objects_gt"}
        ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": sub, "channelId": channels[topic]["id"]} for sub, topic in wanted.items()]}))
        end = time.monotonic() + WAIT_S
        while not all(node.subs.watched(t) for t in wanted.values()):
            assert time.monotonic() < end, "the server did not register the subscriptions"
            time.sleep(0.02)
        for _ in range(2):  # the drawing of a tick goes out when the next frame arrives
            header = sim.header()
            node.on_message("camera", sim.camera(tick_header(header, "camera")))
            node.on_message("ego", sim.ego_state(header))
            node.on_message("gt", sim.objects_gt(tick_header(header, "ego")))
            sim.step(ControlCommand(acceleration=0.0, steering=0.0))
        received: dict[int, bytes] = {}
        while set(received) != set(wanted):
            frame = ws.recv(timeout=WAIT_S)
            if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
                sub, _log_time = struct.unpack_from("<IQ", frame, 1)
                received.setdefault(sub, frame[13:])
    sim.close()
    assert len(received[1]) > 600 * 150 * 3  # the rgb8 pixels travel whole
    assert b"\xff\xd8\xff" in received[2]  # a JPEG inside the CompressedImage
    assert b"objects_gt" in received[3]  # the scene entity's id


def test_only_loopback_and_a_free_port(node: FoxgloveNode):
    with pytest.raises(ValueError, match="loopback only"):
        FoxgloveNode.check(make_params(FoxgloveNode, {"host": "0.0.0.0"}))
    with pytest.raises(ValueError, match=f"cannot serve Foxglove on 127.0.0.1:{node.port}"):
        FoxgloveNode(make_params(FoxgloveNode, {"port": node.port}))
