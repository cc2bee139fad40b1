"""drivestack's tools as a ROS 2 user reaches for them: help that reaches the sub-tool, --version, pipes that
close quietly, node/topic/param tools on a running stack, tools that notice the stack ended, `info`."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nodes.cli_info import read_info
from nodes.runtime.mcap_io import read_records
from tests.conftest import ROOT, _env, popen_launch

GOLDEN = ROOT / "tests" / "golden" / "golden_stack.mcap"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=_env(None))


def test_version():
    from importlib.metadata import version

    for cmd in (["nodes.cli"], ["nodes.launch"]):
        res = subprocess.run([sys.executable, "-m", *cmd, "--version"], capture_output=True, text=True,
                             cwd=ROOT, env=_env(None), timeout=60)
        assert res.returncode == 0 and f"drivestack {version('drivestack')}" in res.stdout, res.stdout + res.stderr


def test_help_after_a_sub_tool_name_is_the_tool_s_help():
    res = _cli("train", "planner", "--help")
    assert res.returncode == 0 and "--total-timesteps" in res.stdout, res.stdout + res.stderr
    res = _cli("bench", "loop", "--help")
    assert res.returncode == 0 and "--repeat" in res.stdout and "--quick" in res.stdout, res.stdout + res.stderr
    res = _cli("evaluate", "--help")
    assert res.returncode == 0 and "--compare" in res.stdout
    res = _cli("bench", "--help")
    assert res.returncode == 0 and "loop" in res.stdout and "transport" in res.stdout
    res = _cli("bench", "lop")
    assert res.returncode != 0 and "did you mean 'loop'?" in res.stderr
    res = _cli("train", "planer")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def _wait_graph(workdir: Path, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((workdir / "runs").glob("*/launch.json"))
        if found:
            return json.loads(found[0].read_text())
        time.sleep(0.1)
    raise AssertionError("the launch wrote no launch.json")


@pytest.mark.slow
def test_tools_on_a_running_stack_and_after_it_ended(workdir):
    proc = popen_launch("demo.yaml", "ticks:=100000000", cwd=workdir)
    try:
        graph = _wait_graph(workdir)
        ns = graph["namespace_dir"]
        # heartbeats come once a second; on a loaded machine the first may be late, so wait for them (30 s: far
        # beyond any start-up, a limit that only a node that never beats reaches)
        deadline = time.monotonic() + 30.0
        while True:
            nodes = _cli("node", "list", "--run", ns)
            assert nodes.returncode == 0, nodes.stderr
            lines = {line.split()[0]: line for line in nodes.stdout.splitlines()}
            if all(" ok " in line for line in lines.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(lines) == {"ticker", "echo"} and all(" ok " in line for line in lines.values()), nodes.stdout
        info = _cli("topic", "info", "/sim/ego", "--run", ns)
        assert "Type: EgoState" in info.stdout and "Publisher count: 1" in info.stdout, info.stdout
        assert "  ticker  ipc://" in info.stdout and "Subscription count: 1\n  echo" in info.stdout
        # a param the launch file sets, and one left at the node's default
        assert _cli("param", "get", "ticker", "ticks", "--run", ns).stdout.strip() == "100000000"
        assert _cli("param", "get", "ticker", "episodes", "--run", ns).stdout.strip() == "1"
        wrong = _cli("param", "get", "ticker", "tick", "--run", ns)
        assert wrong.returncode != 0 and "did you mean 'ticks'?" in wrong.stderr
        # a reader that goes away (| head) ends the tool quietly
        echo = subprocess.Popen([sys.executable, "-m", "nodes.cli", "topic", "echo", "/sim/ego", "--run", ns],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(None))
        assert json.loads(echo.stdout.readline())["header"]["tick"] >= 0
        echo.stdout.close()
        _, err = echo.communicate(timeout=30)
        assert echo.returncode == 0 and b"Traceback" not in err, err
        # topic hz stops with a line once the stack has ended, instead of a stale rate
        hz = subprocess.Popen([sys.executable, "-m", "nodes.cli", "topic", "hz", "/sim/ego", "--duration", "0",
                               "--run", ns], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(None))
        assert " Hz over " in hz.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, _ = hz.communicate(timeout=30)
        assert hz.returncode == 0 and "is no longer running" in out, out
        assert out.count("Hz over") <= 3  # at most the seconds it took the stack to stop
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=30)
    ended = _cli("node", "list", "--run", str(next((workdir / "runs").glob("*/launch.json"))))
    assert "ended" in ended.stdout and "no longer running" in ended.stderr
    # each node's output is also in its own log file under the run's directory
    logs = next((workdir / "runs").glob("*/logs"))
    assert sorted(p.name for p in logs.iterdir()) == ["echo.log", "ticker.log"]
    assert "commands over 1 episode(s)" in (logs / "ticker.log").read_text()


def test_info_on_a_complete_recording_matches_its_records():
    res = _cli("info", str(GOLDEN))
    assert res.returncode == 0, res.stderr
    assert "State:        complete" in res.stdout and "Episodes:     2" in res.stdout
    assert "seed 10000000   time_limit, 60 ticks, 4.0 s simulated" in res.stdout
    info = json.loads(_cli("info", "--json", str(GOLDEN)).stdout)
    counts: dict[str, int] = {}
    for rec in read_records(GOLDEN):
        counts[rec.topic] = counts.get(rec.topic, 0) + 1
    assert {t: v["count"] for t, v in info["topics"].items() if v["encoding"] == "msgpack"} == counts
    assert info["topics"]["/sim/ego"]["schema"] == "drivestack.EgoState"
    assert info["launch_file"].endswith("golden_stack.yaml") and info["duration_s"] > 0


def test_info_on_a_cut_recording_says_so_and_counts_what_is_there(tmp_path):
    cut = tmp_path / "cut.mcap"
    data = GOLDEN.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    info = read_info(cut)
    assert not info.complete
    whole = read_info(GOLDEN)
    assert 0 < info.messages < whole.messages
    assert len(info.episodes) >= 1 and info.episodes[0].reason == "time_limit"
    res = _cli("info", str(cut))
    assert res.returncode == 0 and "State:        CUT" in res.stdout


def test_info_on_a_file_that_is_not_mcap(tmp_path):
    res = _cli("info", str(ROOT / "README.md"))
    assert res.returncode == 2 and "not an MCAP file" in res.stderr and "Traceback" not in res.stderr
    res = _cli("info", str(tmp_path / "missing.mcap"))
    assert res.returncode == 2 and "No such file" in res.stderr


def test_launch_show_args_into_a_closed_pipe_is_quiet():
    proc = subprocess.Popen([sys.executable, "-m", "nodes.launch", "full_stack.yaml", "--show-args"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(None), bufsize=0)
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err, err
