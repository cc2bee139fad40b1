"""Decode drivestack recordings with the standard `mcap` reader: a DecoderFactory for their channels.

    from mcap.reader import make_reader
    from msgs.mcap_decoder import DecoderFactory

    with open("runs/<stamp>/recording.mcap", "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            ...

- `msgpack` channels with a `drivestack.<Type>` schema (every drivestack topic) decode to that message struct
  (`msgs.types`), exactly as the bus decodes them; `msgspec.to_builtins(decoded)` gives plain data.
- `json` channels (the Foxglove JSON views: /foxglove/decision/target, ...) decode to dicts.
- `protobuf` channels (the Foxglove views /foxglove/sim/camera, ...) decode to protobuf messages built from the
  schema's own FileDescriptorSet, when the `protobuf` package is installed (foxglove-sdk's users have it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
from mcap.decoder import DecoderFactory as _McapDecoderFactory
from mcap.records import Schema

from msgs.registry import TYPES_BY_NAME

SCHEMA_PREFIX = "drivestack."


class DecoderFactory(_McapDecoderFactory):
    """drivestack's `msgpack` channels to message structs, `json` channels to dicts; None for others."""

    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Callable[[bytes], Any] | None:
        if message_encoding == "json":
            return json.loads
        if message_encoding == "protobuf" and schema is not None and schema.encoding == "protobuf":
            return _protobuf_decoder(schema)
        if message_encoding != "msgpack" or schema is None or not schema.name.startswith(SCHEMA_PREFIX):
            return None
        kind = TYPES_BY_NAME.get(schema.name.removeprefix(SCHEMA_PREFIX))
        if kind is None:
            return None
        decoder = msgspec.msgpack.Decoder(kind)
        return decoder.decode


def _protobuf_decoder(schema: Schema) -> Callable[[bytes], Any] | None:
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        return None
    files = descriptor_pb2.FileDescriptorSet.FromString(schema.data)
    pool = descriptor_pool.DescriptorPool()  # one per schema: two schemas may carry the same files
    for file in files.file:  # dependencies come first in a FileDescriptorSet
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name)).FromString
