"""Faults in the full stack through real processes: a node killed, restarted, or frozen mid-episode."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from msgs import Mode
from nodes.runtime.mcap_io import _is_finalised, read_records
from tests.conftest import popen_launch

DATA = Path(__file__).parent / "data"


class Lines:
    """Collects a process's output lines with their arrival time, in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append((time.monotonic(), line))

    def wait_for(self, text: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in self.lines:
                if text in line:
                    return t
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} in:\n" + "".join(line for _, line in self.lines))

    @property
    def text(self) -> str:
        return "".join(line for _, line in self.lines)


def _pids(proc: subprocess.Popen[str]) -> dict[str, int]:
    """node name -> pid of the launch's node processes, read from /proc at once (no waiting for heartbeats,
    which could let a short episode end before the fault is injected)."""
    pids: dict[str, int] = {}
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"nodes.runtime.runner" in argv and b"--spec" in argv:
                pids[Path(argv[argv.index(b"--spec") + 1].decode()).stem] = int(child)
    return pids


@pytest.mark.parametrize("victim", ["perception", "planning", "decision", "control"])
def test_a_required_node_killed_mid_episode_stops_the_stack(workdir, victim):
    proc = popen_launch("full_stack.yaml", "perception:=gt", "vehicles:=10", "episodes:=1", "duration:=60.0",
                        cwd=workdir)
    out = Lines(proc)
    try:
        out.wait_for("all nodes ready")
        pids = _pids(proc)
        time.sleep(1.0)  # mid-episode
        killed = time.monotonic()
        os.kill(pids[victim], signal.SIGKILL)
        noticed = out.wait_for(f"required node '{victim}' died")
        assert proc.wait(timeout=120) == 1  # 120 s: only bounds a hang, with room for a loaded machine
        # In lockstep the dead node's loop is stalled and the episode lasts 60 s, so the stack only ends because
        # the launcher's 50 ms poll saw the death; any time well under those 60 s shows that. 20 s leaves a
        # loaded machine (and this reader thread, which stamps the line when it gets to read it) ample room.
        assert noticed - killed < 20.0
        out.thread.join(timeout=60)  # the launcher has exited: only its last lines are left to read
        assert "its last output" in out.text
        rec = next(workdir.glob("runs/*/recording.mcap"))
        with open(rec, "rb") as f:
            assert _is_finalised(f)  # the recorder was stopped cleanly
        assert sum(1 for _ in read_records(rec, {"/sim/ego"})) > 5
    finally:
        if proc.poll() is None:
            proc.kill()


def _modes(rec: Path) -> list[int]:
    return [r.decode().mode for r in read_records(rec, {"/decision/target"})]


def test_respawned_perception_rejoins_and_the_episode_goes_on(workdir):
    proc = popen_launch(str(DATA / "respawn_stack.yaml"), cwd=workdir)
    out = Lines(proc)
    try:
        out.wait_for("all nodes ready")
        pids = _pids(proc)
        # Away long enough for the watchdog whatever the machine: a respawn alone can be back within two
        # ticks on a quiet machine (under its 3 ticks), so perception is first frozen for 2 s, in which
        # lockstep hands out a tick every few stall timeouts (0.05 s each) without it: many more than 3.
        os.kill(pids["perception"], signal.SIGSTOP)
        time.sleep(2.0)
        os.kill(pids["perception"], signal.SIGKILL)
        out.wait_for("node 'perception' rejoined")
        assert proc.wait(timeout=180) == 0, out.text
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = next(workdir.glob("runs/*/recording.mcap"))
    egos = [r.decode() for r in read_records(rec, {"/sim/ego"})]
    assert egos[-1].header.tick == 450 and not any(e.crashed for e in egos)  # 30 s at 15 Hz, no collision
    modes = _modes(rec)
    assert Mode.MINIMAL_RISK in modes  # the watchdog held the car while perception was away
    first_mrm = modes.index(Mode.MINIMAL_RISK)
    assert any(m != Mode.MINIMAL_RISK for m in modes[first_mrm:])  # and gave it back when perception returned


def test_perception_frozen_for_a_second_in_real_time(workdir):
    proc = popen_launch(str(DATA / "respawn_stack.yaml"), "mode:=realtime", "duration:=8.0", cwd=workdir)
    out = Lines(proc)
    try:
        out.wait_for("all nodes ready")
        pids = _pids(proc)
        time.sleep(2.0)
        os.kill(pids["perception"], signal.SIGSTOP)
        time.sleep(1.0)
        os.kill(pids["perception"], signal.SIGCONT)
        assert proc.wait(timeout=60) == 0, out.text
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = next(workdir.glob("runs/*/recording.mcap"))
    egos = [r.decode() for r in read_records(rec, {"/sim/ego"})]
    assert not any(e.crashed for e in egos)
    modes = _modes(rec)
    assert Mode.MINIMAL_RISK in modes
    last_mrm = len(modes) - 1 - modes[::-1].index(Mode.MINIMAL_RISK)
    assert last_mrm < len(modes) - 15  # recovered: at least a second of normal driving after it
