"""Look-ahead trials: what each meta-action is worth, measured by trying it in a copy of the world.

At a replan, `trial_values` copies the whole planning env (traffic, decision, control) and, for each of the
five meta-actions, drives the copy for `steps` plan periods: that action first, then the rule planner
(`nodes/planning/rules.py`). The value of an action is the metres the ego made in its trial, -inf if the
trial ended in a collision. highway-env's traffic is deterministic once an episode is seeded, so a trial
sees the very future the real step will meet: these are Monte-Carlo values of "do a, then drive by the
rules", Q^rules(s, a) over a finite horizon, measured rather than estimated.

Two users: `bench/planner_headroom.py` (a planner that cheats: it acts on the values, an upper figure for
what choosing lanes can win) and `nodes/planning/rollouts.py` (the values as regression targets for the
DQN's Q-network, on training seeds: one step of policy iteration over the rule planner, learned).
"""

from __future__ import annotations

import copy

import msgspec
import numpy as np

from msgs import Action
from nodes.planning.env import PlannerEnv, PlannerEnvConfig, evaluation_sim
from nodes.planning.observation import ObservationConfig
from nodes.planning.rules import RulePlanner

CONTINUATIONS = ("rules", "faster")


def make_env(interventions_share: float = 1.0, seconds: float = 40.0) -> PlannerEnv:
    """highway-v0 as the stack drives it (50 vehicles, `seconds` long), decision's layer on (interventions in
    `interventions_share` of the episodes, following always), the "lanes" observation."""
    sim = evaluation_sim()
    sim.duration = seconds
    return PlannerEnv(PlannerEnvConfig(sim=sim, overrides=True, interventions_share=interventions_share,
                                       observation=ObservationConfig(kind="lanes")))


def ego_x(env: PlannerEnv) -> float:
    return env.sim.ego_state(env.sim.header()).x


def trial_outcome(env: PlannerEnv, rules: RulePlanner, first: int, steps: int,
                  continuation: str = "rules") -> tuple[float, bool]:
    """(metres the ego makes in a copy of `env` doing `first`, then the continuation, -inf on a collision;
    whether decision intervened in the first plan period, i.e. refused or aborted `first` or braked in
    emergency). Neither `env` nor `rules` is changed."""
    env = copy.deepcopy(env)
    rules = copy.deepcopy(rules)
    start = ego_x(env)
    action = first
    intervened = False
    for k in range(steps):
        obs, _, crashed, truncated, info = env.step(action)
        intervened |= k == 0 and bool(info["intervened"])
        if crashed:
            return -np.inf, intervened
        if truncated:
            break
        action = rules.act(obs)[0] if continuation == "rules" else int(Action.FASTER)
    return ego_x(env) - start, intervened


def would_intervene(env: PlannerEnv, first: int) -> bool:
    """Whether decision, with its interventions on, would intervene in the plan period of `first` from here
    (refuse or abort it, or brake in emergency), also where `env` runs with them off. `env` is not changed."""
    env = copy.deepcopy(env)
    env.decision.params = msgspec.structs.replace(env.decision.params, interventions=True)
    return bool(env.step(first)[4]["intervened"])


def trials(env: PlannerEnv, rules: RulePlanner, steps: int,
           continuation: str = "rules") -> tuple[np.ndarray, np.ndarray]:
    """Every meta-action's trial, in msgs.Action order: metres (float64, -inf for a collision) and whether
    decision intervened, or with its interventions off would have, in its first plan period (bool)."""
    out = [trial_outcome(env, rules, a, steps, continuation) for a in range(len(Action))]
    values = np.array([m for m, _ in out], dtype=np.float64)
    if env.decision.params.interventions:
        return values, np.array([i for _, i in out], dtype=bool)
    return values, np.array([would_intervene(env, a) for a in range(len(Action))], dtype=bool)


def trial_values(env: PlannerEnv, rules: RulePlanner, steps: int, continuation: str = "rules") -> np.ndarray:
    """The metres of every meta-action's trial, in msgs.Action order (float64, -inf for a collision)."""
    return trials(env, rules, steps, continuation)[0]


def lookahead_action(values: np.ndarray, own: int) -> int:
    """The best trial's action; the rule planner's own action unless another trial was strictly better."""
    best = int(np.argmax(values))
    return best if values[best] > values[own] else own
