"""sim/view.py pinned to its documented transform, col = scaling (x - x_ego) + centering_x width and
row = scaling (y - y_ego) + centering_y height, on a view whose numbers are exact in binary (scaling 10 px/m,
400 x 100 px, ego at (100, 50) px), so every edge of "fully in view" can be tested exactly on its boundary."""

from __future__ import annotations

import numpy as np
import pytest

from sim.view import DEFAULT_VIEW, CameraView

V = CameraView(width=400, height=100, scaling=10.0, centering=(0.25, 0.5))
CAR = (4.0, 2.0)  # length, width [m]: 40 x 20 px


def test_the_transform_on_a_non_default_view():
    assert V.centre_px == (100.0, 50.0)
    assert V.to_pixels(3.0, -1.5) == (130.0, 35.0)
    assert V.to_world(130.0, 35.0) == (3.0, -1.5)
    cols, rows = V.to_pixels(np.array([0.0, -10.0]), np.array([0.0, 5.0]))
    np.testing.assert_array_equal(cols, [100.0, 0.0])
    np.testing.assert_array_equal(rows, [50.0, 100.0])
    assert V.range_m == (10.0, 30.0)  # 100 px behind, 300 px ahead


def test_box_pixels_are_centred_and_scaled():
    assert V.box_pixels(3.0, -1.5, *CAR) == (110.0, 25.0, 150.0, 45.0)


# (dx, dy) at which one edge of a 4 x 2 m car lies exactly on the frame's edge
EDGES = [((-8.0, 0.0), (-0.01, 0.0)),  # left: col0 = 10 dx + 100 - 20 = 0
         ((28.0, 0.0), (0.01, 0.0)),  # right: col1 = 10 dx + 100 + 20 = 400
         ((0.0, -4.0), (0.0, -0.01)),  # top: row0 = 10 dy + 50 - 10 = 0
         ((0.0, 4.0), (0.0, 0.01))]  # bottom: row1 = 10 dy + 50 + 10 = 100


@pytest.mark.parametrize("on_edge,step", EDGES)
def test_fully_in_view_includes_the_frame_edge(on_edge, step):
    inside = on_edge
    outside = (on_edge[0] + step[0], on_edge[1] + step[1])
    assert V.fully_in_view(*inside, *CAR)
    assert not V.fully_in_view(*outside, *CAR)
    mask = V.fully_in_view_mask(np.array([inside[0], outside[0]]), np.array([inside[1], outside[1]]),
                                np.array([CAR[0]] * 2), np.array([CAR[1]] * 2))
    assert mask.tolist() == [True, False]


def test_the_mask_and_the_scalar_agree_on_a_grid_round_the_default_frame():
    dx, dy = np.meshgrid(np.linspace(-40.0, 90.0, 53), np.linspace(-20.0, 20.0, 17))
    dx, dy = dx.ravel(), dy.ravel()
    length, width = np.full(dx.shape, 5.0), np.full(dx.shape, 2.0)
    mask = DEFAULT_VIEW.fully_in_view_mask(dx, dy, length, width)
    assert mask.tolist() == [DEFAULT_VIEW.fully_in_view(a, b, 5.0, 2.0) for a, b in zip(dx, dy, strict=True)]
    assert 0 < mask.sum() < len(mask)


def test_env_config_names_highway_envs_rendering_keys():
    assert V.env_config() == {"screen_width": 400, "screen_height": 100, "scaling": 10.0,
                              "centering_position": [0.25, 0.5]}
