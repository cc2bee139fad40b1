"""What the launcher shows of a running stack comes from observers that the caller hands it; the runtime
itself knows only topics, messages and lines of text.

An observer names the topics it watches (`watches`), gets each decoded message of them (`on_message`) and
returns lines for the console; the supervisor keeps the observer's `status` text as a live line at the bottom
of a terminal, prints its `report` once the run is over, and stops the stack when the observer says it has
`finished` (the only way a launch learns that a required node started by another launch is done).

The callbacks run in the supervisor's own loop, the loop that drains the watched topics: in lockstep mode a
publisher whose queue towards the launcher is full waits, so an observer must be quick (no I/O beyond a
line to a file, nothing that blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from msgs import Message


@dataclass(frozen=True)
class Watch:
    """One topic an observer reads.

    topic:    the topic's name.
    complete: every message from the first one on. The launcher counts as one of the publisher's subscribers,
              so the publisher's start-up barrier waits for it; granted only when a node of this launch
              publishes the topic (a topic published by another launch is watched as a late joiner).
              False: a late joiner that may miss the first messages (for a status line), and that a
              publisher's start-up barrier does not wait for.
    """

    topic: str
    complete: bool = False


@dataclass(frozen=True)
class StackView:
    """What an observer may know of the stack when it chooses its watches.

    published: every topic some node of the launch file publishes.
    local:     of them, the topics published by nodes this launch starts (a split stack runs the rest elsewhere).
    live:      the console shows a live status line (a terminal), so watches for it are worth their cost.
    """

    published: frozenset[str]
    local: frozenset[str]
    live: bool


class Observer(Protocol):
    """A reader of some topics of a running stack, for the launcher's console (see the module docstring)."""

    def watches(self, stack: StackView) -> Sequence[Watch]:
        """The topics to read, chosen once before any node starts.

        :param stack: the stack's topics and whether a live status line is shown.
        :return: one `Watch` per topic; topics the stack does not publish are ignored.
        """
        ...

    def on_message(self, topic: str, msg: Message) -> Sequence[str]:
        """One decoded message of a watched topic, in the order it arrived.

        :param topic: the topic it came on.
        :param msg: the message.
        :return: lines to print now (the launcher prefixes them with "[launch] ").
        """
        ...

    def status(self) -> str | None:
        """The live status line as of now; None while there is nothing to show."""
        ...

    def finished(self) -> bool:
        """True once the messages seen say the run is over (the launcher then stops the stack)."""
        ...

    def report(self) -> Sequence[str]:
        """Lines printed once the run is over, before the paths of its recordings."""
        ...
