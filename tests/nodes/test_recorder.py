"""Recordings are finalised on Ctrl-C and carry Foxglove views (faults: test_record_faults.py)."""

import signal

import msgspec

from msgs import Image
from nodes.runtime.mcap_io import _is_finalised, read_records
from tests.conftest import popen_launch, wait_for


def _start(workdir):
    proc = popen_launch("demo.yaml", "ticks:=100000000", "record:=true", cwd=workdir)
    rec = wait_for(lambda: next(iter((workdir / "runs").glob("*/recording.mcap")), None))
    wait_for(lambda: rec.stat().st_size > 300_000)  # a few compressed chunks on disk
    return proc, rec


def test_ctrl_c_gives_a_finalised_recording(workdir):
    proc, rec = _start(workdir)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 130, out
    with open(rec, "rb") as f:
        assert _is_finalised(f)
    ticks = [r.decode().header.tick for r in read_records(rec, {"/sim/ego"})]
    assert ticks == list(range(len(ticks))) and len(ticks) > 1_000  # every tick, in order, none lost
    cmds = sum(1 for _ in read_records(rec, {"/control/cmd"}))
    assert len(ticks) - 1 <= cmds <= len(ticks)


def test_foxglove_views_ride_beside_the_recorded_topics(workdir):
    """Camera, boxes and ego also go to /foxglove/... in Foxglove's protobuf schemas; replay never sees them."""
    from pathlib import Path

    from mcap.reader import make_reader

    from tests.conftest import run_launch

    data = Path(__file__).parents[1] / "data" / "lane_change.yaml"
    res = run_launch(str(data), cwd=workdir, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    (path,) = list(workdir.glob("runs/*/recording.mcap"))
    counts: dict[str, int] = {}
    schemas: dict[str, tuple[str, str, str]] = {}
    camera_pixels: list[bytes] = []
    views: list[bytes] = []
    with open(path, "rb") as f:
        for schema, channel, message in make_reader(f).iter_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            schemas[channel.topic] = (schema.name, schema.encoding, channel.message_encoding)
            if channel.topic == "/sim/camera" and len(camera_pixels) < 3:
                camera_pixels.append(msgspec.msgpack.decode(message.data, type=Image).data)
            if channel.topic == "/foxglove/sim/camera" and len(views) < 3:
                views.append(message.data)
    assert schemas["/foxglove/sim/camera"] == ("foxglove.RawImage", "protobuf", "protobuf")
    assert schemas["/foxglove/sim/objects_gt"] == ("foxglove.SceneUpdate", "protobuf", "protobuf")
    assert schemas["/foxglove/tf"] == ("foxglove.FrameTransform", "protobuf", "protobuf")
    assert schemas["/foxglove/sim/ego"] == ("foxglove.Odometry", "protobuf", "protobuf")
    assert counts["/foxglove/sim/camera"] == counts["/sim/camera"] > 100
    assert counts["/foxglove/sim/objects_gt"] == counts["/sim/objects_gt"]
    assert counts["/foxglove/tf"] == counts["/foxglove/sim/ego"] == counts["/sim/ego"]
    assert all(bytes(pixels) in view for pixels, view in zip(camera_pixels, views, strict=True))  # rgb8, whole
    assert not any(r.topic.startswith("/foxglove") for r in read_records(path))
