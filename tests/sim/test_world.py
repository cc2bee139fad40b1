"""Both backends implement `sim.world.World`, signature for signature, and share its clock."""

from __future__ import annotations

import inspect
import typing

import pytest

from msgs import ControlCommand
from sim import carla_bridge, highway
from sim.carla_bridge import CarlaSim
from sim.carla_client import CarlaParams
from sim.highway import HighwaySim, SimParams
from sim.world import NS_PER_S, SIM_RATE_HZ, World, stamp_ns
from tests.sim.carla_standin import TYPES, StandInServer

BACKENDS = [HighwaySim, CarlaSim]


def _members() -> tuple[list[str], list[str], list[str]]:
    """(data attributes, properties, methods) of the protocol."""
    data = [name for name in World.__annotations__]
    props = [name for name, v in vars(World).items() if isinstance(v, property)]
    methods = [name for name, v in vars(World).items() if inspect.isfunction(v) and not name.startswith("_")]
    return data, props, methods


def test_the_protocol_has_every_member_the_sim_node_uses():
    data, props, methods = _members()
    assert sorted(data) == ["episode", "tick"] and props == ["end_reason"]
    assert sorted(methods) == ["camera", "close", "ego_state", "header", "objects_gt", "reset", "step"]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.__name__)
def test_each_backend_implements_the_protocol_signature_for_signature(backend):
    data, props, methods = _members()
    hints = typing.get_type_hints(backend)
    for name in data:
        assert hints.get(name) is int, f"{backend.__name__}.{name} is not declared an int"
    for name in props:
        assert isinstance(inspect.getattr_static(backend, name), property), f"{backend.__name__}.{name}"
        assert (typing.get_type_hints(getattr(backend, name).fget)["return"]
                == typing.get_type_hints(getattr(World, name).fget)["return"])
    for name in methods:
        ours, theirs = inspect.signature(getattr(World, name)), inspect.signature(getattr(backend, name))
        assert list(theirs.parameters) == list(ours.parameters), f"{backend.__name__}.{name}{theirs} vs {ours}"
        for p, q in zip(ours.parameters.values(), theirs.parameters.values(), strict=True):
            assert (p.kind, p.default) == (q.kind, q.default), f"{backend.__name__}.{name}: {q} vs {p}"
        assert (typing.get_type_hints(getattr(backend, name), vars(inspect.getmodule(backend)))
                == typing.get_type_hints(getattr(World, name))), f"{backend.__name__}.{name}: types differ"


def test_built_backends_are_worlds_on_the_shared_clock():
    hw = HighwaySim(SimParams(vehicles_count=2, render=False, duration=1.0))
    server = StandInServer()
    carla = CarlaSim(CarlaParams(vehicles_count=2, duration=1.0), carla=TYPES, client=server.client())
    try:
        for world in (hw, carla):
            assert isinstance(world, World)
            world.reset(seed=5, episode=2)
            world.step(ControlCommand(acceleration=0.0, steering=0.0))
            header = world.header()
            assert (header.episode, header.tick) == (2, 1)
            assert header.stamp_ns == stamp_ns(1) == NS_PER_S // SIM_RATE_HZ  # 1/15 s, in integer ns
    finally:
        hw.close()
        carla.close()
    assert highway.stamp_ns is carla_bridge.stamp_ns is stamp_ns  # one clock, not two copies
