"""Recorded-looking inputs for the planning node's tests: real highway-env ticks, perception in gt mode."""

from __future__ import annotations

from msgs import ControlCommand, EgoState, ObjectArray
from sim.highway import HighwaySim, SimParams


def gt_ticks(count: int, seed: int, vehicles: int, duration: float,
             acceleration: float) -> list[tuple[EgoState, ObjectArray]]:
    """Ego and in-view ground truth (what perception's gt mode publishes) for `count` ticks, the ego driven
    straight at a constant normalised `acceleration`."""
    sim = HighwaySim(SimParams(vehicles_count=vehicles, duration=duration, render=False))
    sim.reset(seed, episode=0)
    out = []
    for _ in range(count):
        header = sim.header()
        objects = sim.objects_gt(header)
        out.append((sim.ego_state(header), ObjectArray(header=header,
                                                       objects=[o for o in objects.objects if o.in_view])))
        sim.step(ControlCommand(acceleration=acceleration, steering=0.0))
    return out
