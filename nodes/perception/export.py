"""Export the detector to ONNX (float32) and to a post-training int8 ONNX (`drivestack export perception`).

The exported graph takes the camera frame as it arrives, (batch, H, W, 3) uint8, and does the input
normalisation itself (the same float ops as `net.to_input`), then the network with its BatchNorm folded into
the convolutions. Decoding the peaks stays outside (nodes/perception/backends.py, numpy only).

Folding the normalisation into the stem (an explicit pad with the raw value that normalises to 0) was tried:
it saved ~30 us of ~1.6 ms and was not kept.

int8: static quantisation (QDQ, per-channel int8 weights, uint8 activations calibrated with min/max on frames
rendered from training seeds, never the benchmark's) of the three dilated residual blocks. The stem and the
1x1 head stay float: the stem's int8 kernel over 3 input channels was slower than the float one and its
quantised input cost most of the error; the head's six outputs mix a logit, sub-cell offsets and sizes in
metres, and one uint8 scale over all of them would cost the offsets precision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nodes.deploy import SOURCE_KEY, TRAIN_COMMANDS, Exported, bound_failures, exported_path, file_sha256
from nodes.perception import dataset as ds
from nodes.perception.detector import load_net, resolve_weights
from nodes.share import require_model
from sim.view import DEFAULT_VIEW, CameraView

CALIBRATION_SEEDS = range(ds.TRAIN_SEEDS[0], ds.TRAIN_SEEDS[0] + 6)  # training worlds, never the bench's
CALIBRATION_STEPS = 120  # [control steps] per calibration sequence
CALIBRATION_EVERY = 4  # keep one frame every this many steps: 6 x 30 = 180 frames
OPSET = 17


def calibration_data(seeds: range = CALIBRATION_SEEDS, steps: int = CALIBRATION_STEPS,
                     every: int = CALIBRATION_EVERY, view: CameraView = DEFAULT_VIEW) -> dict:
    """Frames (N, H, W, 3) uint8 and their labels (a dataset dict) driven on training seeds at the training
    densities (deterministic)."""
    scs = ds.scenarios(seeds, steps, every, np.random.default_rng(0))
    return ds.build(scs, view, progress=False)


def export_onnx(weights: str | Path, out: str | Path, view: CameraView = DEFAULT_VIEW) -> Path:
    """Write the float32 ONNX detector for `weights` to `out`, stamped with its source's sha256."""
    import onnx
    import torch
    from torch import nn

    from nodes.perception import net as netdef
    from nodes.perception.backends import LAYOUT_FIELDS

    source = resolve_weights(weights)
    net, meta = load_net(source)
    net = net.to(memory_format=torch.contiguous_format)

    class FrameInput(nn.Module):
        """uint8 (B, H, W, 3) -> the network's output, normalised as net.to_input does."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            x = frames.permute(0, 3, 1, 2).float().mul(netdef.PIXEL_SCALE).sub(netdef.PIXEL_SHIFT)
            return self.net(x)

    example = torch.zeros((1, view.height, view.width, 3), dtype=torch.uint8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it needs no onnxscript
        warnings.simplefilter("ignore")
        torch.onnx.export(FrameInput().eval(), (example,), str(out), dynamo=False, opset_version=OPSET,
                          input_names=["frames"], output_names=["out"],
                          dynamic_axes={"frames": {0: "batch"}, "out": {0: "batch"}})
    model = onnx.load(str(out))
    channels = [""] * netdef.OUT_CHANNELS
    for name, index in zip(LAYOUT_FIELDS, (netdef.HEAT, netdef.OFF_X, netdef.OFF_Y, netdef.LEN, netdef.WID,
                                           netdef.HEAD), strict=True):
        channels[index] = name
    _stamp(model, source, {"threshold": str(float(meta.get("threshold", 0.5))), "precision": "float32",
                           "frame_shape": f"{view.height},{view.width},3", "stride": str(netdef.STRIDE),
                           "channels": ",".join(channels)})
    onnx.save(model, str(out))
    return out


def quantize_int8(fp32: str | Path, out: str | Path, frames: np.ndarray) -> Path:
    """Static int8 quantisation of the float32 export, calibrated on `frames` ((N, H, W, 3) uint8)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._it, None)
            return None if frame is None else {"frames": frame[None]}

    model = onnx.load(str(fp32))
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    stem_and_head = [convs[0], convs[-1]]  # kept float (the module docstring says why)
    out = Path(out)
    quantize_static(str(fp32), str(out), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "Add"], nodes_to_exclude=stem_and_head)
    q = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    meta.update(precision="int8", calibration=f"{len(frames)} frames")
    del q.metadata_props[:]
    for key, value in meta.items():
        q.metadata_props.add(key=key, value=value)
    onnx.save(q, str(out))
    return out


def _stamp(model, source: Path, extra: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in {SOURCE_KEY: file_sha256(source), "source": source.name, **extra}.items():
        model.metadata_props.add(key=key, value=value)


def export(weights: str | Path = "perception.pt", out_dir: str | Path | None = None,
           data: dict | None = None, int8: bool = True) -> Exported:
    """Both exports of `weights` (beside it, or in out_dir). data: the int8 calibration set, a dataset dict
    with frames and labels (None: calibration_data()). The int8 file is written only if, on that set, it
    keeps within deploy.BOUNDS (precision, recall, median position error); else a note says why."""
    from nodes.perception.backends import OnnxDetector
    from nodes.perception.evaluate import score_detections

    source = require_model(weights, "perception", TRAIN_COMMANDS["perception"])
    done = Exported({"onnx": export_onnx(source, exported_path(source, "onnx", out_dir))})
    if not int8:
        return done
    data = calibration_data() if data is None else data
    path = quantize_int8(done.paths["onnx"], exported_path(source, "onnx_int8", out_dir), data["frames"])
    detector = OnnxDetector(source, "onnx_int8", path=path)
    score = score_detections([detector(f) for f in data["frames"]], data).summary()
    misses = bound_failures(score)
    if misses:
        path.unlink()
        done.notes.append(f"int8 not written: on {len(data['frames'])} calibration frames {'; '.join(misses)}")
    else:
        done.paths["onnx_int8"] = path
    return done
