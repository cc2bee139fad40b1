"""Planner policies behind one call: observation -> (meta-action, Q-values).

`DQNPolicy` wraps a stable-baselines3 DQN zip (torch and SB3 are imported only here, on load).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msgs import Action
from nodes.share import require_model, resolve_model

DEFAULT_MODEL = "models/planner_dqn.zip"
TRAIN_COMMAND = "drivestack train planner  (or: python -m nodes.planning.train)"
resolve_model_path = resolve_model  # the one model resolver (nodes.share), under the name planning's callers use


class IdlePolicy:
    """Always IDLE: keep the lane and the speed set-point. A baseline, and a stand-in without torch."""

    observation_shape: tuple[int, ...] | None = None  # any: IDLE reads nothing

    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        return int(Action.IDLE), []


class DQNPolicy:
    """A trained SB3 DQN; greedy action and its Q-values."""

    def __init__(self, path: str | Path, make_command: str = TRAIN_COMMAND) -> None:
        """path: the model zip (found as `nodes.share.resolve_model` says).
        make_command: shown in the error when the file is missing."""
        resolved = require_model(path, "planner", make_command)
        import torch
        from stable_baselines3 import DQN

        torch.set_num_threads(1)
        self.path = resolved
        self.model = DQN.load(resolved, device="cpu")
        self.model.policy.set_training_mode(False)
        shape = self.model.observation_space.shape
        if self.model.action_space.n != len(Action) or shape is None or len(shape) != 2:
            raise ValueError(f"{resolved}: expected a Discrete({len(Action)}) policy over a (rows, "
                             f"features) observation, got {self.model.action_space} / {shape}")
        self.observation_shape: tuple[int, ...] = tuple(int(n) for n in shape)
        self._torch = torch

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of the 5 meta-actions for one observation."""
        with self._torch.no_grad():
            tensor, _ = self.model.policy.obs_to_tensor(obs)
            return self.model.q_net(tensor)[0].numpy().astype(np.float64)

    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        q = self.q_values(obs)
        return int(np.argmax(q)), [float(v) for v in q]
