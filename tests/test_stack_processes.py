"""The closed loop through real processes: sim, scripted targets and control, recorded to MCAP."""

from pathlib import Path

import numpy as np

from msgs import EgoState
from nodes.runtime.launchfile import load_plan
from nodes.runtime.local import LocalStack
from nodes.runtime.mcap_io import read_metadata, read_records
from nodes.viewer.foxglove_topics import JSON_VIEWS
from tests.conftest import recorded_bodies, run_launch

DATA = Path(__file__).parent / "data"


def _recording(workdir: Path) -> Path:
    (rec,) = list((workdir / "runs").glob("*/recording.mcap"))
    return rec


def test_keeps_its_lane_then_changes_lane_on_command(workdir):
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=workdir, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    egos = [r.decode() for r in read_records(_recording(workdir), {"/sim/ego"})]
    assert [e.header.tick for e in egos] == list(range(len(egos))) and len(egos) == 106  # 7 s at 15 Hz, + tick 0
    t = np.array([e.header.stamp_ns for e in egos]) / 1e9
    y = np.array([e.y for e in egos])
    assert not any(e.crashed for e in egos)
    keep = t < 3.0
    assert np.max(np.abs(y[keep] - 4.0)) < 0.05  # lane 1's centre is y = 4 m
    after = t > 3.0 + 3.5
    assert np.all(np.abs(y[after] - 8.0) < 0.2)  # lane 2's centre, reached within 3.5 s
    assert egos[-1].lane_index == 2


def test_multi_process_and_in_process_publish_the_same_bytes(workdir):
    """Parity: the same launch file in one process gives byte-identical messages on every topic."""
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=workdir, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    recorded = recorded_bodies(_recording(workdir))
    plan = load_plan(DATA / "lane_change.yaml", {"record": False})
    stack = LocalStack.from_plan(plan)
    local: dict[str, list[bytes]] = {}
    from msgs import encode_body

    stack.observers.append(lambda topic, msg: local.setdefault(topic, []).append(encode_body(msg)))
    stack.run()
    assert set(local) == set(recorded) == {"/sim/camera", "/sim/ego", "/sim/objects_gt", "/sim/episode",
                                            "/decision/target", "/control/cmd"}
    for topic in local:
        assert local[topic] == recorded[topic], topic


def test_recording_holds_schemas_and_launch_metadata(workdir):
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=workdir, timeout=180)
    assert res.returncode == 0
    rec = _recording(workdir)
    meta = read_metadata(rec)
    assert "scripted_target" in meta["launch"]["text"] and '"seed": 1003' in meta["launch"]["resolved"]
    from mcap.reader import make_reader

    with open(rec, "rb") as f:
        summary = make_reader(f).get_summary()
    schemas = {s.name: s.encoding for s in summary.schemas.values()}
    assert schemas["drivestack.EgoState"] == "jsonschema"
    encodings = {c.topic: c.message_encoding for c in summary.channels.values()}
    assert {e for t, e in encodings.items() if not t.startswith("/foxglove/")} == {"msgpack"}
    # Foxglove's views: its well-known protobuf schemas for the scene, JSON views of the topics that have none
    views = {t: e for t, e in encodings.items() if t.startswith("/foxglove/")}
    assert JSON_VIEWS["/sim/ego"] in views and JSON_VIEWS["/control/cmd"] in views
    assert {t for t, e in views.items() if e == "json"} == set(JSON_VIEWS.values()) & set(views)
    assert {e for t, e in views.items() if t not in JSON_VIEWS.values()} == {"protobuf"}
    ego = next(r for r in read_records(rec, {"/sim/ego"}))
    assert isinstance(ego.decode(), EgoState)
