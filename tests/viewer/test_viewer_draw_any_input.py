"""The viewer's drawing on any finite ego, objects and target: no exception, an image of the usual size."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nodes.viewer.draw import draw
from sim.view import DEFAULT_VIEW
from tests.finite_inputs import FINITE_SETTINGS, egos, object_arrays, plans, targets

FRAME = np.zeros((DEFAULT_VIEW.height, DEFAULT_VIEW.width, 3), np.uint8)
EXPECTED = draw(FRAME, None, None, None, None, None, DEFAULT_VIEW).shape


@FINITE_SETTINGS
@given(st.none() | egos(), st.none() | object_arrays(), st.none() | object_arrays(), st.none() | plans(),
       st.none() | targets())
def test_any_finite_scene_draws(ego, gt, detections, plan, target):
    image = draw(FRAME, ego, gt, detections, plan, target, DEFAULT_VIEW)
    assert image.shape == EXPECTED and image.dtype == np.uint8
