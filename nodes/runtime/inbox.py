"""Lockstep input matching: a node handles tick k when all its per-tick inputs for tick k are in.

Pure bookkeeping, shared by the process runner and the in-process composition so both schedule a node
identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msgs import Message

Key = tuple[int, int]  # (episode, tick)


@dataclass
class LockstepInbox:
    ports: tuple[str, ...]  # per-tick input ports
    pending: dict[Key, dict[str, Message]] = field(default_factory=dict)
    last_done: Key = (-1, -1)
    dropped_late: int = 0
    duplicates: int = 0

    def put(self, port: str, msg: Message) -> None:
        key = (msg.header.episode, msg.header.tick)
        if key <= self.last_done:
            self.dropped_late += 1  # a tick already handled (or skipped on a stall): nothing to do with it
            return
        slot = self.pending.setdefault(key, {})
        if port in slot:
            self.duplicates += 1  # first message of a tick wins: a node answers a tick once
            return
        slot[port] = msg

    def ready(self) -> list[tuple[Key, dict[str, Message | None]]]:
        """Complete ticks, oldest first, removed from the inbox."""
        done: list[tuple[Key, dict[str, Message | None]]] = []
        for key in sorted(self.pending):
            slot = self.pending[key]
            if len(slot) < len(self.ports):
                break  # ticks are handled in order: a later complete tick waits for this one
            done.append((key, dict(slot)))
            del self.pending[key]
            self.last_done = key
        return done

    def oldest_incomplete(self) -> Key | None:
        return min(self.pending) if self.pending else None

    def force_oldest(self) -> tuple[Key, dict[str, Message | None]] | None:
        """Hand out the oldest incomplete tick with its missing ports as None (a stalled input)."""
        key = self.oldest_incomplete()
        if key is None:
            return None
        slot = self.pending.pop(key)
        self.last_done = key
        return key, {port: slot.get(port) for port in self.ports}
