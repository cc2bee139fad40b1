"""Teach the DQN's Q-network from look-ahead trials: one step of policy iteration over the rule planner.

    drivestack train planner-rollouts collect --episodes 200 --jobs 2 --out runs/rollouts
    drivestack train planner-rollouts fit --data runs/rollouts --out models/planner_dqn.zip

`collect` drives training-seed episodes of highway-v0 as the stack drives it (50 vehicles, decision's layer
on; interventions in half the episodes, following always) and at every replan measures what each of the
five meta-actions is worth (`nodes/planning/lookahead.py`: a copy of the world does the action, then the
rule planner, for `--horizon` seconds; the metres made, or a collision). It then acts as the look-ahead
would (the best trial; the rules' own action unless another was strictly better), as the rules
(`--behaviour rules`), or as a given DQN
(`--behaviour MODEL.zip`: the states that model reaches, as DAgger collects them), or with probability
`--explore` at random, so that the states seen are the ones a better planner reaches, and some it should
recover from. One file per episode (`ep_00012.npz`): resumable, and `--jobs` processes share the work.

`fit` regresses a stable-baselines3 DQN's Q-network (the shipped model's shape, MLP 256x256 on the "lanes"
observation) onto those values, as the mean speed [m/s] each action leads to over the horizon, a collision
counting `--crash-value`. The loss weighs the differences between the actions of a state (what the greedy
policy acts on) over their common level. `--tie-bonus` adds a little to the rule planner's own action, as
the look-ahead breaks ties. Episodes are split by world into fit and check sets; the check set's regret
(metres lost against the best trial, per replan) is printed for the network and for the rule planner; the
last epoch is kept (`--keep best`: the one with the least check-set regret; the learning rate decays to 0, so
the last epochs settle). The result is an ordinary DQN zip: the planning node, the benches, `drivestack
export planner` and `drivestack train planner --init-model` (TD fine-tuning) take it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nodes.planning.seeds import TRAIN_SEED_RANGE


def collect_episode(index: int, seed: int, horizon: int, explore: float, interventions_share: float,
                    out: Path, seconds: float = 40.0, behaviour: str = "lookahead") -> int:
    """Drive one episode with trials at every replan; write `out/ep_<index>.npz`. Returns the replans.
    behaviour: "lookahead" acts on the trials; "rules" as the rule planner (the states of the policy the values
    are measured against); a DQN zip's path acts as that model (DAgger: the states its own driving reaches,
    labelled with the trials)."""
    from msgs import Action
    from nodes.planning.lookahead import lookahead_action, make_env, trials
    from nodes.planning.rules import RulePlanner

    policy = None
    if behaviour not in ("lookahead", "rules"):
        from nodes.planning.policy import DQNPolicy

        policy = DQNPolicy(behaviour)

    rng = np.random.default_rng([seed, index])
    world = int(rng.integers(*TRAIN_SEED_RANGE))
    env = make_env(interventions_share, seconds)
    rules = RulePlanner()
    obs, _ = env.reset(seed=world)
    rules.reset()
    rows: dict[str, list] = {"obs": [], "values": [], "intervened": [], "own": [], "taken": []}
    done = False
    while not done:
        own = rules.act(obs)[0]
        values, intervened = trials(env, rules, horizon)
        if policy is not None:
            action = policy.act(obs)[0]
        else:
            action = own if behaviour == "rules" else lookahead_action(values, own)
        if rng.random() < explore:
            action = int(rng.integers(len(Action)))
        rows["obs"].append(obs)
        rows["values"].append(values)
        rows["intervened"].append(intervened)
        rows["own"].append(own)
        rows["taken"].append(action)
        obs, _, crashed, truncated, _ = env.step(action)
        done = crashed or truncated
    env.close()
    path = out / f"ep_{index:05d}.npz"
    tmp = out / f".ep_{index:05d}.tmp.npz"
    np.savez(tmp, obs=np.asarray(rows["obs"], dtype=np.float32), values=np.asarray(rows["values"]),
             intervened=np.asarray(rows["intervened"], dtype=bool).reshape(-1, len(Action)),
             own=np.asarray(rows["own"], dtype=np.int64), taken=np.asarray(rows["taken"], dtype=np.int64),
             world=world, horizon=horizon, interventions=env.stats.interventions,
             end_reason=str(env.stats.end_reason), mean_speed=env.stats.mean_speed)
    os.replace(tmp, path)
    return len(rows["own"])


def states_episode(index: int, seed: int, explore: float, interventions_share: float, out: Path,
                   seconds: float = 40.0) -> int:
    """Drive one training episode as the rule planner (at random at `explore` of the replans) and write its
    observation and the rules' action at every replan to `out/st_<index>.npz`, without trials (about 1 s an
    episode). Returns the replans."""
    from msgs import Action
    from nodes.planning.lookahead import make_env
    from nodes.planning.rules import RulePlanner

    rng = np.random.default_rng([seed, index, 1])
    world = int(rng.integers(*TRAIN_SEED_RANGE))
    env = make_env(interventions_share, seconds)
    rules = RulePlanner()
    obs, _ = env.reset(seed=world)
    rules.reset()
    seen, own = [], []
    done = False
    while not done:
        action = rules.act(obs)[0]
        seen.append(obs)
        own.append(action)
        if rng.random() < explore:
            action = int(rng.integers(len(Action)))
        obs, _, crashed, truncated, _ = env.step(action)
        done = crashed or truncated
    env.close()
    tmp = out / f".st_{index:05d}.tmp.npz"
    np.savez(tmp, obs=np.asarray(seen, dtype=np.float32), own=np.asarray(own, dtype=np.int64), world=world)
    os.replace(tmp, out / f"st_{index:05d}.npz")
    return len(own)


def _states_job(job: tuple) -> int:
    return states_episode(*job)


def states(args: argparse.Namespace) -> int:
    from multiprocessing import get_context

    from tqdm import tqdm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(args.start, args.start + args.episodes) if not (out / f"st_{i:05d}.npz").exists()]
    jobs = [(i, args.seed, args.explore, args.interventions_share, out, args.episode_seconds) for i in todo]
    replans = 0
    with get_context("spawn").Pool(args.jobs) as pool, \
            tqdm(total=len(jobs), desc="states", unit="ep", dynamic_ncols=True) as bar:
        for n in pool.imap_unordered(_states_job, jobs, chunksize=4):
            replans += n
            bar.update()
            bar.set_postfix(replans=replans)
    return 0


def load_states(folders: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The rule planner's (observations, actions) from the st_*.npz files of `folders`."""
    obs, own = [], []
    for folder in folders:
        found = sorted(Path(folder).glob("st_*.npz"))
        if not found:
            raise SystemExit(f"planner-rollouts fit: no st_*.npz in {folder}; run `states` first")
        for f in found:
            with np.load(f) as z:
                obs.append(z["obs"])
                own.append(z["own"])
    return np.concatenate(obs), np.concatenate(own)


def _collect_job(job: tuple) -> int:
    import torch

    torch.set_num_threads(1)
    return collect_episode(*job)


def collect(args: argparse.Namespace) -> int:
    from multiprocessing import get_context

    from tqdm import tqdm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(args.start, args.start + args.episodes) if not (out / f"ep_{i:05d}.npz").exists()]
    print(f"{args.episodes - len(todo)} of {args.episodes} episodes already in {out}; collecting {len(todo)} "
          f"with {args.jobs} process(es), trials of {args.horizon} s")
    jobs = [(i, args.seed, args.horizon, args.explore, args.interventions_share, out, args.episode_seconds,
             args.behaviour) for i in todo]
    replans = 0
    with get_context("spawn").Pool(args.jobs) as pool, \
            tqdm(total=len(jobs), desc="rollouts", unit="ep", dynamic_ncols=True) as bar:
        for n in pool.imap_unordered(_collect_job, jobs):
            replans += n
            bar.update()
            bar.set_postfix(replans=replans)
    return 0


def load(folders: Sequence[Path]) -> dict[str, np.ndarray]:
    """Every episode file of `folders`, concatenated; `episode` numbers them across folders."""
    files = []
    for folder in folders:
        found = sorted(Path(folder).glob("ep_*.npz"))
        if not found:
            raise SystemExit(f"planner-rollouts fit: no ep_*.npz in {folder}; run `collect` first")
        files += found
    parts: dict[str, list] = {"obs": [], "values": [], "intervened": [], "own": [], "episode": [], "horizon": []}
    for k, f in enumerate(files):
        with np.load(f) as z:
            parts["obs"].append(z["obs"])
            parts["values"].append(z["values"])
            # files collected before the flag was recorded: no intervention known
            parts["intervened"].append(z["intervened"] if "intervened" in z else np.zeros(z["values"].shape, bool))
            parts["own"].append(z["own"])
            parts["episode"].append(np.full(len(z["own"]), k))
            parts["horizon"].append(np.full(len(z["own"]), int(z["horizon"])))
    return {k: np.concatenate(v) for k, v in parts.items()}


def targets(values: np.ndarray, own: np.ndarray, horizon: np.ndarray, crash_value: float,
            tie_bonus: float, intervened: np.ndarray | None = None, intervention_penalty: float = 0.0) -> np.ndarray:
    """Mean speed [m/s] over the trial per action; a collision counts `crash_value`; the rules' own action
    gets `tie_bonus` more; an action decision intervened on in its first plan period `intervention_penalty`
    less."""
    speed = values / horizon[:, None]
    speed = np.where(np.isfinite(speed), speed, crash_value)
    if intervened is not None and intervention_penalty:
        speed = speed - intervention_penalty * intervened
    speed[np.arange(len(own)), own] += tie_bonus
    return speed.astype(np.float32)


def swap_sides(per_action: np.ndarray) -> np.ndarray:
    """A copy of (N, 5) per-action columns with LANE_LEFT's and LANE_RIGHT's swapped."""
    from msgs import Action

    left, right = int(Action.LANE_LEFT), int(Action.LANE_RIGHT)
    out = per_action.copy()
    out[:, left], out[:, right] = per_action[:, right], per_action[:, left]
    return out


def mirror(obs: np.ndarray, values: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same replans seen in a mirror: left and right swap. For a "lanes" observation (N, 4, 7): the rows of
    the lanes left and right of the ego swap; the ego's lane index, lateral offset and lateral speed change
    sign (each is normalised symmetrically); leftmost and rightmost swap. LANE_LEFT and LANE_RIGHT swap in the
    values and the rule planner's actions. highway-env's traffic has no side it keeps to, nor has our stack."""
    from msgs import Action
    from nodes.planning.observation import EGO_FEATURES

    left, right = int(Action.LANE_LEFT), int(Action.LANE_RIGHT)
    o = obs.copy()
    o[:, 1], o[:, 3] = obs[:, 3], obs[:, 1]
    for name in ("lane", "lateral_offset", "vy"):
        o[:, 0, EGO_FEATURES.index(name)] *= -1.0
    lm, rm = EGO_FEATURES.index("leftmost"), EGO_FEATURES.index("rightmost")
    o[:, 0, lm], o[:, 0, rm] = obs[:, 0, rm], obs[:, 0, lm]
    v = swap_sides(values)
    a = own.copy()
    a[own == left], a[own == right] = right, left
    return o, v, a


def regret(values: np.ndarray, chosen: np.ndarray) -> float:
    """Mean metres lost against the best trial per replan (a collision counted as the best trial's metres)."""
    v = np.where(np.isfinite(values), values, 0.0)
    return float(np.mean(v.max(axis=1) - v[np.arange(len(chosen)), chosen]))


def imitation_hinge(q: Any, own: Any, margin: float) -> Any:
    """Mean over states of how far each other action's Q comes within `margin` of the rules' own action's
    (torch tensors: q (N, 5), own (N,)); 0 where the rules' action leads every other by the margin."""
    import torch

    hinge = torch.relu(q - q.gather(1, own[:, None]) + margin)
    return hinge.scatter(1, own[:, None], 0.0).sum(1).mean()  # the rules' own action is not its own rival


def fit(args: argparse.Namespace) -> int:
    import torch
    from stable_baselines3 import DQN
    from tqdm import tqdm

    from nodes.planning.env import PlannerEnv, PlannerEnvConfig
    from nodes.planning.observation import ObservationConfig

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    data = load([Path(d) for d in args.data])
    y = targets(data["values"], data["own"], data["horizon"], args.crash_value, args.tie_bonus,
                data["intervened"], args.intervention_penalty)
    x = data["obs"].reshape(len(y), -1)
    episodes = np.unique(data["episode"])
    rng = np.random.default_rng(args.seed)
    check_eps = rng.choice(episodes, size=max(1, round(len(episodes) * args.check_share)), replace=False)
    check = np.isin(data["episode"], check_eps)
    fit_idx, check_idx = np.flatnonzero(~check), np.flatnonzero(check)
    if len(fit_idx) == 0:
        raise SystemExit(f"planner-rollouts fit: all {len(episodes)} episode(s) went to the check set; collect more "
                         "or lower --check-share")
    print(f"{len(y)} replans from {len(episodes)} episodes: {len(fit_idx)} to fit, {len(check_idx)} to check "
          f"({len(check_eps)} episodes)")

    env = PlannerEnv(PlannerEnvConfig(observation=ObservationConfig(kind="lanes")))
    model = DQN("MlpPolicy", env, policy_kwargs={"net_arch": list(args.net_arch)}, seed=args.seed, device="cpu",
                learning_starts=0, buffer_size=1)
    env.close()
    net = model.q_net
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=args.epochs)  # settles at the end
    if args.mirror:  # the fit set twice: as driven and seen in a mirror (the check set stays as driven)
        mo, mv, ma = mirror(data["obs"][fit_idx], data["values"][fit_idx], data["own"][fit_idx])
        mi = swap_sides(data["intervened"][fit_idx])
        x = np.concatenate([x, mo.reshape(len(ma), -1)])
        y = np.concatenate([y, targets(mv, ma, data["horizon"][fit_idx], args.crash_value, args.tie_bonus,
                                       mi, args.intervention_penalty)])
        fit_idx = np.concatenate([fit_idx, np.arange(len(ma)) + len(data["own"])])
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    im_x = im_a = None
    if args.imitate:  # the rules' action at many more states: it should stay the greedy one by a margin
        io, ia = load_states([Path(d) for d in args.imitate])
        if args.mirror:
            mo, _, ma = mirror(io, np.zeros((len(ia), len(y[0])), np.float32), ia)
            io, ia = np.concatenate([io, mo]), np.concatenate([ia, ma])
        im_x, im_a = torch.as_tensor(io.reshape(len(ia), -1)), torch.as_tensor(ia)
        print(f"{len(ia)} rule-planner states to imitate (weight {args.imitate_weight}, margin "
              f"{args.imitate_margin} m/s)")
    rules_regret = regret(data["values"][check_idx], data["own"][check_idx])
    best = (np.inf, -1, None)
    history = []
    bar = tqdm(range(args.epochs), desc="fit", unit="epoch", dynamic_ncols=True)
    for epoch in bar:
        net.train()
        order = rng.permutation(fit_idx)
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            q, t = net(xt[batch]), yt[batch]
            spread = (q - q.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
            level = q.mean(1) - t.mean(1)
            loss = (spread ** 2).mean() + args.level_weight * (level ** 2).mean()
            if im_x is not None and im_a is not None:
                pick = torch.as_tensor(rng.integers(len(im_a), size=args.batch_size))
                loss = loss + args.imitate_weight * imitation_hinge(net(im_x[pick]), im_a[pick], args.imitate_margin)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        net.eval()
        with torch.no_grad():
            chosen = net(xt[check_idx]).argmax(1).numpy()
        r = regret(data["values"][check_idx], chosen)
        agree = float(np.mean(chosen == data["own"][check_idx]))
        history.append({"epoch": epoch, "check_regret_m": r, "agree_with_rules": agree})
        bar.set_postfix(regret=f"{r:.2f}", rules=f"{rules_regret:.2f}")
        if args.keep == "final" or r < best[0]:
            best = (r, epoch, {k: v.clone() for k, v in net.state_dict().items()})
    assert best[2] is not None
    net.load_state_dict(best[2])
    model.q_net_target.load_state_dict(best[2])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    summary = {"args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items() if k != "func"},
               "replans": int(len(data["own"])), "episodes": int(len(episodes)), "kept_epoch": best[1],
               "imitated_states": 0 if im_a is None else int(len(im_a)),
               "check_regret_m": best[0], "rules_check_regret_m": rules_regret, "history": history}
    Path(str(out) + ".fit.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {out}: check-set regret {best[0]:.2f} m per replan (rule planner {rules_regret:.2f}), "
          f"epoch {best[1]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivestack train planner-rollouts",
                                     description=__doc__.split("\n\n")[0] + " See nodes/planning/rollouts.py.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="collect|states|fit")
    c = sub.add_parser("collect", help="drive training episodes with look-ahead trials at every replan",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--episodes", type=int, default=200, help="episodes to collect (about 75 CPU s each)")
    c.add_argument("--start", type=int, default=0, help="index of the first episode (files are per index)")
    c.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    c.add_argument("--horizon", type=int, default=8, help="seconds each trial looks ahead")
    c.add_argument("--explore", type=float, default=0.15, help="share of replans that act at random")
    c.add_argument("--interventions-share", type=float, default=0.5,
                   help="share of episodes with decision's interventions on (following always on)")
    c.add_argument("--behaviour", default="lookahead",
                   help="who drives between the trials: 'lookahead' (the best trial), 'rules' (the rule planner) or a "
                   "DQN zip (DAgger: label the states that model reaches)")
    c.add_argument("--episode-seconds", type=float, default=40.0, help="episode length (highway-v0's: 40 s)")
    c.add_argument("--seed", type=int, default=0, help="draws the training worlds and the exploration")
    c.add_argument("--out", default="runs/rollouts", help="folder of the episode files")
    c.set_defaults(func=collect)
    st = sub.add_parser("states", help="drive training episodes as the rule planner and record its observation "
                        "and action at every replan (no trials: about 1 s an episode), for fit --imitate",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    st.add_argument("--episodes", type=int, default=500, help="episodes to drive")
    st.add_argument("--start", type=int, default=0, help="index of the first episode (files are per index)")
    st.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    st.add_argument("--explore", type=float, default=0.15, help="share of replans that act at random")
    st.add_argument("--interventions-share", type=float, default=0.5,
                    help="share of episodes with decision's interventions on (following always on)")
    st.add_argument("--episode-seconds", type=float, default=40.0, help="episode length (highway-v0's: 40 s)")
    st.add_argument("--seed", type=int, default=0, help="draws the training worlds and the exploration")
    st.add_argument("--out", default="runs/rule-states", help="folder of the episode files")
    st.set_defaults(func=states)
    f = sub.add_parser("fit", help="fit a DQN's Q-network to the collected trial values",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--data", nargs="+", default=["runs/rollouts"], help="folders of episode files")
    f.add_argument("--out", default="models/planner_dqn.zip", help="the DQN zip written")
    f.add_argument("--net-arch", type=int, nargs="+", default=[256, 256], help="MLP hidden layer sizes")
    f.add_argument("--epochs", type=int, default=150, help="passes over the fit set")
    f.add_argument("--batch-size", type=int, default=256, help="replans per gradient step")
    f.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate, decayed to 0 (cosine)")
    f.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    f.add_argument("--keep", choices=("best", "final"), default="final",
                   help="the epoch kept: the check set's least regret, or the last")
    f.add_argument("--crash-value", type=float, default=0.0, help="target [m/s] of an action whose trial collided")
    f.add_argument("--intervention-penalty", type=float, default=0.0,
                   help="[m/s] taken off an action decision intervened on in its first plan period (a refused lane "
                   "change costs little in its trial, but is not what a planner should ask)")
    f.add_argument("--tie-bonus", type=float, default=0.25, help="[m/s] added to the rule planner's own action")
    f.add_argument("--level-weight", type=float, default=0.1, help="weight of the mean over actions in the loss")
    f.add_argument("--check-share", type=float, default=0.15, help="share of episodes held back to choose the epoch")
    f.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=False,
                   help="also fit every replan seen in a mirror (left and right swapped)")
    f.add_argument("--imitate", nargs="+", default=[], metavar="DIR",
                   help="folders of `states` files: at each of those states the rule planner's action is kept the "
                   "greedy one by --imitate-margin (a hinge loss), so that where the trials show no better action "
                   "the network drives as the rules do")
    f.add_argument("--imitate-weight", type=float, default=1.0, help="weight of the imitation hinge in the loss")
    f.add_argument("--imitate-margin", type=float, default=0.25, help="[m/s] margin of the imitation hinge")
    f.add_argument("--seed", type=int, default=0, help="seeds the network and the split")
    f.set_defaults(func=fit)
    args = parser.parse_args(argv)
    if getattr(args, "episodes", 1) < 1 or getattr(args, "jobs", 1) < 1 or getattr(args, "horizon", 1) < 1:
        parser.error("--episodes, --jobs and --horizon must be >= 1")
    if not 0.0 <= getattr(args, "explore", 0.0) <= 1.0:
        parser.error("--explore must be in [0, 1]")
    start = time.perf_counter()
    rc = args.func(args)
    print(f"planner-rollouts {args.command}: {time.perf_counter() - start:.0f} s")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
