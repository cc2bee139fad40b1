"""Training helpers: a tqdm progress bar for stable-baselines3 (SB3's own needs `rich`, not a dependency), and
where TensorBoard logs go."""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm


class TqdmProgress(BaseCallback):
    """One bar over the policy steps of `learn`, with the latest episode return and length."""

    def __init__(self, total_timesteps: int, desc: str = "train") -> None:
        super().__init__()
        self.total = total_timesteps
        self.desc = desc
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="step", dynamic_ncols=True, mininterval=2.0)

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.training_env.num_envs)
        buffer = self.model.ep_info_buffer
        if buffer:
            last = buffer[-1]
            self.bar.set_postfix(ep_return=f"{last['r']:.1f}", ep_len=last["l"], refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class EpisodeStatsLogger(BaseCallback):
    """Logs what `PlannerEnv` measured of each finished episode to TensorBoard (rollout/*)."""

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            stats = info.get("episode_stats")
            if stats is None:
                continue
            self.logger.record_mean("rollout/mean_speed_mps", stats.mean_speed)
            self.logger.record_mean("rollout/collision_rate", float(stats.end_reason == "collision"))
            self.logger.record_mean("rollout/lane_changes", float(stats.lane_changes))
            overridden = stats.overridden_steps / max(stats.plan_steps, 1)
            self.logger.record_mean("rollout/override_ratio", overridden)
        return True


def tensorboard_dir(path: Path) -> str | None:
    """`path` for SB3's TensorBoard logs, or None (with a note) when tensorboard is not installed."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        print('note: tensorboard is not installed, so no TensorBoard logs (pip install "drivestack[train]"); '
              "evaluations still go to evaluations.npz and summary.json", flush=True)
        return None
    return str(path)
