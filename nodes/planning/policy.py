"""Planner policies behind one call: observation -> (meta-action, Q-values).

`DQNPolicy` wraps a stable-baselines3 DQN zip (torch and SB3 are imported only here, on load).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from msgs import Action
from nodes.deploy import TRAIN_COMMANDS
from nodes.share import require_model, resolve_model

DEFAULT_MODEL = "models/planner_dqn.zip"
TRAIN_COMMAND = TRAIN_COMMANDS["planner"]
resolve_model_path = resolve_model  # the one model resolver (nodes.share), under the name planning's callers use


def saved_spaces(path: str | Path) -> tuple[tuple[int, ...] | None, int | None]:
    """The observation shape and the number of actions a stable-baselines3 zip stores in its `data` JSON, read
    without torch or SB3 (so a node's `check` can refuse a model it could not run); ValueError for a file that
    is not such a zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
        shape, n = data["observation_space"].get("_shape"), data["action_space"].get("n")
        return (None if shape is None else tuple(int(v) for v in shape)), (None if n is None else int(n))
    except (OSError, KeyError, TypeError, AttributeError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a stable-baselines3 model zip ({type(exc).__name__}: {exc})") from None


def check_spaces(path: str | Path, shape: tuple[int, ...] | None, n_actions: int | None) -> tuple[int, ...]:
    """`shape`, when a policy over it with `n_actions` actions is one the planner can run; else ValueError."""
    if n_actions != len(Action) or shape is None or len(shape) != 2:
        raise ValueError(f"{path}: expected a Discrete({len(Action)}) policy over a (rows, features) observation, "
                         f"got {n_actions} actions over {shape}")
    return shape


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
        self.observation_shape: tuple[int, ...] = check_spaces(
            resolved, None if shape is None else tuple(int(n) for n in shape), int(self.model.action_space.n))
        self._torch = torch

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of the 5 meta-actions for one observation."""
        with self._torch.no_grad():
            tensor, _ = self.model.policy.obs_to_tensor(obs)
            return self.model.q_net(tensor)[0].numpy().astype(np.float64)

    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        q = self.q_values(obs)
        return int(np.argmax(q)), [float(v) for v in q]
