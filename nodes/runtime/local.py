"""Several nodes composed in one process, with the same lockstep semantics as the process runtime.

Messages travel through a FIFO instead of sockets; each node is scheduled by the same `LockstepInbox`
as in its own process, so the per-topic message sequence is identical. Used for training, fast
evaluation and parity tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from msgs import Message
from nodes.runtime.inbox import LockstepInbox
from nodes.runtime.launchfile import LaunchPlan
from nodes.runtime.node import Node, is_per_tick

Observer = Callable[[str, Message], None]


@dataclass
class LocalNode:
    name: str
    node: Node
    inputs: dict[str, str]  # port -> topic
    outputs: dict[str, str]
    tick_ports: tuple[str, ...] = ()
    inbox: LockstepInbox = field(init=False)
    episode: int = -1

    def __post_init__(self) -> None:
        if not self.tick_ports:
            self.tick_ports = tuple(p for p in self.inputs if is_per_tick(type(self.node), self.node.params, p))
        self.inbox = LockstepInbox(self.tick_ports)


class LocalStack:
    def __init__(self, nodes: list[LocalNode]) -> None:
        self.nodes = nodes
        self.routes: dict[str, list[tuple[LocalNode, str]]] = {}
        for n in nodes:
            for port, topic in n.inputs.items():
                self.routes.setdefault(topic, []).append((n, port))
        self.observers: list[Observer] = []
        self.published = 0

    @classmethod
    def from_plan(cls, plan: LaunchPlan) -> LocalStack:
        """The plan's nodes, constructed with their validated params, in one process."""
        return cls([LocalNode(n.name, n.node_cls(n.params), dict(n.inputs), dict(n.outputs)) for n in plan.nodes])

    def run(self, max_messages: int | None = None) -> None:
        """Start every node and deliver messages until the loop goes quiet (a source finished)."""
        queue: deque[tuple[str, Message]] = deque()
        for n in self.nodes:
            queue.extend((n.outputs[port], msg) for port, msg in n.node.start())
            n.node.prepare()
        while queue:
            topic, msg = queue.popleft()
            self.published += 1
            for observe in self.observers:
                observe(topic, msg)
            for n, port in self.routes.get(topic, ()):
                queue.extend(self._deliver(n, port, msg))
            if max_messages is not None and self.published >= max_messages:
                break
        for n in self.nodes:
            n.node.close()

    def feed(self, topic: str, msg: Message) -> list[tuple[str, Message]]:
        """Deliver one message from outside (a recording) and return what the nodes publish in answer;
        the answers are not delivered back (each node sees only its recorded inputs)."""
        out: list[tuple[str, Message]] = []
        for n, port in self.routes.get(topic, ()):
            out.extend(self._deliver(n, port, msg))
        return out

    def _deliver(self, n: LocalNode, port: str, msg: Message) -> list[tuple[str, Message]]:
        if n.node.finished:
            return []
        if port not in n.tick_ports:
            n.node.on_message(port, msg)
            return []
        n.inbox.put(port, msg)
        out: list[tuple[str, Message]] = []
        for (episode, _tick), inputs in n.inbox.ready():
            if episode != n.episode:
                n.node.reset(episode)
                n.episode = episode
            out.extend((n.outputs[p], m) for p, m in n.node.step(inputs))
            n.node.prepare()  # the same call the process runtime makes after publishing
        return out
