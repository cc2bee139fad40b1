"""The decision node: /planning/plan + /perception/objects + /sim/ego -> /decision/target."""

from __future__ import annotations

from typing import ClassVar

import msgspec

from msgs import Action, EgoState, Message, ObjectArray, Plan
from nodes.decision.logic import DecisionLogic
from nodes.decision.params import DecisionParams
from nodes.runtime.node import Node, Outputs, Params


class DecisionNodeParams(Params, kw_only=True, forbid_unknown_fields=True):
    logic: DecisionParams = msgspec.field(default_factory=DecisionParams)  # thresholds, see ./params.py


class DecisionNode(Node):
    name: ClassVar[str] = "decision"
    Params: ClassVar[type[Params]] = DecisionNodeParams
    inputs: ClassVar[dict[str, str]] = {
        "plan": "/planning/plan",
        "objects": "/perception/objects",
        "ego": "/sim/ego",
    }
    outputs: ClassVar[dict[str, str]] = {"target": "/decision/target"}
    trigger: ClassVar[str | None] = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, DecisionNodeParams)
        params.logic.check()  # also run when DecisionParams is made, so a launch file's bad value stops there

    def __init__(self, params: DecisionNodeParams) -> None:
        super().__init__(params)
        self.params: DecisionNodeParams = params
        self.logic = DecisionLogic(params.logic)
        self._episode: int | None = None
        self._objects_tick: int | None = None  # header tick of the last objects received this episode
        self._plan_tick: int | None = None
        self._counters = {"ticks": 0, "invalid_plans": 0, "foreign_episode": 0, "modes_not_nominal": 0}

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def reset(self, episode: int) -> None:
        self.logic.reset()
        self._episode = episode
        self._objects_tick = self._plan_tick = None

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs.get("ego")
        if not isinstance(ego, EgoState):
            return []
        episode, tick = ego.header.episode, ego.header.tick
        if episode != self._episode:
            self.reset(episode)
        objects = self._current(inputs.get("objects"), ObjectArray, episode)
        plan = self._current(inputs.get("plan"), Plan, episode)
        if plan is not None and plan.action not in Action._value2member_map_:
            self._counters["invalid_plans"] += 1  # an unknown action counts as no plan this tick
            plan = None
        if objects is not None:
            self._objects_tick = objects.header.tick
        if plan is not None:
            self._plan_tick = plan.header.tick
        target = self.logic.step(tick, ego, objects, plan, self._objects_tick, self._plan_tick)
        self._counters["ticks"] += 1
        self._counters["modes_not_nominal"] += int(target.mode != 0)
        return [("target", target)]

    def _current(self, msg: Message | None, kind: type[Message], episode: int) -> Message | None:
        """`msg` if it is a `kind` of this episode (a late one from the last episode is dropped)."""
        if not isinstance(msg, kind):
            return None
        if msg.header.episode != episode:
            self._counters["foreign_episode"] += 1
            return None
        return msg


NODE = DecisionNode
