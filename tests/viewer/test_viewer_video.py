"""`drivestack video`: a short recorded run -> a video with one frame per recorded camera tick."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from nodes.control.node import ControlNode
from nodes.recorder.node import RecorderNode
from nodes.runtime.local import LocalNode, LocalStack
from nodes.runtime.mcap_io import read_records
from nodes.runtime.node import Node, make_params
from nodes.scripted.node import ScriptedTargetNode
from nodes.sim.node import SimNode
from nodes.viewer import video
from nodes.viewer.draw import draw_scene
from nodes.viewer.scene import SceneBook
from nodes.viewer.video import main

DURATION_S = 1.0  # per episode: 15 ticks + the reset tick = 16 camera frames


def local(cls: type[Node], raw: dict) -> LocalNode:
    node = cls(make_params(cls, raw))
    return LocalNode(cls.name, node, cls.input_ports(node.params), cls.output_ports(node.params))


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "recording.mcap"
    LocalStack([
        local(SimNode, {"episodes": 2, "seed": 1000, "vehicles_count": 6, "duration": DURATION_S}),
        local(ScriptedTargetNode, {}),
        local(ControlNode, {}),
        local(RecorderNode, {"path": str(path), "exclude": ["/diagnostics"]}),
    ]).run()
    return path


def frames_in(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def camera_ticks(path: Path) -> Counter[int]:
    return Counter(r.decode().header.episode for r in read_records(path, {"/sim/camera"}))


def test_one_video_frame_per_camera_tick_drawn_like_the_viewer(recording: Path, tmp_path: Path, capsys):
    ticks = camera_ticks(recording)
    assert ticks == {0: 16, 1: 16}
    out = tmp_path / "all.mp4"
    assert main([str(recording), "-o", str(out), "-q"]) == 0
    assert f"wrote 32 frames to {out}" in capsys.readouterr().out
    frames = frames_in(out)
    assert len(frames) == 32
    # the video's first frame is the viewer's drawing of tick 0 (up to the codec's loss)
    book = SceneBook()
    topics = {"/sim/ego": "ego", "/sim/objects_gt": "gt", "/decision/target": "target"}
    for rec in read_records(recording, set(topics)):
        book.add(topics[rec.topic], rec.decode())
    first_camera = next(r.decode() for r in read_records(recording, {"/sim/camera"}))
    expected = draw_scene(book.scene(first_camera))
    assert frames[0].shape == expected.shape
    assert np.abs(frames[0].astype(int) - expected).mean() < 6.0


def test_one_episode_and_the_default_name(recording: Path, capsys):
    assert main([str(recording), "--episode", "1", "-q"]) == 0
    out = recording.with_name("recording_ep1.mp4")
    assert f"wrote 16 frames to {out}" in capsys.readouterr().out
    assert len(frames_in(out)) == 16


def test_falls_back_to_mjpg_avi_when_mp4_cannot_be_written(recording: Path, tmp_path: Path, capsys,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(video, "MP4_FOURCC", "zzzz")  # as on an OpenCV build without that encoder
    assert main([str(recording), "--episode", "0", "-o", str(tmp_path / "ep.mp4"), "-q"]) == 0
    out = capsys.readouterr()
    assert "zzzz is not available in this OpenCV build: writing MJPG to" in out.err
    assert f"wrote 16 frames to {tmp_path / 'ep.avi'}" in out.out
    assert len(frames_in(tmp_path / "ep.avi")) == 16 and not (tmp_path / "ep.mp4").exists()


def test_an_episode_that_is_not_there_is_named(recording: Path, tmp_path: Path):
    with pytest.raises(SystemExit, match=r"no /sim/camera frames for episode\(s\) \[7\].*\[0, 1\]"):
        main([str(recording), "--episode", "7", "-o", str(tmp_path / "x.mp4"), "-q"])
