"""The recorder node: every topic of the run into one MCAP file, finalised on SIGINT."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from msgs import Message, encode_body
from msgs.registry import TOPICS
from nodes.recorder.foxglove_views import FoxgloveViews
from nodes.runtime.mcap_io import RecordingWriter
from nodes.runtime.node import Node, Outputs, Params
from nodes.viewer.foxglove_topics import message_encoding


class RecorderParams(Params, kw_only=True, forbid_unknown_fields=True):
    path: str = ""  # output file; empty: <run dir>/recording.mcap (the run dir comes from `launch`)
    topics: list[str] = []  # topics to record; empty: every registered topic
    exclude: list[str] = []  # topics to leave out
    foxglove: bool = True  # also write Foxglove views (camera, boxes, ego) under /foxglove/...; needs foxglove-sdk


class RecorderNode(Node):
    name: ClassVar[str] = "recorder"
    Params: ClassVar[type[Params]] = RecorderParams
    lockstep_inputs: ClassVar[bool] = False
    drain_on_stop: ClassVar[bool] = True
    # A recorder under load runs behind its publishers by up to two queues of LOCKSTEP_HWM messages per
    # topic (a camera frame costs ~3 ms to compress): it may take that long to drain them, within the
    # launcher's RECORD_GRACE_S (10 s) before it would be killed.
    drain_limit_s: ClassVar[float] = 8.0
    drain_quiet_s: ClassVar[float] = 0.5  # a loaded machine may not run a publisher's I/O thread for 0.2 s
    keeps_record: ClassVar[bool] = True

    @classmethod
    def record_file(cls, params: Params, run_dir: str) -> str | None:
        assert isinstance(params, RecorderParams)
        return params.path or str(Path(run_dir) / "recording.mcap")

    def __init__(self, params: RecorderParams) -> None:
        super().__init__(params)
        run_dir = Path(os.environ.get("DRIVESTACK_RUN_DIR", "."))
        self.path = Path(self.record_file(params, str(run_dir)) or "")
        metadata: dict[str, dict[str, str]] = {}
        launch_json = run_dir / "launch.json"
        if launch_json.is_file():
            info = launch_json.read_text()
            metadata["launch"] = {"resolved": info}
            try:
                import json

                src = Path(json.loads(info)["launch_file"])
                metadata["launch"]["file"] = str(src)
                metadata["launch"]["text"] = src.read_text()
            except (OSError, KeyError, ValueError):
                pass
        self.writer = RecordingWriter(self.path, metadata)
        self.views: FoxgloveViews | None = None
        self.view_errors = 0
        self.last_body: dict[str, bytes] = {}
        self.resent_skipped = 0
        if params.foxglove:
            try:
                self.views = FoxgloveViews()
            except ImportError:
                print('recorder: foxglove-sdk is not installed, so no Foxglove views in the recording '
                      '(pip install "drivestack[foxglove]", or foxglove:=false to silence this)', flush=True)

    @classmethod
    def input_ports(cls, params: Params) -> dict[str, str]:
        assert isinstance(params, RecorderParams)
        topics = params.topics or list(TOPICS)
        return {t: t for t in topics if t not in params.exclude}

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, RecorderParams)
        unknown = [t for t in params.topics + params.exclude if t not in TOPICS]
        if unknown:
            raise ValueError(f"topics: unknown topic(s) {unknown}; registered: {sorted(TOPICS)}")
        if params.path:  # the writer makes the missing folders and opens the file when the node is built
            path = Path(params.path)
            if path.is_dir():
                raise ValueError(f"path: {params.path!r} is a folder; give the recording's file name (or nothing: "
                                 "<run dir>/recording.mcap)")
            folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
            if not folder.is_dir():
                raise ValueError(f"path: {params.path!r} cannot be made: {str(folder)!r} is a file, not a folder")

    def on_message(self, port: str, msg: Message) -> None:
        now = time.time_ns()
        body = encode_body(msg)
        if body == self.last_body.get(port):  # a tick sent again for a respawned node: recorded once
            self.resent_skipped += 1
            return
        self.last_body[port] = body
        self.writer.write_raw(port, type(msg), body, now)
        if self.views is not None:
            try:
                views = self.views.convert(port, msg)
            except Exception as exc:  # noqa: BLE001 - a view must never cost the recording itself
                self.view_errors += 1
                if self.view_errors == 1:
                    print(f"recorder: no Foxglove view of {port}: {type(exc).__name__}: {exc}", flush=True)
                return
            for topic, schema, data in views:
                self.writer.write_foreign(topic, schema, message_encoding(schema), data, now)

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        return []

    def counters(self) -> dict[str, int]:
        return {"recorded": self.writer.messages, "foxglove_view_errors": self.view_errors,
                "resent_skipped": self.resent_skipped}

    def close(self) -> None:
        self.writer.finish()
        if not self.writer.failed:
            print(f"recorded {self.writer.messages} messages to {self.path}", flush=True)


NODE = RecorderNode
