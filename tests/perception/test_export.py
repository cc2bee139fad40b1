"""The detector's ONNX export: round trip of the shipped weights, each backend against torch on the golden
recording's camera frames, the stale-file and missing-file checks, and the node on the ONNX backends.

Tolerances: float32 ONNX vs torch, raw outputs within 1e-4 (kernels sum in another order: ~4e-6 measured);
int8 vs torch, every confident detection has a counterpart within 0.25 m (its bench figures: README).
"""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from msgs import EgoState, Image, ObjectArray
from nodes.deploy import SOURCE_KEY, exported_path, file_sha256
from nodes.perception import dataset as ds
from nodes.perception.backends import OnnxDetector, decode_array, make_detector
from nodes.perception.detector import Detector, resolve_weights
from nodes.perception.export import export
from nodes.perception.net import decode, to_input
from nodes.perception.node import PerceptionNode, PerceptionParams
from nodes.recorder.golden import GOLDEN_FILE
from nodes.runtime.mcap_io import read_records

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

RAW_TOL = 1e-4  # float32 ONNX vs torch, raw network outputs
INT8_POS_TOL_M = 0.25  # int8 vs torch, detection centres [m]
CONFIDENT = 0.5  # [-] detections at least this sure are compared one by one (the threshold is 0.3)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """The golden recording's camera frames (every 3rd, to keep the test short)."""
    images = [rec.decode() for rec in read_records(GOLDEN_FILE, {"/sim/camera"})]
    assert len(images) > 30
    return np.stack([im.array() for im in images[::3]])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped weights copied to a temporary folder and exported beside them (int8 calibrated on a few
    frames from training seeds)."""
    folder = tmp_path_factory.mktemp("perception_export")
    weights = folder / "perception.pt"
    shutil.copyfile(resolve_weights("perception.pt"), weights)
    calibration = ds.build([ds.Scenario(ds.TRAIN_SEEDS[0] + 7, 50, 1.0, 24, 3)], progress=False)
    done = export(weights, data=calibration)
    return weights, done


def test_export_writes_both_files_stamped_with_their_source(exported) -> None:
    import onnx

    weights, done = exported
    assert done.notes == [] and set(done.paths) == {"onnx", "onnx_int8"}
    for backend, path in done.paths.items():
        assert path == exported_path(weights, backend) and path.is_file()
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta[SOURCE_KEY] == file_sha256(weights)
        assert float(meta["threshold"]) == Detector(weights).threshold
    assert done.paths["onnx_int8"].stat().st_size < done.paths["onnx"].stat().st_size


def test_onnx_equals_torch_on_recorded_frames(exported, frames) -> None:
    weights, _ = exported
    ref, onnx_det = Detector(weights), OnnxDetector(weights, "onnx")
    found = 0
    for frame in frames:
        with torch.inference_mode():
            want = ref.net(to_input(frame)).numpy()
        got = onnx_det.raw(frame[None])
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=RAW_TOL)
        a, b = onnx_det(frame), ref(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=RAW_TOL)
        found += len(b)
    assert found > 50  # the frames hold vehicles to compare


def test_numpy_decode_equals_torch_decode(exported, frames) -> None:
    weights, _ = exported
    ref = Detector(weights)
    onnx_det = OnnxDetector(weights, "onnx")
    for frame in frames[:10]:
        with torch.inference_mode():
            out = ref.net(to_input(frame))
        np.testing.assert_array_equal(decode_array(out.numpy(), ref.threshold, onnx_det.layout),
                                      decode(out, ref.threshold))


def test_int8_detections_pair_with_torch_within_tolerance(exported, frames) -> None:
    """Every confident detection (score >= CONFIDENT) of either network has one of the other's within
    INT8_POS_TOL_M; near the threshold a vehicle entering the view may be found by one and not the other."""
    weights, _ = exported
    ref, q = Detector(weights), OnnxDetector(weights, "onnx_int8")
    worst, compared = 0.0, 0
    for frame in frames:
        a, b = q(frame), ref(frame)
        for mine, theirs in ((a, b), (b, a)):
            for det in mine[mine[:, 5] >= CONFIDENT]:
                gap = np.hypot(theirs[:, 0] - det[0], theirs[:, 1] - det[1]).min(initial=np.inf)
                assert gap <= INT8_POS_TOL_M
                worst, compared = max(worst, float(gap)), compared + 1
    assert compared > 100
    assert worst > 0.0  # int8 does change the numbers: this compares two different networks


def test_a_stale_or_missing_export_is_refused(exported, tmp_path) -> None:
    weights, done = exported
    other = tmp_path / "perception.pt"
    blob = torch.load(weights, weights_only=True)
    blob["meta"]["note"] = "retrained"
    torch.save(blob, other)
    with pytest.raises(ValueError, match="exported from other weights.*drivestack export perception"):
        OnnxDetector(other, "onnx", path=done.paths["onnx"])
    with pytest.raises(ValueError, match="drivestack export perception"):
        OnnxDetector(other, "onnx")  # nothing exported beside it
    with pytest.raises(ValueError, match="backend must be one of"):
        make_detector(weights, "tensorrt")
    with pytest.raises(ValueError, match="needs .*perception.onnx.*drivestack export perception"):
        PerceptionNode.check(PerceptionParams(model=str(other), backend="onnx"))


def test_onnx_backend_imports_no_torch(exported) -> None:
    weights, _ = exported
    code = ("import sys, numpy as np\n"
            "from nodes.perception.backends import make_detector\n"
            f"d = make_detector({str(weights)!r}, 'onnx_int8')\n"
            "d(np.zeros((d.view.height, d.view.width, 3), np.uint8))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split()[-1] == "False"


@pytest.mark.parametrize("backend", ["onnx", "onnx_int8"])
def test_node_on_an_onnx_backend_tracks_like_torch(exported, backend) -> None:
    """The node fed the golden recording's frames publishes the same vehicles as with backend torch. int8 runs
    on the shipped export (calibrated on the dataset's frames): the fixture's, calibrated on 24 frames only,
    can put a near-threshold detection on the other side of the threshold."""
    weights = exported[0] if backend == "onnx" else resolve_weights("perception.pt")
    nodes = {b: PerceptionNode(PerceptionParams(model=str(weights), backend=b)) for b in ("torch", backend)}
    tol = RAW_TOL if backend == "onnx" else INT8_POS_TOL_M
    camera = None
    published = 0
    for rec in read_records(GOLDEN_FILE, {"/sim/camera", "/sim/ego"}):
        msg = rec.decode()
        if isinstance(msg, Image):
            camera = msg
            continue
        assert isinstance(msg, EgoState)
        if msg.header.tick == 0:
            for node in nodes.values():
                node.reset(msg.header.episode)
        outs = {b: node.step({"camera": camera, "ego": msg}) for b, node in nodes.items()}
        want, got = outs["torch"][0][1], outs[backend][0][1]
        assert isinstance(want, ObjectArray) and isinstance(got, ObjectArray)
        assert [o.id for o in got.objects] == [o.id for o in want.objects]
        for g, w in zip(got.objects, want.objects, strict=True):
            assert abs(g.x - w.x) <= tol and abs(g.y - w.y) <= tol
        published += len(want.objects)
    assert published > 100

