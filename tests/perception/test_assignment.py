import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.perception.assignment import gated_assignment, min_cost_assignment


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_matches_brute_force(n: int, m: int, seed: int) -> None:
    cost = np.random.default_rng(seed).random((n, m)) * 10
    pairs = min_cost_assignment(cost)
    assert len(pairs) == min(n, m)
    assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
    if n <= m:
        best = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
    else:
        best = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
    assert abs(sum(cost[i, j] for i, j in pairs) - best) < 1e-9


def test_gate_leaves_far_pairs_unassigned() -> None:
    cost = np.array([[0.5, 9.0], [9.0, 8.0]])
    assert gated_assignment(cost, gate=2.0) == [(0, 0)]
    assert gated_assignment(np.zeros((0, 3)), gate=1.0) == []


def test_gate_prefers_more_pairs_over_a_cheaper_single_one() -> None:
    # Row 0 is closest to column 0, but giving it column 1 lets row 1 take column 0: two tracks kept.
    cost = np.array([[0.1, 1.0], [1.0, 9.0]])
    assert gated_assignment(cost, gate=2.0) == [(0, 1), (1, 0)]


def brute_gated(cost: np.ndarray, gate: float) -> tuple[int, float]:
    """(most pairs, least cost among those) over every partial matching within the gate."""
    n, m = cost.shape
    best = (0, 0.0)
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                if all(cost[i, j] <= gate for i, j in zip(rows, cols, strict=True)):
                    total = sum(cost[i, j] for i, j in zip(rows, cols, strict=True))
                    if k > best[0] or (k == best[0] and total < best[1]):
                        best = (k, total)
    return best


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_gated_matches_brute_force(n: int, m: int, seed: int) -> None:
    cost = np.random.default_rng(seed).random((n, m)) * 4
    pairs = gated_assignment(cost, gate=2.0)
    assert all(cost[i, j] <= 2.0 for i, j in pairs)
    assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
    k, total = brute_gated(cost, 2.0)
    assert len(pairs) == k and abs(sum(cost[i, j] for i, j in pairs) - total) < 1e-9
