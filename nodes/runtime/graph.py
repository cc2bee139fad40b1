"""A launch plan's wiring: the endpoint of every (node, topic), each node's spec with the subscribers its
publishers wait for before the first message, and the check and locks of the tcp ports a launch will bind."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.runtime.bus import ipc_endpoint, ipc_root
from nodes.runtime.launchfile import LaunchError, LaunchPlan
from nodes.runtime.node import is_per_tick
from nodes.runtime.spec import InputSpec, NodeSpec, OutputSpec
from nodes.runtime.stall import stall_timeouts


@dataclass
class Graph:
    """Endpoints of every (publisher, topic) and who must be attached before the first message."""

    namespace_dir: str
    endpoints: dict[str, dict[str, str]] = field(default_factory=dict)  # topic -> node -> endpoint
    types: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"namespace_dir": self.namespace_dir, "endpoints": self.endpoints, "types": self.types}


def check_endpoints_free(plan: LaunchPlan, graph: Graph, only: list[str]) -> None:
    """A tcp endpoint some other program holds: one clear error before anything starts."""
    import socket

    for topic, by_node in graph.endpoints.items():
        for node, endpoint in by_node.items():
            if not endpoint.startswith("tcp://") or node not in only:
                continue
            host, port = endpoint[len("tcp://"):].rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds
                try:
                    probe.bind((host, int(port)))
                except OSError as exc:
                    raise LaunchError(plan.node(node).file, f"endpoint {endpoint} for {topic} is not available: "
                                      f"{exc.strerror}; change base_port", node, "base_port") from None


def lock_ports(plan: LaunchPlan, graph: Graph, only: list[str]) -> list[Any]:
    """Hold a lock per tcp port this launch will bind, in the private runtime directory, for as long as it runs:
    two launches of this user given the same ports at the same moment cannot both pass the port check (the
    second one stops here with one line). Released by the OS when the launcher exits, however it exits."""
    import fcntl

    locks: list[Any] = []
    for topic, by_node in graph.endpoints.items():
        for node, endpoint in by_node.items():
            if not endpoint.startswith("tcp://") or node not in only:
                continue
            host, port = endpoint[len("tcp://"):].rsplit(":", 1)
            f = open(Path(ipc_root()) / f"tcp-{port}.lock", "a+")  # noqa: SIM115 - held open while the launch runs
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "?"
                f.close()
                for lock in locks:
                    lock.close()
                raise LaunchError(plan.node(node).file, f"endpoint {endpoint} for {topic} is taken by another "
                                  f"launch of yours (pid {holder}); change base_port", node, "base_port") from None
            f.truncate(0)
            f.write(str(os.getpid()))
            f.flush()
            locks.append(f)
    return locks


def build_specs(plan: LaunchPlan, namespace_dir: str, run_dir: Path,
                extra_subscribers: dict[str, int], bus_key: str = "") -> tuple[dict[str, NodeSpec], Graph]:
    graph = Graph(namespace_dir)
    index = 0
    for n in plan.nodes:
        for port, topic in list(n.outputs.items()) + [("diagnostics", "/diagnostics")]:
            if plan.base_port:  # same file, same ports: launches split across hosts agree on them
                endpoint = f"tcp://{n.host or '127.0.0.1'}:{plan.base_port + index}"
            else:
                endpoint = ipc_endpoint(namespace_dir, n.name, topic)
            index += 1
            graph.endpoints.setdefault(topic, {})[n.name] = endpoint
            graph.types[topic] = n.output_types.get(port, "Diagnostics")

    def subscriber_count(topic: str) -> int:
        return sum(topic in n.inputs.values() for n in plan.nodes) + extra_subscribers.get(topic, 0)

    specs: dict[str, NodeSpec] = {}
    stall = stall_timeouts(plan)  # ordered along the loop: the node nearest a stalled input goes on first
    for n in plan.nodes:
        inputs = {
            port: InputSpec(topic=topic, type=n.input_types[port],
                            endpoints=sorted(graph.endpoints.get(topic, {}).values()),
                            per_tick=is_per_tick(n.node_cls, n.params, port))
            for port, topic in n.inputs.items()
        }
        outputs = {
            port: OutputSpec(topic=topic, type=n.output_types[port], endpoint=graph.endpoints[topic][n.name],
                             subscribers=subscriber_count(topic))
            for port, topic in n.outputs.items()
        }
        diag = OutputSpec(topic="/diagnostics", type="Diagnostics",
                          endpoint=graph.endpoints["/diagnostics"][n.name],
                          subscribers=subscriber_count("/diagnostics"))
        specs[n.name] = NodeSpec(
            name=n.name, module=n.module, params=n.raw_params, mode=plan.mode, inputs=inputs, outputs=outputs,
            diagnostics=diag, control=f"ipc://{namespace_dir}/control", stall_timeout_s=stall[n.name],
            run_dir=str(run_dir), bus_key=bus_key,
        )
    return specs, graph
