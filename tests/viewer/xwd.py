"""Read an X Window Dump (the framebuffer file `Xvfb -fbdir DIR` keeps up to date) as an RGB array."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_FIELDS = 25  # CARD32 fields of the XWD header, big-endian


def read_xwd(path: str | Path) -> np.ndarray:
    """The screen as an (H, W, 3) uint8 RGB array; only 24/32-bit TrueColor ZPixmap dumps (what Xvfb writes
    with `-screen 0 WxHx24`)."""
    raw = Path(path).read_bytes()
    h = struct.unpack(">25I", raw[: 4 * _FIELDS])
    header_size, version, fmt, _depth, width, height = h[:6]
    byte_order, bits_per_pixel, bytes_per_line = h[7], h[11], h[12]
    red_mask, green_mask, blue_mask, ncolors = h[14], h[15], h[16], h[19]
    if version != 7 or fmt != 2 or bits_per_pixel != 32:
        raise ValueError(f"{path}: unsupported XWD (version {version}, format {fmt}, {bits_per_pixel} bpp)")
    start = header_size + 12 * ncolors
    dtype = "<u4" if byte_order == 0 else ">u4"
    rows = np.frombuffer(raw, dtype=np.uint8, count=bytes_per_line * height, offset=start)
    pixels = rows.reshape(height, bytes_per_line)[:, : 4 * width].copy().view(dtype).reshape(height, width)
    out = np.empty((height, width, 3), np.uint8)
    for i, mask in enumerate((red_mask, green_mask, blue_mask)):
        shift = (mask & -mask).bit_length() - 1
        out[..., i] = (pixels & mask) >> shift
    return out
