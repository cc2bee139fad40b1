"""Train the planner: SB3 DQN whose meta-actions our own decision and control carry out.

    drivestack train planner [--total-timesteps N] [--seed S] ...     (or: python -m nodes.planning.train)

Reads top to bottom: hyper-parameters, envs, callbacks, learn, save. Trains on the lighter traffic of
`nodes.planning.env.training_sim` (decision's overrides off unless --overrides; the shipped model was
trained with them on), evaluates periodically on highway-v0 (50 vehicles) on validation seeds, and copies
the best evaluated model (or with `--ship final` the last weights) to `--out`. TensorBoard
logs go under `--log-dir` (`tensorboard --logdir runs/planner`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nodes.planning.observation import KINDS, ObservationConfig
from nodes.planning.progress import tensorboard_dir
from nodes.planning.seeds import SELECTION_SEED_BASE, VALIDATION_SEED_BASE


def arg(default, doc: str):
    """A hyper-parameter: its default and the line `--help` shows for it."""
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata={"help": doc})
    return field(default=default, metadata={"help": doc})


@dataclass
class Args:
    """Hyper-parameters and paths; each is a command-line flag (--total-timesteps etc.)."""

    seed: int = arg(0, "seeds the network, exploration and the training worlds")
    total_timesteps: int = arg(24_000, "policy steps of 1 s (15 control ticks each)")
    # DQN (stable-baselines3): the HighwayEnv example's values where no reason is given
    net_arch: tuple[int, ...] = arg((256, 256), "MLP hidden layer sizes")
    learning_rate: float = arg(5e-4, "Adam learning rate")
    buffer_size: int = arg(50_000, "replay buffer [transitions]; steps are expensive, keep them all")
    learning_starts: int = arg(500, "transitions collected before the first update")
    batch_size: int = arg(64, "transitions per gradient update")
    gamma: float = arg(0.9, "discount per 1 s step (example: 0.8): a crash should cost ~10 s of reward")
    train_freq: int = arg(1, "policy steps between updates")
    gradient_steps: int = arg(2, "updates per train_freq (example: 1); the simulator dominates the cost")
    target_update_interval: int = arg(250, "policy steps between target-network copies")
    exploration_fraction: float = arg(0.4, "fraction of training over which epsilon decays")
    exploration_final_eps: float = arg(0.05, "final epsilon")
    # worlds
    train_env: str = arg("highway-fast-v0", "training world: 'highway-fast-v0' (no collision checks between other "
                         "vehicles) or 'highway-v0' (the world the stack drives and is evaluated in)")
    train_vehicles: int = arg(20, "other vehicles in training (4 lanes)")
    eval_vehicles: int = arg(50, "other vehicles in evaluation (highway-v0 world, 4 lanes)")
    episode_seconds: float = arg(40.0, "episode time limit [s], training and evaluation")
    road: str = arg("fast", "'fast' (sim/fast_road.py: highway-env's trajectories bit for bit, faster) or 'stock' "
                    "(highway-env's Road), training and evaluation")
    overrides: bool = arg(False, "decision's safety overrides on during training")
    interventions_share: float = arg(1.0, "with --overrides: the share of training episodes with decision's "
                                     "interventions on (refused/aborted lane changes, emergency brake); the rest "
                                     "keep only following (adaptive cruise behind a slower lead)")
    reward: str = arg("highway", "'highway' (highway-env's normalised reward, weights below) or 'drive' (speed in "
                      "[20, 30] m/s, minus the penalties below; nodes/planning/env.py)")
    collision_penalty: float = arg(5.0, "'drive' reward: subtracted on a collision or leaving the road")
    intervention_penalty: float = arg(0.3, "'drive' reward: subtracted for each 1 s step decision intervened in")
    lane_change_penalty: float = arg(0.0, "'drive' reward: subtracted for each lane the ego crossed into")
    observation: str = arg("kinematics", "what the planner sees: 'kinematics' (highway-env's Kinematics, 7 nearest "
                           "vehicles) or 'lanes' (per lane: the two vehicles ahead and the one behind); "
                           "nodes/planning/observation.py")
    right_lane_reward: float = arg(0.1, "highway-env's reward weight for the rightmost lane (0.1: its default)")
    high_speed_reward: float = arg(0.4, "highway-env's reward weight for speed in [20, 30] m/s (0.4: its default)")
    # periodic evaluation on highway-v0 (50 vehicles), validation seeds (unused by training and the bench)
    eval_freq: int = arg(4_000, "policy steps between evaluations")
    eval_episodes: int = arg(4, "episodes per evaluation")
    init_model: str = arg("", "start from this model's weights (an SB3 DQN zip of the same shape) instead of random "
                          "ones: fine-tuning; '' starts from scratch")
    # outputs
    out: str = arg("models/planner_dqn.zip", "where the shipped model is copied (see --ship)")
    ship: str = arg("best", "which model --out gets: 'best' (the best periodic evaluation) or 'final' (the last "
                    "weights; the evaluations see only a few episodes)")
    log_dir: str = arg("runs/planner", "TensorBoard logs (tb/), evaluations, best and final models")


def parse_args(argv: Sequence[str] | None) -> Args:
    parser = argparse.ArgumentParser(
        prog="drivestack train planner",
        description="Train the planner DQN with our decision and control in the loop (see "
        "nodes/planning/train.py). models/README.md gives the commands that made the shipped planner "
        "(--init-model continues training from an earlier model's weights).",
    )
    defaults = Args()
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        help_text = f"{f.metadata['help']} (default: {value})"
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=help_text)
        elif isinstance(value, tuple):
            parser.add_argument(flag, type=int, nargs="+", default=list(value), help=help_text)
        else:
            parser.add_argument(flag, type=type(value), default=value, help=help_text)
    ns = vars(parser.parse_args(argv))
    ns["net_arch"] = tuple(ns["net_arch"])
    if ns["observation"] not in KINDS:
        parser.error(f"--observation must be one of {', '.join(KINDS)}, got {ns['observation']!r}")
    if ns["road"] not in ("fast", "stock"):
        parser.error(f"--road must be 'fast' or 'stock', got {ns['road']!r}")
    if ns["train_env"] not in ("highway-fast-v0", "highway-v0"):
        parser.error(f"--train-env must be 'highway-fast-v0' or 'highway-v0', got {ns['train_env']!r}")
    if ns["ship"] not in ("best", "final"):
        parser.error(f"--ship must be 'best' or 'final', got {ns['ship']!r}")
    most = SELECTION_SEED_BASE - VALIDATION_SEED_BASE  # beyond: the model-selection episodes (seeds.py)
    if not 1 <= ns["eval_episodes"] <= most:
        parser.error(f"--eval-episodes must be in [1, {most}], got {ns['eval_episodes']}")
    return Args(**ns)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.monitor import Monitor

    from nodes.planning.env import PlannerEnv, PlannerEnvConfig, evaluation_sim, training_sim
    from nodes.planning.progress import EpisodeStatsLogger, TqdmProgress

    torch.set_num_threads(1)
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)

    train_sim, eval_sim = training_sim(), evaluation_sim()
    train_sim.env_id = args.train_env
    train_sim.vehicles_count, eval_sim.vehicles_count = args.train_vehicles, args.eval_vehicles
    train_sim.duration = eval_sim.duration = args.episode_seconds
    train_sim.road = eval_sim.road = args.road
    train_sim.right_lane_reward = eval_sim.right_lane_reward = args.right_lane_reward
    train_sim.high_speed_reward = eval_sim.high_speed_reward = args.high_speed_reward
    observation = ObservationConfig(kind=args.observation)
    shared = dict(overrides=args.overrides, observation=observation, interventions_share=args.interventions_share,
                  reward=args.reward, collision_penalty=args.collision_penalty,
                  intervention_penalty=args.intervention_penalty, lane_change_penalty=args.lane_change_penalty)
    train_env = Monitor(PlannerEnv(PlannerEnvConfig(sim=train_sim, **shared)))
    validation = tuple(VALIDATION_SEED_BASE + i for i in range(args.eval_episodes))
    eval_env = Monitor(PlannerEnv(PlannerEnvConfig(sim=eval_sim, reset_seeds=validation, **shared)))

    model = DQN(
        "MlpPolicy", train_env, policy_kwargs={"net_arch": list(args.net_arch)},
        learning_rate=args.learning_rate, buffer_size=args.buffer_size, learning_starts=args.learning_starts,
        batch_size=args.batch_size, gamma=args.gamma, train_freq=args.train_freq,
        gradient_steps=args.gradient_steps, target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_fraction, exploration_final_eps=args.exploration_final_eps,
        seed=args.seed, verbose=0, tensorboard_log=tensorboard_dir(log_dir / "tb"), device="cpu",
    )
    if args.init_model:
        model.set_parameters(args.init_model, exact_match=True, device="cpu")
    evaluation = EvalCallback(eval_env, n_eval_episodes=args.eval_episodes, eval_freq=args.eval_freq,
                              best_model_save_path=str(log_dir), log_path=str(log_dir), deterministic=True,
                              verbose=0)
    callbacks = CallbackList([TqdmProgress(args.total_timesteps, "planner dqn"), EpisodeStatsLogger(),
                              evaluation])
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps, callback=callbacks, tb_log_name="dqn")
    minutes = (time.perf_counter() - start) / 60.0
    model.save(log_dir / "final_model.zip")

    best = log_dir / "best_model.zip"
    chosen = best if best.is_file() and args.ship == "best" else log_dir / "final_model.zip"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(chosen, out)
    summary = {
        "args": dataclasses.asdict(args),
        "train_minutes": round(minutes, 1),
        "best_eval_mean_return": float(evaluation.best_mean_reward),
        "shipped": str(out),
        "from": chosen.name,
    }
    (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"trained {args.total_timesteps} steps in {minutes:.1f} min; best validation return "
          f"{evaluation.best_mean_reward:.2f} (of {args.episode_seconds:.0f}); saved {out} ({chosen.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
