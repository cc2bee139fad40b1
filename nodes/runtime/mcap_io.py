"""MCAP files of drivestack runs: one channel per topic, MessagePack bodies, JSON Schemas embedded.

A record's data is the message's MessagePack body with any pixels inline (`msgs.encode_body`), so each
record decodes on its own with the channel's type; `msgs.encode` turns it back into the wire frames.
log_time is the wall-clock receive time [ns]; the simulated time is in every message's header.

Companion channels (`write_foreign`: the recorder's Foxglove views under /foxglove/...) carry other
encodings (protobuf with Foxglove's schemas); `read_records` leaves them out, so replay, golden tests and
metrics see the drivestack topics only.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from msgs import Message, encode_body
from msgs.registry import TYPES_BY_NAME

MESSAGE_ENCODING = "msgpack"
SCHEMA_ENCODING = "jsonschema"
PROFILE = "drivestack"
CHUNK_BYTES = 1 << 20  # [bytes, uncompressed] a SIGKILL loses at most the chunk being filled


class RecordingWriter:
    def __init__(self, path: str | Path, metadata: dict[str, dict[str, str]] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _DirectFile(self.path)
        self._writer = Writer(self._file, chunk_size=CHUNK_BYTES, compression=CompressionType.ZSTD)
        self._writer.start(profile=PROFILE, library="drivestack")
        for name, data in (metadata or {}).items():
            self._writer.add_metadata(name, data)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[str, int] = {}
        self.messages = 0
        self.finished = False
        self.failed: OSError | None = None

    def _channel(self, topic: str, schema_name: str, schema_encoding: str, schema_data: Callable[[], bytes],
                 message_encoding: str) -> int:
        """The channel of `topic`, registered (with its schema, made only once) on first use."""
        cid = self._channels.get(topic)
        if cid is None:
            sid = self._schemas.get(schema_name)
            if sid is None:
                sid = self._schemas[schema_name] = self._writer.register_schema(
                    schema_name, schema_encoding, schema_data())
            cid = self._channels[topic] = self._writer.register_channel(topic, message_encoding, sid)
            self._sequence[topic] = 0
        return cid

    def _add(self, cid: int, topic: str, data: bytes, log_time_ns: int) -> None:
        if self.failed:
            raise self.failed
        self._sequence[topic] += 1
        try:
            self._writer.add_message(cid, log_time=log_time_ns, data=data, publish_time=log_time_ns,
                                     sequence=self._sequence[topic])
        except OSError as exc:
            self._fail(exc)
        self.messages += 1

    def _fail(self, exc: OSError) -> None:
        """A write failed (disk full, quota, I/O error): stop writing; the file keeps its whole chunks and
        `nodes.runtime.seal` makes it readable up to them."""
        self.failed = OSError(exc.errno, f"cannot write {self.path}: {exc.strerror}")
        self._file.close()
        raise self.failed from None

    def write(self, topic: str, msg: Message, log_time_ns: int) -> None:
        self.write_raw(topic, type(msg), encode_body(msg), log_time_ns)

    def write_raw(self, topic: str, kind: type[Message], body: bytes, log_time_ns: int) -> None:
        cid = self._channel(topic, f"drivestack.{kind.__name__}", SCHEMA_ENCODING,
                            lambda: json.dumps(msgspec.json.schema(kind)).encode(), MESSAGE_ENCODING)
        self._add(cid, topic, body, log_time_ns)

    def write_foreign(self, topic: str, schema: tuple[str, str, bytes], message_encoding: str, data: bytes,
                      log_time_ns: int) -> None:
        """A message in another encoding on a companion channel; schema is (name, encoding, data)."""
        name, encoding, schema_data = schema
        self._add(self._channel(topic, name, encoding, lambda: schema_data, message_encoding), topic, data,
                  log_time_ns)

    def finish(self) -> None:
        if not self.finished and not self.failed:
            self.finished = True
            try:
                self._writer.finish()
            except OSError as exc:
                self._fail(exc)
            self._file.close()


class _DirectFile:
    """A write-only file with no user-space buffer: each finished chunk goes straight to the OS, so it
    survives a SIGKILL of the recorder. (The mcap Writer buffers a raw file itself; this is not one.)"""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._pos = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._pos += n
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class Record:
    topic: str
    type_name: str
    data: bytes  # MessagePack body
    log_time_ns: int

    def decode(self) -> Message:
        return msgspec.msgpack.decode(self.data, type=TYPES_BY_NAME[self.type_name])


def _type_name(schema_name: str) -> str:
    return schema_name.removeprefix("drivestack.")


def read_records(path: str | Path, topics: set[str] | None = None) -> Iterator[Record]:
    """Every message in log-time order. A file cut short (its writer was killed) is read up to its last
    complete chunk."""
    with open(path, "rb") as f:
        if _is_finalised(f):
            reader = make_reader(f)
            for schema, channel, message in reader.iter_messages(topics=list(topics) if topics else None):
                if channel.message_encoding == MESSAGE_ENCODING:
                    yield Record(channel.topic, _type_name(schema.name), message.data, message.log_time)
            return
        yield from _recover(f, topics)


def _is_finalised(f: BinaryIO) -> bool:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size < 8:
        return False
    f.seek(size - 8)
    magic = f.read(8)
    f.seek(0)
    return magic == b"\x89MCAP0\r\n"


def _recover(f: BinaryIO, topics: set[str] | None) -> Iterator[Record]:
    from mcap.records import Channel, Schema
    from mcap.records import Message as McapMessage

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, int]] = {}
    stream = StreamReader(io.BufferedReader(f), skip_magic=False)  # type: ignore[arg-type]
    try:
        for record in stream.records:
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel) and record.message_encoding == MESSAGE_ENCODING:
                channels[record.id] = (record.topic, record.schema_id)
            elif isinstance(record, McapMessage) and record.channel_id in channels:
                topic, sid = channels[record.channel_id]
                if topics is None or topic in topics:
                    yield Record(topic, _type_name(schemas[sid]), record.data, record.log_time)
    except Exception:  # noqa: BLE001 - the cut-off tail of a killed writer: stop at the last whole record
        return


def read_metadata(path: str | Path) -> dict[str, dict[str, str]]:
    with open(path, "rb") as f:
        if not _is_finalised(f):
            return {}
        reader = make_reader(f)
        return {m.name: dict(m.metadata) for m in reader.iter_metadata()}


def summary(path: str | Path) -> dict[str, Any]:
    counts: dict[str, int] = {}
    first = last = None
    for rec in read_records(path):
        counts[rec.topic] = counts.get(rec.topic, 0) + 1
        first = rec.log_time_ns if first is None else first
        last = rec.log_time_ns
    return {"messages": counts, "wall_s": ((last or 0) - (first or 0)) / 1e9}
