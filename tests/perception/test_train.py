"""A tiny-budget training run end to end: render, train a few steps, save, reload, score, README line."""

from pathlib import Path

import pytest

from nodes.perception import train
from nodes.perception.detector import Detector, load_net


def test_help_explains(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        train.main(["--help"])
    assert exc.value.code == 0
    assert "--epochs" in capsys.readouterr().out


def test_tiny_training_writes_loadable_weights_and_a_readme_line(tmp_path: Path) -> None:
    out = tmp_path / "models" / "perception.pt"
    argv = ["--out", str(out), "--data", str(tmp_path / "data"), "--train-seqs", "2", "--train-steps", "12",
            "--every", "3", "--val-seqs", "1", "--val-steps", "8", "--epochs", "1", "--batch", "2"]
    assert train.main(argv) == 0
    net, meta = load_net(out)
    assert 0 < meta["threshold"] < 1 and "precision_ratio" in meta["scores"]
    assert out.stat().st_size < 4 * 2**20
    readme = (out.parent / "README.md").read_text()
    assert readme.count("`perception.pt`") == 1 and "drivestack train perception" in readme
    # Running again replaces the line instead of adding a second one, and reuses the cached datasets.
    assert train.main(argv + ["--max-steps", "1"]) == 0
    assert (out.parent / "README.md").read_text().count("`perception.pt`") == 1
    assert len(list((tmp_path / "data").glob("*.npz"))) == 2
    Detector(out)  # loads as the node loads it
