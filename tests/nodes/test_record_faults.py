"""A run's record survives its faults: the recorder SIGKILLed, a full disk, Ctrl-C twice.

Each test drives the demo stack through `launch` with real processes, then opens the recording with the
standard `mcap` reader (`make_reader(f).iter_messages()`), checks every recorded tick is there in order,
that the launcher said so in one line with a non-zero exit where the record was lost, and that no node
process outlives the launcher.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from mcap.reader import make_reader

from msgs import EgoState
from nodes.runtime import seal
from tests.conftest import ROOT, _env, pid_alive, popen_launch, wait_for


def _start(workdir: Path, min_bytes: int = 300_000) -> tuple[subprocess.Popen[str], Path]:
    proc = popen_launch("demo.yaml", "ticks:=100000000", "record:=true", cwd=workdir)
    rec = wait_for(lambda: next(iter((workdir / "runs").glob("*/recording.mcap")), None))
    wait_for(lambda: rec.stat().st_size > min_bytes)  # a few compressed chunks on disk
    return proc, rec


def _ticks_via_standard_reader(path: Path) -> list[int]:
    """/sim/ego ticks read with mcap's own reader (raises if the file is not readable to the end)."""
    ticks = []
    with open(path, "rb") as f:
        for _schema, channel, message in make_reader(f).iter_messages():
            if channel.topic == "/sim/ego":
                ticks.append(msgspec.msgpack.decode(message.data, type=EgoState).header.tick)
    return ticks


def _node_pids(workdir: Path) -> dict[str, int]:
    ns = json.loads(next((workdir / "runs").glob("*/launch.json")).read_text())["namespace_dir"]
    echo = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "echo", "/diagnostics", "-n", "6",
                           "--timeout", "30", "--run", ns], capture_output=True, text=True, timeout=60,
                          env=_env(None), cwd=ROOT)
    return {json.loads(line)["node"]: json.loads(line)["pid"] for line in echo.stdout.splitlines()}


def _assert_whole_run(path: Path) -> list[int]:
    ticks = _ticks_via_standard_reader(path)
    assert len(ticks) > 1_000 and ticks == list(range(len(ticks)))  # every tick up to the end, in order
    return ticks


def test_sigkill_of_the_recorder_is_an_error_and_the_file_opens(workdir):
    proc, rec = _start(workdir)
    try:
        pids = _node_pids(workdir)
        os.kill(pids["recorder"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)  # the launcher stops the stack by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert f"error: recording {rec} is cut: node 'recorder' was killed by signal 9" in out, out
    assert "done" not in out.splitlines()[-1]
    _assert_whole_run(rec)
    assert seal.inspect(rec).state == "cut"
    assert not any(pid_alive(p) for p in pids.values())


def test_ctrl_c_twice_still_finalises_the_recording(workdir):
    proc, rec = _start(workdir)
    try:
        pids = _node_pids(workdir)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "is cut" not in out
    assert seal.inspect(rec).complete  # finalised by the recorder itself: summary, indexes and all
    _assert_whole_run(rec)
    assert not any(pid_alive(p) for p in pids.values())


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and mount rights, as in CI; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_an_error_and_the_file_opens(small_disk):
    proc = popen_launch("demo.yaml", "ticks:=100000000", "record:=true", cwd=small_disk)
    try:
        out, _ = proc.communicate(timeout=120)  # the disk fills within seconds; the launcher stops
    finally:
        if proc.poll() is None:
            proc.kill()
    (rec,) = list(small_disk.glob("runs/*/recording.mcap"))
    assert proc.returncode == 1, out
    assert "No space left on device" in out and f"error: recording {rec} is cut" in out, out
    ticks = _assert_whole_run(rec)
    assert seal.inspect(rec).state == "cut"
    assert rec.stat().st_size > 1_000_000 and len(ticks) > 10_000  # it kept what fitted, not a few bytes
