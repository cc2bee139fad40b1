"""Training smoke test: a tiny budget runs the whole script (env, DQN, evaluation, logs, save)."""

from __future__ import annotations

import json

import pytest

from nodes.planning.observation import ObservationConfig
from nodes.planning.policy import DQNPolicy
from nodes.planning.train import Args, main, parse_args


@pytest.mark.parametrize("observation", ["kinematics", "lanes"])
def test_tiny_training_run_saves_a_model_logs_and_evaluates(tmp_path, observation: str) -> None:
    out = tmp_path / "planner.zip"
    argv = ["--total-timesteps", "48", "--learning-starts", "16", "--eval-freq", "24", "--eval-episodes", "1",
            "--train-vehicles", "3", "--eval-vehicles", "3", "--episode-seconds", "6", "--net-arch", "16",
            "--observation", observation, "--out", str(out), "--log-dir", str(tmp_path / "logs")]
    assert main(argv) == 0
    policy = DQNPolicy(out)
    assert policy.observation_shape == ObservationConfig(kind=observation).shape
    assert ObservationConfig.for_shape(policy.observation_shape).kind == observation
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["args"]["total_timesteps"] == 48 and summary["from"] == "best_model.zip"
    assert 0.0 <= summary["best_eval_mean_return"] <= 6.0
    assert list((tmp_path / "logs" / "tb").glob("dqn_*/events.out.tfevents.*"))
    assert (tmp_path / "logs" / "evaluations.npz").is_file()


def test_flags_map_onto_the_typed_block() -> None:
    args = parse_args(["--gamma", "0.5", "--net-arch", "8", "8", "--overrides", "--high-speed-reward", "1",
                       "--right-lane-reward", "0", "--ship", "final"])
    assert args == Args(gamma=0.5, net_arch=(8, 8), overrides=True, high_speed_reward=1.0, right_lane_reward=0.0,
                        ship="final")
    assert parse_args([]) == Args()
    with pytest.raises(SystemExit):
        parse_args(["--ship", "latest"])
    assert parse_args(["--observation", "lanes"]).observation == "lanes"
    with pytest.raises(SystemExit):
        parse_args(["--observation", "grid"])
    assert parse_args(["--eval-episodes", "100"]).eval_episodes == 100
    for bad in ("0", "101"):  # 101: the periodic evaluation would play the model-selection episodes
        with pytest.raises(SystemExit):
            parse_args(["--eval-episodes", bad])


def test_the_reward_weights_reach_highway_env() -> None:
    from sim.highway import SimParams, env_config

    config = env_config(SimParams(high_speed_reward=1.0, right_lane_reward=0.0))
    assert (config["high_speed_reward"], config["right_lane_reward"]) == (1.0, 0.0)


def test_init_model_starts_from_its_weights(tmp_path) -> None:
    import torch
    from stable_baselines3 import DQN

    small = ["--eval-freq", "1000", "--eval-episodes", "1", "--train-vehicles", "3", "--eval-vehicles", "3",
             "--episode-seconds", "4", "--net-arch", "16"]
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    assert main(["--total-timesteps", "24", "--learning-starts", "8", "--out", str(first),
                 "--log-dir", str(tmp_path / "a"), *small]) == 0

    def untrained(*init: str) -> dict:
        """A run too short to update the network: the shipped final weights are the initial ones."""
        assert main(["--total-timesteps", "8", "--learning-starts", "100", "--seed", "5", "--ship", "final",
                     *init, "--out", str(second), "--log-dir", str(tmp_path / "b"), *small]) == 0
        return DQN.load(second, device="cpu").policy.state_dict()

    start = DQN.load(first, device="cpu").policy.state_dict()
    fine_tuned, fresh = untrained("--init-model", str(first)), untrained()
    assert start.keys() == fine_tuned.keys() and all(torch.equal(start[k], fine_tuned[k]) for k in start)
    assert not all(torch.equal(start[k], fresh[k]) for k in start)
