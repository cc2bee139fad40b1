"""The planner's Q-network behind a backend: torch (the SB3 model) or an ONNX export run by onnxruntime
(neither torch nor stable-baselines3 is imported).

Every backend has DQNPolicy's interface: `observation_shape`, `q_values(obs)` and `act(obs) -> (action, Q)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from msgs import Action
from nodes.deploy import EXPORT_COMMANDS, check_backend, exported_path, open_session
from nodes.planning.policy import TRAIN_COMMAND, DQNPolicy
from nodes.share import require_model


class OnnxPolicy:
    """The exported Q-network (backend onnx or onnx_int8); greedy action and its Q-values."""

    def __init__(self, model: str | Path, backend: str = "onnx", threads: int = 1,
                 path: str | Path | None = None) -> None:
        """model: the SB3 zip the export was made from. backend: onnx or onnx_int8. threads: onnxruntime
        threads. path: the ONNX file (None: the one beside the zip)."""
        source = require_model(model, "planner", TRAIN_COMMAND)  # the export is checked against it
        self.path = Path(path) if path is not None else exported_path(source, backend)
        self.backend = backend
        self.session, meta = open_session(self.path, source, EXPORT_COMMANDS["planner"], threads)
        shape = exported_observation_shape(meta, self.path)
        n_actions = self.session.get_outputs()[0].shape[-1]
        if len(shape) != 2 or n_actions != len(Action):
            raise ValueError(f"{self.path}: expected Q-values of {len(Action)} actions over a (rows, features) "
                             f"observation, got {n_actions} over {shape}")
        self.observation_shape: tuple[int, ...] = shape

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of the 5 meta-actions for one observation."""
        x = np.asarray(obs, np.float32).reshape((1, *self.observation_shape))
        return self.session.run(None, {"obs": x})[0][0].astype(np.float64)

    def act(self, obs: np.ndarray) -> tuple[int, list[float]]:
        q = self.q_values(obs)
        return int(np.argmax(q)), [float(v) for v in q]


def exported_observation_shape(meta: dict[str, str], path: str | Path) -> tuple[int, ...]:
    """The observation shape stored in an exported planner's metadata (`nodes.deploy.check_export` reads it
    without loading the network); ValueError naming the file when it has none."""
    try:
        return tuple(int(n) for n in meta["observation_shape"].split(","))
    except (KeyError, ValueError):
        raise ValueError(f"{path}: no observation_shape in its metadata: remake it with "
                         f"`{EXPORT_COMMANDS['planner']}`") from None


def make_policy(model: str | Path, backend: str = "torch", threads: int = 1) -> DQNPolicy | OnnxPolicy:
    """The planner for `backend` (torch, onnx, onnx_int8) from the SB3 zip `model`."""
    check_backend(backend, "planning")
    if backend == "torch":
        return DQNPolicy(model)
    return OnnxPolicy(model, backend, threads)
