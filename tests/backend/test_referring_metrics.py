"""P@0.5, oIoU and mIoU against values worked by hand."""
import numpy as np
import pytest

from backend.eval.referring import ReferringScores, intersection_union


def _mask(shape, *boxes):
    mask = np.zeros(shape, bool)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = True
    return mask


def test_intersection_and_union_count_pixels():
    pred = _mask((4, 4), (0, 0, 2, 2))            # 4 pixels
    gt = _mask((4, 4), (1, 1, 3, 3))              # 4 pixels, 1 shared
    assert intersection_union(pred, gt) == (1, 7)


def test_three_samples_give_the_hand_worked_scores():
    scores = ReferringScores()
    # 1: exact, IoU 1 (I 4, U 4); 2: I 2, U 6 -> 1/3; 3: I 5, U 10 -> 0.5 (counts at the threshold)
    assert scores.add(_mask((6, 6), (0, 0, 2, 2)), _mask((6, 6), (0, 0, 2, 2))) == 1.0
    assert scores.add(_mask((6, 6), (0, 0, 2, 2)), _mask((6, 6), (0, 1, 2, 3))) == pytest.approx(1 / 3)
    assert scores.add(_mask((6, 6), (0, 0, 1, 5)), _mask((6, 6), (0, 0, 2, 5))) == 0.5
    result = scores.result()
    assert result["count"] == 3
    assert result["p_at_0_5"] == pytest.approx(2 / 3)
    assert result["miou"] == pytest.approx((1 + 1 / 3 + 0.5) / 3)
    assert result["oiou"] == pytest.approx((4 + 2 + 5) / (4 + 6 + 10))


def test_a_large_object_weighs_more_in_oiou_than_in_miou():
    scores = ReferringScores()
    scores.add(_mask((10, 10), (0, 0, 10, 10)), _mask((10, 10), (0, 0, 10, 9)))  # I 90, U 100
    scores.add(_mask((10, 10), (0, 0, 1, 1)), _mask((10, 10), (5, 5, 6, 6)))    # I 0, U 2
    result = scores.result()
    assert result["oiou"] == pytest.approx(90 / 102)
    assert result["miou"] == pytest.approx(0.45)
    assert result["p_at_0_5"] == 0.5


def test_an_empty_prediction_of_an_empty_target_counts_as_iou_1_and_adds_no_pixels():
    scores = ReferringScores()
    assert scores.add(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0
    assert scores.result() == {"p_at_0_5": 1.0, "oiou": 1.0, "miou": 1.0, "count": 1}
    scores.add(_mask((3, 3), (0, 0, 1, 1)), np.zeros((3, 3), bool))             # a false alarm: I 0, U 1
    assert scores.result() == {"p_at_0_5": 0.5, "oiou": 0.0, "miou": 0.5, "count": 2}


def test_no_sample_gives_zeros_and_masks_of_two_sizes_are_refused():
    assert ReferringScores().result() == {"p_at_0_5": 0.0, "oiou": 0.0, "miou": 0.0, "count": 0}
    with pytest.raises(ValueError, match=r"one size"):
        ReferringScores().add(np.zeros((3, 3), bool), np.zeros((3, 4), bool))
