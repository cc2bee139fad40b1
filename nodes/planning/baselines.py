"""Reference drivers for the planner bench: highway-env's IDM/MOBIL car as the ego, and the SB3 DQN
of HighwayEnv's `scripts/sb3_highway_dqn.py` (highway-env's own meta-actions, observation and controller).

    python -m nodes.planning.baselines --help
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import highway_env  # noqa: F401  (registers the envs)
import numpy as np

from nodes.planning.progress import TqdmProgress, tensorboard_dir
from nodes.planning.seeds import TRAIN_SEED_RANGE
from sim.highway import use_road

EXAMPLE_DQN_PATH = Path("models/planner_example_dqn.zip")
EXAMPLE_DQN_COMMAND = "python -m nodes.planning.baselines --out models/planner_example_dqn.zip"


@dataclass(frozen=True)
class ExampleDQNArgs:
    """HighwayEnv's scripts/sb3_highway_dqn.py, verbatim except the seed."""

    env_id: str = "highway-fast-v0"  # training env (1 Hz meta-actions, 5 Hz simulation, 20 vehicles)
    total_timesteps: int = 20_000  # policy steps [1 s each]
    net_arch: tuple[int, ...] = (256, 256)  # MLP hidden layers
    learning_rate: float = 5e-4
    buffer_size: int = 15_000  # transitions
    learning_starts: int = 200  # transitions collected before the first update
    batch_size: int = 32
    gamma: float = 0.8  # discount per policy step
    train_freq: int = 1  # policy steps between updates
    gradient_steps: int = 1
    target_update_interval: int = 50  # policy steps
    exploration_fraction: float = 0.7  # of total_timesteps over which epsilon decays 1 -> 0.05
    seed: int = 0


class SeededResets(gym.Wrapper):
    """Resets without a seed draw one from TRAIN_SEED_RANGE, so training worlds are known integers."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is None:
            seed = int(self._rng.integers(*TRAIN_SEED_RANGE))
        return self.env.reset(seed=seed, options=options)


def train_example_dqn(args: ExampleDQNArgs, out: Path, tensorboard_log: str | None = "runs/tb") -> float:
    """Train the example DQN, save it to `out`; returns the wall time [s]."""
    import torch
    from stable_baselines3 import DQN

    torch.set_num_threads(1)
    env = SeededResets(use_road(gym.make(args.env_id)), args.seed)
    model = DQN(
        "MlpPolicy", env, policy_kwargs={"net_arch": list(args.net_arch)}, learning_rate=args.learning_rate,
        buffer_size=args.buffer_size, learning_starts=args.learning_starts, batch_size=args.batch_size,
        gamma=args.gamma, train_freq=args.train_freq, gradient_steps=args.gradient_steps,
        target_update_interval=args.target_update_interval, exploration_fraction=args.exploration_fraction,
        seed=args.seed, verbose=0, device="cpu",
        tensorboard_log=tensorboard_dir(Path(tensorboard_log)) if tensorboard_log else None,
    )
    start = time.perf_counter()
    progress = TqdmProgress(args.total_timesteps, "example dqn")
    model.learn(total_timesteps=args.total_timesteps, callback=progress, tb_log_name="example_dqn")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    return time.perf_counter() - start


def reference_env_config(vehicles_count: int = 50, duration: float = 40.0) -> dict[str, Any]:
    """highway-v0 as its defaults have it (1 Hz meta-actions, 15 Hz simulation, Kinematics observation)."""
    return {"vehicles_count": vehicles_count, "duration": duration, "lanes_count": 4}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nodes.planning.baselines",
        description="Train HighwayEnv's example SB3 DQN (scripts/sb3_highway_dqn.py hyper-parameters, "
        "2e4 steps on highway-fast-v0), the reference row of bench/planner.py.",
    )
    parser.add_argument("--out", type=Path, default=EXAMPLE_DQN_PATH, help="where to save the model zip")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network, exploration and worlds")
    parser.add_argument("--timesteps", type=int, default=ExampleDQNArgs.total_timesteps,
                        help="policy steps to train for")
    ns = parser.parse_args(argv)
    seconds = train_example_dqn(ExampleDQNArgs(seed=ns.seed, total_timesteps=ns.timesteps), ns.out)
    print(f"saved {ns.out} after {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
