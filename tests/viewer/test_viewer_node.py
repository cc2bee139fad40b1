"""The viewer window under a virtual X display (Xvfb), and its message when there is no display."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from msgs import ObjectArray
from nodes.control.node import ControlNode
from nodes.runtime.local import LocalNode, LocalStack
from nodes.runtime.node import Node, make_params
from nodes.scripted.node import ScriptedTargetNode
from nodes.sim.node import SimNode
from nodes.viewer.display import opencv_has_gui
from nodes.viewer.draw import GT_COLOUR, Style
from nodes.viewer.node import ViewerNode, ViewerParams
from sim.view import DEFAULT_VIEW
from tests.conftest import ROOT, run_launch
from tests.viewer.viewer_xvfb import VirtualDisplay, find_on_screen, xvfb

LAUNCH = ROOT / "tests" / "data" / "viewer.yaml"
ROAD_GREY = (100, 100, 100)
SHOT_TICK = 30  # the screenshot is taken when tick SHOT_TICK + 1 arrives: the window shows tick SHOT_TICK
NO_XVFB = "Xvfb is not installed (apt-get install -y xvfb)"
needs_xvfb = pytest.mark.skipif(shutil.which("Xvfb") is None, reason=NO_XVFB)
# pygame (installed with highway-env) is the window of the shipped opencv-python-headless; OpenCV's own
# window is tested too where cv2 was built with a GUI (opencv-python)
BACKENDS = ["pygame"] + (["opencv"] if opencv_has_gui() else [])


def local(cls: type[Node], raw: dict) -> LocalNode:
    node = cls(make_params(cls, raw))
    return LocalNode(cls.name, node, cls.input_ports(node.params), cls.output_ports(node.params))


@pytest.fixture
def display(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if shutil.which("Xvfb") is None:
        pytest.skip(NO_XVFB)
    with xvfb(tmp_path / "xvfb") as screen:
        monkeypatch.setenv("DISPLAY", screen.name)
        yield screen


def test_no_display_is_a_clear_error_at_construction(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    params = make_params(ViewerNode, {})
    with pytest.raises(ValueError, match=r"viewer: no display: the DISPLAY environment variable is not "
                                         r"set.*Xvfb.*gui:=false.*drivestack video"):
        ViewerNode.check(params)
    with pytest.raises(ValueError, match="DISPLAY"):
        ViewerNode(params)
    monkeypatch.setenv("DISPLAY", ":4242")
    with pytest.raises(ValueError, match=r"DISPLAY=:4242 but no X server is listening"):
        ViewerNode(params)


def test_the_launcher_refuses_a_viewer_without_display(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ""
    result = run_launch(str(LAUNCH), "--check", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "node 'viewer'" in result.stderr and "DISPLAY" in result.stderr, result.stderr


def test_bad_params_are_refused(display: VirtualDisplay):
    with pytest.raises(ValueError, match="backend must be one of"):
        ViewerNode.check(ViewerParams(backend="tk"))
    with pytest.raises(ValueError, match="scale must be >= 1"):
        ViewerNode.check(ViewerParams(scale=0))


def wait_for(screen: VirtualDisplay, viewer: ViewerNode, timeout_s: float = 5.0
             ) -> tuple[np.ndarray, tuple[int, int], float]:
    """The screen once it shows the viewer's last image (the X server draws asynchronously)."""
    assert viewer.last_image is not None
    end = time.monotonic() + timeout_s
    while True:
        shot = screen.screenshot()
        where, same = find_on_screen(shot, viewer.last_image)
        if same > 0.999 or time.monotonic() > end:
            return shot, where, same
        viewer.display.pump()
        time.sleep(0.05)


@needs_xvfb
@pytest.mark.parametrize("backend", BACKENDS)
def test_viewer_window_shows_the_road_and_the_boxes(display: VirtualDisplay, backend: str, tmp_path: Path):
    viewer = local(ViewerNode, {"backend": backend, "title": "drivestack test"})
    stack = LocalStack([
        local(SimNode, {"episodes": 1, "seed": 1000, "vehicles_count": 10, "duration": 2.5}),
        local(ScriptedTargetNode, {}),
        local(ControlNode, {}),
        viewer,
    ])
    node: ViewerNode = viewer.node  # type: ignore[assignment]
    seen: dict[str, object] = {}

    def screenshot_at_tick(topic: str, msg) -> None:
        if topic == "/sim/objects_gt" and msg.header.tick == SHOT_TICK:
            seen["gt"] = msg
        if topic == "/sim/ego" and msg.header.tick == SHOT_TICK + 1 and "shot" not in seen:
            assert node.last_key == (0, SHOT_TICK)
            seen["shot"], seen["where"], seen["same"] = wait_for(display, node)

    stack.observers.append(screenshot_at_tick)
    stack.run()
    assert node.shown == 39  # ticks 0 (reset) to 38 (the first at or past 2.5 s at 15 Hz)
    shot = seen["shot"]
    cv2.imwrite(str(tmp_path / f"viewer_{backend}.png"), shot[..., ::-1])
    assert seen["same"] > 0.999, f"the window does not show the drawing ({seen['same']:.3f} of pixels agree)"
    col, row = seen["where"]
    s = Style().scale
    road = shot[row:row + 150 * s, col:col + 600 * s]
    assert (road == ROAD_GREY).all(axis=-1).mean() > 0.5, "no road on the screen"
    gt = seen["gt"]
    assert isinstance(gt, ObjectArray)
    vehicles = [o for o in gt.objects if o.in_view]
    assert len(vehicles) >= 2
    for obj in vehicles:
        c0, r0, c1, r1 = DEFAULT_VIEW.box_pixels(obj.x, obj.y, obj.length, obj.width)
        top = road[int(round(r0 * s)), int(round(0.5 * (c0 + c1) * s))]
        left = road[int(round(0.5 * (r0 + r1) * s)), int(round(c0 * s))]
        assert tuple(top) == GT_COLOUR and tuple(left) == GT_COLOUR, f"no box on screen around {obj}"
        inside = road[int(0.5 * (r0 + r1) * s), int(0.5 * (c0 + c1) * s)]
        assert tuple(inside) != ROAD_GREY, f"no vehicle on screen inside the box of {obj}"
    if os.environ.get("DRIVESTACK_SCREENSHOT"):
        cv2.imwrite(os.environ["DRIVESTACK_SCREENSHOT"], shot[..., ::-1])


@needs_xvfb
def test_viewer_in_its_own_process_shows_every_tick(display: VirtualDisplay, tmp_path: Path):
    result = run_launch(str(LAUNCH), "duration:=2.0", cwd=tmp_path, env={"DISPLAY": display.name})
    assert result.returncode == 0, result.stdout + result.stderr
    shown = re.search(r"viewer: showed (\d+) frames", result.stdout + result.stderr)
    assert shown and int(shown.group(1)) == 31, result.stdout
