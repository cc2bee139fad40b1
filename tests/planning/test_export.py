"""The planner's ONNX export: round trip of the shipped zip and of a zip with another architecture, each
backend against torch on the golden recording's planner inputs, the stale-file and missing-file checks, and
the node on the ONNX backend. Nothing here depends on the particular weights shipped.

Tolerances: float32 ONNX vs torch, Q-values within 1e-4 (kernels sum in another order: ~4e-6 measured) and
the same greedy action wherever torch's best two Q-values are more than 2e-4 apart; int8 vs torch, Q-values
within INT8_Q_TOL of torch's range of Q-values over the recorded observations (whether its actions agree
well enough to be offered is bench/deploy.py's figure, and export's gate).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from msgs import Action, EgoState, ObjectArray
from nodes.deploy import SOURCE_KEY, exported_path, file_sha256
from nodes.planning.backends import OnnxPolicy, make_policy
from nodes.planning.export import export, quantize_int8
from nodes.planning.node import PlanningNode, PlanningParams
from nodes.planning.observation import ObservationConfig, build_observation
from nodes.planning.policy import DEFAULT_MODEL, DQNPolicy, resolve_model_path
from nodes.recorder.golden import GOLDEN_FILE
from nodes.runtime.mcap_io import read_records

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

Q_TOL = 1e-4
TIE = 2e-4  # [Q] best two closer than this: the float32 backends may order them either way
INT8_Q_TOL = 0.1  # share of the recorded Q-values' range


def golden_inputs() -> list[tuple[EgoState, ObjectArray]]:
    """(ego, objects) of every tick of the golden recording: the planning node's recorded inputs."""
    egos, objects = {}, {}
    for rec in read_records(GOLDEN_FILE, {"/sim/ego", "/perception/objects"}):
        msg = rec.decode()
        key = (msg.header.episode, msg.header.tick)
        (egos if isinstance(msg, EgoState) else objects)[key] = msg
    return [(egos[k], objects[k]) for k in sorted(egos) if k in objects]


@pytest.fixture(scope="module")
def inputs() -> list[tuple[EgoState, ObjectArray]]:
    ticks = golden_inputs()
    assert len(ticks) > 40
    return ticks


def observations(policy, ticks) -> np.ndarray:
    config = ObservationConfig.for_shape(policy.observation_shape)
    return np.stack([build_observation(objects.objects, ego, config) for ego, objects in ticks])


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, inputs):
    """The shipped planner zip copied to a temporary folder and exported beside it, int8 calibrated on the
    recorded observations."""
    folder = tmp_path_factory.mktemp("planner_export")
    model = folder / "planner.zip"
    shutil.copyfile(resolve_model_path(DEFAULT_MODEL), model)
    obs = observations(DQNPolicy(model), inputs)
    return model, export(model, observations=obs), obs


class SpacesOnly(gym.Env):
    """Just the planner's spaces, for building an untrained DQN of another architecture."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape, np.float32)
        self.action_space = gym.spaces.Discrete(len(Action))


def test_export_round_trip_on_the_shipped_zip(shipped) -> None:
    import onnx

    model, done, obs = shipped
    assert done.paths["onnx"] == exported_path(model, "onnx") and done.paths["onnx"].is_file()
    meta = {p.key: p.value for p in onnx.load(str(done.paths["onnx"])).metadata_props}
    assert meta[SOURCE_KEY] == file_sha256(model)
    assert tuple(int(n) for n in meta["observation_shape"].split(",")) == DQNPolicy(model).observation_shape
    # int8 is written only when its actions agree well enough; otherwise a note says by how much it missed
    assert ("onnx_int8" in done.paths) != any("action_agreement_ratio" in n for n in done.notes)


def _assert_same_as_torch(torch_policy, onnx_policy, obs: np.ndarray) -> int:
    decided = 0
    for o in obs:
        want, got = torch_policy.q_values(o), onnx_policy.q_values(o)
        np.testing.assert_allclose(got, want, rtol=0, atol=Q_TOL)
        best_two = np.sort(want)[-2:]
        if best_two[1] - best_two[0] > TIE:
            assert onnx_policy.act(o)[0] == torch_policy.act(o)[0]
            decided += 1
    return decided


def test_onnx_equals_torch_on_recorded_observations(shipped) -> None:
    model, _, obs = shipped
    assert _assert_same_as_torch(DQNPolicy(model), OnnxPolicy(model, "onnx"), obs) > len(obs) // 2


def test_int8_stays_within_tolerance_of_torch(shipped, tmp_path) -> None:
    model, done, obs = shipped
    path = quantize_int8(done.paths["onnx"], tmp_path / "planner.int8.onnx", obs)
    ref, q = DQNPolicy(model), OnnxPolicy(model, "onnx_int8", path=path)
    want = np.stack([ref.q_values(o) for o in obs])
    got = np.stack([q.q_values(o) for o in obs])
    spread = want.max() - want.min()
    assert 0 < np.abs(got - want).max() <= INT8_Q_TOL * spread


def test_export_reads_the_architecture_from_the_zip(tmp_path) -> None:
    """A planner with other hidden sizes exports and runs the same way."""
    import onnx
    from stable_baselines3 import DQN

    model = tmp_path / "small.zip"
    DQN("MlpPolicy", SpacesOnly((4, 7)), policy_kwargs={"net_arch": [32, 16]}, seed=3, device="cpu").save(model)
    done = export(model, int8=False)
    meta = {p.key: p.value for p in onnx.load(str(done.paths["onnx"])).metadata_props}
    assert meta["layers"] == "28x32,32x16,16x5"
    obs = np.random.default_rng(0).uniform(-1, 1, (200, 4, 7)).astype(np.float32)
    assert _assert_same_as_torch(DQNPolicy(model), OnnxPolicy(model, "onnx"), obs) > 150


def test_a_stale_or_missing_export_is_refused(shipped, tmp_path) -> None:
    from stable_baselines3 import DQN

    model, done, _ = shipped
    other = tmp_path / "planner.zip"
    DQN("MlpPolicy", SpacesOnly((4, 7)), seed=0, device="cpu").save(other)
    with pytest.raises(ValueError, match="exported from other weights.*drivestack export planner"):
        OnnxPolicy(other, "onnx", path=done.paths["onnx"])
    with pytest.raises(ValueError, match="drivestack export planner"):
        OnnxPolicy(other, "onnx")
    with pytest.raises(FileNotFoundError, match="nowhere.zip"):
        OnnxPolicy(tmp_path / "nowhere.zip", "onnx", path=done.paths["onnx"])
    with pytest.raises(ValueError, match="backend must be one of"):
        make_policy(model, "tflite")
    with pytest.raises(ValueError, match="needs .*planner.onnx.*drivestack export planner"):
        PlanningNode.check(PlanningParams(model_path=str(other), backend="onnx"))


def test_onnx_backend_imports_neither_torch_nor_sb3(shipped) -> None:
    model, _, _ = shipped
    code = ("import sys, numpy as np\n"
            "from nodes.planning.backends import make_policy\n"
            f"p = make_policy({str(model)!r}, 'onnx')\n"
            "p.act(np.zeros(p.observation_shape, np.float32))\n"
            "print('torch' in sys.modules, 'stable_baselines3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_node_on_the_onnx_backend_plans_like_torch(shipped, inputs) -> None:
    model, _, _ = shipped
    nodes = {b: PlanningNode(PlanningParams(model_path=str(model), backend=b)) for b in ("torch", "onnx")}
    replans = 0
    for ego, objects in inputs:
        if ego.header.tick == 0:
            for node in nodes.values():
                node.reset(ego.header.episode)
        want, got = (nodes[b].step({"ego": ego, "objects": objects})[0][1] for b in ("torch", "onnx"))
        np.testing.assert_allclose(got.q_values, want.q_values, rtol=0, atol=Q_TOL)
        best_two = np.sort(want.q_values)[-2:]
        if want.replanned and best_two[1] - best_two[0] > TIE:
            assert got.action == want.action
            replans += 1
    assert replans >= 2

