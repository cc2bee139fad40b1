"""Node.prepare(): the runtime's hook for work ahead of the next step (the sim's traffic decisions)."""

from __future__ import annotations

from msgs import Message
from nodes.demo.echo import EchoNode, EchoParams
from nodes.demo.ticker import TickerNode, TickerParams
from nodes.runtime.local import LocalNode, LocalStack
from nodes.runtime.node import Outputs


class Journal(TickerNode):
    """The toy ticker, noting each start, step and prepare in order."""

    def __init__(self, params: TickerParams) -> None:
        super().__init__(params)
        self.events: list[tuple[str, int, int]] = []

    def start(self) -> Outputs:
        if not self.events:  # the runtime's call (the ticker calls start() itself between episodes)
            self.events.append(("start", self.episode, self.tick))
        return super().start()

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        self.events.append(("step", self.episode, self.tick))
        return super().step(inputs)

    def prepare(self) -> None:
        self.events.append(("prepare", self.episode, self.tick))


def test_the_in_process_stack_prepares_after_every_start_and_step_before_the_next_one() -> None:
    ticker = Journal(TickerParams(ticks=5, episodes=2))
    LocalStack([
        LocalNode("ticker", ticker, dict(TickerNode.inputs), dict(TickerNode.outputs)),
        LocalNode("echo", EchoNode(EchoParams()), dict(EchoNode.inputs), dict(EchoNode.outputs)),
    ]).run()
    kinds = [kind for kind, _, _ in ticker.events]
    assert kinds[0] == "start" and kinds.count("step") == 10
    # each start or step is followed by exactly one prepare, before anything else happens to the node
    assert all(nxt == "prepare" for kind, nxt in zip(kinds, kinds[1:], strict=False) if kind != "prepare")
    assert all(kind != "prepare" for kind, nxt in zip(kinds, kinds[1:], strict=False) if nxt == "prepare")
    assert kinds.count("prepare") == kinds.count("step") + 1
