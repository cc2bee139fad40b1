"""Lockstep never hangs on a fault it can see coming: a respawned node resumes the tick it lost, and a per-tick
input that no node publishes is refused before anything starts."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from nodes.runtime.mcap_io import read_records
from tests.conftest import ROOT, _env, popen_launch, run_launch
from tests.test_stack_faults import Lines, _pids

DATA = Path(__file__).parents[1] / "data"


def test_a_respawned_node_resumes_the_tick_it_lost(workdir):
    """No stall timeout: only the resent tick can get the loop going again after perception is killed."""
    # The loop must still be running when the kill lands, or nobody rejoins. With gt perception and 10 vehicles
    # a 30 s episode took 2.2 s here (200 ticks/s), less than asking the nodes' heartbeats for their pids
    # (`topic echo /diagnostics`) took on a loaded machine: the kill came after the end. So the pids come from
    # /proc at once, and the episode lasts 60 s (901 ticks, about 4.5 s here) for a margin.
    proc = popen_launch(str(DATA / "respawn_stack.yaml"), "stall_timeout_s:=0.0", "duration:=60.0", cwd=workdir)
    out = Lines(proc)
    try:
        out.wait_for("all nodes ready", timeout=120)
        os.kill(_pids(proc)["perception"], signal.SIGKILL)
        out.wait_for("node 'perception' rejoined", timeout=120)
        assert proc.wait(timeout=180) == 0, out.text  # the episode ran to its end
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = next(workdir.glob("runs/*/recording.mcap"))
    ticks = [r.decode().header.tick for r in read_records(rec, {"/sim/ego"})]
    assert ticks == list(range(901))  # 60 s at 15 Hz and the reset tick: none lost, none repeated
    cmds = sorted({r.decode().header.tick for r in read_records(rec, {"/control/cmd"})})
    assert cmds == ticks  # every tick was answered, the one perception died in included


def _one_node_launch(tmp_path: Path) -> Path:
    path = tmp_path / "control_alone.yaml"
    path.write_text("description: control without the sim or a decision node\n"
                    "nodes:\n  - {name: control, module: nodes.control.node}\n")
    return path


def test_a_lockstep_input_without_a_publisher_is_refused(tmp_path):
    path = _one_node_launch(tmp_path)
    for extra in (["--check"], []):
        res = run_launch(str(path), *extra, cwd=tmp_path, timeout=60)
        assert res.returncode == 2, res.stdout + res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert "node 'control': inputs." in line and "which no node of this launch publishes" in line
    assert not (tmp_path / "runs").exists()


def test_respawn_of_the_recorder_is_refused(tmp_path):
    path = tmp_path / "respawn_recorder.yaml"
    path.write_text((DATA / "lane_change.yaml").read_text().replace(
        "module: nodes.recorder.node", "module: nodes.recorder.node\n    respawn: true"))
    res = subprocess.run([sys.executable, "-m", "nodes.launch", str(path), "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=_env(None))
    assert res.returncode == 2 and "node 'recorder': respawn" in res.stderr, res.stdout + res.stderr
