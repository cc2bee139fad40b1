import numpy as np

from nodes.perception.metrics import DetectionScore, box_iou

# x, y, length, width, heading, vx, vy, id, in_view
LABELS = np.array([[10, 0, 5, 2, 0, 0, 0, 1, 1], [20, 4, 5, 2, 0, 0, 0, 2, 1], [-31, 0, 5, 2, 0, 0, 0, 3, 0]],
                  np.float32)


def test_iou_closed_form() -> None:
    a = np.array([[0, 0, 4, 2]])
    assert box_iou(a, a)[0, 0] == 1.0
    assert box_iou(a, np.array([[2, 0, 4, 2]]))[0, 0] == 4 / 12  # half overlap: 4 / (8 + 8 - 4)
    assert box_iou(a, np.array([[10, 0, 4, 2]]))[0, 0] == 0.0


def test_partly_visible_vehicles_are_neither_hits_nor_false_alarms() -> None:
    s = DetectionScore()
    dets = np.array([[10.1, 0.1, 5, 2, 0, 0.9], [-31, 0, 5, 2, 0, 0.8], [40, 8, 5, 2, 0, 0.7]])
    s.add(dets, LABELS)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)  # vehicle 2 missed, the detection at x=40 is a false alarm
    assert np.isclose(s.pos_err[0], np.hypot(0.1, 0.1), atol=1e-6)


def test_duplicates_count_as_false_positives() -> None:
    s = DetectionScore()
    s.add(np.array([[10, 0, 5, 2, 0, 0.9], [10.2, 0, 5, 2, 0, 0.5], [20, 4, 5, 2, 0, 0.9]]), LABELS)
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.precision == 2 / 3 and s.recall == 1.0
