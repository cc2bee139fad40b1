"""Export the planner's Q-network to ONNX (float32) and to a post-training int8 ONNX
(`drivestack export planner [--model ZIP]`).

The architecture is read from the zip (stable-baselines3 rebuilds its policy from the stored policy_kwargs):
any MLP q-network over a (rows, features) observation exports the same way. The graph takes the observation
(batch, rows, features) float32 and returns the Q-values (batch, actions); the greedy action is their argmax,
taken outside as DQNPolicy takes it.

int8: static quantisation (QDQ, per-channel int8 weights, uint8 activations calibrated with min/max) of the
hidden layers between the first and the last, calibrated on observations the torch policy meets driving
training seeds. The first and last layers stay float: the observation's fine differences and the Q-values of
near-tied actions (the shipped planner's best two are a median 0.06 apart) are what decides the action.
The int8 file is written only if its greedy actions agree with torch's on >= 99% of those observations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nodes.deploy import EXPORT_COMMANDS, SOURCE_KEY, Exported, bound_failures, exported_path, file_sha256
from nodes.planning.policy import DEFAULT_MODEL, DQNPolicy, resolve_model_path
from nodes.planning.seeds import TRAIN_SEED_RANGE

CALIBRATION_SEEDS = range(TRAIN_SEED_RANGE[0], TRAIN_SEED_RANGE[0] + 4)  # training worlds only
OPSET = 17
COMMAND = EXPORT_COMMANDS["planner"]


def q_network(policy: DQNPolicy):
    """The torch module observation (B, rows, features) -> Q-values (B, actions): SB3's features extractor
    (a flatten for a Box observation) and its q-net, as stored in the zip."""
    from torch import nn

    q_net = policy.model.q_net

    class QValues(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = q_net.features_extractor
            self.q = q_net.q_net

        def forward(self, obs):
            return self.q(self.features(obs))

    return QValues().eval()


def calibration_observations(policy: DQNPolicy, seeds: range = CALIBRATION_SEEDS) -> np.ndarray:
    """(N, rows, features) float32: the observations of `policy` driving the training world on `seeds`
    (decision's overrides on, as the stack runs it), one per plan step."""
    from nodes.planning.env import PlannerEnv, PlannerEnvConfig
    from nodes.planning.observation import ObservationConfig

    env = PlannerEnv(PlannerEnvConfig(overrides=True,
                                      observation=ObservationConfig.for_shape(policy.observation_shape)))
    seen = []
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            done = False
            while not done:
                seen.append(np.asarray(obs, np.float32))
                obs, _, terminated, truncated, _ = env.step(policy.act(obs)[0])
                done = terminated or truncated
    finally:
        env.close()
    return np.stack(seen)


def export_onnx(model: str | Path, out: str | Path, policy: DQNPolicy | None = None) -> Path:
    """Write the float32 ONNX Q-network of the SB3 DQN zip `model` to `out`, stamped with the zip's sha256."""
    import warnings

    import onnx
    import torch

    source = resolve_model_path(model)
    policy = policy or DQNPolicy(source)
    net = q_network(policy)
    rows, feats = policy.observation_shape
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros((1, rows, feats)),), str(out), dynamo=False, opset_version=OPSET,
                          input_names=["obs"], output_names=["q"],
                          dynamic_axes={"obs": {0: "batch"}, "q": {0: "batch"}})
    onnx_model = onnx.load(str(out))
    layers = [m for m in policy.model.q_net.q_net if isinstance(m, torch.nn.Linear)]
    _stamp(onnx_model, {SOURCE_KEY: file_sha256(source), "source": source.name, "precision": "float32",
                        "observation_shape": f"{rows},{feats}",
                        "layers": ",".join(f"{m.in_features}x{m.out_features}" for m in layers)})
    onnx.save(onnx_model, str(out))
    return out


def quantize_int8(fp32: str | Path, out: str | Path, observations: np.ndarray) -> Path:
    """Static int8 quantisation of the float32 export, calibrated on `observations`."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Observations(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(observations)

        def get_next(self) -> dict[str, np.ndarray] | None:
            obs = next(self._it, None)
            return None if obs is None else {"obs": np.asarray(obs, np.float32)[None]}

    model = onnx.load(str(fp32))
    matmuls = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul")]
    out = Path(out)
    quantize_static(str(fp32), str(out), Observations(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Gemm", "MatMul"], nodes_to_exclude=[matmuls[0], matmuls[-1]])
    q = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    meta.update(precision="int8", calibration=f"{len(observations)} observations")
    _stamp(q, meta)
    onnx.save(q, str(out))
    return out


def _stamp(model, meta: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)


def action_agreement(policy, other, observations: np.ndarray) -> float:
    """The share of `observations` on which the two policies pick the same action."""
    return float(np.mean([policy.act(o)[0] == other.act(o)[0] for o in observations]))


def export(model: str | Path = DEFAULT_MODEL, out_dir: str | Path | None = None,
           observations: np.ndarray | None = None, int8: bool = True) -> Exported:
    """Both exports of the planner zip `model` (beside it, or in out_dir). observations: the int8
    calibration set (None: calibration_observations()). The int8 file is written only if its actions agree
    with the torch policy's on deploy.BOUNDS' share of them; else a note says why."""
    from nodes.planning.backends import OnnxPolicy

    source = resolve_model_path(model)
    policy = DQNPolicy(source, make_command=COMMAND)
    done = Exported({"onnx": export_onnx(source, exported_path(source, "onnx", out_dir), policy)})
    if not int8:
        return done
    obs = calibration_observations(policy) if observations is None else observations
    path = quantize_int8(done.paths["onnx"], exported_path(source, "onnx_int8", out_dir), obs)
    agreement = action_agreement(policy, OnnxPolicy(source, "onnx_int8", path=path), obs)
    misses = bound_failures({"action_agreement_ratio": agreement})
    if misses:
        path.unlink()
        done.notes.append(f"int8 not written: on {len(obs)} calibration observations {'; '.join(misses)}")
    else:
        done.paths["onnx_int8"] = path
    return done
