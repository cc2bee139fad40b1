"""Launch files: parse, substitute args, include, and validate everything before a process starts.

A launch file is YAML:

    description: one line saying what this stack is
    mode: lockstep            # or realtime; may be $(arg mode)
    args:                     # overridable from the command line as name:=value
      episodes: {default: 3, doc: number of episodes}
      perception: {default: cnn, choices: [cnn, gt]}
    include:                  # other launch files, resolved relative to this one (`include: other.yaml` for one)
      - file: other.yaml
        args: {perception: gt}                  # set these args of other.yaml (they are no longer this file's)
        without: [control]                      # leave these nodes of other.yaml out (a node of this file
                                                # with a left-out node's name takes its place in the order)
        params: {planning: {plan_rate_hz: 2.0}} # per node of other.yaml: params merged over its own
    nodes:
      - name: sim             # unique in the whole launch
        module: nodes.sim.node      # a module exporting its Node subclass as NODE (also found beside the launch file)
        params: {episodes: $(arg episodes)}
        remap: {/sim/ego: /other/ego}   # default topic -> topic used here
        required: true        # its death stops the stack (default false)
        respawn: false        # restart it when it dies (default false)
        if: $(arg record)     # start it only when true (also `unless`)

`$(arg NAME)` alone keeps the arg's type; inside a longer string it is interpolated as text.
Every mistake is a LaunchError naming the file, the node and the field.

An include passes its args through: every arg of the included file that its kept nodes or its top-level fields
use, or that this file refers to, is an arg of this file too, with the same default, doc and choices, and
its value goes down to the included file. So a file that changes one thing of another holds only that change.
Declaring such an arg here again changes what is given (`perception: {default: gt}` keeps its doc and choices);
giving it in the include's `args:` sets it for good (the arg is then not this file's). An arg used only by left-out
nodes is not passed through (it keeps the included file's default). `mode`, `base_port` and `stall_timeout_s`
are those of the first include unless this file sets them.

Reading the YAML, the args and what includes pass through is nodes/runtime/launchargs.py (no node module needed);
this module plans and checks the nodes.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from msgs.registry import TOPICS
from nodes.runtime.launchargs import (  # the YAML, args and includes; re-exported: this module's API as before
    LAUNCH_DIR,
    LaunchError,
    Override,
    arg_table,
    deep_merge,
    did_you_mean,
    launch_args,
    load_yaml,
    option_hint,
    parse_overrides,
    resolve_args,
    resolve_path,
    split_launch_args,
    substitute,
)
from nodes.runtime.node import Node, Params, is_per_tick, make_params
from nodes.runtime.spec import load_node_class

__all__ = ["LAUNCH_DIR", "LaunchError", "LaunchPlan", "PlannedNode", "check_node_module", "did_you_mean", "launch_args",
           "load_plan", "namespace_id", "option_hint", "parse_overrides", "resolve_path", "split_launch_args"]

NODE_KEYS = {"name", "module", "params", "remap", "required", "respawn", "if", "unless", "host"}
MODES = ("lockstep", "realtime")
NODE_NAME_MAX = 32  # [characters] a name is part of ipc socket paths, which are limited to ~100 bytes
NODE_NAME_RE = re.compile(rf"[A-Za-z][A-Za-z0-9_-]{{0,{NODE_NAME_MAX - 1}}}")
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}")  # a name, IPv4 or IPv6 address (no ports, paths)
ALL_INTERFACES = ("0.0.0.0",)
MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass
class PlannedNode:
    name: str
    module: str
    node_cls: type[Node]
    params: Params
    raw_params: dict[str, Any]
    inputs: dict[str, str]  # port -> topic (after remaps)
    outputs: dict[str, str]
    input_types: dict[str, str]  # port -> message type name
    output_types: dict[str, str]
    required: bool = False
    respawn: bool = False
    host: str | None = None
    file: str = ""
    import_path: str | None = None  # a folder the node's module is imported from (a user's node beside the file)


@dataclass
class LaunchPlan:
    file: Path
    args: dict[str, Any]
    mode: str
    nodes: list[PlannedNode]
    description: str = ""
    stall_timeout_s: float = 0.0
    base_port: int = 0  # 0: ipc:// endpoints; else tcp:// endpoints numbered from this port
    warnings: list[str] = field(default_factory=list)

    def node(self, name: str) -> PlannedNode:
        return next(n for n in self.nodes if n.name == name)

    def publishers(self, topic: str) -> list[PlannedNode]:
        return [n for n in self.nodes if topic in n.outputs.values()]

    def subscribers(self, topic: str) -> list[PlannedNode]:
        return [n for n in self.nodes if topic in n.inputs.values()]

    def topics(self) -> dict[str, str]:
        """topic -> type name, for every topic some node publishes."""
        out: dict[str, str] = {}
        for n in self.nodes:
            for port, topic in n.outputs.items():
                out[topic] = n.output_types[port]
        return out


def _plan_node(path: Path, entry: Any, args: dict[str, Any], index: int,
               override: Override | None = None) -> PlannedNode | None:
    if not isinstance(entry, dict):
        raise LaunchError(path, "each node is a mapping with at least name and module", fieldname=f"nodes[{index}]")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise LaunchError(path, "every node needs a `name`", fieldname=f"nodes[{index}].name")
    if not NODE_NAME_RE.fullmatch(name):
        # the name becomes file and socket names under the private directory: nothing that could leave it
        raise LaunchError(path, f"{name[:40]!r} is not a valid node name: letters, digits, '_' and '-', starting "
                          f"with a letter, at most {NODE_NAME_MAX} characters", fieldname=f"nodes[{index}].name")
    unknown = set(entry) - NODE_KEYS
    if unknown:
        raise LaunchError(path, f"unknown key(s) {sorted(unknown)}; allowed: {sorted(NODE_KEYS)}", name)
    entry = substitute(entry, args, path, name, "")
    if "if" in entry and not _truthy(entry["if"], path, name, "if"):
        return None
    if "unless" in entry and _truthy(entry["unless"], path, name, "unless"):
        return None
    module = entry.get("module")
    if not isinstance(module, str):
        raise LaunchError(path, "`module` (a Python module exporting NODE) is required", name, "module")
    import_path = _import_path(module, path)
    try:
        check_node_module(module)  # before importing it: a module that is not a node never runs
        node_cls = load_node_class(module)
    except ValueError as exc:
        raise LaunchError(path, str(exc), name, "module") from None
    raw_params = entry.get("params") or {}
    if not isinstance(raw_params, dict):
        raise LaunchError(path, "must be a mapping of param name to value", name, "params")
    if override is not None:  # an including file's params for this node, over its own
        raw_params = deep_merge(raw_params, override.values)
    try:
        params = make_params(node_cls, raw_params)
        node_cls.check(params)
    except ValueError as exc:
        fieldname = _param_field(exc, node_cls)
        key = fieldname.removeprefix("params.").partition(".")[0]
        if override is not None and key in override.sources:  # the value came from the including file
            source, where = override.sources[key]
            raise LaunchError(source, _param_message(exc, node_cls), name,
                              where + fieldname.removeprefix("params")) from None
        raise LaunchError(path, _param_message(exc, node_cls), name, fieldname) from None
    remap = entry.get("remap") or {}
    if not isinstance(remap, dict):
        raise LaunchError(path, "must map a default topic to the topic used here", name, "remap")
    ins, outs = node_cls.input_ports(params), node_cls.output_ports(params)
    known = set(ins.values()) | set(outs.values())
    for src in remap:
        if src not in known:
            raise LaunchError(path, f"{src!r} is not a topic of this node; its topics: {sorted(known)}",
                              name, f"remap.{src}")
    flags = {}
    for key in ("required", "respawn"):
        value = entry.get(key, False)
        if not isinstance(value, bool):
            raise LaunchError(path, f"must be true or false, got {value!r}", name, key)
        flags[key] = value
    host = entry.get("host")
    if host is not None and not (isinstance(host, str) and HOST_RE.fullmatch(host)):
        raise LaunchError(path, f"{host!r} is not a host name or IP address to bind the node's tcp endpoints to",
                          name, "host")
    if flags["respawn"] and node_cls.keeps_record:  # a new recorder would start the run's record over
        raise LaunchError(path, "a node that keeps the run's record cannot be respawned: its death ends the run "
                          "with an error and its file is sealed", name, "respawn")
    return PlannedNode(
        name=name, module=module, node_cls=node_cls, params=params, raw_params=raw_params,
        inputs={p: remap.get(t, t) for p, t in ins.items()},
        outputs={p: remap.get(t, t) for p, t in outs.items()},
        input_types={p: _type_name(t) for p, t in ins.items()},
        output_types={p: _type_name(t) for p, t in outs.items()},
        required=flags["required"], respawn=flags["respawn"], host=host, file=str(path),
        import_path=import_path,
    )


def _import_path(module: str, launch_file: Path) -> str | None:
    """The launch file's folder, when `module` is not importable otherwise but is found there (a user's own node
    beside their launch file); it goes at the end of this process's path and into the node process's PYTHONPATH."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module.partition(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is not None and spec.origin not in (None, "namespace"):  # importable already (a bare folder of the
        return None                                                  # same name, a namespace package, is not)
    folder = str(launch_file.parent)
    top = module.partition(".")[0]
    if not (Path(folder, f"{top}.py").is_file() or Path(folder, top, "__init__.py").is_file()):
        return None
    if folder not in sys.path:
        sys.path.append(folder)  # after everything installed: it can add modules, never shadow one
    return folder


def check_node_module(module: str) -> None:
    """ValueError unless `module` is an absolute dotted name of a Python source file that assigns NODE at its top
    level. Only its parent packages are imported to find it; the module itself is not run."""
    import ast
    import importlib.util

    if not MODULE_RE.fullmatch(module):
        raise ValueError(f"{module[:60]!r} is not an absolute module name (dotted identifiers, e.g. "
                         "nodes.control.node)")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"cannot find module {module!r}: {exc}") from None
    if spec is None:
        raise ValueError(f"no module named {module!r}")
    origin = spec.origin if spec.has_location else None
    if not origin or not origin.endswith(".py"):
        raise ValueError(f"module {module!r} is not a Python source file, so it cannot be a node module")
    try:
        tree = ast.parse(Path(origin).read_bytes(), origin)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read module {module!r} ({origin}): {exc}") from None
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
            stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "NODE" for t in targets):
            return
    raise ValueError(f"module {module!r} ({origin}) does not assign NODE at its top level, so it is not a node "
                     "module; it was not imported")


def _type_name(topic: str) -> str:
    return TOPICS[topic].type.__name__


def _truthy(value: Any, path: Path, node: str, fieldname: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise LaunchError(path, f"must be true or false, got {value!r}", node, fieldname)


def _param_field(exc: ValueError, node_cls: type[Node] | None = None) -> str:
    """The param an error is about: msgspec's path, else the first word of the message that names a field of the
    node's params, nested structs included (`ControlParams.kp_speed must be > 0` -> params.pid.kp_speed)."""
    text = str(exc)
    match = re.search(r"at `\$\.([^`]+)`", text) or re.search(r"unknown field `([^`]+)`", text)
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text.partition(":")[2] or text)
    if match:
        inner = _struct_at(node_cls.Params, match.group(1)) if node_cls is not None else None
        named = [w for w in words if inner is not None and w in inner.__struct_fields__]
        return f"params.{match.group(1)}" + (f".{named[0]}" if named else "")
    paths = _field_paths(node_cls.Params) if node_cls is not None else {}
    dotted = re.findall(r"\b[A-Z][A-Za-z0-9_]*\.([A-Za-z_][A-Za-z0-9_]*)", text)  # SimParams.env_id 'x': ...
    named = [paths[w] for w in dotted + words if w in paths]
    return f"params.{named[0]}" if named else "params"


def _struct_at(struct: type, path: str) -> type | None:
    """The msgspec struct type at a dotted field path of `struct`, or None."""
    for name in path.split("."):
        info = next((f for f in msgspec.structs.fields(struct) if f.name == name), None)
        if info is None or not (isinstance(info.type, type) and issubclass(info.type, msgspec.Struct)):
            return None
        struct = info.type
    return struct


def _field_paths(struct: type, prefix: str = "") -> dict[str, str]:
    """field name -> dotted path, for `struct`'s fields and those of its struct-typed fields (its own first)."""
    fields = msgspec.structs.fields(struct)
    paths = {f.name: prefix + f.name for f in fields}
    for f in fields:
        if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
            for name, path in _field_paths(f.type, f"{prefix}{f.name}.").items():
                paths.setdefault(name, path)
    return paths


def _param_message(exc: ValueError, node_cls: type[Node]) -> str:
    text = str(exc).removeprefix(f"{node_cls.__name__} params: ")
    if "unknown field" in text.lower():
        fields = sorted(node_cls.Params.__struct_fields__)
        text += f"; {node_cls.__name__} takes: {', '.join(fields)}"
    return text


def load_plan(file: str | Path, overrides: dict[str, Any] | None = None) -> LaunchPlan:
    """Parse, substitute, include and validate a launch file. Raises LaunchError."""
    path = resolve_path(file)
    plan = _load(path, overrides or {}, strict=True, seen=())
    _check_graph(plan)
    return plan


def _load(path: Path, given: dict[str, Any], strict: bool, seen: tuple[Path, ...],
          overrides: dict[str, Override] | None = None) -> LaunchPlan:
    table = arg_table(path, seen)
    data = load_yaml(path)
    args = resolve_args(path, table.decls, given, strict)
    overrides = overrides or {}
    nodes: list[PlannedNode | str] = []  # a str holds the place of a node left out by `without`
    inherited: dict[str, Any] = {}
    for inc in table.includes:
        where = f"include[{inc.index}]"
        fixed = substitute(inc.fixed, args, path, None, f"{where}.args")
        below = {name: Override(substitute(over, args, path, name, f"{where}.params.{name}"),
                                 {key: (path, f"{where}.params.{name}") for key in over})
                 for name, over in inc.params.items()}
        for name, over in overrides.items():  # given further up: they win
            if name in inc.kept:
                mine = below.get(name, Override({}, {}))
                below[name] = Override(deep_merge(mine.values, over.values), {**mine.sources, **over.sources})
        child = _load(inc.path, {**{a: args[a] for a in inc.passed}, **fixed}, True, seen + (path,), below)
        if inc.index == 0:
            inherited = {"mode": child.mode, "stall_timeout_s": child.stall_timeout_s, "base_port": child.base_port}
        nodes += [n.name if n.name in inc.without else n for n in child.nodes]

    def top(key: str, default: Any) -> Any:
        return substitute(data[key], args, path, None, key) if key in data else inherited.get(key, default)

    mode = top("mode", "lockstep")
    if mode not in MODES:
        raise LaunchError(path, f"{mode!r} is not one of {list(MODES)}", fieldname="mode")
    stall = top("stall_timeout_s", 0.0)
    if not isinstance(stall, int | float) or stall < 0:
        raise LaunchError(path, f"must be a number of seconds >= 0, got {stall!r}", fieldname="stall_timeout_s")
    base_port = top("base_port", 0)
    valid_port = isinstance(base_port, int) and not isinstance(base_port, bool)
    if not valid_port or not (base_port == 0 or 1024 <= base_port < 65000):
        raise LaunchError(path, f"must be 0 (ipc) or a TCP port in [1024, 65000), got {base_port!r}",
                          fieldname="base_port")
    for i, entry in enumerate(data.get("nodes") or []):
        name = entry.get("name") if isinstance(entry, dict) else None
        planned = _plan_node(path, entry, args, i, overrides.get(name) if isinstance(name, str) else None)
        if planned is None:
            continue
        if any(isinstance(n, PlannedNode) and n.name == planned.name for n in nodes):
            raise LaunchError(path, "duplicate node name: names must be unique in a launch", planned.name, "name")
        if planned.name in nodes:  # in place of the included node of its name that `without` left out
            nodes[nodes.index(planned.name)] = planned
        else:
            nodes.append(planned)
    return LaunchPlan(file=path, args=args, mode=mode, nodes=[n for n in nodes if isinstance(n, PlannedNode)],
                      description=data.get("description", ""), stall_timeout_s=float(stall), base_port=base_port)


def _check_graph(plan: LaunchPlan) -> None:
    if not plan.nodes:
        raise LaunchError(plan.file, "starts no node (check `nodes:` and any `if:`)", fieldname="nodes")
    published: dict[str, tuple[PlannedNode, str]] = {}
    for n in plan.nodes:
        for port, topic in n.outputs.items():
            if topic == "/diagnostics":
                continue
            if topic in published:
                other = published[topic][0]
                raise LaunchError(n.file, f"{topic} is already published by node '{other.name}'; "
                                  "remap one of them", n.name, f"outputs.{port}")
            published[topic] = (n, n.output_types[port])
    for n in plan.nodes:
        if plan.base_port and n.host in ALL_INTERFACES:
            plan.warnings.append(f"node '{n.name}' binds its tcp endpoints on every interface ({n.host}): anyone on "
                                 "the network can reach them; CURVE admits only holders of your bus key (see "
                                 "docs/security.md), but bind to the one interface the other host uses if you can")
        for port, topic in n.inputs.items():
            if topic not in published:
                if plan.mode == "lockstep" and is_per_tick(n.node_cls, n.params, port):
                    raise LaunchError(n.file, f"waits every tick for {topic}, which no node of this launch publishes: "
                                      "the stack would hang on its first tick; add its publisher or remap the input",
                                      n.name, f"inputs.{port}")
                if topic != "/diagnostics" and n.node_cls.lockstep_inputs:  # observers listen to whatever there is
                    plan.warnings.append(f"node '{n.name}' subscribes to {topic}, which no node here publishes")
                continue
            pub, pub_type = published[topic]
            if pub_type != n.input_types[port]:
                raise LaunchError(
                    n.file, f"subscribes to {topic} as {n.input_types[port]}, but node '{pub.name}' "
                    f"publishes it as {pub_type}", n.name, f"inputs.{port}")


def namespace_id() -> str:
    return f"{os.getpid():x}{os.urandom(3).hex()}"
