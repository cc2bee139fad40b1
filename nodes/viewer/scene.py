"""What one drawn frame shows, and how messages of a run are matched to a camera frame's tick.

Each per-tick message carries (episode, tick) in its header. For the frame of tick k the scene takes, per
topic, the message of tick k; when a topic has none for k (real-time mode, where nodes answer the latest
input, or a planner that has not spoken yet) it takes the latest earlier one of the same episode.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from msgs import DrivingTarget, EgoState, EpisodeEvent, Image, Message, ObjectArray, Plan

# Port names shared by the viewer node, the video and the Foxglove bridge, with their default topics.
TOPICS: dict[str, str] = {
    "camera": "/sim/camera",
    "ego": "/sim/ego",
    "gt": "/sim/objects_gt",
    "objects": "/perception/objects",
    "plan": "/planning/plan",
    "target": "/decision/target",
}
Key = tuple[int, int]  # (episode, tick)


@dataclass(frozen=True)
class Scene:
    camera: Image
    ego: EgoState | None = None
    gt: ObjectArray | None = None
    objects: ObjectArray | None = None
    plan: Plan | None = None
    target: DrivingTarget | None = None

    @property
    def key(self) -> Key:
        return self.camera.header.episode, self.camera.header.tick


class TickHistory:
    """One topic's messages by (episode, tick); `at` finds the one to show for a tick.

    limit: keep only the newest `limit` messages (a live viewer); None keeps all (a recording).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._keys: list[Key] = []
        self._msgs: list[Message] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, msg: Message) -> None:
        key = (msg.header.episode, msg.header.tick)
        if self._keys and key >= self._keys[-1]:  # the usual case: in order
            if key == self._keys[-1]:
                self._msgs[-1] = msg
                return
            self._keys.append(key)
            self._msgs.append(msg)
        else:
            i = bisect.bisect_left(self._keys, key)
            if i < len(self._keys) and self._keys[i] == key:
                self._msgs[i] = msg
            else:
                self._keys.insert(i, key)
                self._msgs.insert(i, msg)
        if self.limit is not None and len(self._keys) > self.limit:
            del self._keys[: -self.limit], self._msgs[: -self.limit]

    def at(self, key: Key) -> Message | None:
        """The message of this tick, else the latest earlier one of the same episode, else None."""
        i = bisect.bisect_right(self._keys, key) - 1
        if i >= 0 and self._keys[i][0] == key[0]:
            return self._msgs[i]
        return None


class SceneBook:
    """Per-topic histories and the scene for a camera frame."""

    def __init__(self, ports: Iterable[str] = ("ego", "gt", "objects", "plan", "target"),
                 limit: int | None = None) -> None:
        self.histories = {port: TickHistory(limit) for port in ports}

    def add(self, port: str, msg: Message) -> None:
        self.histories[port].add(msg)

    def scene(self, camera: Image) -> Scene:
        key = (camera.header.episode, camera.header.tick)
        found = {port: h.at(key) for port, h in self.histories.items()}
        return Scene(camera=camera, **found)  # type: ignore[arg-type]


class LiveScenes:
    """Turns a live message stream into scenes to draw, one per camera frame, in order.

    A frame is released when the next frame (or its episode's end) arrives: by then, in lockstep mode,
    every message that answers its tick (perception, plan, target) is in. One tick of delay.
    """

    def __init__(self, history_ticks: int = 16) -> None:
        self.book = SceneBook(limit=history_ticks)
        self.pending: Image | None = None

    def add(self, port: str, msg: Message) -> list[Scene]:
        """Takes a message (ports as in TOPICS, and "episode": /sim/episode); returns the scenes now ready."""
        if port == "camera":
            assert isinstance(msg, Image)
            ready = self.flush() if self.pending is not None and _key(self.pending) != _key(msg) else []
            self.pending = msg
            return ready
        if port == "episode":
            assert isinstance(msg, EpisodeEvent)
            return self.flush() if msg.kind == "end" else []
        if port in self.book.histories:
            self.book.add(port, msg)
        return []

    def flush(self) -> list[Scene]:
        """The pending frame's scene, if any (at the end of a run)."""
        if self.pending is None:
            return []
        scene, self.pending = self.book.scene(self.pending), None
        return [scene]


def _key(msg: Message) -> Key:
    return msg.header.episode, msg.header.tick
