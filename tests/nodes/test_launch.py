"""The launcher end to end, through real processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, _env, pid_alive, popen_launch, run_launch


def test_lockstep_10000_ticks_between_two_processes_lose_nothing(workdir):
    res = run_launch("demo.yaml", "ticks:=10000", cwd=workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    # the ticker advances only when the command for its current tick arrives: 10,000 commands, in order
    assert "ticker: 10000 commands over 1 episode(s)" in res.stdout
    assert re.search(r"^\s+0\s+0\s+time_limit\s+9999\s", res.stdout, re.M)
    runs = list((workdir / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "launch.json").is_file()


def test_two_launches_at_once_do_not_cross_talk(workdir):
    a = popen_launch("demo.yaml", "ticks:=3000", cwd=workdir)
    b = popen_launch("demo.yaml", "ticks:=2000", "episodes:=2", cwd=workdir)
    out_a, _ = a.communicate(timeout=120)
    out_b, _ = b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, out_a + out_b
    assert "ticker: 3000 commands over 1 episode(s)" in out_a
    assert "ticker: 4000 commands over 2 episode(s)" in out_b


def test_topic_echo_then_ctrl_c_leaves_no_orphan(workdir):
    proc = popen_launch("demo.yaml", "ticks:=100000000", cwd=workdir)
    try:
        graph = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = list((workdir / "runs").glob("*/launch.json"))
            if runs:
                graph = json.loads(runs[0].read_text())
                break
            time.sleep(0.1)
        assert graph is not None
        ns = graph["namespace_dir"]
        echo = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "echo", "/diagnostics", "-n", "4",
                               "--timeout", "30", "--run", ns], capture_output=True, text=True, timeout=60,
                              env=_env(None), cwd=ROOT)
        beats = [json.loads(line) for line in echo.stdout.splitlines()]
        pids = {b["node"]: b["pid"] for b in beats}
        assert set(pids) == {"ticker", "echo"}, echo.stdout + echo.stderr
        ego = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "echo", "/sim/ego", "-n", "1", "--run", ns,
                              "--timeout", "30"], capture_output=True, text=True, timeout=60, env=_env(None), cwd=ROOT)
        assert ego.returncode == 0, ego.stdout + ego.stderr
        assert json.loads(ego.stdout)["header"]["tick"] > 0
        assert all(pid_alive(p) for p in pids.values())
        proc.send_signal(signal.SIGINT)
        # the launcher SIGKILLs a node still running 3 s (GRACE_S, its own clock) after Ctrl-C, so it always
        # ends by itself; 120 s only bounds a hang, with room for a loaded machine
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 130, out
        assert "did not stop in" not in out  # every node stopped on the signal: none needed the SIGKILL
        time.sleep(0.2)
        assert not any(pid_alive(p) for p in pids.values()), out
        assert not Path(ns).exists()  # the ipc namespace is cleaned up
    finally:
        if proc.poll() is None:
            proc.kill()


def test_required_node_death_stops_the_stack_with_its_last_output(workdir):
    proc = popen_launch("demo.yaml", "ticks:=100000000", cwd=workdir)
    try:
        runs = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not runs:
            runs = list((workdir / "runs").glob("*/launch.json"))
            time.sleep(0.1)
        ns = json.loads(runs[0].read_text())["namespace_dir"]
        echo = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "echo", "/diagnostics", "-n", "4",
                               "--timeout", "30", "--run", ns], capture_output=True, text=True, timeout=60,
                              env=_env(None), cwd=ROOT)
        pids = {json.loads(line)["node"]: json.loads(line)["pid"] for line in echo.stdout.splitlines()}
        import os

        os.kill(pids["ticker"], signal.SIGKILL)
        # in lockstep nothing else would end this stack (100,000,000 ticks, no stall timeout): ending at all shows
        # the launcher noticed the death; 120 s only bounds a hang, with room for a loaded machine
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1
        assert "required node 'ticker' died" in out
        assert not pid_alive(pids["echo"])
    finally:
        if proc.poll() is None:
            proc.kill()


def test_realtime_mode_runs_paced(workdir):
    from nodes.runtime.mcap_io import read_records

    res = run_launch("demo.yaml", "mode:=realtime", "ticks:=30", "record:=true", cwd=workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"ticker: (\d+) commands", res.stdout)
    assert m and 0 < int(m.group(1)) <= 30  # the ticker takes the latest command; it waits for none
    rec = next(workdir.glob("runs/*/recording.mcap"))
    received = [r.log_time_ns for r in read_records(rec, {"/sim/ego"})]  # the recorder's wall-clock receive times
    assert len(received) >= 2
    # Paced at 15 Hz, ticks 0..29 leave the ticker over at least 29/15 = 1.93 s (it never catches up faster);
    # flat out, as in lockstep, they take milliseconds. A loaded machine only stretches this span, except for the
    # first message's delivery delay, which may shorten it: 1.0 s leaves 0.9 s of that.
    assert (received[-1] - received[0]) / 1e9 >= 1.0


def test_a_launch_whose_parent_is_killed_stops_cleanly(workdir):
    """evaluate or a Ray task SIGKILLed mid-run: its launch gets SIGTERM, stops every node, finalises the file."""
    from nodes.runtime.mcap_io import _is_finalised

    starter = ("import subprocess, sys\n"
               "p = subprocess.Popen([sys.executable, '-m', 'nodes.launch', 'demo.yaml', 'ticks:=100000000',"
               " 'record:=true'], stdout=subprocess.DEVNULL)\n"
               "print(p.pid, flush=True)\n"
               "p.wait()\n")
    parent = subprocess.Popen([sys.executable, "-c", starter], cwd=workdir, stdout=subprocess.PIPE, text=True,
                              env=_env(None))
    launch_pid = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        recording = None
        while time.monotonic() < deadline and recording is None:
            recording = next(iter(workdir.glob("runs/*/recording.mcap")), None)
            time.sleep(0.1)
        assert recording is not None
        ns = json.loads(next(workdir.glob("runs/*/launch.json")).read_text())["namespace_dir"]
        while time.monotonic() < deadline and recording.stat().st_size < 100_000:
            time.sleep(0.1)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pid_alive(launch_pid):
            time.sleep(0.1)
        assert not pid_alive(launch_pid)
        assert not Path(ns).exists()  # every node stopped and the namespace was removed
        with open(recording, "rb") as f:
            assert _is_finalised(f)
    finally:
        if pid_alive(launch_pid):
            os.kill(launch_pid, signal.SIGKILL)
