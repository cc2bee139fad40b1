"""The launcher's observers: the runtime knows topics, not driving; an observer handed to the supervisor gets
every message of a topic it watches in full, and its lines, report and stop reach the console and the run."""

from __future__ import annotations

import ast
import io
from collections.abc import Sequence

from msgs import EgoState, EpisodeEvent, Message
from nodes.runtime.launchfile import load_plan
from nodes.runtime.observer import StackView, Watch
from nodes.runtime.supervisor import Supervisor
from tests.conftest import ROOT

RUNTIME = ROOT / "nodes" / "runtime"
OURS = ("msgs", "sim", "nodes", "evaluation", "launch", "bench", "tests")
ALLOWED = ("msgs", "nodes.runtime", "nodes.share")


def _imported(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside nodes.runtime
                names.add("nodes.runtime")
            elif node.module == "nodes":  # `from nodes import viewer` names the role package
                names |= {f"nodes.{alias.name}" for alias in node.names}
            else:
                names.add(node.module or "")
    return names


def test_the_runtime_imports_no_role_package_and_no_evaluation():
    files = sorted(RUNTIME.glob("*.py"))
    assert len(files) > 10 and "nodes.runtime.bus" in _imported(RUNTIME / "supervisor.py")  # the walk sees imports
    bad = {}
    for path in files:
        ours = {m for m in _imported(path) if m.split(".")[0] in OURS}
        wrong = {m for m in ours if not any(m == a or m.startswith(a + ".") for a in ALLOWED)}
        if wrong:
            bad[path.name] = sorted(wrong)
    assert bad == {}


class Counter:
    """A test's own observer: counts the ego states, says a line per episode end, stops nothing."""

    def __init__(self) -> None:
        self.egos: list[tuple[int, int]] = []
        self.views: list[StackView] = []

    def watches(self, stack: StackView) -> Sequence[Watch]:
        self.views.append(stack)
        return [Watch("/sim/ego", complete=True), Watch("/sim/episode", complete=True), Watch("/no/such/topic")]

    def on_message(self, topic: str, msg: Message) -> Sequence[str]:
        if isinstance(msg, EgoState):
            assert topic == "/sim/ego"
            self.egos.append((msg.header.episode, msg.header.tick))
        elif isinstance(msg, EpisodeEvent) and msg.kind == "end":
            return [f"counter saw the end of episode {msg.header.episode}"]
        return []

    def status(self) -> str | None:
        return f"{len(self.egos)} ego states"

    def finished(self) -> bool:
        return False

    def report(self) -> Sequence[str]:
        return [f"counter: {len(self.egos)} ego states"]


def test_an_observer_watching_in_full_gets_every_message(tmp_path):
    plan = load_plan("demo.yaml", {"ticks": 300, "episodes": 2})
    out = io.StringIO()
    counter = Counter()
    supervisor = Supervisor(plan, run_dir=tmp_path, out=out, observers=[counter])
    # counted as a subscriber of the topics it watches in full, the unknown topic dropped
    assert supervisor.counted == {"/sim/ego", "/sim/episode"}
    assert set(supervisor.routes) == {"/sim/ego", "/sim/episode"}
    assert supervisor.run() == 0, out.getvalue()
    [view] = counter.views
    assert {"/sim/ego", "/sim/episode", "/control/cmd", "/diagnostics"} <= view.published
    assert view.local == view.published and view.live is False  # StringIO: no terminal
    # the start-up barrier waited for the launcher: the first tick is there, and not one message is missing
    assert counter.egos == [(e, t) for e in range(2) for t in range(300)]
    text = out.getvalue()
    assert "[launch] counter saw the end of episode 0" in text and "[launch] counter saw the end of episode 1" in text
    assert "[launch] counter: 600 ego states" in text


def test_without_observers_the_launcher_watches_nothing(tmp_path):
    plan = load_plan("demo.yaml", {"ticks": 20})
    out = io.StringIO()
    supervisor = Supervisor(plan, run_dir=tmp_path, out=out)
    assert supervisor.counted == set() and supervisor.routes == {}
    assert supervisor.run() == 0, out.getvalue()
    assert "summary" not in out.getvalue() and "[launch] done" in out.getvalue()
