"""How much faster could any planner drive behind our decision layer? A look-ahead planner that cheats.

At every 1 s replan it copies the whole simulated world (traffic, decision, control) and tries each of the
five meta-actions, followed by `--continuation` for `--horizon` seconds, in the copy; it keeps the action
whose trial got the ego furthest along the road without a collision (ties: the continuation's own choice).
The traffic is deterministic once an episode is seeded, so each trial sees the very future the real step
will meet. No planner in the stack can do this (it knows the future); its speed is a figure of what the
traffic and the decision layer leave to win by choosing lanes, against which the rule planner's and the
DQN's gains can be read.

Rows (the same model-selection episodes, decision's whole layer ON, ground truth in the camera's view):
  rules               the rule planner (nodes/planning/rules.py), the baseline
  lookahead_<H>s      the look-ahead planner

    python bench/planner_headroom.py [--episodes 10] [--horizon 8] [--json PATH]

Runs on the model-selection seeds (SELECTION_SEED_BASE + i), never on the held-out ones. It is slow: every
second of driving simulates 5 x horizon seconds more.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.stats import mean_ci95  # noqa: E402
from nodes.planning.lookahead import CONTINUATIONS, lookahead_action, make_env, trial_values  # noqa: E402
from nodes.planning.rules import RulePlanner  # noqa: E402
from nodes.planning.seeds import SELECTION_SEED_BASE  # noqa: E402


def run_episode(seed: int, lookahead: bool, horizon: int, continuation: str) -> dict:
    env = make_env()
    rules = RulePlanner()
    obs, _ = env.reset(seed=seed)
    rules.reset()
    done = False
    while not done:
        own = rules.act(obs)[0]  # keeps the rule planner's memory moving, as it would drive
        action = own
        if lookahead:
            action = lookahead_action(trial_values(env, rules, horizon, continuation), own)
        obs, _, crashed, truncated, _ = env.step(action)
        done = crashed or truncated
    s = env.stats
    return {"seed": seed, "collision": s.end_reason == "collision", "mean_speed": s.mean_speed,
            "lane_changes": s.lane_changes, "intervention_ratio": s.intervened_steps / max(s.plan_steps, 1)}


def summarise(name: str, episodes: list[dict]) -> dict:
    return {"name": name, "episodes": len(episodes),
            "collision_rate": float(np.mean([e["collision"] for e in episodes])),
            "mean_speed_mps": float(np.mean([e["mean_speed"] for e in episodes])),
            "lane_changes_per_episode": float(np.mean([e["lane_changes"] for e in episodes])),
            "intervention_ratio": float(np.mean([e["intervention_ratio"] for e in episodes])),
            "per_episode_speed": [round(e["mean_speed"], 3) for e in episodes]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " See the module docstring.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10, help="model-selection episodes (default 10)")
    parser.add_argument("--horizon", type=int, default=8, help="seconds each trial looks ahead (default 8)")
    parser.add_argument("--continuation", choices=CONTINUATIONS, default="rules",
                        help="what a trial does after its first action: the rule planner (default) or FASTER")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.horizon < 1:
        parser.error("--episodes and --horizon must be >= 1")
    seeds = [SELECTION_SEED_BASE + i for i in range(args.episodes)]
    rows = []
    for name, lookahead in (("rules", False), (f"lookahead_{args.horizon}s", True)):
        start = time.perf_counter()
        episodes = [run_episode(s, lookahead, args.horizon, args.continuation)
                    for s in tqdm(seeds, desc=name, unit="ep", dynamic_ncols=True)]
        rows.append(summarise(name, episodes) | {"wall_s": round(time.perf_counter() - start, 1)})
    diff = np.subtract(rows[1]["per_episode_speed"], rows[0]["per_episode_speed"])
    print(f"\nplanner headroom: {args.episodes} model-selection episodes (seeds {seeds[0]}..{seeds[-1]}), "
          f"layer ON, trials of {args.horizon} s then {args.continuation}")
    print("| row | episodes | collision rate | mean speed m/s | lane changes/ep | interventions / plan period |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['name']} | {r['episodes']} | {r['collision_rate']:.1%} | {r['mean_speed_mps']:.2f} | "
              f"{r['lane_changes_per_episode']:.2f} | {r['intervention_ratio']:.3f} |")
    mean, low, high = mean_ci95(list(diff))  # Student t, as the evaluate report's intervals
    interval = "" if low is None else f" (95% interval {low:+.2f} to {high:+.2f})"
    print(f"look-ahead minus rules, paired: {mean:+.2f} m/s{interval}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seeds": seeds, "horizon_s": args.horizon,
                                         "continuation": args.continuation, "rows": rows,
                                         "paired_difference_mps": float(diff.mean())}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
