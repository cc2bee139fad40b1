"""Launch files as YAML: finding one, reading it, its args (declared, given as `name:=value`, substituted into
values as `$(arg NAME)`) and what its includes pass through. Nothing here imports a node module: `launch --show-args`
and the tools that only need a file's args use this alone. The format and the include rules are described in
nodes/runtime/launchfile.py, which plans the nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nodes.share import data_root

LAUNCH_DIR = data_root() / "launch"  # the checkout's launch/, or its copy in an installed wheel
TOP_KEYS = {"description", "mode", "args", "include", "nodes", "stall_timeout_s", "base_port"}
INCLUDE_KEYS = {"file", "args", "without", "params"}
ARG_KEYS = {"default", "doc", "choices"}
ARG_RE = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")


class LaunchError(ValueError):
    def __init__(self, file: str | Path, message: str, node: str | None = None, fieldname: str | None = None):
        where = str(file)
        if node:
            where += f": node '{node}'"
        if fieldname:
            where += f": {fieldname}"
        super().__init__(f"{where}: {message}")
        self.file, self.node, self.field = str(file), node, fieldname


def resolve_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """A launch file by path, relative to an including file, or by name in the package's launch/."""
    candidates = [Path(name)]
    if relative_to is not None:
        candidates.insert(0, relative_to.parent / name)
    candidates.append(LAUNCH_DIR / name)
    for path in candidates:
        if path.is_file():
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    raise LaunchError(name, f"no such launch file (looked in: {tried})")


_PAIR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:=")


def split_launch_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(`name:=value` tokens, everything else), wherever the pairs stand among the options.

    Tools that take options and launch args (`launch`, `drivestack evaluate`) split them before argparse
    sees them, so a pair after an option (`--episodes 1 duration:=10`, `--compare A B duration:=10`) can
    never be taken for an option's value or a launch file."""
    pairs = [a for a in argv if _PAIR_RE.match(a)]
    return pairs, [a for a in argv if not _PAIR_RE.match(a)]


def did_you_mean(name: str, known: list[str] | set[str]) -> str:
    """' (did you mean 'episodes'?)' for a near miss among `known`, else ''."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def option_hint(token: str, arg_names: list[str] | set[str], value: str | None = None) -> str:
    """For `--episodes 2` given to a tool that takes launch args: 'launch args are given as episodes:=2'."""
    name = token.lstrip("-").partition("=")[0].replace("-", "_")
    value = token.partition("=")[2] or value or "VALUE"
    if name in arg_names:
        return f"launch args are given as name:=value: {name}:={value}"
    close = did_you_mean(name, arg_names)
    return f"launch args are given as name:=value{close}" if close else ""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`name:=value` pairs -> typed values (YAML scalars: 3 -> int, true -> bool, cnn -> str)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"argument {item!r} is not of the form name:=value")
        out[name] = _scalar(value)
    return out


def _scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if value is None or isinstance(value, dict) else value


class _UniqueKeyLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        # aliases (*name) share nodes, so a few lines can expand to billions of values ("billion laughs"):
        # launch files have no use for them
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in launch files",
                                              event.start_mark)
        return super().compose_node(parent, index)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise LaunchError(path, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise LaunchError(path, "a launch file is a mapping with `nodes:` (and optionally args, include)")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise LaunchError(path, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    return data


def substitute(value: Any, args: dict[str, Any], path: Path, node: str | None, fieldname: str) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, args, path, node, f"{fieldname}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, args, path, node, f"{fieldname}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "$(" not in value:
        return value

    def lookup(name: str) -> Any:
        if name not in args:
            raise LaunchError(path, f"$(arg {name}) names no declared arg; declared: {sorted(args)}",
                              node, fieldname)
        return args[name]

    whole = ARG_RE.fullmatch(value.strip())
    if whole:
        return lookup(whole.group(1))
    text = ARG_RE.sub(lambda m: str(lookup(m.group(1))), value)
    if "$(" in text:
        raise LaunchError(path, f"unknown substitution in {value!r}; only $(arg NAME) is supported",
                          node, fieldname)
    return text


def resolve_args(path: Path, declared: Any, given: dict[str, Any], strict: bool) -> dict[str, Any]:
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise LaunchError(path, "must map each arg name to {default, doc, choices}", fieldname="args")
    args: dict[str, Any] = {}
    for name, decl in declared.items():
        if not isinstance(decl, dict):
            decl = {"default": decl}
        unknown = set(decl) - ARG_KEYS
        if unknown:
            raise LaunchError(path, f"unknown key(s) {sorted(unknown)}", fieldname=f"args.{name}")
        value = given.get(name, decl.get("default"))
        if value is None:
            raise LaunchError(path, "has no default: give it as " + f"{name}:=VALUE", fieldname=f"args.{name}")
        choices = decl.get("choices")
        if choices is not None and value not in choices:
            raise LaunchError(path, f"{value!r} is not one of {choices}", fieldname=f"args.{name}")
        default = decl.get("default")
        if default is not None and not _same_kind(value, default):
            raise LaunchError(path, f"{value!r} is a {type(value).__name__}, expected a {type(default).__name__}",
                              fieldname=f"args.{name}")
        args[name] = value
    if strict:
        unknown = set(given) - set(args)
        if unknown:
            hints = "".join(did_you_mean(u, args) for u in sorted(unknown))
            raise LaunchError(path, f"unknown arg(s) {sorted(unknown)}; this file takes: {sorted(args)}{hints}")
    return args


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def launch_args(file: str | Path) -> dict[str, dict[str, Any]]:
    """A launch file's args, its own and those its includes pass through, in order: name -> {default, doc,
    choices}. Reads the YAML files only (no node module is imported). Raises LaunchError."""
    return arg_table(resolve_path(file)).decls


@dataclass
class Include:
    """One entry of a file's `include:`, checked against the included file's own table."""

    index: int
    path: Path  # the included file
    fixed: dict[str, Any]  # args it sets (raw: $(arg ...) of the including file)
    without: list[str]
    params: dict[str, dict[str, Any]]  # node -> params merged over its own (raw)
    kept: list[str]  # the included file's nodes that stay
    passed: set[str]  # its args that are the including file's args too


@dataclass
class ArgTable:
    """A launch file's args once its includes are taken in, from the YAML alone."""

    decls: dict[str, dict[str, Any]]  # arg -> {default, doc, choices}
    users: dict[str, set[str]]  # arg -> the nodes (here or included) whose entry uses it; "" for a top-level field
    nodes: list[str]  # every node name here and in what it includes and keeps, whatever their `if:`
    includes: list[Include]


@dataclass
class Override:
    """Params an including file merges over a node's own, and where each top-level key was given."""

    values: dict[str, Any]
    sources: dict[str, tuple[Path, str]]  # key -> (file, field) to name in an error


def _arg_refs(value: Any) -> set[str]:
    """Names of the args that `value` (any YAML value) refers to as $(arg NAME)."""
    if isinstance(value, dict):
        return set().union(*map(_arg_refs, value.values()))
    if isinstance(value, list):
        return set().union(*map(_arg_refs, value))
    return set(ARG_RE.findall(value)) if isinstance(value, str) else set()


def _declarations(path: Path, declared: Any) -> dict[str, dict[str, Any]]:
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise LaunchError(path, "must map each arg name to {default, doc, choices}", fieldname="args")
    out = {}
    for name, decl in declared.items():
        decl = decl if isinstance(decl, dict) else {"default": decl}
        if unknown := set(decl) - ARG_KEYS:
            raise LaunchError(path, f"unknown key(s) {sorted(unknown)}", fieldname=f"args.{name}")
        out[name] = decl
    return out


def _include_entries(path: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("include") or []
    if isinstance(raw, str | dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise LaunchError(path, "a launch file's name, or a list of includes", fieldname="include")
    out = []
    for i, inc in enumerate(raw):
        inc = {"file": inc} if isinstance(inc, str) else inc
        where = f"include[{i}]"
        if not isinstance(inc, dict) or "file" not in inc:
            raise LaunchError(path, "each include is {file: PATH, args: {...}}", fieldname=where)
        if unknown := set(inc) - INCLUDE_KEYS:
            raise LaunchError(path, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(INCLUDE_KEYS)}",
                              fieldname=where)
        if not isinstance(inc["file"], str) or "$(" in inc["file"]:
            raise LaunchError(path, "must be a launch file's name (not an $(arg ...): which args a file takes "
                              "depends on what it includes)", fieldname=f"{where}.file")
        for key in ("args", "params"):
            if not isinstance(inc.get(key) or {}, dict):
                raise LaunchError(path, "must be a mapping", fieldname=f"{where}.{key}")
        for name, over in (inc.get("params") or {}).items():
            if not isinstance(over, dict):
                raise LaunchError(path, "must map param names to values", fieldname=f"{where}.params.{name}")
        without = inc.get("without") or []
        if not (isinstance(without, list) and all(isinstance(w, str) for w in without)):
            raise LaunchError(path, f"must be a list of node names, got {without!r}", fieldname=f"{where}.without")
        out.append(inc)
    return out


def arg_table(path: Path, seen: tuple[Path, ...] = ()) -> ArgTable:
    if path in seen:
        raise LaunchError(path, "includes itself (through " + " -> ".join(map(str, seen)) + ")")
    data = load_yaml(path)
    own = _declarations(path, data.get("args"))
    entries = data.get("nodes") or []
    if not isinstance(entries, list):
        raise LaunchError(path, "must be a list of nodes", fieldname="nodes")
    own_nodes = {e["name"]: _arg_refs(e) for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
    top = _arg_refs([data.get(key) for key in ("mode", "base_port", "stall_timeout_s")])
    entries_inc = _include_entries(path, data)
    here = top.union(*own_nodes.values(), *(_arg_refs([inc.get("args"), inc.get("params")]) for inc in entries_inc))
    decls: dict[str, dict[str, Any]] = {}
    users: dict[str, set[str]] = {}
    nodes: list[str] = []
    includes = []
    for i, inc in enumerate(entries_inc):
        where = f"include[{i}]"
        try:
            child = resolve_path(inc["file"], path)
        except LaunchError as exc:
            raise LaunchError(path, str(exc), fieldname=f"{where}.file") from None
        sub = arg_table(child, seen + (path,))
        fixed, params, without = inc.get("args") or {}, inc.get("params") or {}, inc.get("without") or []
        if missing := [w for w in without if w not in sub.nodes]:
            raise LaunchError(path, f"{missing!r} names no node of {child.name}; its nodes: {sub.nodes}",
                              fieldname=f"{where}.without")
        kept = [n for n in sub.nodes if n not in without]
        if unknown := sorted(set(fixed) - set(sub.decls)):
            hints = "".join(did_you_mean(u, sub.decls) for u in unknown)
            raise LaunchError(path, f"{child.name} takes no arg(s) {unknown}; it takes: {sorted(sub.decls)}{hints}",
                              fieldname=f"{where}.args")
        for name in params:
            if name not in kept:
                why = " (it is left out by `without`)" if name in without else ""
                raise LaunchError(path, f"names no node of {child.name}{why}; its nodes: {kept}"
                                  f"{did_you_mean(name, kept)}", fieldname=f"{where}.params.{name}")

        def reach(arg: str, sub: ArgTable = sub, kept: list[str] = kept) -> set[str]:
            """The kept nodes (and top-level fields, "") of the included file that use `arg`."""
            return {u for u in sub.users.get(arg, ()) if u == "" or u in kept}

        passed = set()
        for name, decl in sub.decls.items():
            if name in fixed or not (reach(name) or name in here or name in own):
                continue
            if name in decls and decls[name] != decl and name not in own:
                raise LaunchError(path, f"two includes declare it differently ({decls[name]} and {decl}): declare it "
                                  "in this file", fieldname=f"args.{name}")
            passed.add(name)
            decls.setdefault(name, dict(decl))
            users.setdefault(name, set()).update(reach(name))
        for name, value in fixed.items():
            for arg in _arg_refs(value):
                users.setdefault(arg, set()).update(reach(name))
        for node, over in params.items():
            for arg in _arg_refs(over):
                users.setdefault(arg, set()).add(node)
        nodes += [n for n in kept if n not in nodes]  # a name twice is an error once the nodes are planned
        includes.append(Include(i, child, fixed, without, params, kept, passed))
    for name, decl in own.items():
        decls[name] = {**decls.get(name, {}), **decl}  # declared again here: what is not restated is inherited
    for name, refs in own_nodes.items():
        for arg in refs:
            users.setdefault(arg, set()).add(name)
        if name not in nodes:
            nodes.append(name)
    for arg in top:
        users.setdefault(arg, set()).add("")
    return ArgTable(decls, users, nodes, includes)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = deep_merge(out[key], value) if both else value
    return out


