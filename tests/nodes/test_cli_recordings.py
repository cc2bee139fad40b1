"""A real recording read by other tools: the plain `mcap` reader with the package's decoder gives what drivestack's
own reader gives; the Foxglove JSON views carry the same values; the shipped Foxglove layout binds to topics and
fields the recording has; `info` lists the views."""

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from mcap.reader import make_reader

from msgs.mcap_decoder import DecoderFactory
from nodes.cli_info import read_info
from nodes.runtime.mcap_io import read_records
from nodes.viewer.foxglove_topics import JSON_VIEWS
from tests.conftest import ROOT, run_launch

pytest.importorskip("foxglove")  # the protobuf views need foxglove-sdk (in the [test] extra)
LAYOUT = ROOT / "docs" / "foxglove_layout.json"


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("rec")
    res = run_launch("full_stack.yaml", "episodes:=1", "duration:=2", "vehicles:=5", "perception:=gt", cwd=work,
                     timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    return next(work.glob("runs/*/recording.mcap"))


def _decoded(path: Path) -> list[tuple[str, str, object]]:
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        return [(channel.topic, channel.message_encoding, decoded)
                for _schema, channel, _message, decoded in reader.iter_decoded_messages()]


@pytest.mark.slow
def test_the_plain_mcap_reader_decodes_what_drivestack_reads(recording):
    decoded = _decoded(recording)
    plain: dict[str, list] = {}
    for topic, encoding, msg in decoded:
        if encoding == "msgpack":
            plain.setdefault(topic, []).append(msg)
    ours: dict[str, list] = {}
    for rec in read_records(recording):
        ours.setdefault(rec.topic, []).append(rec.decode())
    assert set(plain) == set(ours) and len(plain["/sim/ego"]) > 20
    for topic in ours:
        assert plain[topic] == ours[topic], topic  # the same structs, field for field (camera pixels included)
    # every JSON view holds the drivestack message's values, message for message
    views: dict[str, list] = {}
    for topic, encoding, msg in decoded:
        if encoding == "json":
            views.setdefault(topic, []).append(msg)
    for source, view in JSON_VIEWS.items():
        assert views[view] == [msgspec.to_builtins(m) for m in ours[source]], view
    assert any(e["kind"] == "end" and e["reason"] for e in views["/foxglove/sim/episode"])
    # and the protobuf views decode too: the camera's pixels, the ego's pose
    camera = next(msg for topic, _, msg in decoded if topic == "/foxglove/sim/camera")
    assert (camera.width, camera.height, camera.encoding) == (600, 150, "rgb8") and len(camera.data) == 600 * 150 * 3
    odometry = [msg for topic, _, msg in decoded if topic == "/foxglove/sim/ego"]
    assert [o.pose.position.x for o in odometry] == pytest.approx([e.x for e in ours["/sim/ego"]])


def _layout_refs() -> tuple[set[str], set[tuple[str, str]]]:
    """(topics, (topic, field) message paths) the layout's panels bind to."""
    layout = json.loads(LAYOUT.read_text())
    topics: set[str] = set()
    paths: set[tuple[str, str]] = set()
    for config in layout["configById"].values():
        text = json.dumps(config)
        for path in re.findall(r'"(/foxglove/[A-Za-z0-9_/]+(?:\.[A-Za-z0-9_.]+)?)"', text):
            topic, _, field = path.partition(".")
            topics.add(topic)
            if field:
                paths.add((topic, field))
    panels = json.dumps(layout["layout"])
    assert all(panel in panels for panel in layout["configById"])  # every configured panel is placed
    return topics, paths


@pytest.mark.slow
def test_the_foxglove_layout_binds_to_topics_and_fields_of_a_real_recording(recording):
    topics, paths = _layout_refs()
    assert {"/foxglove/sim/camera", "/foxglove/sim/objects_gt", "/foxglove/decision/target"} <= topics
    assert ("/foxglove/decision/target", "mode") in paths and ("/foxglove/sim/ego/state", "speed") in paths
    info = read_info(recording)
    channels = {c.topic: c for c in info.channels.values()}
    for topic in topics:
        assert topic in channels and channels[topic].count > 0, topic
        assert channels[topic].encoding in ("json", "protobuf"), topic  # what Foxglove reads
    assert channels["/foxglove/sim/camera"].schema == "foxglove.RawImage"
    assert channels["/foxglove/sim/objects_gt"].schema == "foxglove.SceneUpdate"
    first: dict[str, dict] = {}
    for topic, encoding, msg in _decoded(recording):
        if encoding == "json":
            first.setdefault(topic, msg)
    for topic, field in paths:
        value = first[topic]
        for part in field.split("."):
            assert isinstance(value, dict) and part in value, (topic, field)
            value = value[part]


@pytest.mark.slow
def test_info_lists_the_views_and_the_launch_args(recording):
    res = subprocess.run([sys.executable, "-m", "nodes.cli", "info", str(recording)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "State:        complete" in res.stdout and "Episodes:     1" in res.stdout
    assert re.search(r"/foxglove/decision/target\s+\d+ msgs .* drivestack.DrivingTarget \(json\)", res.stdout)
    assert "duration:=2" in res.stdout and "vehicles:=5" in res.stdout
