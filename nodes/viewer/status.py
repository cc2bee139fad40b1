"""The launcher's live status line: one line per stack, redrawn in place as the stack drives."""

from __future__ import annotations

from msgs import Action, DrivingTarget, EgoState, Mode, Plan

NS_PER_S = 1_000_000_000


def enum_name(enum: type[Action] | type[Mode], value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return f"?{value}"


def status_line(ego: EgoState | None, target: DrivingTarget | None, plan: Plan | None, collisions: int,
                episode: int | None = None, *, episodes: int | None = None, width: int | None = None) -> str:
    """One line: episode, tick, sim time, speed / target speed, lane -> target lane, plan, mode (reason),
    collisions so far. Fields not known yet show as '-'.

    ego:        the latest ego state (its header gives tick, time, and the episode if `episode` is None).
    target:     the latest driving target (target speed, lane, mode and reason), or None.
    plan:       the latest plan, or None (no planner in the stack).
    collisions: collisions so far in the run.
    episode:    the episode index to show (default: the ego's).
    episodes:   the run's number of episodes, shown as "ep 2/3".
    width:      cut the line to this many characters (a terminal's width), ending in "…".
    """
    ep = episode if episode is not None else (ego.header.episode if ego is not None else None)
    parts = [f"ep {'-' if ep is None else ep}" + (f"/{episodes}" if episodes is not None else "")]
    if ego is not None:
        parts.append(f"tick {ego.header.tick:4d} t {ego.header.stamp_ns / NS_PER_S:6.1f} s")
        speed = f"{ego.speed:5.1f}"
        lane = str(ego.lane_index)
    else:
        parts.append("tick    - t      - s")
        speed, lane = "    -", "-"
    if target is not None:
        parts.append(f"v {speed}/{target.target_speed:5.1f} m/s")
        parts.append(f"lane {lane}->{target.target_lane}")
    else:
        parts.append(f"v {speed}/    - m/s")
        parts.append(f"lane {lane}")
    parts.append(f"plan {enum_name(Action, plan.action) if plan is not None else '-'}")
    if target is not None:
        mode = enum_name(Mode, target.mode)
        parts.append(f"mode {mode}" + (f" ({target.reason})" if target.reason else ""))
    else:
        parts.append("mode -")
    crashed = " CRASHED" if ego is not None and ego.crashed else ""
    parts.append(f"collisions {collisions}{crashed}")
    line = " | ".join(parts)
    if width is not None and len(line) > width:
        line = line[: max(width - 1, 0)] + "…" if width > 0 else ""
    return line
