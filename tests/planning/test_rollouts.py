"""Look-ahead trials and the Q-network fitted to them (nodes/planning/lookahead.py, rollouts.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msgs import Action
from nodes.planning.lookahead import ego_x, lookahead_action, make_env, trial_values
from nodes.planning.policy import DQNPolicy
from nodes.planning.rollouts import main, regret, targets
from nodes.planning.rules import RulePlanner


def test_a_trial_foresees_the_real_step_exactly() -> None:
    """The world is deterministic: doing an action, then the rules, in the real env makes the very metres
    its trial measured in a copy, and the trials leave the real env untouched."""
    env = make_env(seconds=8.0)
    rules = RulePlanner()
    obs, _ = env.reset(seed=123)
    rules.reset()
    for _ in range(2):
        obs, *_ = env.step(rules.act(obs)[0])
    before = ego_x(env)
    values = trial_values(env, rules, steps=3)
    assert values.shape == (len(Action),) and ego_x(env) == before
    for action in (int(Action.LANE_LEFT), int(Action.FASTER)):
        real, real_rules = make_env(seconds=8.0), RulePlanner()
        o, _ = real.reset(seed=123)
        real_rules.reset()
        for _ in range(2):
            o, *_ = real.step(real_rules.act(o)[0])
        start, a = ego_x(real), action
        for _ in range(3):
            o, _, crashed, _, _ = real.step(a)
            assert not crashed
            a = real_rules.act(o)[0]
        assert ego_x(real) - start == values[action]


def test_the_lookahead_keeps_the_rules_action_unless_another_is_strictly_better() -> None:
    assert lookahead_action(np.array([5.0, 5.0, 5.0, 5.0, 5.0]), own=3) == 3
    assert lookahead_action(np.array([5.0, 6.0, 5.0, 5.0, 5.0]), own=3) == 1
    assert lookahead_action(np.array([5.0, -np.inf, 5.0, 4.0, 5.0]), own=1) == 0


def test_targets_and_regret() -> None:
    values = np.array([[80.0, -np.inf, 88.0, 80.0, 72.0]])
    t = targets(values, own=np.array([3]), horizon=np.array([4]), crash_value=-1.0, tie_bonus=0.5)
    assert t.tolist() == [[20.0, -1.0, 22.0, 20.5, 18.0]]
    refused = np.array([[True, False, False, False, False]])
    t = targets(values, np.array([3]), np.array([4]), -1.0, 0.5, intervened=refused, intervention_penalty=2.0)
    assert t.tolist() == [[18.0, -1.0, 22.0, 20.5, 18.0]]
    assert regret(values, np.array([2])) == 0.0 and regret(values, np.array([3])) == 8.0
    assert regret(values, np.array([1])) == 88.0  # a collision loses everything the best trial made


def test_collect_then_fit_writes_a_dqn_the_planning_node_loads(tmp_path) -> None:
    data, out = tmp_path / "data", tmp_path / "q.zip"
    common = ["--out", str(data), "--horizon", "1", "--episode-seconds", "3", "--jobs", "1"]
    assert main(["collect", "--episodes", "2", *common]) == 0
    files = sorted(data.glob("ep_*.npz"))
    assert [f.name for f in files] == ["ep_00000.npz", "ep_00001.npz"]
    with np.load(files[0]) as z:
        n = len(z["own"])
        assert n == 3 and z["obs"].shape == (n, 4, 7) and z["values"].shape == (n, len(Action))
        assert np.all(np.isfinite(z["values"]) | (z["values"] == -np.inf))
        assert z["intervened"].shape == (n, len(Action)) and z["intervened"].dtype == bool
        first = z["values"].copy()
    assert main(["collect", "--episodes", "2", *common]) == 0  # resumes: nothing to redo, files kept
    with np.load(files[0]) as z:
        assert np.array_equal(z["values"], first)
    assert main(["fit", "--data", str(data), "--out", str(out), "--epochs", "3", "--net-arch", "16",
                 "--check-share", "0.5"]) == 0
    policy = DQNPolicy(out)
    with np.load(files[0]) as z:
        action, q = policy.act(z["obs"][0])
    assert 0 <= action < len(Action) and len(q) == len(Action)
    summary = json.loads((tmp_path / "q.zip.fit.json").read_text())
    assert summary["replans"] == 6 and summary["episodes"] == 2 and len(summary["history"]) == 3
    # DAgger: the fitted model drives, the trials label its states; fit reads both folders
    more = tmp_path / "more"
    assert main(["collect", "--episodes", "1", "--behaviour", str(out), "--seed", "1", "--explore", "0",
                 *common[2:], "--out", str(more)]) == 0
    with np.load(more / "ep_00000.npz") as z:
        policy_actions = [policy.act(o)[0] for o in z["obs"]]
        assert z["taken"].tolist() == policy_actions
    assert main(["fit", "--data", str(data), str(more), "--out", str(out), "--epochs", "1", "--net-arch", "16"]) == 0
    assert json.loads((tmp_path / "q.zip.fit.json").read_text())["replans"] == 9


def test_rule_states_feed_fit_imitate(tmp_path) -> None:
    """`states` records the rule planner's observation and action at every replan of the episodes it drives
    (the rules, as `collect --behaviour rules` drives); `fit --imitate` reads them (and their mirror)."""
    data, states, out = tmp_path / "data", tmp_path / "states", tmp_path / "q.zip"
    assert main(["collect", "--episodes", "2", "--behaviour", "rules", "--explore", "0", "--horizon", "1",
                 "--episode-seconds", "3", "--jobs", "1", "--out", str(data)]) == 0
    with np.load(data / "ep_00000.npz") as z:
        assert z["taken"].tolist() == z["own"].tolist()  # the rules drove
    assert main(["states", "--episodes", "2", "--episode-seconds", "6", "--jobs", "1", "--out", str(states)]) == 0
    with np.load(states / "st_00000.npz") as z:
        assert z["obs"].shape == (6, 4, 7) and z["own"].shape == (6,)
        rules, env = RulePlanner(), make_env(0.5, 6.0)
        # the first replan's state is the world's start: the rules' action on it is what was recorded
        obs, _ = env.reset(seed=int(z["world"]))
        assert np.array_equal(obs, z["obs"][0]) and rules.act(obs)[0] == z["own"][0]
    assert main(["fit", "--data", str(data), "--out", str(out), "--epochs", "2", "--net-arch", "16",
                 "--check-share", "0.5", "--imitate", str(states), "--mirror"]) == 0
    assert json.loads((tmp_path / "q.zip.fit.json").read_text())["imitated_states"] == 2 * 12


def test_the_imitation_hinge_is_zero_only_where_the_rules_action_leads_by_the_margin() -> None:
    import torch

    from nodes.planning.rollouts import imitation_hinge

    q = torch.tensor([[0.0, 1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.9, 0.0]])
    own = torch.tensor([1, 1])
    assert imitation_hinge(q[:1], own[:1], 0.25).item() == 0.0  # leads FASTER by 0.5
    assert imitation_hinge(q[1:], own[1:], 0.25).item() == pytest.approx(0.15)  # FASTER within 0.1 of it
    assert imitation_hinge(q, torch.tensor([3, 3]), 0.0).item() == pytest.approx((0.5 + 0.1) / 2)
    q.requires_grad_(True)
    imitation_hinge(q, own, 0.25).backward()
    assert q.grad is not None and q.grad[1, 3] > 0 and q.grad[1, 1] < 0 and q.grad[0].abs().sum() == 0


def test_fit_without_data_names_the_folder(tmp_path) -> None:
    with pytest.raises(SystemExit, match="no ep_"):
        main(["fit", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "q.zip")])


def test_the_mirror_of_an_observation_is_the_observation_of_the_mirrored_scene() -> None:
    from msgs import EgoState, Object
    from nodes.planning.observation import ObservationConfig, build_observation
    from nodes.planning.rollouts import mirror

    def scene(side: float, lane: int) -> np.ndarray:
        ego = EgoState(x=300.0, y=4.0 * lane + side * 0.5, heading=0.0, speed=24.0, vx=24.0, vy=side * 0.8,
                       lane_index=lane, lateral_offset=side * 0.5)
        objects = [Object(id=1, x=25.0, y=side * -0.5, vx=-3.0, vy=0.0),  # own lane ahead
                   Object(id=2, x=-15.0, y=side * -4.5, vx=4.0, vy=0.0),  # one side, behind
                   Object(id=3, x=40.0, y=side * 3.5, vx=1.0, vy=0.0)]  # the other side, ahead
        return build_observation(objects, ego, ObservationConfig(kind="lanes"))

    seen, mirrored = scene(1.0, 1)[None], scene(-1.0, 2)[None]  # lane 1 of 4 and its mirror, lane 2
    values = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    o, v, a = mirror(seen, values, np.array([int(Action.LANE_LEFT)]))
    assert np.array_equal(o, mirrored) and not np.array_equal(seen, mirrored)
    assert v.tolist() == [[3.0, 2.0, 1.0, 4.0, 5.0]] and a.tolist() == [int(Action.LANE_RIGHT)]
    back = mirror(o, v, a)
    assert np.array_equal(back[0], seen) and np.array_equal(back[1], values) and back[2].tolist() == [0]


def test_a_trial_tells_whether_decision_refused_its_first_action() -> None:
    """At the start of these two worlds a lane change is refused (its gap is too short), keeping the lane is
    not: the flags say so, and the refused change makes no more metres than keeping the lane."""
    from nodes.planning.lookahead import trials

    for seed in (0, 1):
        env, rules = make_env(seconds=4.0), RulePlanner()
        env.reset(seed=seed)
        rules.reset()
        values, intervened = trials(env, rules, steps=1)
        assert intervened.dtype == bool and intervened.shape == (len(Action),)
        assert not intervened[int(Action.IDLE)] and not intervened[int(Action.FASTER)]
        refused = [a for a in (int(Action.LANE_LEFT), int(Action.LANE_RIGHT)) if intervened[a]]
        assert len(refused) == 1, seed
        assert values[refused[0]] <= values[int(Action.IDLE)]
        # with the interventions off the refused change is carried out, and still flagged as one decision
        # would have refused
        off = make_env(interventions_share=0.0, seconds=4.0)
        off.reset(seed=seed)
        assert not off.decision.params.interventions
        assert np.array_equal(trials(off, rules, steps=1)[1], intervened), seed
