"""The planner's training env: its meta-actions are carried out by our own decision and control.

One `step` is one plan period (default 15 control ticks = 1 s at 15 Hz). On every control tick of it the
real `DecisionLogic` turns the held meta-action into a `DrivingTarget` and the real `LaneSpeedController`
turns that into the ContinuousAction `HighwaySim` applies, exactly as the running stack does, so the
policy learns the dynamics it will drive with. Both see ground truth cut to the camera's field of view
(what perception in `gt` mode delivers); the observation comes from `nodes.planning.observation`.

Rewards (`PlannerEnvConfig.reward`):
- "highway": highway-env's normalised per-tick reward (in [0, 1]) averaged over the plan period, ticks
  after the episode ended counting 0. An episode's return is the integral of the reward over time in
  seconds (at the default 1 s period): 40 is the best a 40 s episode can score.
- "drive": the planner's own. Per tick, the forward speed mapped from [20, 30] m/s to [0, 1] (clipped),
  averaged over the plan period; minus `intervention_penalty` for a plan period in which decision
  intervened (refused or aborted a lane change, braked in emergency; following a slower lead is not an
  intervention); minus `collision_penalty` on a collision or leaving the road, which ends the episode.
  It charges the planner for what the safety layer has to correct, so that it learns to drive safely on
  its own rather than lean on the layer. Optionally minus `lane_change_penalty` for each lane the ego crossed
  into during the plan period: a change into a shorter gap costs speed later (following opens the headway
  again), a cost the 1 s speed term sees only after the discount.

`interventions_share` is the share of episodes in which decision's interventions are on (the rest run
with following only, `DecisionParams.interventions = False`): a planner trained on both meets the
consequences of an unsafe lane change, not only the layer's refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from msgs import Action, EgoState, Mode, ObjectArray, Plan
from msgs.registry import CONTROL_RATE_HZ
from nodes.control.pid import ControlParams, LaneSpeedController
from nodes.decision.logic import DecisionLogic
from nodes.decision.params import DecisionParams
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.seeds import TRAIN_SEED_RANGE
from sim.highway import HighwaySim, SimParams

# HighwaySim reads the world directly; highway-env's own Kinematics observation (pandas, ~60% of a tick
# with 20 vehicles) is never used, so the training env asks for an empty one.
_NO_OBSERVATION = {"type": "AttributesObservation", "attributes": []}
REWARDS = ("highway", "drive")
SPEED_RANGE = (20.0, 30.0)  # [m/s] forward speeds the "drive" reward maps to [0, 1] (highway-env's reward_speed_range)


def training_sim() -> SimParams:
    """The lighter traffic used for training: highway-fast-v0's world (no collision checks between other
    vehicles) with highway-v0's 4 lanes, 15 Hz and 40 s, and 20 vehicles instead of 50."""
    return SimParams(env_id="highway-fast-v0", lanes_count=4, vehicles_count=20, duration=40.0, render=False)


def evaluation_sim() -> SimParams:
    """highway-v0 as the stack drives it (50 vehicles, 40 s), without the camera."""
    return SimParams(env_id="highway-v0", render=False)


@dataclass
class PlannerEnvConfig:
    """What the env builds. The defaults are the training setup."""

    sim: SimParams = field(default_factory=training_sim)  # world; render is forced off
    plan_period_ticks: int = round(CONTROL_RATE_HZ)  # control ticks per env step: 1 s (plan rate = 15 Hz / this)
    overrides: bool = False  # decision's safety overrides (gap acceptance, headway, TTC, emergency braking)
    interventions_share: float = 1.0  # share of episodes with decision's interventions on (needs overrides)
    reward: str = "highway"  # "highway" (highway-env's normalised reward) or "drive" (module docstring)
    collision_penalty: float = 5.0  # "drive": subtracted on a collision or leaving the road
    intervention_penalty: float = 0.3  # "drive": subtracted for each plan period decision intervened in
    lane_change_penalty: float = 0.0  # "drive": subtracted for each lane the ego crossed into
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    decision: dict[str, Any] = field(default_factory=dict)  # extra DecisionParams fields
    control: dict[str, Any] = field(default_factory=dict)  # extra ControlParams fields
    reset_seeds: tuple[int, ...] = ()  # resets without a seed cycle through these (evaluation); empty: draw

    def __post_init__(self) -> None:
        self.check()  # a value object: refused when made

    def check(self) -> PlannerEnvConfig:
        """ValueError naming the first bad field; returns self so it chains."""
        if self.plan_period_ticks < 1:
            raise ValueError(f"PlannerEnvConfig.plan_period_ticks must be >= 1, got {self.plan_period_ticks}")
        if "overrides" in self.decision or "interventions" in self.decision:
            raise ValueError("PlannerEnvConfig.decision: set `overrides` and `interventions_share` on "
                             "PlannerEnvConfig itself")
        if not 0.0 <= self.interventions_share <= 1.0:
            raise ValueError(f"PlannerEnvConfig.interventions_share must be in [0, 1], got {self.interventions_share}")
        if self.reward not in REWARDS:
            raise ValueError(f"PlannerEnvConfig.reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.collision_penalty < 0 or self.intervention_penalty < 0 or self.lane_change_penalty < 0:
            raise ValueError("PlannerEnvConfig.collision_penalty, intervention_penalty and lane_change_penalty "
                             "must be >= 0")
        return self


@dataclass
class EpisodeStats:
    """What the bench reports, accumulated over one episode."""

    ticks: int = 0
    reward_sum: float = 0.0  # sum of per-tick normalised rewards
    speed_sum: float = 0.0  # [m/s * ticks] forward speed summed over ticks
    lane_changes: int = 0  # times the ego's lane index changed
    plan_steps: int = 0
    overridden_steps: int = 0  # plan periods with at least one tick not NOMINAL (following included)
    intervened_steps: int = 0  # plan periods with at least one intervention tick (OVERRIDE, EMERGENCY, ...)
    emergency_steps: int = 0  # plan periods with at least one EMERGENCY tick
    interventions: bool = True  # whether decision's interventions were on in this episode
    end_reason: str | None = None

    @property
    def mean_speed(self) -> float:
        return self.speed_sum / max(self.ticks, 1)


class PlannerEnv(gym.Env):
    """Discrete(5) meta-actions (msgs.Action order) -> our decision + control at the control rate."""

    metadata = {"render_modes": []}

    def __init__(self, config: PlannerEnvConfig | None = None) -> None:
        super().__init__()
        self.config = config or PlannerEnvConfig()
        c = self.config
        c.sim.render = False
        self.sim = HighwaySim(c.sim)
        self.sim.unwrapped.configure({"observation": _NO_OBSERVATION})
        self._decisions = {
            on: DecisionLogic(DecisionParams(overrides=c.overrides, interventions=on,
                                             tick_period=1.0 / CONTROL_RATE_HZ, **c.decision))
            for on in (True, False)
        }
        self.decision = self._decisions[True]
        self.control = LaneSpeedController(ControlParams(dt=1.0 / CONTROL_RATE_HZ, **c.control))
        self.action_space = spaces.Discrete(len(Action))
        self.observation_space = spaces.Box(-1.0, 1.0, shape=c.observation.shape, dtype=np.float32)
        self.episode = -1
        self.seed_used = -1
        self.stats = EpisodeStats()
        self._ego: EgoState | None = None
        self._objects: ObjectArray | None = None

    def _read(self) -> None:
        header = self.sim.header()
        self._ego = self.sim.ego_state(header)
        self._objects = self.sim.objects_gt(header, in_view_only=True)

    def _observe(self) -> np.ndarray:
        assert self._ego is not None and self._objects is not None
        return build_observation(self._objects.objects, self._ego, self.config.observation)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """`seed` is the world's seed; without one, the next of `reset_seeds`, or one drawn from
        TRAIN_SEED_RANGE."""
        super().reset(seed=seed)
        self.episode += 1
        if seed is None and self.config.reset_seeds:
            seed = self.config.reset_seeds[self.episode % len(self.config.reset_seeds)]
        elif seed is None:
            seed = int(self.np_random.integers(*TRAIN_SEED_RANGE))
        self.seed_used = seed
        self.sim.reset(seed, self.episode)
        share = self.config.interventions_share
        on = share >= 1.0 or (share > 0.0 and bool(self.np_random.random() < share))
        self.decision = self._decisions[on]
        self.decision.reset()
        self.control.reset()
        self.stats = EpisodeStats(interventions=on)
        self._read()
        return self._observe(), {"seed": seed}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._ego is None or self._objects is None:
            raise RuntimeError("PlannerEnv.step before reset")
        if self.sim.end_reason is not None:
            raise RuntimeError(f"PlannerEnv.step after the episode ended ({self.sim.end_reason}); reset")
        action = int(action)
        if not 0 <= action < len(Action):
            raise ValueError(f"action {action} is not a meta-action (0..{len(Action) - 1})")
        plan_tick = self.sim.tick
        lane_changes = self.stats.lane_changes
        reward_sum = speed_sum = 0.0
        overridden = intervened = emergency = False
        for i in range(self.config.plan_period_ticks):
            tick = self.sim.tick
            ego, objects = self._ego, self._objects
            plan = Plan(header=ego.header, action=action, replanned=i == 0, plan_tick=plan_tick)
            target = self.decision.step(tick, ego, objects, plan)
            overridden |= target.mode != Mode.NOMINAL
            intervened |= Mode(target.mode).is_intervention
            emergency |= target.mode == Mode.EMERGENCY
            self.sim.step(self.control.step(ego, target))
            reward_sum += self.sim.reward
            self._read()  # decision needs the objects every tick; the policy only the last tick's observation
            speed_sum += min(max((self._ego.vx - SPEED_RANGE[0]) / (SPEED_RANGE[1] - SPEED_RANGE[0]), 0.0), 1.0)
            self._account(ego)
            if self.sim.end_reason is not None:
                break
        obs = self._observe()
        s = self.stats
        s.plan_steps += 1
        s.overridden_steps += overridden
        s.intervened_steps += intervened
        s.emergency_steps += emergency
        end = self.sim.end_reason
        s.end_reason = end
        info: dict[str, Any] = {"overridden": overridden, "intervened": intervened, "emergency": emergency,
                                "end_reason": end, "seed": self.seed_used}
        if end is not None:
            info["episode_stats"] = s
        crashed = end in ("collision", "offroad")
        c = self.config
        if c.reward == "drive":
            reward = (speed_sum / c.plan_period_ticks - c.intervention_penalty * intervened
                      - c.collision_penalty * crashed - c.lane_change_penalty * (s.lane_changes - lane_changes))
        else:
            reward = reward_sum / c.plan_period_ticks
        return obs, reward, crashed, end == "time_limit", info

    def _account(self, before: EgoState) -> None:
        after = self._ego
        assert after is not None
        s = self.stats
        s.ticks += 1
        s.reward_sum += self.sim.reward
        s.speed_sum += after.vx
        s.lane_changes += after.lane_index != before.lane_index

    def close(self) -> None:
        self.sim.close()
