"""The one pixel <-> world transform (sim/view.py) against itself and against highway-env's renderer."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nodes.perception import dataset as ds
from sim.view import DEFAULT_VIEW, CameraView

finite = st.floats(-200, 200, allow_nan=False)


@given(finite, finite)
def test_world_pixel_round_trip(dx: float, dy: float) -> None:
    col, row = DEFAULT_VIEW.to_pixels(dx, dy)
    bx, by = DEFAULT_VIEW.to_world(col, row)
    assert abs(bx - dx) < 1e-9 and abs(by - dy) < 1e-9


@given(st.floats(0, 600), st.floats(0, 150))
def test_pixel_world_round_trip(col: float, row: float) -> None:
    x, y = DEFAULT_VIEW.to_world(col, row)
    c, r = DEFAULT_VIEW.to_pixels(x, y)
    assert abs(c - col) < 1e-9 and abs(r - row) < 1e-9


def test_ego_sits_at_the_centring_point_and_range_matches() -> None:
    assert DEFAULT_VIEW.to_pixels(0.0, 0.0) == (180.0, 75.0)
    behind, ahead = DEFAULT_VIEW.range_m
    assert abs(behind - 180 / 5.5) < 1e-12 and abs(ahead - 420 / 5.5) < 1e-12
    assert DEFAULT_VIEW.fully_in_view(0, 0, 5, 2)
    assert not DEFAULT_VIEW.fully_in_view(ahead - 1.0, 0, 5, 2)


def test_box_pixels_scale_with_the_view() -> None:
    v = CameraView(scaling=10.0)
    c0, r0, c1, r1 = v.box_pixels(1.0, 2.0, 5.0, 2.0)
    assert (c1 - c0, r1 - r0) == (50.0, 20.0)
    assert ((c0 + c1) / 2, (r0 + r1) / 2) == v.to_pixels(1.0, 2.0)


def test_labels_land_on_the_rendered_vehicles() -> None:
    """Every fully visible vehicle's label centre is within 1.5 px of the centre of its drawn body."""
    sc = ds.Scenario(seed=ds.BENCH_SEEDS[0] + 7, vehicles_count=20, density=1.5, steps=40, every=20)
    checked = 0
    for _, frame, _, labels in ds.render_sequence(sc):
        f = frame.astype(int)
        blue = (f[..., 2] > 180) & (f[..., 0] < 150)  # other vehicles are light blue on a grey road
        for lab in labels[labels[:, ds.L_IN_VIEW] > 0.5]:
            c0, r0, c1, r1 = DEFAULT_VIEW.box_pixels(*lab[:4])
            win = blue[max(int(r0) - 3, 0):int(r1) + 4, max(int(c0) - 3, 0):int(c1) + 4]
            rows, cols = np.nonzero(win)
            assert len(rows) > 100
            col = cols.mean() + max(int(c0) - 3, 0) + 0.5
            row = rows.mean() + max(int(r0) - 3, 0) + 0.5
            exp_c, exp_r = DEFAULT_VIEW.to_pixels(lab[0], lab[1])
            assert abs(col - exp_c) < 1.5 and abs(row - exp_r) < 1.5, (col, row, exp_c, exp_r)
            checked += 1
    assert checked >= 3
