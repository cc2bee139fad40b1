"""The resolved description of one node process, written by the launcher and read by the runner."""

from __future__ import annotations

import importlib

import msgspec

from nodes.runtime.node import Node


class InputSpec(msgspec.Struct, kw_only=True):
    topic: str
    type: str  # message type name, from msgs.registry
    endpoints: list[str]  # every publisher of the topic
    per_tick: bool = True


class OutputSpec(msgspec.Struct, kw_only=True):
    topic: str
    type: str
    endpoint: str
    subscribers: int = 0  # how many subscribers must attach before the first publish (lockstep)


class NodeSpec(msgspec.Struct, kw_only=True):
    name: str
    module: str
    params: dict = {}
    mode: str = "lockstep"  # "lockstep" | "realtime"
    inputs: dict[str, InputSpec] = {}
    outputs: dict[str, OutputSpec] = {}
    diagnostics: OutputSpec | None = None
    control: str | None = None  # launcher's readiness endpoint; None when run on its own
    ready_timeout_s: float = 60.0  # [s]
    stall_timeout_s: float = 0.0  # [s] lockstep: hand out a tick with missing inputs after this; 0 = never
    run_dir: str = "."  # where the node may write outputs (recordings)
    bus_key: str = ""  # tcp endpoints: the CURVE key file shared by the launches of the stack (nodes.runtime.security)
    # [s] after a stop request, keep the sockets open, idle, until a second stop signal or this long: ZeroMQ drops
    # what a subscriber has not yet read when its publisher disconnects, so the launcher holds the publishers
    # until the recorder has drained them (0: close at once)
    hold_on_stop_s: float = 0.0


def load_node_class(module: str) -> type[Node]:
    """The Node subclass a module exports as NODE; ValueError says what is wrong."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module!r}: {exc}") from None
    node_cls = getattr(mod, "NODE", None)
    if not (isinstance(node_cls, type) and issubclass(node_cls, Node)):
        raise ValueError(f"module {module!r} does not export a Node subclass as NODE")
    return node_cls
