"""The shipped detector on freshly rendered frames, and its load errors."""

from pathlib import Path

import numpy as np
import pytest

from nodes.perception import dataset as ds
from nodes.perception.detector import MODELS_DIR, Detector, load_net, resolve_weights
from nodes.perception.evaluate import score_detections


@pytest.fixture(scope="module")
def frames() -> dict:
    # Seeds from the benchmark range: never seen in training.
    scs = [ds.Scenario(ds.BENCH_SEEDS[0] + 500 + k, 30, d, 60, 20) for k, d in enumerate((1.0, 1.5))]
    return ds.build(scs, progress=False)


def test_shipped_model_finds_the_vehicles(frames: dict) -> None:
    import torch

    torch.set_num_threads(1)
    det = Detector()
    assert resolve_weights("perception.pt") == MODELS_DIR / "perception.pt"
    dets = [det(f) for f in frames["frames"]]
    score = score_detections(dets, frames)
    assert score.tp + score.fn >= 10
    assert score.recall >= 0.8 and score.precision >= 0.8
    assert np.median(score.pos_err) < 0.5
    assert all(d.shape[1] == 6 and np.all(np.diff(d[:, 5]) <= 0) for d in dets)  # sorted by score


def test_wrong_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Detector()(np.zeros((100, 100, 3), np.uint8))


def test_missing_weights_name_the_path_and_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.pt"
    with pytest.raises(ValueError) as err:
        load_net(missing)
    assert str(missing) in str(err.value) and "drivestack train perception" in str(err.value)


def test_corrupt_weights_name_the_path_and_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError) as err:
        load_net(bad)
    assert "unreadable" in str(err.value) and str(bad) in str(err.value)
    assert "drivestack train perception" in str(err.value)
