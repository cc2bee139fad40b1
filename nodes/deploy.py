"""Deployment backends: the shipped networks exported to ONNX and run by onnxruntime.

Backends of the perception and planning nodes (param `backend`):
  torch      the network in PyTorch, as trained (the reference)
  onnx       the same network exported to ONNX, float32, run by onnxruntime on one thread
  onnx_int8  the ONNX network after post-training int8 quantisation (onnxruntime.quantization)

The exported files live beside the file they come from (models/perception.pt -> models/perception.onnx and
models/perception.int8.onnx) and are made by `drivestack export perception|planner`, never at run time. Each
stores the sha256 of its source in its metadata: a backend refuses a file exported from other weights and
names the command that remakes it. This module imports neither torch nor onnx; onnxruntime only when a
session is opened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("torch", "onnx", "onnx_int8")
# A compressed backend is offered only within these bounds (the perception bench's targets, and the share of
# the torch planner's actions it must reproduce). `drivestack export` checks them on its calibration data
# and does not write an int8 file that misses them; bench/deploy.py checks them on the benchmark's data.
BOUNDS = {  # key: (comparison, bound)
    "precision_ratio": (">=", 0.99),
    "recall_ratio": (">=", 0.98),
    "pos_err_median_m": ("<=", 0.2),
    "action_agreement_ratio": (">=", 0.99),
}
SUFFIXES = {"onnx": ".onnx", "onnx_int8": ".int8.onnx"}
SOURCE_KEY = "drivestack.source_sha256"  # metadata: sha256 of the file the network was exported from
EXPORT_COMMANDS = {"perception": "drivestack export perception", "planner": "drivestack export planner"}
# what makes the file a model param names, said when it is missing (nodes.share.require_model)
TRAIN_COMMANDS = {"perception": "drivestack train perception  (or run the node with mode: gt)",
                  "planner": "drivestack train planner  (or: python -m nodes.planning.train)"}


@dataclass
class Exported:
    """What an export wrote: backend -> file, and why a file was not written."""

    paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def bound_failures(figures: dict[str, float]) -> list[str]:
    """The BOUNDS that `figures` miss, as 'key value (needs >= bound)'; keys not in figures are not checked."""
    misses = []
    for key, (op, bound) in BOUNDS.items():
        if key in figures:
            value = figures[key]
            ok = value >= bound if op == ">=" else value <= bound
            if not ok:
                misses.append(f"{key} {value:.4f} (needs {op} {bound:g})")
    return misses


def check_backend(backend: str, owner: str) -> None:
    """ValueError naming `owner` (a node) unless `backend` is one of BACKENDS."""
    if backend not in BACKENDS:
        raise ValueError(f"{owner}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def exported_path(source: str | Path, backend: str, out_dir: str | Path | None = None) -> Path:
    """Where the `backend` export of `source` lives: beside it (or in out_dir), the suffix replaced."""
    if backend not in SUFFIXES:
        raise ValueError(f"no exported file for backend {backend!r}; exported backends: {', '.join(SUFFIXES)}")
    src = Path(source)
    return Path(out_dir or src.parent) / (src.stem + SUFFIXES[backend])


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level (field number, value) pairs of a protobuf message: ints for varints, bytes otherwise."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, value))
            continue
        if wire == 2:
            size, i = _varint(data, i)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i + size > len(data):
            raise ValueError("truncated field")
        out.append((number, data[i:i + size]))
        i += size
    return out


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, read without onnx or onnxruntime (ModelProto field 14, each a
    StringStringEntryProto of key 1 and value 2), so that a check can read them without loading the network.
    ValueError when the file is not a readable ONNX model."""
    try:
        fields = _fields(Path(path).read_bytes())
        meta: dict[str, str] = {}
        for number, value in fields:
            if number == 14 and isinstance(value, bytes):
                entry = {n: v for n, v in _fields(value) if isinstance(v, bytes)}
                meta[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable ONNX model ({exc})") from None
    return meta


def check_export(path: str | Path, source: str | Path, command: str) -> dict[str, str]:
    """The metadata of the exported network at `path`, after checking that it was exported from `source`; else
    ValueError naming the file and `command`, the export command that remakes it. Reads files, loads nothing:
    a node's `check` and `open_session` say the same."""
    path, source = Path(path), Path(source)
    if not path.is_file():
        raise ValueError(f"no exported network at {path}: make it with `{command}` (nothing is exported at run "
                         "time), or use backend: torch")
    meta = onnx_metadata(path)
    if not source.is_file():
        raise ValueError(f"{path} is checked against the file it was exported from, {source}, which is missing")
    if meta.get(SOURCE_KEY) != file_sha256(source):
        raise ValueError(f"{path} was exported from other weights than {source}: remake it with `{command}`")
    return meta


def open_session(path: str | Path, source: str | Path, command: str, threads: int = 1) -> tuple[Any, dict]:
    """An onnxruntime session on `threads` CPU threads and the model's metadata.

    path: the exported ONNX file. source: the file it must have been exported from (checked by sha256).
    command: the export command, shown when the file is missing or stale."""
    import onnxruntime as ort

    path, source = Path(path), Path(source)
    check_export(path, source, command)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session, dict(session.get_modelmeta().custom_metadata_map)
