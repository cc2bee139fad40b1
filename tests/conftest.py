"""Shared helpers for tests that start real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Hypothesis fails an example that takes over 200 ms by default. No property test here is about speed, and on a
# loaded 2-core machine a plain example can be descheduled for longer than that, so there is no deadline.
settings.register_profile("drivestack", deadline=None)
settings.load_profile("drivestack")


def run_launch(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    """`launch ARGS` as a user would type it, from `cwd` (outputs land under cwd/runs)."""
    return subprocess.run([sys.executable, "-m", "nodes.launch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(env))


def popen_launch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nodes.launch", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(env))


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("SDL_VIDEODRIVER", None)
    env.update(extra or {})
    return env


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 60.0, what: str = "a condition") -> T:
    """Poll `check` until it returns something truthy and return that; an AssertionError after `timeout` s. The
    default 60 s is far beyond any start-up, even on a loaded 2-core machine: it only catches a hang."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def recorded_bodies(path: Path) -> dict[str, list[bytes]]:
    """Every recorded message body per topic, /diagnostics (wall-clock heartbeats) left out."""
    from nodes.runtime.mcap_io import read_records

    out: dict[str, list[bytes]] = {}
    for rec in read_records(path):
        if rec.topic != "/diagnostics":
            out.setdefault(rec.topic, []).append(rec.data)
    return out
