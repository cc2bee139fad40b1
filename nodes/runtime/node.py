"""What a node is: typed params, declared ports, and a pure `step` the runtime calls.

A node class holds no sockets and reads no clock. The runtime (`nodes.runtime.runner`) binds it to
ZeroMQ in its own process; `nodes.runtime.local` composes several in one process with the same
lockstep semantics. Either way the node sees the same calls in the same order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from msgs import Header, Message


class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every node's params. Subclasses give each field a default and a unit comment."""


Outputs = list[tuple[str, Message]]


class Node:
    """Base class of every node.

    Subclasses set:
      name:     default node name in launch files and logs.
      Params:   a `Params` subclass; unknown or mistyped keys are rejected before the node starts.
      inputs:   port -> default topic. Per-tick topics are matched by (episode, tick) in lockstep mode.
      outputs:  port -> default topic.
      trigger:  in real-time mode, the input port whose arrival runs `step` (others: latest value).
      lockstep_inputs: False for an observer (recorder, viewer) that takes every message as an event.
    """

    name: ClassVar[str] = "node"
    Params: ClassVar[type[Params]] = Params
    inputs: ClassVar[dict[str, str]] = {}
    outputs: ClassVar[dict[str, str]] = {}
    trigger: ClassVar[str | None] = None
    lockstep_inputs: ClassVar[bool] = True  # False: every input is an event (on_message), e.g. the recorder
    drain_on_stop: ClassVar[bool] = False  # on SIGINT, take in what is still queued before exiting
    drain_quiet_s: ClassVar[float] = 0.2  # [s] draining ends when nothing came for this long
    drain_limit_s: ClassVar[float] = 2.0  # [s] the most that draining may take
    keeps_record: ClassVar[bool] = False  # its file is the run's record (the recorder): see record_file
    # True for the loop's clock (the sim): its per-tick outputs open the next tick; stall timeouts count from it
    opens_ticks: ClassVar[bool] = False

    def __init__(self, params: Params) -> None:
        type(self).check(params)  # the same rules `launch --check` runs, so a node built directly obeys them
        self.params = params

    @classmethod
    def input_ports(cls, params: Params) -> dict[str, str]:
        """Inputs for these params (a node whose inputs depend on a mode overrides this)."""
        return dict(cls.inputs)

    @classmethod
    def output_ports(cls, params: Params) -> dict[str, str]:
        return dict(cls.outputs)

    def start(self) -> Outputs:
        """Messages to publish once every node is ready (a source, such as the sim, starts the loop here)."""
        return []

    def reset(self, episode: int) -> None:
        """Called before the first input of a new episode is handled."""

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        """Handle one tick. `inputs` maps each input port to its message (None: absent in real-time mode)."""
        raise NotImplementedError

    def on_message(self, port: str, msg: Message) -> None:
        """An event input (a topic that is not per-tick, e.g. /sim/episode) arrived."""

    def prepare(self) -> None:
        """Work for the next `step` that does not depend on its inputs (the sim: the traffic's next move).

        The runtime calls it right after publishing what `start` or `step` returned, so in a multi-process
        stack it overlaps with the nodes downstream instead of adding to the loop's tick; in one process it
        runs at the same point. It must leave the next `step`'s result exactly as it would be without it."""

    def realtime_period(self) -> float | None:
        """[s] In real-time mode, call `step` on this wall-clock period with the latest inputs (a source)."""
        return None

    @classmethod
    def check(cls, params: Params) -> None:
        """Checks beyond types (ranges, choices, a weights file exists); raise ValueError naming the field.

        The one place a node's param rules live: `launch --check` and every launch run it before any process
        starts, and `Node.__init__` runs it again, so whatever the node would refuse when built is refused here
        (a node raises nothing of its own in `__init__`). A nested params struct keeps its rules in its own
        `check()` method (ControlParams, RuleParams, DecisionParams, SimParams, ...), which this calls and the
        library classes built from that struct call too. No side effects (no sockets, windows or model loading;
        reading a file's bytes, e.g. to check an export against its weights, is fine)."""

    @classmethod
    def record_file(cls, params: Params, run_dir: str) -> str | None:
        """For a node that keeps the run's record: the file it writes. Its death then stops the stack with an
        error, and the launcher seals the file so that it stays readable up to the failure."""
        return None

    def close(self) -> None:
        """Release resources (finalise files) before the process exits."""

    @property
    def finished(self) -> bool:
        """True when the node has nothing more to do (the sim after its last episode): the process exits 0."""
        return False

    def counters(self) -> dict[str, int]:
        """Node-specific counters for /diagnostics."""
        return {}


def make_params(node_cls: type[Node], raw: dict[str, Any] | None) -> Params:
    """Typed params from a plain dict; ValueError names the node class and the offending key."""
    try:
        return msgspec.convert(raw or {}, node_cls.Params, strict=True)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{node_cls.__name__} params: {exc}") from None


def is_per_tick(node_cls: type[Node], params: Params, port: str) -> bool:
    """Whether a port is matched by tick in lockstep mode (else it is an event input)."""
    from msgs.registry import TOPICS

    return node_cls.lockstep_inputs and TOPICS[node_cls.input_ports(params)[port]].per_tick


def tick_header(header: Header, frame_id: str | None = None) -> Header:
    """The header for an output of the same tick as `header`."""
    if frame_id is None or frame_id == header.frame_id:
        return header
    return msgspec.structs.replace(header, frame_id=frame_id)
