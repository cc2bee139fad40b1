"""The launcher's child processes and its console: each node runs as a process whose output is prefixed on the
console, appended to runs/<stamp>/logs/<node>.log and kept (its last lines) to show when it dies; a terminal
keeps one live status line at the bottom."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import TextIO

from nodes.runtime.launchfile import PlannedNode

LAST_LINES = 20  # lines of a node's output kept to show when it dies
COLOURS = ["\033[36m", "\033[32m", "\033[33m", "\033[35m", "\033[34m", "\033[31m", "\033[96m", "\033[92m"]


class Console:
    """Prefixed node logs, with one live status line kept at the bottom when writing to a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.live = out.isatty() and not os.environ.get("CI")
        self.status = ""

    def line(self, text: str) -> None:
        with self.lock:
            if self.live and self.status:
                self.out.write("\r\033[K")
            self.out.write(text + "\n")
            if self.live and self.status:
                self.out.write(self.status)
            self.out.flush()

    def set_status(self, text: str) -> None:
        if not self.live:
            return
        with self.lock:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.status = text[:width]
            self.out.write("\r\033[K" + self.status)
            self.out.flush()

    def clear_status(self) -> None:
        if self.live and self.status:
            with self.lock:
                self.out.write("\r\033[K")
                self.out.flush()
                self.status = ""


class Child:
    def __init__(self, name: str, spec_path: Path, planned: PlannedNode, console: Console, colour: str,
                 run_dir: Path) -> None:
        self.name, self.spec_path, self.planned, self.run_dir = name, spec_path, planned, run_dir
        self.console, self.colour = console, colour
        self.last_lines: deque[str] = deque(maxlen=LAST_LINES)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.restarts = 0
        self.reader: threading.Thread | None = None
        self.identity = b""

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", DRIVESTACK_RUN_DIR=str(self.run_dir))
        env.setdefault("XDG_RUNTIME_DIR", str(self.spec_path.parent))  # SDL (highway-env's renderer) wants one
        if self.planned.import_path:  # a user's node module beside the launch file
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), self.planned.import_path]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nodes.runtime.runner", "--spec", str(self.spec_path)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the nodes in order
        )
        self.ready = False
        self.reader = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self.reader.start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        log = _open_log(self.run_dir, self.name)  # runs/<stamp>/logs/<node>.log, appended to on a respawn
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.last_lines.append(line)
            prefix = f"{self.colour}[{self.name}]\033[0m" if self.colour else f"[{self.name}]"
            self.console.line(f"{prefix} {line}")
            if log is not None:
                log.write(line + "\n")
                log.flush()
        if log is not None:
            log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def wait_output(self) -> None:
        if self.reader is not None:
            self.reader.join(timeout=1.0)


def _open_log(run_dir: Path, name: str) -> TextIO | None:
    """A node's log file; None (the console still has every line) when the run directory is not writable."""
    try:
        (run_dir / "logs").mkdir(exist_ok=True)
        return open(run_dir / "logs" / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115 - closed by _pump
    except OSError:
        return None
