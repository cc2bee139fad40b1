"""A stack split across two launches over tcp on 127.0.0.1 drives the same trajectory as one launch."""

from pathlib import Path

from tests.conftest import popen_launch, recorded_bodies, run_launch

DATA = Path(__file__).parents[1] / "data"


def test_split_over_tcp_matches_single_launch(tmp_path):
    single, split = tmp_path / "single", tmp_path / "split"
    single.mkdir()
    split.mkdir()
    res = run_launch(str(DATA / "lane_change.yaml"), cwd=single, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    first = popen_launch(str(DATA / "lane_change.yaml"), "base_port:=7790", "--only", "sim,recorder", cwd=split)
    second = run_launch(str(DATA / "lane_change.yaml"), "base_port:=7790", "--only", "scripted_target,control",
                        cwd=split, timeout=180)
    out, _ = first.communicate(timeout=180)
    assert first.returncode == 0 and second.returncode == 0, out + second.stdout + second.stderr
    assert "finished its last episode" in second.stdout
    (a,) = list(single.glob("runs/*/recording.mcap"))
    (b,) = list(split.glob("runs/*/recording.mcap"))
    assert recorded_bodies(a) == recorded_bodies(b)


def test_full_stack_split_over_tcp_matches_single_launch(tmp_path):
    """The shipped stack: sim and recorder in one launch, the CNN, DQN, decision and control in another."""
    args = ["episodes:=1", "duration:=2.0", "vehicles:=10", "record:=true", "base_port:=7810"]
    single, split = tmp_path / "single", tmp_path / "split"
    single.mkdir()
    split.mkdir()
    res = run_launch("full_stack.yaml", *args, cwd=single, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    first = popen_launch("full_stack.yaml", *args, "--only", "sim,recorder", cwd=split)
    second = run_launch("full_stack.yaml", *args, "--only", "perception,planning,decision,control", cwd=split,
                        timeout=240)
    out, _ = first.communicate(timeout=240)
    assert first.returncode == 0 and second.returncode == 0, out + second.stdout + second.stderr
    (a,) = list(single.glob("runs/*/recording.mcap"))
    (b,) = list(split.glob("runs/*/recording.mcap"))
    bodies_single, bodies_split = recorded_bodies(a), recorded_bodies(b)
    assert {"/sim/camera", "/perception/objects", "/planning/plan", "/control/cmd"} <= set(bodies_single)
    assert 30 <= len(bodies_single["/sim/ego"]) <= 31  # 2 s at 15 Hz (and the reset tick)
    assert bodies_single == bodies_split
