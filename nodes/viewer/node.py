"""The viewer node: an observer that shows every tick of the stack in a window, drawn by `draw`.

It takes every message as an event (lockstep_inputs = False), so it never holds the loop back. A camera
frame is shown once the next frame (or the episode's end) arrives, when the messages that answer its tick
(plan, target) are in: one tick of delay, exact alignment in lockstep mode.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from msgs import Message
from nodes.runtime.node import Node, Outputs, Params
from nodes.viewer.display import BACKENDS, Display, choose_backend, display_problem, open_display
from nodes.viewer.draw import Style, draw_scene
from nodes.viewer.scene import TOPICS, Key, LiveScenes, Scene
from sim.view import DEFAULT_VIEW


class ViewerParams(Params, kw_only=True, forbid_unknown_fields=True):
    backend: str = "auto"  # "auto" (OpenCV if this cv2 has a GUI, else pygame), "opencv" or "pygame"
    title: str = "drivestack"  # window title
    scale: int = 2  # upscale factor of the 600x150 camera frame, for legibility
    scaling: float = DEFAULT_VIEW.scaling  # [px/m] the sim's camera scale (SimParams.scaling), to place boxes
    show_gt: bool = True  # draw ground-truth boxes (thin green)
    show_detections: bool = True  # draw perception's boxes (magenta) with track ids


class ViewerNode(Node):
    name: ClassVar[str] = "viewer"
    Params: ClassVar[type[Params]] = ViewerParams
    inputs: ClassVar[dict[str, str]] = {**TOPICS, "episode": "/sim/episode"}
    lockstep_inputs: ClassVar[bool] = False  # an observer: every message is an event, nothing waits for it
    drain_on_stop: ClassVar[bool] = True  # show the frames still queued when the run ends

    def __init__(self, params: ViewerParams, display: Display | None = None) -> None:
        super().__init__(params)  # runs check
        self.params: ViewerParams = params
        self.style = Style(scale=params.scale, show_gt=params.show_gt, show_detections=params.show_detections)
        self.scenes = LiveScenes()
        self.display = display or open_display(params.backend, params.title)
        self.last_image: np.ndarray | None = None  # the last image shown (BGR)
        self.last_key: Key | None = None  # (episode, tick) of the last image shown
        self.shown = 0
        self.window_closed = False

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, ViewerParams)
        if params.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {params.backend!r}")
        if params.scale < 1:
            raise ValueError(f"scale must be >= 1, got {params.scale}")
        if not params.scaling > 0:
            raise ValueError(f"scaling must be > 0 px/m, got {params.scaling}")
        problem = display_problem()
        if problem:
            raise ValueError(f"viewer: no display: {problem}")
        choose_backend(params.backend)

    def on_message(self, port: str, msg: Message) -> None:
        for scene in self.scenes.add(port, msg):
            self._show(scene)

    def _show(self, scene: Scene) -> None:
        if self.window_closed:
            return
        image = draw_scene(scene, self.params.scaling, self.style)
        self.last_image, self.last_key = image, scene.key
        self.shown += 1
        if not self.display.show(image):
            self.window_closed = True
            print("viewer: window closed; the stack keeps running", flush=True)

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        return []

    def counters(self) -> dict[str, int]:
        return {"frames_shown": self.shown}

    def close(self) -> None:
        for scene in self.scenes.flush():
            self._show(scene)
        self.display.close()
        print(f"viewer: showed {self.shown} frames", flush=True)


NODE = ViewerNode
