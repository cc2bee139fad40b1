"""The tracker on any finite input: no exception, finite tracks with sizes >= 0 and positive ids."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nodes.perception.tracker import T_HITS, T_ID, T_LEN, T_MISSES, T_WID, TRACK_FIELDS, Tracker
from tests.finite_inputs import ANY_FLOAT, FINITE_SETTINGS

DETECTION = st.lists(ANY_FLOAT, min_size=6, max_size=6)
NEAR = st.floats(-50.0, 50.0)  # detections near the last ones, so that tracks are confirmed and updated too
FRAME = st.tuples(st.lists(DETECTION | st.lists(NEAR, min_size=6, max_size=6), max_size=5),
                  st.tuples(ANY_FLOAT, ANY_FLOAT), st.tuples(ANY_FLOAT, ANY_FLOAT), ANY_FLOAT | st.floats(0.0, 5.0))


@FINITE_SETTINGS
@given(st.lists(FRAME, min_size=1, max_size=6))
def test_any_finite_detections_ego_and_time_give_finite_tracks(frames):
    tracker = Tracker()
    for dets, ego_xy, ego_v, t in frames:
        out = tracker.step(np.array(dets, dtype=np.float64).reshape(-1, 6), ego_xy, ego_v, t)
        assert out.shape[1] == len(TRACK_FIELDS)
        assert np.isfinite(out).all()
        assert (out[:, [T_LEN, T_WID]] >= 0).all() and (out[:, T_ID] >= 1).all()
        assert (out[:, T_HITS] >= 1).all() and (out[:, T_MISSES] >= 0).all()
        assert np.isfinite(tracker.x).all() and np.isfinite(tracker.P).all()


def test_repeated_frames_at_the_envelope_stay_finite():
    """The same detections every frame, at the largest position and time steps: confirmed, updated tracks."""
    tracker = Tracker()
    dets = np.array([[1e308, -1e308, 1e308, -5.0, 1e308, 7.0], [10.0, 0.0, 5.0, 2.0, 0.0, 0.9]])
    for k in range(6):
        out = tracker.step(dets, (1e308, 4.0), (-1e308, 1e308), k * 1e300)
        assert np.isfinite(out).all()
    assert len(out) == 2  # both confirmed and still reported
