"""Planner benchmark: held-out highway-v0 episodes (50 vehicles, 40 s), the same seeds for every row.

Rows:
  idm_mobil         highway-env's built-in IDM/MOBIL car as the ego (the reference driver)
  example_dqn       HighwayEnv's scripts/sb3_highway_dqn.py DQN (highway-env's own meta-action controller
                    and its full Kinematics observation), models/planner_example_dqn.zip
  planner_dqn       our DQN (models/planner_dqn.zip, the stack's: trained with decision's overrides ON), its
                    meta-actions carried out by our decision and control at 15 Hz from ground truth cut to
                    the camera's view; decision overrides OFF, then ON
  planner_dqn_trained_off
                    the same, trained with the overrides OFF (models/planner_dqn_off.zip, the ablation)
  rules             the rule planner (nodes/planning/rules.py, the planning node's `policy: rules`) on the
                    same "lanes" observation at the same 1 Hz, through the same decision and control; OFF, ON
Columns (means over episodes):
  collision_rate    episodes that ended in a collision
  mean_speed_mps    forward speed averaged over the episode
  return_per_s      highway-env's normalised reward integrated over the episode [reward * s] / 40 s:
                    1 is the best possible; a crash forfeits the rest of the episode
  lane_changes      lane index changes per episode
  overrides         plan periods (1 s) per episode in which decision did not follow the plan as asked
                    (following a slower lead included), and override_ratio, their fraction of plan periods
  interventions     plan periods per episode in which decision intervened (refused or aborted a lane
                    change, braked in emergency), and intervention_ratio, their fraction of plan periods
Our planners run three ways: overrides OFF (the plan as is), interventions OFF (following kept: adaptive
cruise behind a slower lead, no refusal, no emergency brake: the planner drives on its own), overrides ON.
highway-env's rows step at 1 Hz (their speed, reward and lane are sampled once a second); ours at 15 Hz.
Seeds (nodes/planning/seeds.py), never drawn by training or its evaluation: BENCH_SEED_BASE + i by default
(development episodes: earlier choices were checked on them); `--selection`: SELECTION_SEED_BASE + i, the
episodes on which a trained model is chosen (models/README.md); `--held-out`: HELD_OUT_SEED_BASE + i, looked
at once, after every choice.

  PYTHONPATH=$PWD python bench/planner.py [--episodes 50] [--quick] [--selection | --held-out] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402

from msgs import Action  # noqa: E402
from msgs.registry import CONTROL_RATE_HZ  # noqa: E402
from nodes.planning.baselines import (  # noqa: E402
    EXAMPLE_DQN_COMMAND,
    EXAMPLE_DQN_PATH,
    reference_env_config,
)
from nodes.planning.env import PlannerEnv, PlannerEnvConfig, evaluation_sim  # noqa: E402
from nodes.planning.observation import ObservationConfig  # noqa: E402
from nodes.planning.policy import DEFAULT_MODEL, DQNPolicy  # noqa: E402
from nodes.planning.rules import RulePlanner  # noqa: E402
from nodes.planning.seeds import BENCH_SEED_BASE, HELD_OUT_SEED_BASE, SELECTION_SEED_BASE  # noqa: E402
from sim.highway import make_idm_ego, use_road  # noqa: E402

TRAINED_OFF_MODEL = str(Path(__file__).resolve().parents[1] / "models" / "planner_dqn_off.zip")
DURATION = 40.0  # [s] highway-v0's episode
GOALS = ("faster than IDM/MOBIL; fewer collisions than the example DQN; ON: collisions <= 2%, speed >= 24 m/s")


@dataclass
class Episode:
    collision: bool
    mean_speed: float  # [m/s]
    reward_seconds: float  # normalised reward integrated over time [s]
    lane_changes: int
    overrides: int = 0  # plan periods with an override (following included)
    interventions: int = 0  # plan periods with an intervention
    plan_steps: int = 0


def run_reference(seed: int, act: Callable[[np.ndarray], int] | None) -> Episode:
    """One highway-v0 episode at highway-env's defaults; `act` None: the IDM/MOBIL ego drives itself."""
    env = use_road(gym.make("highway-v0", config=reference_env_config(duration=DURATION)))
    obs, _ = env.reset(seed=seed)
    if act is None:
        make_idm_ego(env)
    ego = env.unwrapped.vehicle
    speeds, rewards, lanes = [], [], [ego.lane_index[2]]
    done = False
    while not done:
        action = int(Action.IDLE) if act is None else act(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        speeds.append(ego.speed * np.cos(ego.heading))
        rewards.append(reward)  # one per 1 s policy step
        lanes.append(ego.lane_index[2])
    env.close()
    return Episode(collision=bool(ego.crashed), mean_speed=float(np.mean(speeds)),
                   reward_seconds=float(np.sum(rewards)), lane_changes=int(np.count_nonzero(np.diff(lanes))))


def planner_runner(policy: DQNPolicy | RulePlanner, overrides: bool,
                   interventions: bool = True) -> Callable[[int], Episode]:
    observation = ObservationConfig.for_shape(policy.observation_shape)
    env = PlannerEnv(PlannerEnvConfig(sim=evaluation_sim(), overrides=overrides, observation=observation,
                                      interventions_share=1.0 if interventions else 0.0))
    dt = 1.0 / CONTROL_RATE_HZ

    def run(seed: int) -> Episode:
        obs, _ = env.reset(seed=seed)
        if isinstance(policy, RulePlanner):
            policy.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs)[0])
            done = terminated or truncated
        s = env.stats
        return Episode(collision=s.end_reason == "collision", mean_speed=s.mean_speed,
                       reward_seconds=s.reward_sum * dt, lane_changes=s.lane_changes,
                       overrides=s.overridden_steps, interventions=s.intervened_steps, plan_steps=s.plan_steps)

    return run


def summarise(name: str, episodes: list[Episode], seconds: float, with_overrides: bool) -> dict:
    row = {
        "name": name,
        "episodes": len(episodes),
        "collision_rate": float(np.mean([e.collision for e in episodes])),
        "mean_speed_mps": float(np.mean([e.mean_speed for e in episodes])),
        "return_per_s": float(np.mean([e.reward_seconds for e in episodes]) / DURATION),
        "lane_changes_per_episode": float(np.mean([e.lane_changes for e in episodes])),
        "wall_s": round(seconds, 1),
        "per_episode_speed": [round(e.mean_speed, 4) for e in episodes],  # seed order: paired comparisons
        "per_episode_collision": [bool(e.collision) for e in episodes],
    }
    if with_overrides:
        row["overrides_per_episode"] = float(np.mean([e.overrides for e in episodes]))
        plan_steps = max(sum(e.plan_steps for e in episodes), 1)
        row["override_ratio"] = float(sum(e.overrides for e in episodes) / plan_steps)
        row["interventions_per_episode"] = float(np.mean([e.interventions for e in episodes]))
        row["intervention_ratio"] = float(sum(e.interventions for e in episodes) / plan_steps)
    return row


def paired(by_name: dict[str, dict]) -> list[str]:
    """Each DQN row against the rule planner's row with the same layer, seed by seed (mean, 95% interval)."""
    from evaluation.stats import mean_ci95

    lines = []
    for layer in ("overrides_on", "interventions_off", "overrides_off"):
        rules = by_name.get(f"rules_{layer}")
        if rules is None:
            continue
        for name, row in by_name.items():
            if name.endswith(f"_{layer}") and not name.startswith("rules_"):
                diff = np.subtract(row["per_episode_speed"], rules["per_episode_speed"])
                mean, low, high = mean_ci95(list(diff))
                interval = "" if low is None else f" (95% interval {low:+.2f} to {high:+.2f})"
                lines.append(f"{name} minus rules_{layer}, paired over {len(diff)} episodes: {mean:+.2f} m/s{interval}")
    return lines


def table(rows: list[dict]) -> str:
    head = (f"| {'row':<37} | {'episodes':>8} | {'collision rate':>14} | {'mean speed m/s':>14} | "
            f"{'return/s':>8} | {'lane changes/ep':>15} | {'overrides/ep':>12} | {'override ratio':>14} | "
            f"{'intervention ratio':>18} |")
    lines = [head, "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        ov = f"{r['overrides_per_episode']:.2f}" if "overrides_per_episode" in r else "-"
        ratio = f"{r['override_ratio']:.3f}" if "override_ratio" in r else "-"
        iv = f"{r['intervention_ratio']:.3f}" if "intervention_ratio" in r else "-"
        lines.append(f"| {r['name']:<37} | {r['episodes']:>8} | {r['collision_rate']:>14.1%} | "
                     f"{r['mean_speed_mps']:>14.2f} | {r['return_per_s']:>8.3f} | "
                     f"{r['lane_changes_per_episode']:>15.2f} | {ov:>12} | {ratio:>14} | {iv:>18} |")
    return "\n".join(lines)


def goals(rows: dict[str, dict]) -> list[str]:
    idm, example = rows["idm_mobil"], rows["example_dqn"]
    off, on = rows["planner_dqn_overrides_off"], rows["planner_dqn_overrides_on"]
    checks = []
    trained_off = rows.get("planner_dqn_trained_off_overrides_off")
    if trained_off is not None:
        checks += [
            ("trained OFF, run OFF: faster than IDM/MOBIL", trained_off["mean_speed_mps"] > idm["mean_speed_mps"]),
            ("trained OFF, run OFF: fewer collisions than the example DQN",
             trained_off["collision_rate"] < example["collision_rate"]),
        ]
    checks += [
        ("OFF faster than IDM/MOBIL", off["mean_speed_mps"] > idm["mean_speed_mps"]),
        ("ON faster than IDM/MOBIL", on["mean_speed_mps"] > idm["mean_speed_mps"]),
        ("OFF fewer collisions than the example DQN", off["collision_rate"] < example["collision_rate"]),
        ("ON fewer collisions than the example DQN", on["collision_rate"] < example["collision_rate"]),
        ("ON collision rate <= 2%", on["collision_rate"] <= 0.02),
        ("ON mean speed >= 24 m/s", on["mean_speed_mps"] >= 24.0),
    ]
    return [f"  [{'x' if ok else ' '}] {text}" for text, ok in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " See the module docstring.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50, help="episodes per row (default 50)")
    parser.add_argument("--quick", action="store_true", help="3 episodes per row")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="our planner's DQN zip")
    parser.add_argument("--example-model", default=str(EXAMPLE_DQN_PATH),
                        help=f"the example DQN zip (made by: {EXAMPLE_DQN_COMMAND})")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                        help="another planner zip to bench beside --model (rows NAME_overrides_off, "
                        "NAME_interventions_off, NAME_overrides_on)")
    parser.add_argument("--trained-off-model", default=TRAINED_OFF_MODEL,
                        help="the ablation DQN trained with overrides OFF ('' to leave its rows out)")
    parser.add_argument("--only", metavar="ROW[,ROW]", help="run only these rows (names as in the table)")
    parser.add_argument("--selection", action="store_true",
                        help="run on the model-selection episodes, not the held-out ones (no goals checked)")
    parser.add_argument("--held-out", action="store_true",
                        help="run on the held-out episodes (HELD_OUT_SEED_BASE): only once, after every choice")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.selection and args.held_out:
        parser.error("--selection and --held-out are two different seed ranges: give one")
    n = 3 if args.quick else args.episodes
    kind = "model-selection" if args.selection else "held-out" if args.held_out else "development"
    base = SELECTION_SEED_BASE if args.selection else HELD_OUT_SEED_BASE if args.held_out else BENCH_SEED_BASE
    seeds = [base + i for i in range(n)]

    import torch

    torch.set_num_threads(1)
    ours = DQNPolicy(args.model)
    example = DQNPolicy(args.example_model, make_command=EXAMPLE_DQN_COMMAND)
    extras = list(args.extra)
    if args.trained_off_model and Path(args.trained_off_model).is_file():
        extras.insert(0, f"planner_dqn_trained_off={args.trained_off_model}")
    runs: list[tuple[str, Callable[[int], Episode], bool]] = [
        ("idm_mobil", lambda s: run_reference(s, None), False),
        ("example_dqn", lambda s: run_reference(s, lambda o: example.act(o)[0]), False),
        ("planner_dqn_overrides_off", planner_runner(ours, overrides=False), True),
        ("planner_dqn_interventions_off", planner_runner(ours, overrides=True, interventions=False), True),
        ("planner_dqn_overrides_on", planner_runner(ours, overrides=True), True),
        ("rules_overrides_off", planner_runner(RulePlanner(), overrides=False), True),
        ("rules_interventions_off", planner_runner(RulePlanner(), overrides=True, interventions=False), True),
        ("rules_overrides_on", planner_runner(RulePlanner(), overrides=True), True),
    ]
    for spec in extras:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--extra wants NAME=PATH, got {spec!r}")
        other = DQNPolicy(path)
        runs += [(f"{name}_overrides_off", planner_runner(other, overrides=False), True),
                 (f"{name}_interventions_off", planner_runner(other, overrides=True, interventions=False), True),
                 (f"{name}_overrides_on", planner_runner(other, overrides=True), True)]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {name for name, _, _ in runs}
        if unknown:
            parser.error(f"--only: no row named {', '.join(sorted(unknown))}")
        runs = [r for r in runs if r[0] in wanted]
    rows = []
    for name, run, with_overrides in runs:
        start = time.perf_counter()
        episodes = [run(s) for s in tqdm(seeds, desc=name, unit="ep", dynamic_ncols=True)]
        rows.append(summarise(name, episodes, time.perf_counter() - start, with_overrides))
    print(f"\nplanner bench: {n} {kind} highway-v0 episodes (seeds {seeds[0]}..{seeds[-1]}), "
          "50 vehicles, 40 s")
    print(table(rows))
    by_name = {r["name"]: r for r in rows}
    print("\n".join(paired(by_name)))
    if not args.selection and {"idm_mobil", "example_dqn", "planner_dqn_overrides_off",
                               "planner_dqn_overrides_on"} <= set(by_name):
        print(f"goals ({GOALS}):")
        print("\n".join(goals(by_name)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"episodes": n, "kind": kind, "seeds": seeds, "model": args.model,
                                         "rows": {r["name"]: r for r in rows}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
