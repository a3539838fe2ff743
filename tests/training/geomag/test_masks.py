"""COCO RLE decoding and polygon filling against masks worked by hand."""
import numpy as np
import pytest

from backend.errors import UserInputError
from tests.training.geomag.rle import compress, encode
from training.geomag.masks import decode_rle, fill_polygons_coco, fill_polygons_pixels, rle_counts

HAND = np.array([[1, 0, 0], [1, 1, 0]], bool)  # column-major 1,1 | 0,1 | 0,0 -> runs 0,2,1,1,2


def test_a_compressed_rle_decodes_to_the_hand_made_mask():
    # runs 0, 2, 1, then 1 - 2 = -1 stored as 'O' (31: sign bit set), then 2 - 1 = 1
    assert rle_counts("021O1") == [0, 2, 1, 1, 2]
    assert np.array_equal(decode_rle({"size": [2, 3], "counts": "021O1"}), HAND)
    assert np.array_equal(decode_rle({"size": [2, 3], "counts": b"021O1"}), HAND)


def test_pycocotools_own_example_an_empty_5_by_10_mask_is_b1():
    assert rle_counts("b1") == [50]  # pycocotools encodes np.zeros((5, 10)) as b'b1'
    assert not decode_rle({"size": [5, 10], "counts": "b1"}).any()


def test_an_uncompressed_rle_and_the_test_encoder_round_trip():
    assert np.array_equal(decode_rle({"size": [2, 3], "counts": [0, 2, 1, 1, 2]}), HAND)
    assert compress([0, 2, 1, 1, 2]) == "021O1" and compress([50]) == "b1"
    rng = np.random.default_rng(0)
    mask = rng.random((37, 23)) < 0.3
    for compressed in (True, False):
        assert np.array_equal(decode_rle(encode(mask, compressed)), mask)
    big = np.zeros((300, 400), bool)
    big[100:250, 50:300] = True
    assert np.array_equal(decode_rle(encode(big)), big)


def test_a_damaged_rle_is_one_sentence():
    with pytest.raises(UserInputError, match=r"ann 7 has runs summing to 5, not H x W = 6"):
        decode_rle({"size": [2, 3], "counts": [0, 2, 3]}, "ann 7")
    with pytest.raises(UserInputError, match=r"ann 8 is not a COCO RLE"):
        decode_rle({"counts": "b1"}, "ann 8")


def test_coco_polygons_cover_the_pixels_whose_centres_are_inside():
    square = [1, 1, 4, 1, 4, 3, 1, 3]  # x 1..4, y 1..3: centres x 1.5..3.5, y 1.5..2.5
    expected = np.zeros((5, 6), bool)
    expected[1:3, 1:4] = True
    assert np.array_equal(fill_polygons_coco([square], 5, 6), expected)
    triangle = [0, 0, 4, 0, 0, 4]  # centre (c + .5, r + .5) inside when c + r + 1 < 4
    rows, cols = np.mgrid[0:4, 0:4]
    assert np.array_equal(fill_polygons_coco([triangle], 4, 4), cols + rows + 1 < 4)
    both = fill_polygons_coco([square, [5, 4, 6, 4, 6, 5, 5, 5]], 5, 6)
    assert both.sum() == 7 and both[4, 5]


def test_pixel_polygons_cover_their_interior_and_outline_as_cv2_fill_poly_does():
    expected = np.zeros((5, 6), bool)
    expected[1:4, 1:5] = True  # vertices name pixels: columns 1..4, rows 1..3 inclusive
    assert np.array_equal(fill_polygons_pixels([[[1, 1], [4, 1], [4, 3], [1, 3]]], 5, 6), expected)
    single = fill_polygons_pixels([[[2, 3]]], 5, 6)
    assert single.sum() == 1 and single[3, 2]
