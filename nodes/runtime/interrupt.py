"""Deferring Ctrl-C while a program starts (standard library only, so it can be set up before heavy imports)."""

from __future__ import annotations

import signal


class DeferredInterrupt:
    """Until `release()`, SIGINT/SIGTERM only set this flag (true once one came): a program can finish importing
    modules (a KeyboardInterrupt inside a C extension's initialisation can abort the interpreter) and then stop
    cleanly with one line."""

    def __init__(self) -> None:
        self.came = False
        self._previous = {s: signal.signal(s, self._note) for s in (signal.SIGINT, signal.SIGTERM)}

    def _note(self, signum: int, _frame: object) -> None:
        self.came = True

    def __bool__(self) -> bool:
        return self.came

    def release(self) -> None:
        """Give the signals back to the handlers they had before."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
