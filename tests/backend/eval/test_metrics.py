"""The confusion matrix and the scores read from it, against counts worked out by hand."""
import numpy as np
import pytest

from backend.eval.metrics import ConfusionMatrix

LABEL = np.array([[0, 0, 1, 1],
                  [0, 2, 1, 255],
                  [2, 2, 255, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1],
                 [0, 2, 0, 3],
                 [2, 0, 3, 0]], dtype=np.uint8)


def test_matrix_counts_label_rows_and_prediction_columns_skipping_ignored_labels():
    matrix = ConfusionMatrix(4)
    matrix.update(PRED, LABEL)
    # scored pixels: label 0 -> pred 0, 1, 0; label 1 -> 1, 1, 0; label 2 -> 2, 2, 0
    assert matrix.matrix.tolist() == [[2, 1, 0, 0],
                                      [1, 2, 0, 0],
                                      [1, 0, 2, 0],
                                      [0, 0, 0, 0]]


def test_scores_by_hand():
    matrix = ConfusionMatrix(4)
    matrix.update(PRED, LABEL)
    matrix.update(np.array([[3]]), np.array([[3]]))  # a second image: one pixel of class 3, right
    s = matrix.scores(["a", "b", "c", "d"])
    # IoU = TP / (row + column - TP): a 2/(3+4-2), b 2/(3+3-2), c 2/(3+2-2), d 1/(1+1-1)
    assert s["per_class_iou"] == pytest.approx([2 / 5, 2 / 4, 2 / 3, 1.0])
    assert s["miou"] == pytest.approx((2 / 5 + 2 / 4 + 2 / 3 + 1) / 4)
    assert s["pixel_accuracy"] == pytest.approx(7 / 10)
    assert s["per_class_accuracy"] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1.0])
    assert s["scored_pixels"] == 10 and s["foreground_iou"] is None


def test_a_class_absent_from_labels_and_predictions_is_left_out_of_the_mean():
    matrix = ConfusionMatrix(3)
    matrix.update(np.array([[0, 1]]), np.array([[0, 0]]))
    s = matrix.scores(["background", "building", "water"], foreground=1)
    assert s["per_class_iou"] == [0.5, 0.0, None]  # building was predicted, never labelled: IoU 0, counted
    assert s["miou"] == pytest.approx(0.25)
    assert s["foreground_iou"] == 0.0
    assert s["per_class_accuracy"] == [0.5, None, None]


def test_values_outside_the_classes_are_errors_not_silently_dropped():
    matrix = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="label value 5"):
        matrix.update(np.zeros((1, 2)), np.array([[0, 5]]))
    with pytest.raises(ValueError, match="prediction value 2"):
        matrix.update(np.array([[0, 2]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="differ in size"):
        matrix.update(np.zeros((2, 2)), np.zeros((1, 2)))


def test_round_trip_through_json_and_merge():
    one, two = ConfusionMatrix(4), ConfusionMatrix(4)
    one.update(PRED, LABEL)
    two.update(PRED[:, :2], LABEL[:, :2])
    restored = ConfusionMatrix.from_json(one.to_json())
    restored.merge(two)
    both = ConfusionMatrix(4)
    both.update(PRED, LABEL)
    both.update(PRED[:, :2], LABEL[:, :2])
    assert restored.matrix.tolist() == both.matrix.tolist()
