"""A window to show BGR images in: OpenCV's (HighGUI) where this cv2 has a GUI, else pygame's (SDL over X11).

opencv-python-headless, the default dependency, has no GUI (its build information says `GUI: NONE`); the
full `opencv-python` wheel has a Qt window. pygame comes with highway-env and opens an X11 window too, so the
viewer works with either OpenCV build.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

BACKENDS = ("auto", "opencv", "pygame")
CLOSE_KEYS = (ord("q"), 27)  # q or Esc closes the window (the stack keeps running)
NO_DISPLAY_HELP = (
    "run it on a desktop session, forward X with `ssh -X`, or start a virtual display first "
    "(`apt-get install -y xvfb; Xvfb :99 -screen 0 1600x900x24 & export DISPLAY=:99`); or leave the viewer "
    "off (gui:=false) and render the recording afterwards with `drivestack video runs/<stamp>/recording.mcap`"
)


class Display(Protocol):
    def show(self, image: np.ndarray) -> bool:
        """Shows a BGR image; False once the user has closed the window."""
        ...

    def pump(self) -> None:
        """Handles pending window events (repaint, close)."""
        ...

    def close(self) -> None: ...


def opencv_has_gui() -> bool:
    """Whether this cv2 build can open windows (opencv-python: yes; opencv-python-headless: no)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NONE"


def pygame_available() -> bool:
    try:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame  # noqa: F401
    except ImportError:
        return False
    return True


def display_problem(env: dict[str, str] | None = None) -> str | None:
    """Why no window can be opened here (None: a display looks reachable)."""
    env = dict(os.environ) if env is None else env
    display = env.get("DISPLAY", "")
    if not display:
        if env.get("WAYLAND_DISPLAY"):
            return None
        return f"the DISPLAY environment variable is not set (no X display here?): {NO_DISPLAY_HELP}"
    local = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if local and not Path(f"/tmp/.X11-unix/X{local.group(1)}").exists():
        return (f"DISPLAY={display} but no X server is listening there (/tmp/.X11-unix/X{local.group(1)} is "
                f"missing): {NO_DISPLAY_HELP}")
    return None


def choose_backend(backend: str) -> str:
    """The backend `backend` resolves to here; ValueError saying what to install when none can work."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    gui, pg = opencv_has_gui(), pygame_available()
    if backend == "opencv" and not gui:
        raise ValueError("backend 'opencv': this cv2 has no GUI (opencv-python-headless); install the full "
                         "build (`pip install opencv-python` in place of opencv-python-headless) or use "
                         "backend: pygame")
    if backend == "pygame" and not pg:
        raise ValueError("backend 'pygame': pygame is not installed (`pip install pygame-ce`)")
    if backend == "auto":
        if not (gui or pg):
            raise ValueError("no window toolkit: this cv2 has no GUI (opencv-python-headless) and pygame is "
                             "missing; install opencv-python or pygame-ce")
        return "opencv" if gui else "pygame"
    return backend


def open_display(backend: str, title: str) -> Display:
    return OpenCVDisplay(title) if choose_backend(backend) == "opencv" else PygameDisplay(title)


class OpenCVDisplay:
    def __init__(self, title: str) -> None:
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no toolbar
        self.closed = False

    def show(self, image: np.ndarray) -> bool:
        if self.closed:
            return False
        cv2.imshow(self.title, image)
        self.pump()
        return not self.closed

    def pump(self) -> None:
        if self.closed:
            return
        key = cv2.waitKey(1) & 0xFF
        if key in CLOSE_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


class PygameDisplay:
    def __init__(self, title: str) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        self.pg = pygame
        try:
            pygame.display.init()
        except pygame.error as exc:
            raise ValueError(f"pygame cannot open a window: {exc}; {NO_DISPLAY_HELP}") from None
        self.title = title
        self.screen: pygame.Surface | None = None
        self.closed = False

    def show(self, image: np.ndarray) -> bool:
        if self.closed:
            return False
        h, w = image.shape[:2]
        if self.screen is None or self.screen.get_size() != (w, h):
            self.screen = self.pg.display.set_mode((w, h))
            self.pg.display.set_caption(self.title)
        pixels = np.ascontiguousarray(image)
        self.screen.blit(self.pg.image.frombuffer(pixels.data, (w, h), "BGR"), (0, 0))
        self.pg.display.flip()
        self.pump()
        return not self.closed

    def pump(self) -> None:
        if self.closed:
            return
        for event in self.pg.event.get():
            if event.type == self.pg.QUIT or (event.type == self.pg.KEYDOWN and event.key in CLOSE_KEYS):
                self.close()
                return

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pg.display.quit()
