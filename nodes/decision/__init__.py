"""Decision layer: the planner's meta-action -> a safe driving target (lane, speed, mode, reason)."""

from nodes.decision.logic import DecisionLogic
from nodes.decision.params import DecisionParams

__all__ = ["DecisionLogic", "DecisionParams"]
