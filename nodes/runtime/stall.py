"""Stall timeouts ordered along the loop, so that the node nearest a stalled input is the one that goes on.

In lockstep a node hands out a tick with missing inputs once it has waited `stall_timeout_s` for them. With
one timeout for every node, a stalled planner is noticed at the same moment by decision (its plan is
missing) and by control (decision's target is missing, because decision is waiting): whichever polls first
wins, and when control does, the car gets control's own "no target" fallback instead of decision's
minimal-risk manoeuvre, whose target then arrives late and is dropped.

So each lockstep node waits `stage * stall_timeout_s`, where its stage counts the nodes before it in the
loop: 1 + the largest stage among the publishers of its per-tick inputs, 0 for a node that opens the ticks
(the sim, `Node.opens_ticks`) when it is reached as a publisher. The full stack: perception 1, planning 2,
decision 3, control 4 (the sim, whose per-tick input closes the loop, 5). A node therefore waits one
`stall_timeout_s` longer than every node it depends on, and an input is given up only where it is missing
at its source: a stalled planner is handled by decision, and control goes on alone only when decision
itself is silent.
"""

from __future__ import annotations

from nodes.runtime.launchfile import LaunchPlan, PlannedNode
from nodes.runtime.node import is_per_tick


def stall_stages(plan: LaunchPlan) -> dict[str, int]:
    """node name -> its stage along the loop (module docstring); 0 for a node with no per-tick input."""
    publisher = {topic: n for n in plan.nodes for topic in n.outputs.values()}
    stages: dict[str, int] = {}

    def producers(n: PlannedNode) -> list[PlannedNode]:
        return [publisher[topic] for port, topic in n.inputs.items()
                if topic in publisher and is_per_tick(n.node_cls, n.params, port)]

    def stage(n: PlannedNode, visiting: frozenset[str]) -> int:
        if n.name in stages:
            return stages[n.name]
        inner = visiting | {n.name}
        below = [0 if p.node_cls.opens_ticks or p.name in inner else stage(p, inner) for p in producers(n)]
        # a cycle that does not pass through a tick opener is cut where it closes (it cannot run in lockstep)
        stages[n.name] = 1 + max(below) if below else 0
        return stages[n.name]

    for n in plan.nodes:
        if not n.node_cls.opens_ticks:
            stage(n, frozenset())
    for n in plan.nodes:  # the opener last: its per-tick input closes the loop
        if n.node_cls.opens_ticks:
            stage(n, frozenset({n.name}))
    return stages


def stall_timeouts(plan: LaunchPlan) -> dict[str, float]:
    """node name -> [s] how long it waits for a missing per-tick input (0: forever, in every node)."""
    if plan.mode != "lockstep" or plan.stall_timeout_s <= 0:
        return {n.name: 0.0 for n in plan.nodes}
    return {name: plan.stall_timeout_s * max(stage, 1) for name, stage in stall_stages(plan).items()}


def describe(plan: LaunchPlan) -> str:
    """One line for `launch --check`: each node's stall timeout, in loop order ('' without stall timeouts)."""
    timeouts = stall_timeouts(plan)
    stages = stall_stages(plan)
    waiting = sorted((n for n in plan.nodes if timeouts[n.name] > 0 and any(
        is_per_tick(n.node_cls, n.params, p) for p in n.inputs)), key=lambda n: stages[n.name])
    if not waiting:
        return ""
    return "stall timeouts along the loop: " + ", ".join(f"{n.name} {timeouts[n.name]:g} s" for n in waiting)
