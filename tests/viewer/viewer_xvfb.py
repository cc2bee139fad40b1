"""A virtual X display for the viewer tests, and screenshots of it.

`Xvfb -fbdir DIR` keeps its framebuffer in DIR/Xvfb_screen0 as an X Window Dump, so a screenshot is a file
read: no screenshot tool needed, only the `xvfb` package (`apt-get install -y xvfb`).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class VirtualDisplay:
    name: str  # the DISPLAY value, e.g. ":57"
    framebuffer: Path

    def screenshot(self) -> np.ndarray:
        """The whole screen, RGB."""
        return read_xwd(self.framebuffer)


@contextmanager
def xvfb(workdir: Path, size: tuple[int, int] = (1600, 600)) -> Iterator[VirtualDisplay]:
    """A running Xvfb on a free display number (black background, no cursor)."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise FileNotFoundError("Xvfb is not installed: apt-get install -y xvfb")
    workdir.mkdir(parents=True, exist_ok=True)
    number = next(n for n in range(57, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    args = [binary, f":{number}", "-screen", "0", f"{size[0]}x{size[1]}x24", "-br", "-nocursor",
            "-nolisten", "tcp", "-fbdir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while not Path(f"/tmp/.X11-unix/X{number}").exists() or not (workdir / "Xvfb_screen0").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else "timeout"
                raise RuntimeError(f"Xvfb :{number} did not start: {err}")
            time.sleep(0.05)
        yield VirtualDisplay(f":{number}", workdir / "Xvfb_screen0")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_xwd(path: str | Path) -> np.ndarray:
    """An X Window Dump as an (H, W, 3) uint8 RGB array; 32-bit TrueColor ZPixmap only (Xvfb's x24 screen)."""
    raw = Path(path).read_bytes()
    h = struct.unpack(">25I", raw[:100])  # 25 big-endian CARD32 header fields
    header_size, version, fmt, _depth, width, height = h[:6]
    byte_order, bits_per_pixel, bytes_per_line = h[7], h[11], h[12]
    masks, ncolors = h[14:17], h[19]
    if version != 7 or fmt != 2 or bits_per_pixel != 32:
        raise ValueError(f"{path}: unsupported XWD (version {version}, format {fmt}, {bits_per_pixel} bpp)")
    rows = np.frombuffer(raw, np.uint8, bytes_per_line * height, header_size + 12 * ncolors)
    order = "<u4" if byte_order == 0 else ">u4"
    words = rows.reshape(height, bytes_per_line)[:, : 4 * width].copy().view(order)
    out = np.empty((height, width, 3), np.uint8)
    for i, mask in enumerate(masks):
        out[..., i] = (words & mask) >> ((mask & -mask).bit_length() - 1)
    return out


def find_on_screen(screen_rgb: np.ndarray, image_bgr: np.ndarray) -> tuple[tuple[int, int], float]:
    """Where `image_bgr` best matches the screen: ((col, row) of its top-left corner, share of equal
    pixels there)."""
    screen = np.ascontiguousarray(screen_rgb[..., ::-1])
    if screen.shape[0] < image_bgr.shape[0] or screen.shape[1] < image_bgr.shape[1]:
        raise ValueError(f"screen {screen.shape} smaller than the image {image_bgr.shape}")
    scores = cv2.matchTemplate(screen, image_bgr, cv2.TM_SQDIFF)
    _, _, (col, row), _ = cv2.minMaxLoc(scores)
    h, w = image_bgr.shape[:2]
    same = (screen[row:row + h, col:col + w] == image_bgr).all(axis=-1).mean()
    return (col, row), float(same)
