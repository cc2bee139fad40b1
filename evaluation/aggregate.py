"""Per-episode metric rows -> one flat dict of aggregates with 95% confidence intervals.

For each numeric metric KEY (episodes where it is None are left out): KEY is the mean over episodes,
KEY_ci95_lo / KEY_ci95_hi its Student t 95% interval (None below 2 episodes; clipped to [0, 1] for the
*_ratio fractions). Counts of ticks (perception_tp/fp/fn, deadline_misses) are summed. Each yes/no
metric becomes a rate with a Wilson 95% interval: collision -> collision_rate, offroad -> offroad_rate,
comfortable -> comfortable_rate, overridden -> override_episode_rate (and override_episodes, the count),
intervened -> intervention_episode_rate.
Perception precision and recall are pooled over every tick of every episode (Wilson interval over detections).
Text metrics become counts: end_reasons, collision_kinds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from evaluation.stats import mean_ci95, wilson_ci95

NOT_METRICS = frozenset({"episode", "seed", "collision_with", "series", "config"})
RATE_NAMES = {"collision": "collision_rate", "offroad": "offroad_rate", "comfortable": "comfortable_rate",
              "overridden": "override_episode_rate", "intervened": "intervention_episode_rate"}
COUNT_NAMES = {"end_reason": "end_reasons", "collision_kind": "collision_kinds"}
SUMMED = frozenset({"perception_tp", "perception_fp", "perception_fn", "deadline_misses"})
POOLED = {"perception_precision_ratio": ("perception_tp", "perception_fp"),
          "perception_recall_ratio": ("perception_tp", "perception_fn")}


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregates of `rows` (each from evaluation.metrics.episode_metrics); see the module docstring for keys."""
    out: dict[str, Any] = {"episodes": len(rows)}
    keys: dict[str, None] = {}
    for row in rows:
        keys |= dict.fromkeys(k for k in row if k not in NOT_METRICS)
    for key in keys:
        values = [row.get(key) for row in rows]
        present = [v for v in values if v is not None]
        if key in COUNT_NAMES:
            out[COUNT_NAMES[key]] = dict(sorted(Counter(v for v in present if v).items()))
        elif key in SUMMED:
            out[key] = sum(present) if present else None
        elif key in POOLED:
            hits, misses = (sum(row.get(k) or 0 for row in rows) for k in POOLED[key])
            _put(out, key, wilson_ci95(hits, hits + misses))
        elif present and all(isinstance(v, bool) for v in present):
            name = RATE_NAMES.get(key, f"{key}_rate")
            _put(out, name, wilson_ci95(sum(present), len(present)))
            if key == "overridden":
                out["override_episodes"] = sum(present)
        elif all(_is_number(v) for v in present):
            mean, lo, hi = mean_ci95([float(v) for v in present if math.isfinite(v)])
            if key.endswith("_ratio") and lo is not None and hi is not None:  # a fraction stays in [0, 1]
                lo, hi = max(lo, 0.0), min(hi, 1.0)
            elif lo is not None and all(v >= 0 for v in present):  # times, distances, counts: not below 0
                lo = max(lo, 0.0)
            _put(out, key, (mean, lo, hi))
    if "collision" in keys:
        out["collisions"] = sum(bool(row.get("collision")) for row in rows)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _put(out: dict[str, Any], key: str, stat: tuple[float | None, float | None, float | None]) -> None:
    out[key], out[f"{key}_ci95_lo"], out[f"{key}_ci95_hi"] = stat
