"""Minimum-cost assignment (the Hungarian algorithm with potentials), with a gate on pair costs."""

from __future__ import annotations

import numpy as np


def min_cost_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col) that minimise the total cost, every row of a rows <= cols matrix assigned (or every
    column if cols < rows). O(n^2 m); costs must be finite."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    if cost.shape[0] > cost.shape[1]:
        return sorted((i, j) for j, i in min_cost_assignment(cost.T))
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: 1-based row assigned to column j (0: none)
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while owner[j0] != 0:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    return sorted((int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j])


def gated_assignment(cost: np.ndarray, gate: float) -> list[tuple[int, int]]:
    """Pairs with cost <= gate (costs >= 0): as many pairs as possible, and among those the cheapest.
    Rows and columns may stay unassigned."""
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    # A pair beyond the gate costs more than any set of allowed pairs, so the solver only uses one where
    # no allowed pair is left; such pairs are dropped after solving.
    ok = np.isfinite(cost) & (cost <= gate)
    rows, cols = np.nonzero(ok.any(axis=1))[0], np.nonzero(ok.any(axis=0))[0]
    if len(rows) == 0:
        return []
    if (ok.sum(axis=1) <= 1).all() and (ok.sum(axis=0) <= 1).all():  # no conflict: the usual case
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(ok), strict=True)]
    sub_ok = ok[np.ix_(rows, cols)]
    big = (min(sub_ok.shape) + 1) * (gate + 1.0)
    c = np.where(sub_ok, cost[np.ix_(rows, cols)], big)
    return [(int(rows[i]), int(cols[j])) for i, j in min_cost_assignment(c) if sub_ok[i, j]]
