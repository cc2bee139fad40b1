"""The planning node: a DQN picks a meta-action at the plan rate and the plan is republished every tick."""

from __future__ import annotations

from typing import ClassVar

from msgs import EgoState, Message, ObjectArray, Plan
from msgs.registry import CONTROL_RATE_HZ
from nodes.deploy import EXPORT_COMMANDS, check_backend, check_export, exported_path
from nodes.planning.backends import OnnxPolicy, exported_observation_shape, make_policy
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.policy import DEFAULT_MODEL, TRAIN_COMMAND, DQNPolicy, IdlePolicy, check_spaces, saved_spaces
from nodes.planning.rules import RuleParams, RulePlanner
from nodes.runtime.node import Node, Outputs, Params, tick_header
from nodes.share import require_model


class PlanningParams(Params, kw_only=True, forbid_unknown_fields=True):
    policy: str = "dqn"  # "dqn": the trained model; "rules": the rule planner (nodes/planning/rules.py); "idle"
    rules: RuleParams = RuleParams()  # thresholds of policy "rules"
    model_path: str = DEFAULT_MODEL  # SB3 DQN zip, found as nodes.share.resolve_model says (as perception's model)
    backend: str = "onnx"  # the DQN's runtime: torch | onnx | onnx_int8 (nodes/deploy.py; README, Deployment)
    plan_rate_hz: float = 1.0  # [Hz] how often a new meta-action is chosen
    control_rate_hz: float = CONTROL_RATE_HZ  # [Hz] tick rate of the inputs
    see_behind: bool = ObservationConfig.see_behind  # Kinematics models: observe vehicles behind (as trained)


class PlanningNode(Node):
    name: ClassVar[str] = "planning"
    Params: ClassVar[type[Params]] = PlanningParams
    inputs: ClassVar[dict[str, str]] = {"objects": "/perception/objects", "ego": "/sim/ego"}
    outputs: ClassVar[dict[str, str]] = {"plan": "/planning/plan"}
    trigger: ClassVar[str | None] = "ego"

    @classmethod
    def check(cls, params: Params) -> None:
        assert isinstance(params, PlanningParams)
        if params.policy not in ("dqn", "rules", "idle"):
            raise ValueError(f"policy: must be 'dqn', 'rules' or 'idle', got {params.policy!r}")
        params.rules.check()
        check_backend(params.backend, "planning")
        if params.policy == "dqn":
            try:
                source = require_model(params.model_path, "planner", TRAIN_COMMAND)
            except ValueError as exc:
                raise ValueError(f"model_path: {exc}") from None
            if params.backend == "torch":  # what the loaded model must be, read from the zip without loading it
                try:
                    ObservationConfig.for_shape(check_spaces(source, *saved_spaces(source)))
                except ValueError as exc:
                    raise ValueError(f"model_path: {exc}") from None
            else:
                path = exported_path(source, params.backend)
                if not path.is_file():
                    raise ValueError(f"planning: backend {params.backend} needs {path}: make it with "
                                     f"`{EXPORT_COMMANDS['planner']}` (it writes an int8 file only if its actions "
                                     "agree with torch's), or use backend: torch")
                try:  # an export of other weights: the node would refuse it when loading the network
                    meta = check_export(path, source, EXPORT_COMMANDS["planner"])
                except ValueError as exc:
                    raise ValueError(f"planning: backend {params.backend}: {exc}") from None
                ObservationConfig.for_shape(exported_observation_shape(meta, path))  # one the node can build
        if not _replan_period(params):
            raise ValueError(f"planning: control_rate_hz / plan_rate_hz must be a whole number >= 1, got "
                             f"{params.control_rate_hz} / {params.plan_rate_hz}")

    def __init__(self, params: PlanningParams) -> None:
        super().__init__(params)
        self.period = _replan_period(params)  # [ticks] between replans
        if params.policy == "dqn":
            self.policy: DQNPolicy | OnnxPolicy | RulePlanner | IdlePolicy = make_policy(params.model_path,
                                                                                     params.backend)
        elif params.policy == "rules":
            self.policy = RulePlanner(params.rules, period=self.period / params.control_rate_hz)
        else:  # "idle", the one policy left (check)
            self.policy = IdlePolicy()
        # The model's observation shape says which observation it was trained on.
        shape = self.policy.observation_shape
        self.observation = (ObservationConfig(see_behind=params.see_behind) if shape is None
                            else ObservationConfig.for_shape(shape, see_behind=params.see_behind))
        self._held: Plan | None = None
        self._replans = 0
        self._missing_objects = 0

    def reset(self, episode: int) -> None:
        self._held = None
        if isinstance(self.policy, RulePlanner):
            self.policy.reset()

    def step(self, inputs: dict[str, Message | None]) -> Outputs:
        ego = inputs.get("ego")
        if not isinstance(ego, EgoState):
            return []  # the trigger carries the tick; without it there is nothing to answer
        objects = inputs.get("objects")
        tick = ego.header.tick
        header = tick_header(ego.header)
        held = self._held
        # On schedule, or when the schedule was missed (real-time mode skips ticks; a new episode).
        if held is None or tick % self.period == 0 or not 0 <= tick - held.plan_tick < self.period:
            if not isinstance(objects, ObjectArray):
                self._missing_objects += 1
                objects = ObjectArray(header=ego.header)
            action, q = self.policy.act(build_observation(objects.objects, ego, self.observation))
            self._replans += 1
            self._held = Plan(header=header, action=action, q_values=q, replanned=True, plan_tick=tick)
            return [("plan", self._held)]
        return [("plan", Plan(header=header, action=held.action, q_values=held.q_values, replanned=False,
                              plan_tick=held.plan_tick))]

    def counters(self) -> dict[str, int]:
        return {"replans": self._replans, "missing_objects": self._missing_objects}


def _replan_period(params: PlanningParams) -> int:
    """[ticks] between replans; 0 when the plan rate does not divide the control rate."""
    ratio = params.control_rate_hz / params.plan_rate_hz if params.plan_rate_hz > 0 else 0.0
    return round(ratio) if ratio >= 1 and abs(ratio - round(ratio)) < 1e-9 else 0


NODE = PlanningNode
