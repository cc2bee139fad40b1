"""`drivestack info REC.mcap`: what a recording holds, like `ros2 bag info`.

Reads the file record by record (a file cut short by a killed recorder is read up to its last whole
record and reported as cut): size, wall-clock span, episodes with seeds, ticks and end reasons, per-topic
message counts, types, encodings and rates, and the launch file and args from the file's metadata.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"\x89MCAP0\r\n"


@dataclass
class Channel:
    topic: str
    schema: str
    encoding: str
    count: int = 0


@dataclass
class Episode:
    episode: int
    seed: int
    reason: str = ""  # "" while the episode has no end event
    ticks: int = 0
    sim_s: float = 0.0


@dataclass
class RecordingInfo:
    path: Path
    size: int
    complete: bool
    problem: str = ""  # why reading stopped early (a cut file)
    start_ns: int | None = None
    end_ns: int | None = None
    channels: dict[int, Channel] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    profile: str = ""

    @property
    def duration_s(self) -> float:
        return 0.0 if self.start_ns is None or self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    @property
    def messages(self) -> int:
        return sum(c.count for c in self.channels.values())


class NotMcap(ValueError):
    pass


def read_info(path: str | Path) -> RecordingInfo:
    """Everything `info` prints, from one pass over the file. NotMcap if it is not an MCAP file."""
    from mcap.records import Channel as McapChannel
    from mcap.records import Footer, Header, Metadata, Schema
    from mcap.records import Message as McapMessage
    from mcap.stream_reader import StreamReader

    path = Path(path)
    with open(path, "rb") as f:
        if f.read(8) != MAGIC:
            raise NotMcap(f"{path}: not an MCAP file (no MCAP magic at its start)")
        f.seek(0)
        info = RecordingInfo(path=path, size=path.stat().st_size, complete=False)
        schemas: dict[int, Any] = {}
        stream = StreamReader(io.BufferedReader(f), skip_magic=False)  # type: ignore[arg-type]
        try:
            for record in stream.records:
                if isinstance(record, Header):
                    info.profile = record.profile
                elif isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, McapChannel) and record.id not in info.channels:  # again in the summary
                    schema = schemas.get(record.schema_id)
                    info.channels[record.id] = Channel(record.topic, schema.name if schema else "",
                                                       record.message_encoding)
                elif isinstance(record, McapMessage):
                    _add_message(info, schemas, record)
                elif isinstance(record, Metadata):
                    info.metadata[record.name] = dict(record.metadata)
                elif isinstance(record, Footer):
                    info.complete = True
        except Exception as exc:  # noqa: BLE001 - the cut-off tail of a killed writer: report what was read
            info.problem = f"{type(exc).__name__}: {exc}"
    info.episodes.sort(key=lambda e: e.episode)
    return info


def _add_message(info: RecordingInfo, schemas: dict[int, Any], record: Any) -> None:
    channel = info.channels.get(record.channel_id)
    if channel is None:
        return
    channel.count += 1
    t = record.log_time
    info.start_ns = t if info.start_ns is None else min(info.start_ns, t)
    info.end_ns = t if info.end_ns is None else max(info.end_ns, t)
    if channel.topic == "/sim/episode" and channel.encoding == "msgpack":
        import msgspec

        from msgs import EpisodeEvent

        event = msgspec.msgpack.decode(record.data, type=EpisodeEvent)
        episode = next((e for e in info.episodes if e.episode == event.header.episode), None)
        if episode is None:
            episode = Episode(event.header.episode, event.seed)
            info.episodes.append(episode)
        if event.kind == "end":
            episode.reason = event.reason
            episode.ticks = event.header.tick
            episode.sim_s = event.header.stamp_ns / 1e9


def _launch(info: RecordingInfo) -> tuple[str, dict[str, Any]]:
    launch = info.metadata.get("launch", {})
    try:
        resolved = json.loads(launch.get("resolved", "{}"))
    except ValueError:
        resolved = {}
    return launch.get("file") or resolved.get("launch_file", ""), resolved.get("args", {})


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def format_info(info: RecordingInfo) -> str:
    from datetime import datetime

    lines = [f"Files:        {info.path}", f"Size:         {_size(info.size)}"]
    if info.complete:
        lines.append("State:        complete")
    else:
        why = f" ({info.problem})" if info.problem else ""
        lines.append("State:        CUT: no footer, its writer stopped before finishing it; read up to the last "
                     f"whole record{why}")
    lines.append(f"Duration:     {info.duration_s:.3f} s (wall clock)")
    if info.start_ns is not None:
        for label, ns in (("Start:       ", info.start_ns), ("End:         ", info.end_ns or 0)):
            lines.append(f"{label} {datetime.fromtimestamp(ns / 1e9).isoformat(timespec='milliseconds')}")
    lines.append(f"Messages:     {info.messages}")
    file, args = _launch(info)
    if file:
        lines.append(f"Launch file:  {file}")
    if args:
        lines.append("Launch args:  " + " ".join(f"{k}:={json.dumps(v) if not isinstance(v, str) else v}"
                                                for k, v in args.items()))
    lines.append(f"Episodes:     {len(info.episodes)}")
    for e in info.episodes:
        end = f"{e.reason}, {e.ticks} ticks, {e.sim_s:.1f} s simulated" if e.reason else "no end event"
        lines.append(f"  episode {e.episode:<3} seed {e.seed:<10} {end}")
    lines.append("Topic information:")
    width = max((len(c.topic) for c in info.channels.values()), default=10)
    duration = info.duration_s
    for c in sorted(info.channels.values(), key=lambda c: c.topic):
        rate = f"{c.count / duration:7.1f} Hz" if duration > 0 else "      - Hz"
        lines.append(f"  {c.topic:<{width}}  {c.count:>7} msgs  {rate}  {c.schema} ({c.encoding})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivestack info", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="+", help="MCAP recording(s), e.g. runs/<stamp>/recording.mcap")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    args = parser.parse_args(argv)
    code = 0
    for i, path in enumerate(args.file):
        try:
            info = read_info(path)
        except (NotMcap, OSError) as exc:
            print(f"drivestack info: {exc}", file=sys.stderr)
            code = 2
            continue
        if args.json:
            print(json.dumps(as_dict(info)))
        else:
            print(("\n" if i else "") + format_info(info))
    return code


def as_dict(info: RecordingInfo) -> dict[str, Any]:
    file, launch_args = _launch(info)
    return {
        "path": str(info.path), "size_bytes": info.size, "complete": info.complete, "problem": info.problem,
        "duration_s": info.duration_s, "messages": info.messages, "launch_file": file, "args": launch_args,
        "episodes": [vars(e) for e in info.episodes],
        "topics": {c.topic: {"count": c.count, "schema": c.schema, "encoding": c.encoding}
                   for c in info.channels.values()},
    }


if __name__ == "__main__":
    sys.exit(main())
