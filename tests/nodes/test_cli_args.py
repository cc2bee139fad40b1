"""Launch args on the command line: wherever they stand, checked like the nodes check them, hinted when mistyped."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.runtime.launchfile import LaunchError, load_plan, parse_overrides, split_launch_args
from nodes.runtime.node import make_params
from nodes.sim.node import SimNode
from tests.conftest import ROOT, _env


def _cli(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(None))


def _launch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.launch", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=_env(None))


def test_pairs_are_split_from_options_wherever_they_stand():
    argv = ["--compare", "a.yaml", "b.yaml", "duration:=10", "--episodes", "1", "seed_x:=3", "--out", "o"]
    assert split_launch_args(argv) == (["duration:=10", "seed_x:=3"],
                                       ["--compare", "a.yaml", "b.yaml", "--episodes", "1", "--out", "o"])


@pytest.mark.parametrize(("arg", "field", "rule"), [
    ("episodes:=0", "params.episodes", "episodes must be >= 1, got 0"),
    ("vehicles:=-5", "params.vehicles_count", "vehicles_count must be >= 0, got -5"),
    ("duration:=-1", "params.duration", "duration must be > 0 s, got -1"),
])
def test_launch_check_refuses_what_the_node_would_refuse_at_start(arg, field, rule):
    res = _launch("full_stack.yaml", arg, "--check")
    assert res.returncode == 2 and "OK" not in res.stdout, res.stdout + res.stderr
    assert f"node 'sim': {field}:" in res.stderr and rule in res.stderr
    # one copy of the rule: the node built directly from the same params says the same
    name, _, value = arg.partition(":=")
    raw = {"episodes": 1, name.replace("vehicles", "vehicles_count"): int(value)}
    with pytest.raises(ValueError, match=rule):
        SimNode(make_params(SimNode, raw))


def test_a_good_check_still_passes():
    res = _launch("full_stack.yaml", "--check", "episodes:=2", "vehicles:=0")
    assert res.returncode == 0 and "OK, 6 nodes" in res.stdout, res.stdout + res.stderr


def test_a_mistyped_arg_gets_a_suggestion():
    with pytest.raises(LaunchError, match=r"unknown arg\(s\) \['episode'\].*did you mean 'episodes'\?"):
        load_plan("full_stack.yaml", parse_overrides(["episode:=2"]))
    with pytest.raises(LaunchError) as err:
        load_plan("full_stack.yaml", parse_overrides(["zzzz:=2"]))
    assert "did you mean" not in str(err.value)


def test_an_option_that_is_a_launch_arg_is_hinted_as_one():
    res = _launch("full_stack.yaml", "--episodes", "2")
    assert res.returncode == 2 and "launch args are given as name:=value: episodes:=2" in res.stderr, res.stderr
    res = _launch("full_stack.yaml", "--episode=2")
    assert res.returncode == 2 and "did you mean 'episodes'?" in res.stderr, res.stderr


def test_launch_takes_pairs_before_and_after_options():
    for argv in (["full_stack.yaml", "episodes:=0", "--check"], ["--check", "full_stack.yaml", "episodes:=0"],
                 ["full_stack.yaml", "--check", "episodes:=0"]):
        res = _launch(*argv)
        assert res.returncode == 2 and "episodes must be >= 1" in res.stderr, (argv, res.stderr)


@pytest.mark.parametrize("argv", [
    ["--compare", "full_stack.yaml", "idm_baseline.yaml", "--episodes", "1", "seed:=3"],
    ["full_stack.yaml", "--episodes", "1", "episodes:=3"],
])
def test_evaluate_refuses_pairs_it_would_overwrite(tmp_path, argv):
    res = _cli("evaluate", *argv, "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "is set by evaluate itself" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()  # nothing driven, no empty report directory


def test_evaluate_suggests_its_own_option_for_a_mistyped_one(tmp_path):
    res = _cli("evaluate", "full_stack.yaml", "--episdoes", "2", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "unrecognised option '--episdoes' (did you mean '--episodes'?)" in res.stderr
    assert not (tmp_path / "r").exists()
    res = _cli("evaluate", "full_stack.yaml", "--epi", "1", "--out", str(tmp_path / "r"), "--help")
    assert res.returncode == 0  # an unambiguous prefix is still argparse's to take


def test_evaluate_refuses_a_launch_file_both_before_and_after_compare(tmp_path):
    res = _cli("evaluate", "full_stack.yaml", "--compare", "idm_baseline.yaml", "no_safety.yaml",
               "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "either as one FILE or all after --compare" in res.stderr, res.stderr
    res = _cli("evaluate", "full_stack.yaml", "idm_baseline.yaml", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "'idm_baseline.yaml' is not a launch arg" in res.stderr, res.stderr


@pytest.mark.slow
def test_evaluate_compare_applies_args_after_the_options_to_every_file(tmp_path):
    """`--compare A B --episodes 1 duration:=2`: 2 s episodes in both (the arg used to become a launch file)."""
    out = tmp_path / "report"
    res = _cli("evaluate", "--compare", "full_stack.yaml", "idm_baseline.yaml", "--episodes", "1",
               "duration:=2", "vehicles:=5", "perception:=gt", "--seed", "777", "--out", str(out),
               cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["config"] for r in rows) == ["full_stack.yaml", "idm_baseline.yaml"]
    for row in rows:
        assert row["seed"] == "777"
        assert row["end_reason"] == "time_limit" and float(row["duration_s"]) == pytest.approx(2.0, abs=0.1), row
    wall = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("- wall_s:"))
    assert re.fullmatch(r"- wall_s: full_stack.yaml [0-9.]+ s, idm_baseline.yaml [0-9.]+ s", wall), wall


def test_a_mistyped_launch_flag_gets_a_suggestion_and_show_args_prints_args_as_typed():
    res = _launch("full_stack.yaml", "--chek")
    assert res.returncode == 2 and "did you mean '--check'?" in res.stderr, res.stderr
    res = _launch("full_stack.yaml", "--show-args")
    assert res.returncode == 0
    assert re.search(r"^  record:=true +write every topic", res.stdout, re.M), res.stdout
    assert re.search(r"^  perception:=cnn .*\(one of: cnn, gt\)$", res.stdout, re.M), res.stdout
