"""`drivestack video FILE.mcap -o episode.mp4 [--episode N]`: a recording's episodes as a video.

Every camera frame of the chosen episode(s) becomes one video frame, drawn by the same `draw` as the live
viewer, with the other topics matched to it by (episode, tick). Two passes over the file: the small
messages first (indexed by tick), then the camera frames one at a time, so memory stays flat.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import msgspec
from tqdm import tqdm

from msgs import Header, Image
from msgs.registry import CONTROL_RATE_HZ
from nodes.runtime.mcap_io import read_records
from nodes.viewer.draw import DEFAULT_STYLE, Style, draw_scene
from nodes.viewer.scene import TOPICS, Key, SceneBook
from sim.view import DEFAULT_VIEW

MP4_FOURCC = "mp4v"  # MPEG-4 Part 2, which every FFMPEG-enabled OpenCV wheel writes
FALLBACK_FOURCC = "MJPG"  # Motion JPEG in an .avi, written by OpenCV's own encoder


class _HeaderOnly(msgspec.Struct):
    """Decodes just the header of a message (the pixels are skipped)."""

    header: Header = Header()


def frame_keys(path: str | Path, camera_topic: str = TOPICS["camera"]) -> list[Key]:
    """(episode, tick) of every camera frame in the recording, in order, without duplicates."""
    keys: list[Key] = []
    seen: set[Key] = set()
    for rec in read_records(path, {camera_topic}):
        h = msgspec.msgpack.decode(rec.data, type=_HeaderOnly).header
        key = (h.episode, h.tick)
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path]:
    """An mp4v writer at `path`; where this OpenCV cannot write one, MJPG to `path` with .avi (says so)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*MP4_FOURCC), fps, size)
    if writer.isOpened():
        return writer, path
    fallback = path.with_suffix(".avi")
    writer = cv2.VideoWriter(str(fallback), cv2.VideoWriter_fourcc(*FALLBACK_FOURCC), fps, size)
    if not writer.isOpened():
        raise SystemExit(f"drivestack video: this OpenCV build can write neither {MP4_FOURCC} ({path}) nor "
                         f"MJPG ({fallback}); see cv2.getBuildInformation(), section 'Video I/O'")
    print(f"drivestack video: {MP4_FOURCC} is not available in this OpenCV build: writing MJPG to {fallback}",
          file=sys.stderr)
    return writer, fallback


def write_video(path: str | Path, out: str | Path, episodes: set[int] | None = None,
                fps: float = CONTROL_RATE_HZ, scaling: float = DEFAULT_VIEW.scaling,
                style: Style = DEFAULT_STYLE, progress: bool = True) -> tuple[Path, int]:
    """Render the recording `path` (only `episodes`, if given) to `out`; returns (file written, frames)."""
    keys = [k for k in frame_keys(path) if episodes is None or k[0] in episodes]
    if not keys:
        have = sorted({k[0] for k in frame_keys(path)})
        what = f"episode(s) {sorted(episodes)}" if episodes is not None else "any episode"
        raise SystemExit(f"drivestack video: {path} has no {TOPICS['camera']} frames for {what}; "
                         f"episodes with frames: {have or 'none (was the sim run with render: false?)'}")
    book = SceneBook()
    by_topic = {topic: port for port, topic in TOPICS.items() if port != "camera"}
    for rec in read_records(path, set(by_topic)):
        msg = rec.decode()
        if episodes is None or msg.header.episode in episodes:
            book.add(by_topic[rec.topic], msg)
    wanted = set(keys)
    writer: cv2.VideoWriter | None = None
    written = 0
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(keys), unit="frame", desc="video", disable=not progress)
    try:
        for rec in read_records(path, {TOPICS["camera"]}):
            camera = rec.decode()
            assert isinstance(camera, Image)
            key = (camera.header.episode, camera.header.tick)
            if key not in wanted:
                continue
            wanted.discard(key)
            image = draw_scene(book.scene(camera), scaling, style)
            if writer is None:
                writer, target = open_writer(target, fps, (image.shape[1], image.shape[0]))
            writer.write(image)
            written += 1
            bar.update()
    finally:
        bar.close()
        if writer is not None:
            writer.release()
    return target, written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drivestack video",
        description="Render a recording (runs/<stamp>/recording.mcap) as a video: every camera frame with "
        "the ground-truth boxes (thin green), perception's detections (magenta, with track ids), the planned "
        "action, the decision mode and reason, speed and target speed. Same drawing as the live viewer "
        "(gui:=true). Writes MPEG-4 (mp4v); where this OpenCV cannot, MJPG into an .avi beside the requested "
        "name.")
    p.add_argument("file", help="MCAP recording")
    p.add_argument("-o", "--output", help="video file (default: the recording's name with .mp4, or "
                   "_epN.mp4 with --episode)")
    p.add_argument("--episode", type=int, action="append", metavar="N",
                   help="only episode N (repeat for several; default: every episode)")
    p.add_argument("--fps", type=float, default=CONTROL_RATE_HZ,
                   help=f"frames per second (default {CONTROL_RATE_HZ:g}: the sim rate, plays in real time)")
    p.add_argument("--scale", type=int, default=DEFAULT_STYLE.scale,
                   help="upscale factor of the 600x150 frame")
    p.add_argument("--px-per-m", type=float, default=DEFAULT_VIEW.scaling,
                   help="[px/m] the sim's camera scaling (SimParams.scaling), to place the boxes")
    p.add_argument("--no-gt", action="store_true", help="leave out the ground-truth boxes")
    p.add_argument("--no-detections", action="store_true", help="leave out perception's boxes")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    src = Path(args.file)
    if not src.is_file():
        raise SystemExit(f"drivestack video: no such recording: {src}")
    if args.scale < 1 or args.fps <= 0:
        raise SystemExit("drivestack video: --scale must be >= 1 and --fps > 0")
    episodes = set(args.episode) if args.episode else None
    if args.output:
        out = Path(args.output)
    else:
        suffix = "_ep" + "_".join(map(str, sorted(episodes))) if episodes else ""
        out = src.with_name(f"{src.stem}{suffix}.mp4")
    style = Style(scale=args.scale, show_gt=not args.no_gt, show_detections=not args.no_detections)
    written, frames = write_video(src, out, episodes, args.fps, args.px_per_m, style, progress=not args.quiet)
    print(f"wrote {frames} frames to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
