"""The golden folder is a parameter of the golden tools: its default is the checkout's tests/golden
(nodes.share.golden_dir), and a copy elsewhere is checked the same way."""

import shutil

from nodes.recorder import golden
from nodes.share import data_root, golden_dir


def test_the_default_golden_folder_comes_from_share():
    assert golden_dir() == data_root() / "tests" / "golden"
    assert golden.golden_paths() == (golden.GOLDEN_LAUNCH, golden.GOLDEN_FILE)
    assert golden.GOLDEN_FILE.parent == golden_dir() and golden.GOLDEN_FILE.is_file()


def test_a_golden_folder_elsewhere_is_used_and_a_missing_one_is_one_clear_error(tmp_path, capsys):
    launch, recording = golden.golden_paths(tmp_path)
    assert (launch, recording) == (tmp_path / "golden_stack.yaml", tmp_path / "golden_stack.mcap")
    assert golden.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no golden recording at {recording}" in err
    shutil.copyfile(golden.GOLDEN_FILE, recording)
    replay = golden.replay_node(recording, "control")  # the control node replays from the copy as from the original
    assert replay.recorded["/control/cmd"] and replay.mismatches() == []
