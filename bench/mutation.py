"""Mutation score of the pure-logic modules (mutmut).

Each module below is mutated by mutmut (an operator flipped, a constant nudged, an argument dropped, ...)
and the mutant is run against the fast unit tests that cover it, never the process-heavy ones. A mutant the
tests fail on is killed; one they pass is a survivor: a change in behaviour no test pins (or an equivalent
mutant, one that cannot change behaviour). The table per module: mutants, killed, errors (the tests errored
rather than failed, e.g. on an import the mutant broke: detected too), survived, timeouts (a mutant that
loops forever counts as detected), untested (mutants in code none of the module's tests runs; they count
against the score), score = (killed + errors + timeouts) / mutants. Then each survivor: file:line and its
diff.

Each module runs in its own scratch folder, build/mutation/<module>/, made afresh every run (mutmut keeps a
cache under its mutants/ folder, which would hold stale copies of files edited since): a pyproject.toml
there (this repository's pytest settings plus a [tool.mutmut] section naming the files to mutate and the
tests) and links to the packages. mutmut copies the packages into mutants/ and puts it first on sys.path, so
the tests import the mutated copy before the editable install's finder is asked. One worker, so it shares
the machine; a module takes minutes (the planner observation's tests drive highway-env, the slowest).

  pip install -e ".[mutation]"
  python bench/mutation.py [--quick] [--module NAME ...] [--json PATH] [--keep]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
PACKAGES = ("msgs", "sim", "nodes", "evaluation")  # what the tests import: copied whole into mutants/


@dataclass(frozen=True)
class Module:
    files: tuple[str, ...]  # mutated
    tests: tuple[str, ...]  # the unit tests that cover them; tests/<dir>/test_*_pins.py are added when present
    pin_dirs: tuple[str, ...]
    deselect: tuple[str, ...] = ()  # tests too slow to run once per mutant (each pinned by a faster one)


MODULES: dict[str, Module] = {
    "pid": Module(("nodes/control/pid.py",), ("tests/control/test_pid.py",), ("tests/control",)),
    "msgs": Module(("msgs/codec.py", "msgs/types.py", "msgs/registry.py"), ("tests/msgs/test_messages.py",),
                   ("tests/msgs",)),
    "tracker": Module(("nodes/perception/tracker.py", "nodes/perception/assignment.py"),
                      ("tests/perception/test_tracker.py", "tests/perception/test_assignment.py"),
                      ("tests/perception",)),
    "view": Module(("sim/view.py",), ("tests/perception/test_view.py",), ("tests/perception",)),
    "metrics": Module(("evaluation/metrics.py", "evaluation/aggregate.py", "evaluation/stats.py"),
                      ("tests/evaluation/test_metrics.py",), ("tests/evaluation",)),
    "decision": Module(("nodes/decision/logic.py", "nodes/decision/scene.py"),
                       ("tests/decision/test_logic.py", "tests/decision/test_scenarios.py"), ("tests/decision",)),
    # the comparison against highway-env's own observation drives the env for ~25 s: run by the suite, not
    # once per mutant (tests/planning/test_observation_pins.py pins the same rules in closed form)
    "observation": Module(("nodes/planning/observation.py",), ("tests/planning/test_planner_observation.py",),
                          ("tests/planning",), deselect=(
                              "tests/planning/test_planner_observation.py::"
                              "test_builder_matches_kinematic_observation_in_view",)),
}
QUICK = ("pid",)
# A mutant whose tests run past (their time in the unmutated run + 2 s) x 3 of wall time is stopped and counted
# as a timeout (detected: an endless loop, most often in the assignment solver). mutmut's default, x 15 on
# top of 1 s, costs ~100 s a looping mutant here; the x 3 margin holds on the loaded machine because the
# times it multiplies were measured on it.
TIMEOUTS = "timeout_multiplier = 3.0\ntimeout_constant = 2.0"
# Loaded into every pytest run (-p). Property tests without hypothesis' 200 ms deadline (a mutant slowed by
# the loaded machine is not a kill) and derandomized, so two runs of a module give the same verdicts. And the
# codec's memo caches (a float checker and a decoder per message type, built on first use) emptied before
# each test: otherwise the one test that first decodes a type is the only one mutmut sees running the
# checker's builder (so the only one it runs on those mutants), and every later call uses the checker the
# unmutated code built before the mutant was switched on.
PLUGIN = '''import sys

import pytest
from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
settings.load_profile("mutation")
MEMO_CACHES = {"msgs.codec": ("_checkers", "_decoders")}


@pytest.fixture(autouse=True)
def _empty_memo_caches():
    for module, names in MEMO_CACHES.items():
        if module in sys.modules:
            for name in names:
                getattr(sys.modules[module], name).clear()
'''
PLUGIN_NAME = "mutation_test_settings"


@dataclass
class Survivor:
    name: str
    status: str  # survived | no tests
    where: str  # file:line
    diff: str


@dataclass
class Result:
    module: str
    mutants: int = 0
    killed: int = 0
    errors: int = 0  # the tests errored instead of failing (an import broken by the mutant): killed too
    survived: int = 0
    timeouts: int = 0
    untested: int = 0
    other: int = 0  # suspicious / segfault / not checked
    seconds: float = 0.0
    survivors: list[Survivor] = field(default_factory=list)

    @property
    def score(self) -> float:
        return (self.killed + self.errors + self.timeouts) / self.mutants if self.mutants else float("nan")


def tests_of(mod: Module) -> list[str]:
    tests = [t for t in mod.tests if (ROOT / t).exists()]
    for d in mod.pin_dirs:
        tests += sorted(str(p.relative_to(ROOT)) for p in (ROOT / d).glob("test_*_pins.py"))
    return sorted(set(tests), key=tests.index)


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(name: str, mod: Module, *, fresh: bool = True) -> Path:
    work = WORK / name
    if fresh:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        for pkg in PACKAGES:
            (work / pkg).symlink_to(ROOT / pkg, target_is_directory=True)
        (work / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    deselect = [arg for node in mod.deselect for arg in ("--deselect", node)]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "[tool.mutmut]" not in pyproject
    pyproject += (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(list(PACKAGES))}\n"
        f"only_mutate = {toml_list(list(mod.files))}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests_of(mod))}\n"
        f"pytest_add_cli_args = {toml_list(['-p', PLUGIN_NAME, '-p', 'no:cacheprovider', *deselect])}\n"
        "use_git_change_detection = false\n"
        f"{TIMEOUTS}\n"
    )
    (work / "pyproject.toml").write_text(pyproject)
    (work / "mutants").mkdir(exist_ok=True)
    (work / "mutants" / f"{PLUGIN_NAME}.py").write_text(PLUGIN)
    return work


def run_mutmut(work: Path, log: Path, names: list[str] | None = None) -> int:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the mutated copy, not this tree, must be what the tests import
    cmd = ["nice", "-n", "5", sys.executable, "-m", "mutmut", "run", "--max-children", "1", *(names or [])]
    with open(log, "a" if names else "w") as f:
        return subprocess.run(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT).returncode


def _function_start(source: str, mangled: str) -> tuple[int, int] | None:
    """(first line, last line) of the function a mutant name points at, in the original file."""
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    func, cls = orig_function_and_class_names_from_key(mangled + "__mutmut_1")
    for node in ast.walk(ast.parse(source)):
        body = None
        if cls is None and isinstance(node, ast.Module):
            body = node.body
        elif isinstance(node, ast.ClassDef) and node.name == cls:
            body = node.body
        for item in body or []:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == func:
                first = min([item.lineno] + [d.lineno for d in item.decorator_list])
                return first, item.end_lineno or item.lineno
    return None


def locate(path: str, mutant: str, diff: str) -> str:
    """file:line of a mutant's first changed line, from its function-level diff."""
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    source = (ROOT / path).read_text()
    span = _function_start(source, mangled_name_from_mutant_name(mutant).rpartition(".")[2])
    if span is None:
        return path
    offset, removed = 0, None
    for line in diff.splitlines():
        m = re.match(r"@@ -(\d+)", line)
        if m:
            offset = int(m.group(1)) - 1
            continue
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed = line[1:].strip()
            break
        if line.startswith("+"):
            break
        offset += 1
    guess = span[0] + offset
    lines = source.splitlines()
    if removed is not None:  # the line as written; the nearest occurrence inside the function
        hits = [n for n in range(span[0], span[1] + 1) if lines[n - 1].strip() == removed]
        if hits:
            guess = min(hits, key=lambda n: abs(n - guess))
    return f"{path}:{guess}"


def collect(name: str, mod: Module, work: Path) -> Result:
    """Read mutmut's verdicts (mutants/<file>.meta) and each survivor's diff."""
    cwd = os.getcwd()
    os.chdir(work)
    try:
        from mutmut.configuration import reset_config
        from mutmut.mutation.data import SourceFileMutationData
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.stats import status_by_exit_code

        reset_config()
        res = Result(name)
        for path in mod.files:
            data = SourceFileMutationData(path=path)
            data.load()
            for key, code in sorted(data.exit_code_by_key.items(), key=lambda kv: _natural(kv[0])):
                # mutmut's fork server exits 255 when the test run raised instead of reporting (a mutant that
                # breaks an import, say): the tests failed, so a kill, not the timeout mutmut's table calls it
                status = "error" if code in (255, -1) else status_by_exit_code[code]
                if status in ("skipped", "caught by type check"):
                    continue
                res.mutants += 1
                if status == "killed":
                    res.killed += 1
                elif status == "error":
                    res.errors += 1
                elif status == "timeout":
                    res.timeouts += 1
                elif status in ("survived", "no tests"):
                    if status == "survived":
                        res.survived += 1
                    else:
                        res.untested += 1
                    diff = get_diff_for_mutant(key, path=path)
                    res.survivors.append(Survivor(key, status, locate(path, key, diff), diff))
                else:
                    res.other += 1
        return res
    finally:
        os.chdir(cwd)


def _meta(work: Path, path: str) -> Path:
    return work / "mutants" / (path + ".meta")


def _exit_codes(work: Path, mod: Module) -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    for path in mod.files:
        codes |= json.loads(_meta(work, path).read_text())["exit_code_by_key"]
    return codes


def _restore(work: Path, mod: Module, before: dict[str, int | None], retested: set[str]) -> None:
    """Put the full run's verdicts back on every mutant not re-tested."""
    for path in mod.files:
        meta = json.loads(_meta(work, path).read_text())
        codes = meta["exit_code_by_key"]
        for key in codes:
            if key not in retested and key in before:
                codes[key] = before[key]
        _meta(work, path).write_text(json.dumps(meta, indent=4))


def _natural(key: str) -> tuple[str, int]:
    base, _, n = key.rpartition("__mutmut_")
    return base, int(n) if n.isdigit() else 0


def print_table(results: list[Result]) -> None:
    head = f"{'module':<12} {'mutants':>7} {'killed':>6} {'errors':>6} {'survived':>8} {'timeouts':>8} " \
           f"{'untested':>8} {'other':>5} {'score':>7} {'time s':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.module:<12} {r.mutants:>7} {r.killed:>6} {r.errors:>6} {r.survived:>8} {r.timeouts:>8} "
              f"{r.untested:>8} {r.other:>5} {r.score:>7.1%} {r.seconds:>7.0f}")


def print_survivors(results: list[Result]) -> None:
    for r in results:
        if not r.survivors:
            continue
        print(f"\n== {r.module}: {len(r.survivors)} surviving mutants")
        for s in r.survivors:
            print(f"\n-- {s.where}  {s.name}  ({s.status})")
            print("\n".join(line for line in s.diff.splitlines() if not line.startswith(("---", "+++"))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", action="append", choices=sorted(MODULES), help="one module (repeatable)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--json", type=Path, help="write the table and the survivors here")
    ap.add_argument("--keep", action="store_true", help="keep build/mutation/<module>/ (mutmut's own "
                    "`mutmut show NAME` / `mutmut browse` work there)")
    ap.add_argument("--resume", action="store_true", help="carry on an interrupted --keep run (its verdicts kept, "
                    "its timeouts re-tested under the current time limits)")
    ap.add_argument("--survivors", action="store_true", help="re-test only the survivors of the last --keep "
                    "run, against the tests as they are now (the mutated code is that run's copy); the "
                    "other verdicts are that run's")
    args = ap.parse_args(argv)
    try:
        import mutmut  # noqa: F401
    except ImportError:
        print("mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    names = args.module or (list(QUICK) if args.quick else list(MODULES))
    results = []
    for name in names:
        mod = MODULES[name]
        log = WORK / f"{name}.log"
        t0 = time.monotonic()
        verdicts = WORK / f"{name}.verdicts.json"
        if args.survivors:
            before = json.loads(verdicts.read_text())  # the full run's exit codes by mutant
            again = sorted(k for k, code in before.items() if code in (0, 33))  # survived, untested
            # a changed test selection makes mutmut forget every verdict: the others are restored below
            work = prepare(name, mod, fresh=False)
            rc = run_mutmut(work, log, again) if again else 0
        elif args.resume:
            work = WORK / name
            text = (work / "pyproject.toml").read_text()
            text = re.sub(r"timeout_multiplier = .*\n|timeout_constant = .*\n", "", text) + TIMEOUTS + "\n"
            (work / "pyproject.toml").write_text(text)  # the test selection as it was: no reset of verdicts
            rc = run_mutmut(work, log, [])
        else:
            work = prepare(name, mod)
            rc = run_mutmut(work, log)
        if rc != 0:
            print(f"{name}: mutmut exited {rc}; its output is in {log}", file=sys.stderr)
            print(log.read_text()[-3000:], file=sys.stderr)
            return 1
        if args.survivors:
            _restore(work, mod, before, set(again))
        else:
            verdicts.write_text(json.dumps(_exit_codes(work, mod)))
        res = collect(name, mod, work)
        res.seconds = time.monotonic() - t0
        results.append(res)
        print(f"{name}: {res.mutants} mutants, score {res.score:.1%} ({res.seconds:.0f} s)", file=sys.stderr,
              flush=True)
        if not args.keep:
            shutil.rmtree(work)
    print_table(results)
    print_survivors(results)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "score": r.score} for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
