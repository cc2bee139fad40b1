"""The ONNX files shipped under models/ are current: each was exported from the shipped file named in its
metadata (same sha256), and the nodes' default backends have theirs. After retraining a model, remake its
exports: drivestack export perception|planner [--model FILE]."""

from pathlib import Path

import pytest

from nodes.deploy import SOURCE_KEY, exported_path, file_sha256
from nodes.perception.backends import resolve_weights
from nodes.perception.node import PerceptionParams
from nodes.planning.node import PlanningParams
from nodes.planning.policy import resolve_model_path

onnx = pytest.importorskip("onnx")

MODELS = Path(resolve_weights("perception.pt")).parent
SHIPPED = sorted(MODELS.glob("*.onnx"))


def test_some_exports_are_shipped() -> None:
    assert SHIPPED, f"no ONNX file under {MODELS}"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_export_matches_its_source(path: Path) -> None:
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    source = MODELS / meta["source"]
    assert source.is_file(), f"{path.name} was exported from {meta['source']}, which is not shipped"
    command = "perception" if source.suffix == ".pt" else f"planner --model models/{source.name}"
    assert meta[SOURCE_KEY] == file_sha256(source), f"{path.name} is stale: run drivestack export {command}"


def test_the_default_backends_files_are_shipped() -> None:
    perception, planning = PerceptionParams(), PlanningParams()
    wanted = []
    if perception.backend != "torch":
        wanted.append(exported_path(resolve_weights(perception.model), perception.backend))
    if planning.backend != "torch":
        wanted.append(exported_path(resolve_model_path(planning.model_path), planning.backend))
    missing = [p.name for p in wanted if not p.is_file()]
    assert not missing, f"default backends need {missing}: drivestack export perception|planner"
