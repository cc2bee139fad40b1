"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Rows = Sequence[dict[str, Any]]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(out: Path, results: Mapping[str, Rows], aggregates: Mapping[str, Mapping[str, Any]],
                files: Mapping[str, str], distributions: Sequence[tuple[str, str]],
                comparison: Sequence[tuple[str, str]]) -> dict[str, Path]:
    """Write the plots into `out`; returns {kind: path} of those written."""
    plt = _pyplot()
    written: dict[str, Path] = {}
    if any(row.get("series") for rows in results.values() for row in rows):
        for kind, key, label in (("speed", "speed_mps", "speed [m/s]"),
                                 ("lateral", "lateral_error_m", "lateral error to lane centre [m]")):
            written[kind] = out / files[kind]
            _over_time(plt, written[kind], results, key, label)
    written["distributions"] = out / files["distributions"]
    _distributions(plt, written["distributions"], results, distributions)
    written["comparison"] = out / files["comparison"]
    _comparison(plt, written["comparison"], aggregates, comparison)
    return written


def _over_time(plt: Any, path: Path, results: Mapping[str, Rows], key: str, label: str) -> None:
    """One panel per config, one line per episode."""
    fig, axes = plt.subplots(len(results), 1, figsize=(9, 2.6 * len(results)), sharex=True, squeeze=False)
    for ax, (config, rows) in zip(axes[:, 0], results.items(), strict=True):
        for row in rows:
            series = row.get("series") or {}
            if series.get(key):
                ax.plot(series["t_s"], series[key], lw=0.9, alpha=0.7, label=f"ep {row.get('episode', '?')}")
        ax.set_title(config, fontsize=9)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if 0 < len(rows) <= 10:
            ax.legend(fontsize=7, ncol=5, loc="best")
    axes[-1, 0].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _distributions(plt: Any, path: Path, results: Mapping[str, Rows],
                   metrics: Sequence[tuple[str, str]]) -> None:
    """Box plots (episodes as points over them), one panel per metric, one box per config."""
    shown = [(key, label) for key, label in metrics
             if any(_finite(row.get(key)) for rows in results.values() for row in rows)]
    cols = 3
    nrows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    names = list(results)
    for ax, (key, label) in zip(axes.flat, shown, strict=False):
        data = [[float(row[key]) for row in results[n] if _finite(row.get(key))] for n in names]
        ax.boxplot([d if d else [math.nan] for d in data], tick_labels=[_short(n) for n in names])
        for i, d in enumerate(data, start=1):
            ax.plot([i] * len(d), d, ".", alpha=0.5, ms=4)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _comparison(plt: Any, path: Path, aggregates: Mapping[str, Mapping[str, Any]],
                metrics: Sequence[tuple[str, str]]) -> None:
    """Bars per config with their 95% intervals, one panel per metric."""
    shown = [(key, label) for key, label in metrics if any(_finite(a.get(key)) for a in aggregates.values())]
    cols = 3
    nrows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    names = list(aggregates)
    colours = [f"C{i % 10}" for i in range(len(names))]
    for ax, (key, label) in zip(axes.flat, shown, strict=False):
        values, low, high = [], [], []
        for n in names:
            a = aggregates[n]
            v = float(a[key]) if _finite(a.get(key)) else 0.0
            lo, hi = a.get(f"{key}_ci95_lo"), a.get(f"{key}_ci95_hi")
            values.append(v)
            # rounding can put an interval's end a hair past its estimate: matplotlib refuses negative bars
            low.append(max(0.0, v - float(lo)) if _finite(lo) else 0.0)
            high.append(max(0.0, float(hi) - v) if _finite(hi) else 0.0)
        x = range(len(names))
        ax.bar(x, values, yerr=[low, high], capsize=4, color=colours)
        ax.set_xticks(list(x), [_short(n) for n in names])
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _short(name: str, width: int = 18) -> str:
    name = name.removesuffix(".yaml")
    return name if len(name) <= width else name[: width - 1] + "…"
