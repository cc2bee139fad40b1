"""The evaluation report: per-config aggregates, per-episode rows, a markdown summary and plots.

`write_report(out_dir, results, meta)` takes {config name: [episode row, ...]} (rows from
evaluation.metrics.episode_metrics; a row's optional "series" feeds the over-time plots) and writes:

  metrics.json   {"config": first config, <its aggregates at the top level: collision_rate, mean_speed_mps,
                 episodes, ...>, "configs": {name: aggregates}, "meta": meta}
  episodes.csv   one line per episode per config (no series)
  summary.md     the comparison table (`format_table`), per-config notes, the plots
  speed_over_time.png, lateral_error_over_time.png (when rows carry series), distributions.png,
  comparison.png
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.aggregate import aggregate

Rows = Sequence[dict[str, Any]]
Results = Mapping[str, Rows]

PLOT_FILES = {
    "speed": "speed_over_time.png",
    "lateral": "lateral_error_over_time.png",
    "distributions": "distributions.png",
    "comparison": "comparison.png",
}
# (row key, axis label) of the box plots
DISTRIBUTIONS = [
    ("mean_speed_mps", "mean speed [m/s]"), ("reward_per_s", "reward [1/s]"), ("distance_m", "distance [m]"),
    ("min_ttc_s", "min TTC [s]"), ("min_headway_s", "min headway [s]"), ("lane_changes", "lane changes"),
    ("lateral_error_rms_m", "lateral error RMS [m]"), ("comfort_ratio", "comfort ratio"),
    ("following_ratio", "following ratio"), ("intervention_plan_ratio", "interventions / plan period"),
    ("latency_p99_ms", "loop latency p99 [ms]"),
]
# (aggregate key, axis label) of the comparison bars, with their 95% intervals
COMPARISON = [
    ("collision_rate", "collision rate"), ("mean_speed_mps", "mean speed [m/s]"),
    ("reward_per_s", "reward [1/s]"), ("min_ttc_s", "min TTC [s]"), ("lane_changes", "lane changes"),
    ("following_ratio", "following ratio"), ("intervention_plan_ratio", "interventions / plan period"),
    ("comfort_ratio", "comfort ratio"),
    ("perception_precision_ratio", "perception precision"), ("perception_recall_ratio", "perception recall"),
]


# --- the table -------------------------------------------------------------------------------------------

def _num(v: Any, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _with_ci(agg: Mapping[str, Any], key: str, digits: int) -> str:
    value, lo, hi = agg.get(key), agg.get(f"{key}_ci95_lo"), agg.get(f"{key}_ci95_hi")
    if value is None:
        return "-"
    if lo is None or hi is None:
        return _num(value, digits)
    return f"{_num(value, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _pr(agg: Mapping[str, Any]) -> str:
    p, r = agg.get("perception_precision_ratio"), agg.get("perception_recall_ratio")
    return "-" if p is None and r is None else f"{_num(p, 2)} / {_num(r, 2)}"


COLUMNS: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
    ("episodes", lambda a: str(a.get("episodes", 0))),
    ("collision rate [95% CI]", lambda a: _with_ci(a, "collision_rate", 2)),
    ("mean speed m/s [95% CI]", lambda a: _with_ci(a, "mean_speed_mps", 1)),
    ("reward/s", lambda a: _num(a.get("reward_per_s"), 2)),
    ("lane changes", lambda a: _num(a.get("lane_changes"), 1)),
    ("min TTC s", lambda a: _num(a.get("min_ttc_s"), 2)),
    ("following ratio", lambda a: _num(a.get("following_ratio"), 3)),
    ("interventions / plan period", lambda a: _num(a.get("intervention_plan_ratio"), 3)),
    ("comfort ratio", lambda a: _num(a.get("comfort_ratio"), 3)),
    ("perception P / R", _pr),
]


def table_from_aggregates(aggregates: Mapping[str, Mapping[str, Any]]) -> str:
    """The markdown comparison table: one line per config."""
    head = ["config", *(name for name, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(COLUMNS)) + "|"]
    for config, agg in aggregates.items():
        lines.append("| " + " | ".join([config, *(cell(agg) for _, cell in COLUMNS)]) + " |")
    return "\n".join(lines)


def format_table(results: Results) -> str:
    """The comparison table of `results` as markdown (the same as in summary.md), for the console."""
    return table_from_aggregates({name: aggregate(rows) for name, rows in results.items()})


# --- files -----------------------------------------------------------------------------------------------

def write_report(out_dir: str | Path, results: Results, meta: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the report files for `results` ({config: episode rows}, at least one config) into `out_dir`;
    returns the paths written (the over-time plots only when some row carries a "series")."""
    if not results:
        raise ValueError("write_report: no results (expected {config name: [episode rows]})")
    empty = [name for name, rows in results.items() if not rows]
    if empty:
        raise ValueError(f"write_report: config(s) {empty} have no episodes")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    aggregates = {name: aggregate(rows) for name, rows in results.items()}
    first = next(iter(results))
    paths = {"metrics": out / "metrics.json", "episodes": out / "episodes.csv", "summary": out / "summary.md"}
    document = {"config": first, **aggregates[first], "configs": aggregates, "meta": meta}
    paths["metrics"].write_text(json.dumps(_clean(document), indent=2, allow_nan=False) + "\n")
    write_episodes_csv(paths["episodes"], results)
    from evaluation.plots import write_plots

    paths |= write_plots(out, results, aggregates, PLOT_FILES, DISTRIBUTIONS, COMPARISON)
    paths["summary"].write_text(_summary_md(aggregates, meta, paths))
    return list(paths.values())


def write_episodes_csv(path: Path, results: Results) -> None:
    """One line per episode per config; columns: config, then every row key in first-seen order."""
    columns: dict[str, None] = {"config": None}
    for rows in results.values():
        for row in rows:
            columns |= dict.fromkeys(k for k in row if k != "series")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for config, rows in results.items():
            for row in rows:
                writer.writerow({k: _csv_cell(v) for k, v in {**row, "config": config}.items()})


def _csv_cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


def _clean(v: Any) -> Any:
    """JSON-safe: non-finite floats become null, numpy scalars plain numbers."""
    if isinstance(v, Mapping):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def _meta_text(key: str, value: Any) -> str:
    """A meta value for summary.md in words: wall_s {config: seconds} as `a.yaml 12.3 s, b.yaml 4.5 s`."""
    if isinstance(value, Mapping):
        unit = " s" if key.endswith("_s") else ""
        return ", ".join(f"{k} {v:.1f}{unit}" if isinstance(v, float) else f"{k}: {_meta_text(str(k), v)}"
                         for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def _summary_md(aggregates: Mapping[str, Mapping[str, Any]], meta: Mapping[str, Any],
                paths: Mapping[str, Path]) -> str:
    lines = ["# Closed-loop evaluation", ""]
    lines += [f"- {k}: {_meta_text(k, v)}" for k, v in meta.items()]
    lines += ["", "## Comparison", "", table_from_aggregates(aggregates), "",
              "Intervals are 95%: Wilson for rates, Student t over episodes for means. TTC is capped at the "
              "metric horizon; the comfort ratio is the fraction of ticks within all of nuPlan's comfort "
              "bounds; perception precision / recall are pooled over ticks.", ""]
    for config, agg in aggregates.items():
        lines += [f"## {config}", ""]
        lines.append(f"- end reasons: {_counts(agg.get('end_reasons'))}")
        lines.append(f"- collisions: {agg.get('collisions', 0)} ({_counts(agg.get('collision_kinds'))})")
        lines.append(f"- distance: {_with_ci(agg, 'distance_m', 1)} m; right lane: "
                     f"{_with_ci(agg, 'right_lane_ratio', 2)} of the time")
        lines.append(f"- time with TTC below threshold: {_with_ci(agg, 'time_ttc_below_s', 2)} s; with short "
                     f"headway: {_with_ci(agg, 'time_headway_below_s', 2)} s")
        lines.append(f"- comfortable episodes: {_with_ci(agg, 'comfortable_rate', 2)}; peak lon accel "
                     f"{_num(agg.get('lon_accel_min_mps2'), 2)} / {_num(agg.get('lon_accel_max_mps2'), 2)} "
                     f"m/s^2, lat accel {_num(agg.get('lat_accel_max_abs_mps2'), 2)} m/s^2")
        lines.append(f"- lateral error to lane centre: RMS {_with_ci(agg, 'lateral_error_rms_m', 3)} m, "
                     f"max {_num(agg.get('lateral_error_max_m'), 3)} m")
        lines.append(f"- decision: following (adaptive cruise) on {_with_ci(agg, 'following_ratio', 3)} of ticks; "
                     f"interventions on {_with_ci(agg, 'intervention_plan_ratio', 3)} of plan periods "
                     f"({_with_ci(agg, 'intervention_ratio', 3)} of ticks), in "
                     f"{_with_ci(agg, 'intervention_episode_rate', 2)} of episodes; not NOMINAL on "
                     f"{_with_ci(agg, 'override_ratio', 3)} of ticks")
        lines.append(f"- loop latency: p50 {_num(agg.get('latency_p50_ms'), 2)} ms, p99 "
                     f"{_num(agg.get('latency_p99_ms'), 2)} ms, deadline misses "
                     f"{agg.get('deadline_misses', '-')}")
        lines.append("")
    lines += ["## Plots", ""]
    for key, title in (("speed", "Speed over time"), ("lateral", "Lateral error over time"),
                       ("distributions", "Metric distributions"), ("comparison", "Comparison")):
        if key in paths:
            lines.append(f"![{title}]({paths[key].name})")
    if "speed" not in paths:
        lines.append("(no per-tick series in the rows: no over-time plots)")
    lines += ["", f"Per-episode rows: {paths['episodes'].name}; aggregates: {paths['metrics'].name}.", ""]
    return "\n".join(lines)


def _counts(counts: Mapping[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (counts or {}).items()) or "none"
