"""SimNode's lockstep protocol, called directly (no sockets)."""

from __future__ import annotations

import pytest

from msgs import TOPICS, ControlCommand, EgoState, EpisodeEvent, encode
from nodes.runtime.node import make_params
from nodes.sim.node import SimNode


def node(**params) -> SimNode:
    base = {"vehicles_count": 3, "duration": 1.0, "episodes": 2, "seed": 11}
    return SimNode(make_params(SimNode, base | params))


def answer(out) -> ControlCommand:
    """The command for the tick just published (follows the ego's header, as control does)."""
    ego = next(m for p, m in out if p == "ego")
    return ControlCommand(header=ego.header, acceleration=0.1, steering=0.0)


def run_all(sim: SimNode) -> list[tuple[str, object]]:
    out = sim.start()
    log = list(out)
    cmd = answer(out)
    while not sim.finished:
        out = sim.step({"cmd": cmd})
        log.extend(out)
        if any(p == "ego" for p, _ in out):
            cmd = answer(out)
    return log


def test_lockstep_protocol_over_two_episodes():
    sim = node()
    log = run_all(sim)
    events = [m for p, m in log if p == "episode"]
    assert [(e.kind, e.header.episode, e.seed) for e in events] == [
        ("start", 0, 11), ("end", 0, 11), ("start", 1, 12), ("end", 1, 12)]
    assert [e.last for e in events if e.kind == "end"] == [False, True]
    assert all(e.reason == "time_limit" for e in events if e.kind == "end")
    # one camera, ego and objects message per tick 0..15 of each episode, in order, with matching headers
    for episode in (0, 1):
        egos = [m for p, m in log if p == "ego" and m.header.episode == episode]
        assert [e.header.tick for e in egos] == list(range(16))
        for port in ("camera", "objects"):
            ticks = [m.header.tick for p, m in log if p == port and m.header.episode == episode]
            assert ticks == list(range(16))
    end0 = events[1]
    assert (end0.header.episode, end0.header.tick) == (0, 15)
    assert sim.counters()["ticks"] == 30 and sim.counters()["episodes"] == 2
    assert sim.counters()["stale_cmd"] == 0
    assert sim.step({"cmd": None}) == []  # finished: nothing more
    for port, msg in log:
        assert isinstance(msg, TOPICS[SimNode.outputs[port]].type)
    frames = {port: msg.header.frame_id for port, msg in log if port != "episode"}
    assert frames == {"camera": "camera", "ego": "world", "objects": "ego"}


def test_same_seed_same_bytes_on_every_topic():
    def wire(sim: SimNode) -> list[bytes]:
        return [bytes(f) for p, m in run_all(sim) for f in encode(SimNode.outputs[p], m)]

    a, b = wire(node()), wire(node())
    assert a == b
    assert wire(node(seed=12)) != a


def test_non_finite_command_is_refused_applied_as_zero_and_counted():
    sim = node(episodes=1, render=False)
    out = sim.start()
    ego0: EgoState = out[1][1]
    out = sim.step({"cmd": ControlCommand(header=ego0.header, acceleration=float("nan"), steering=1.0)})
    ego1 = next(m for p, m in out if p == "ego")
    assert sim.counters()["non_finite_cmd"] == 1
    assert ego1.acceleration == 0.0 and ego1.steering == 0.0 and ego1.speed == ego0.speed


@pytest.mark.parametrize("mode", ["lockstep", "realtime"])
def test_missing_command_holds_the_last_and_lockstep_counts_missing_and_stale(mode):
    sim = node(episodes=1, render=False, mode=mode)
    assert sim.realtime_period() == pytest.approx(1 / 15)
    out = sim.start()
    out = sim.step({"cmd": ControlCommand(header=out[1][1].header, acceleration=0.4, steering=0.0)})
    out = sim.step({"cmd": None})
    ego = next(m for p, m in out if p == "ego")
    assert ego.acceleration == pytest.approx(2.0) and ego.header.tick == 2
    sim.step({"cmd": ControlCommand(acceleration=0.0, steering=0.0)})  # header of tick 0, not tick 2
    expected = 1 if mode == "lockstep" else 0
    assert sim.counters()["missing_cmd"] == expected and sim.counters()["stale_cmd"] == expected


def test_render_false_drops_the_camera_port():
    params = make_params(SimNode, {"render": False})
    assert "camera" not in SimNode.output_ports(params)
    sim = SimNode(make_params(SimNode, {"render": False, "vehicles_count": 0, "episodes": 1}))
    assert [p for p, _ in sim.start()] == ["episode", "ego", "objects"]


@pytest.mark.parametrize("raw,match", [({"episodes": 0}, "episodes"), ({"mode": "fast"}, "mode"),
                                       ({"vehicle_count": 3}, "vehicle_count"),
                                       ({"duration": "x"}, "duration")])
def test_bad_params_are_rejected(raw, match):
    with pytest.raises(ValueError, match=match):
        SimNode(make_params(SimNode, raw))


def test_start_event_comes_first_with_the_seed():
    sim = node(episodes=1, seed=5)
    out = sim.start()
    assert out[0] == ("episode", EpisodeEvent(header=out[0][1].header, kind="start", seed=5))
    assert out[0][1].header.tick == 0 and out[0][1].header.episode == 0
