"""gated_assignment pinned where its random-cost property tests rarely go: a conflict where the most pairs
cost more than one cheap pair plus a pair beyond the gate (the penalty of a pair beyond the gate must exceed
any set of allowed pairs: min(rows, cols) * gate)."""

from __future__ import annotations

import numpy as np

from nodes.perception.assignment import gated_assignment


def test_two_pairs_at_the_gate_beat_one_cheap_pair():
    # allowed: (0, 0) = 2, (0, 1) = 0.1, (1, 1) = 2; (1, 0) = 9 is beyond the gate of 2. The two pairs at the
    # gate (total 4) are chosen over (0, 1) alone, whose matching would need the forbidden (1, 0).
    cost = np.array([[2.0, 0.1], [9.0, 2.0]])
    assert gated_assignment(cost, gate=2.0) == [(0, 0), (1, 1)]


def test_three_pairs_at_the_gate_beat_two_cheap_ones():
    # only the diagonal (3 pairs at the gate of 1, total 3) keeps every row; a cheap pair leaves one out
    cost = np.array([[1.0, 0.0, 9.0], [9.0, 1.0, 0.0], [9.0, 9.0, 1.0]])
    assert gated_assignment(cost, gate=1.0) == [(0, 0), (1, 1), (2, 2)]
