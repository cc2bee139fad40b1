"""`launch FILE.yaml [name:=value ...]`: start a stack of nodes, each in its own process."""

from __future__ import annotations

import sys

from nodes.runtime.interrupt import DeferredInterrupt

# Run as a program: from this line on, a Ctrl-C (or SIGTERM) waits until the modules are in, then ends the launch
# with one line; `main` takes it over (imported as a library, nothing changes until `main` is called).
EARLY_INTERRUPT = DeferredInterrupt() if __name__ == "__main__" or sys.argv[0].endswith("launch") else None

import argparse  # noqa: E402 - after the interrupt guard above
import os  # noqa: E402

from nodes.runtime.launchfile import (  # noqa: E402
    LaunchError,
    did_you_mean,
    launch_args,
    load_plan,
    option_hint,
    parse_overrides,
    split_launch_args,
)
from nodes.runtime.runner import die_with_parent  # noqa: E402


def describe(plan_file: str) -> str:
    import yaml

    from nodes.runtime.launchfile import resolve_path

    data = yaml.safe_load(resolve_path(plan_file).read_text()) or {}
    lines = [f"{plan_file}: {data.get('description', '')}", "args:"]
    rows = []
    for name, decl in launch_args(plan_file).items():  # with those its includes pass through
        choices = f" (one of: {', '.join(map(_as_arg, decl['choices']))})" if "choices" in decl else ""
        rows.append((f"{name}:={_as_arg(decl.get('default'))}", f"{decl.get('doc', '')}{choices}"))
    width = max((len(pair) for pair, _ in rows), default=0)
    lines += [f"  {pair:<{width}}  {doc}" for pair, doc in rows]
    return "\n".join(lines)


def _as_arg(value: object) -> str:
    """A value as it is typed on the command line (true, 3, cnn)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(none)" if value is None else str(value)


def _declared_args(plan_file: str) -> list[str]:
    try:
        return list(launch_args(plan_file))
    except (LaunchError, OSError):
        return []


def _unknown_options(plan_file: str, unknown: list[str], flags: list[str]) -> str:
    """'unrecognised arguments: --episodes 2; launch args are given as name:=value: episodes:=2', or a near
    miss among launch's own `flags` ('--chek': did you mean '--check'?)."""
    text = f"unrecognised arguments: {' '.join(unknown)}"
    for i, token in enumerate(unknown):
        if token.startswith("-"):
            following = unknown[i + 1] if i + 1 < len(unknown) and not unknown[i + 1].startswith("-") else None
            hint = option_hint(token, _declared_args(plan_file), following)
            if hint:
                return f"{text}; {hint}"
            if near := did_you_mean(token.partition("=")[0], flags):
                return text + near
    return text


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C while node modules import: taken once they are in
    interrupted = EARLY_INTERRUPT if EARLY_INTERRUPT is not None else DeferredInterrupt()
    try:
        return _main(argv, interrupted)
    finally:
        interrupted.release()


def _main(argv: list[str] | None, interrupted: DeferredInterrupt) -> int:
    parser = argparse.ArgumentParser(
        prog="launch",
        description="Start every node of a launch file as its own process, wait until all are ready, "
        "supervise them, and stop them all on Ctrl-C. Files are looked up as given, then in the "
        "package's launch/ folder (e.g. `launch full_stack.yaml episodes:=5 perception:=gt`).",
    )
    from nodes.cli import version

    parser.add_argument("--version", action="version", version=version())
    parser.add_argument("file", help="launch file (YAML)")
    parser.add_argument("overrides", nargs="*", metavar="name:=value", help="override a launch arg")
    parser.add_argument("--show-args", action="store_true", help="list the file's args and exit")
    parser.add_argument("--check", action="store_true", help="validate the file and exit without starting")
    parser.add_argument("--only", help="start just these nodes (comma-separated); the others run in another "
                        "launch of the same file, e.g. on another host (needs base_port, i.e. tcp endpoints)")
    parser.add_argument("--progress", metavar="PATH", help="write one JSON line per ended episode to PATH "
                        "(episode, seed, reason, ticks, collision, distance_m, mean_speed_mps, targets, following, "
                        "interventions), each written once its episode is whole (the last one when the run ends); "
                        "the file is emptied at the start")
    pairs, rest = split_launch_args(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(rest)
    if unknown:
        flags = [f for action in parser._actions for f in action.option_strings if f.startswith("--")]
        parser.error(_unknown_options(args.file, unknown, flags))
    args.overrides += pairs
    if argv is None:  # run as a program: stop (SIGTERM -> clean shutdown) if whatever started it dies
        die_with_parent()
    try:
        if args.show_args:
            try:
                print(describe(args.file), flush=True)
            except BrokenPipeError:  # `launch FILE --show-args | head`: the reader went away
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        plan = load_plan(args.file, parse_overrides(args.overrides))
    except (LaunchError, ValueError) as exc:
        if interrupted:
            return _interrupted()
        print(f"launch: error: {exc}", file=sys.stderr)
        return 2
    if interrupted:
        return _interrupted()
    if args.check:
        print(f"{plan.file}: OK, {len(plan.nodes)} nodes: {', '.join(n.name for n in plan.nodes)}")
        from nodes.runtime.stall import describe as describe_stalls

        if stalls := describe_stalls(plan):
            print(stalls)
        for w in plan.warnings:
            print(f"warning: {w}")
        return 0
    from pathlib import Path

    from nodes.runtime.supervisor import Supervisor
    from nodes.viewer.console import DrivingConsole

    try:
        console = DrivingConsole.for_plan(plan, Path(args.progress) if args.progress else None)
    except OSError as exc:
        print(f"launch: error: cannot write the progress file {args.progress}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        supervisor = Supervisor(plan, only=args.only.split(",") if args.only else None, observers=[console])
    except LaunchError as exc:
        print(f"launch: error: {exc}", file=sys.stderr)
        return 2
    if interrupted:
        supervisor.discard()
        return _interrupted()
    return supervisor.run()  # takes Ctrl-C over first thing, before it starts any node


def _interrupted() -> int:
    print("launch: interrupted while starting; nothing was started", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
