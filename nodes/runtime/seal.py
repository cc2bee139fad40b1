"""Check and seal MCAP recordings whose writer did not finish (killed, disk full, interrupted).

A recording is written chunk by chunk straight to the file, so when its writer dies the file holds every
whole chunk up to the failure and then, maybe, part of one record. `seal` cuts that part off and appends
a `cut` metadata record (why and where the recording ends), the data-end record, a footer without a
summary section and the closing magic: the standard `mcap` reader (`make_reader(f).iter_messages()`)
then reads every message up to the failure, and drivestack's tools see that the run was cut.

`python -m nodes.runtime.seal FILE...` seals files left unsealed (the launcher does it itself when its
recorder dies; only a launcher killed with SIGKILL leaves one behind).
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from mcap.data_stream import ReadDataStream, RecordBuilder
from mcap.records import DataEnd, Footer, Metadata

MAGIC = b"\x89MCAP0\r\n"
CUT_METADATA = "cut"  # name of the metadata record that marks a sealed (cut) recording
_DATA_END, _METADATA = 0x0F, 0x0C
_RECORD = struct.Struct("<BQ")  # opcode, content length


class RecordingError(ValueError):
    """A recording that cannot be used: not MCAP, empty, or cut short and not sealed."""


@dataclass(frozen=True)
class RecordingState:
    """What a recording file is: complete, cut (sealed after a failure; `reason` says why) or unsealed."""

    path: Path
    state: str  # "complete" | "cut" | "unsealed"
    reason: str = ""

    @property
    def complete(self) -> bool:
        return self.state == "complete"


@dataclass
class _Layout:
    ends: list[int]  # end offset of each whole record of the data section, in order
    data_end: int | None  # offset of the DataEnd record, if written
    footer: bool  # the file ends with the closing magic
    cut: str | None  # reason of a `cut` metadata record, if any


def _scan(f) -> _Layout:  # noqa: ANN001 - a binary file
    """Walk the data section's records by their lengths (chunks are not decompressed)."""
    f.seek(0)
    if f.read(len(MAGIC)) != MAGIC:
        raise RecordingError("not an MCAP file (no MCAP magic at its start)")
    size = f.seek(0, os.SEEK_END)
    layout = _Layout([len(MAGIC)], None, False, None)
    pos = len(MAGIC)
    while pos + _RECORD.size <= size:
        f.seek(pos)
        opcode, length = _RECORD.unpack(f.read(_RECORD.size))
        end = pos + _RECORD.size + length
        if end > size:
            break  # the record its writer was writing when it died
        if opcode == _DATA_END:
            layout.data_end = pos
            layout.footer = size >= 2 * len(MAGIC) and _read_at(f, size - len(MAGIC), len(MAGIC)) == MAGIC
            break
        if opcode == _METADATA:
            layout.cut = _cut_reason(_read_at(f, pos + _RECORD.size, length)) or layout.cut
        layout.ends.append(end)
        pos = end
    return layout


def _read_at(f, offset: int, n: int) -> bytes:  # noqa: ANN001
    f.seek(offset)
    return f.read(n)


def _cut_reason(content: bytes) -> str | None:
    try:
        (n,) = struct.unpack_from("<I", content)
        if content[4:4 + n] != CUT_METADATA.encode():
            return None
        return Metadata.read(ReadDataStream(io.BytesIO(content))).metadata.get("reason", "cut")
    except (struct.error, ValueError, EOFError, UnicodeDecodeError):
        return None


def cut_reason(path: str | Path) -> str | None:
    """The reason recorded by `seal` if the file was cut, else None."""
    with open(path, "rb") as f:
        return _scan(f).cut


def inspect(path: str | Path) -> RecordingState:
    """The state of a recording; RecordingError if it is not a recording at all."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                raise RecordingError("empty file (0 bytes)")
            layout = _scan(f)
    except OSError as exc:
        raise RecordingError(f"cannot read it: {exc.strerror}") from None
    if layout.data_end is None or not layout.footer:
        return RecordingState(path, "unsealed", "cut short and not sealed")
    return RecordingState(path, "complete") if layout.cut is None else RecordingState(path, "cut", layout.cut)


def check_usable(path: str | Path) -> RecordingState:
    """Complete or sealed; else RecordingError with a sentence saying what is wrong and how to fix it."""
    try:
        state = inspect(path)
    except RecordingError as exc:
        raise RecordingError(f"{path}: not a usable recording: {exc}") from None
    if state.state == "unsealed":
        raise RecordingError(f"{path} is cut short and was never sealed (its recorder and launcher were "
                             f"killed?): seal it first with `python -m nodes.runtime.seal {path}`")
    return state


def _encode(*records: object) -> bytes:
    builder = RecordBuilder()
    for record in records:
        record.write(builder)  # type: ignore[attr-defined]
    return builder.end()


def seal(path: str | Path, reason: str) -> RecordingState:
    """Make a recording readable by the standard reader: complete files are left alone; a cut one ends at
    its last whole record, marked with `reason`. Raises RecordingError if it is not an MCAP file, OSError
    if the file cannot be written."""
    path = Path(path)
    state = inspect(path)
    if state.state != "unsealed":
        return state
    tail = _encode(Metadata(name=CUT_METADATA, metadata={"reason": reason}), DataEnd(data_section_crc=0),
                   Footer(summary_start=0, summary_offset_start=0, summary_crc=0)) + MAGIC
    with open(path, "r+b", buffering=0) as f:  # unbuffered: a full disk fails the write itself
        layout = _scan(f)
        # died while writing the summary: every message is there, cut before it; else after the last whole record
        ends = layout.ends if layout.data_end is None else [e for e in layout.ends if e <= layout.data_end]
        for attempt, keep in enumerate(reversed(ends)):
            f.truncate(keep)
            f.seek(keep)
            try:
                view = memoryview(tail)
                while view:
                    view = view[f.write(view) or 0:]
                os.fsync(f.fileno())
                break
            except OSError as exc:
                # the disk is still full: give up whole records at the end for room (a few at most)
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or attempt >= 8:
                    f.truncate(keep)
                    raise OSError(exc.errno, f"cannot seal {path}: {exc.strerror}") from None
    return RecordingState(path, "cut", reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.runtime.seal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="MCAP recordings")
    args = parser.parse_args(argv)
    code = 0
    for path in args.files:
        try:
            state = seal(path, "sealed by hand after its writer stopped")
        except (RecordingError, OSError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            code = 1
            continue
        print(f"{path}: {state.state}" + (f" ({state.reason})" if state.reason else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
