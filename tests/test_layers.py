"""The layers, from the code's own imports: msgs <- sim <- nodes.runtime <- the roles (nodes/<role>/) <- evaluation.

Every import counts, at the top of a module or inside a function. `sim/` is the world (highway-env and CARLA
backends, the camera model) and knows nothing of the nodes; the runtime knows processes, topics and
ready/stop signals and nothing of driving; evaluation drives launch files and scores recordings. No module
imports itself back through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("msgs", "sim", "nodes", "evaluation")


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {_module_name(p): p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))
           if "_share" not in p.parts}


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports (a `from package import module` names the module)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` of a package: the deepest module known
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_walk_sees_the_tree():
    # a broken walk would pass every rule below: check it finds imports we know are there
    assert "msgs" in GRAPH["nodes.runtime.bus"]
    assert "nodes.runtime.node" in GRAPH["nodes.control.node"]
    assert "evaluation.metrics" in GRAPH["evaluation.evaluate"]
    assert len(MODULES) > 100


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "msgs")))
def test_msgs_imports_only_msgs(module):
    assert {m for m in GRAPH[module] if not _in(m, "msgs")} == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "sim")))
def test_sim_imports_neither_nodes_nor_evaluation(module):
    assert {m for m in GRAPH[module] if _in(m, "nodes") or _in(m, "evaluation")} == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _in(m, "nodes.runtime")))
def test_the_runtime_imports_no_role_and_no_evaluation(module):
    allowed = ("msgs", "nodes.runtime", "nodes.share")
    assert {m for m in GRAPH[module] if not any(_in(m, a) for a in allowed) and m != "nodes"} == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _in(m, "evaluation")))
def test_only_evaluation_imports_evaluation(module):
    # the CLI reaches `drivestack evaluate` by module name (runpy), not by import
    assert {m for m in GRAPH[module] if _in(m, "evaluation")} == set()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert _cycles(GRAPH) == []
