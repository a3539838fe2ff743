"""Speckle filters: Lee's formula by hand, speckle reduced, edges kept, blocks equal to the whole image."""
import numpy as np
import pytest

from backend.raster.speckle import estimate_looks, lee, refined_lee, speckle_filter

LOOKS = 4


def speckled(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    return truth * np.random.default_rng(seed).gamma(LOOKS, 1 / LOOKS, truth.shape)


def test_lee_is_the_mmse_formula_computed_by_hand():
    image = np.array([[1.0, 2.0, 3.0], [4.0, 30.0, 6.0], [7.0, 8.0, 5.0]])
    valid = np.ones((3, 3), bool)
    mean = image.mean()  # the centre's 3x3 window is the whole image
    variance = (image ** 2).mean() - mean ** 2
    cu2 = 1 / 2  # two looks
    weight = (1 - cu2 / (variance / mean ** 2)) / (1 + cu2)
    assert 0 < weight < 1
    assert lee(image, valid, window=3, looks=2)[1, 1] == pytest.approx(mean + weight * (30.0 - mean), rel=1e-12)
    # the corner sees its 2x2 in-raster neighbourhood only
    corner = image[:2, :2]
    mean, variance = corner.mean(), (corner ** 2).mean() - corner.mean() ** 2
    weight = np.clip((1 - cu2 / (variance / mean ** 2)) / (1 + cu2), 0, 1)
    assert lee(image, valid, window=3, looks=2)[0, 0] == pytest.approx(mean + weight * (1.0 - mean), rel=1e-12)


@pytest.mark.parametrize("name", ["lee", "refined-lee"])
def test_filters_reduce_speckle_and_keep_the_mean(name):
    truth = np.full((120, 120), 0.05)
    image = speckled(truth)
    valid = np.ones(truth.shape, bool)
    out = speckle_filter(name, image, valid, 7, LOOKS)
    raw_variation = image.std() / image.mean()
    assert raw_variation == pytest.approx(1 / np.sqrt(LOOKS), rel=0.05)
    assert out.std() / out.mean() < raw_variation / 2.5  # speckle strongly reduced
    assert out.mean() == pytest.approx(image.mean(), rel=0.02)  # backscatter kept


def test_refined_lee_keeps_an_edge_sharper_than_lee():
    truth = np.full((120, 120), 0.01)
    truth[:, 60:] = 0.5  # dark water beside a bright field: a 17 dB step
    image, valid = speckled(truth, 1), np.ones(truth.shape, bool)
    rows = slice(10, 110)
    plain, refined = lee(image, valid, 7, LOOKS), refined_lee(image, valid, 7, LOOKS)
    for column, expected, factor in ((57, 0.01, 2), (58, 0.01, 2), (60, 0.5, 1), (61, 0.5, 1)):  # near the edge
        error = abs(np.log(refined[rows, column].mean() / expected))
        assert error < abs(np.log(plain[rows, column].mean() / expected)) / factor


@pytest.mark.parametrize("name", ["lee", "refined-lee"])
@pytest.mark.parametrize("window", [3, 7, 9])
def test_a_block_read_with_its_halo_equals_the_whole_image_bit_for_bit(name, window):
    truth = np.where(np.add.outer(np.arange(90), np.arange(110)) % 37 < 15, 0.02, 0.3)
    image = speckled(truth, 2)
    valid = np.ones(image.shape, bool)
    valid[40:50, 30:45] = False
    image[~valid] = 1e9  # nodata values must not leak into their neighbours
    whole = speckle_filter(name, image, valid, window, LOOKS)
    half = window // 2
    for top, left, height, width in ((0, 0, 30, 40), (25, 33, 41, 50), (60, 70, 30, 40)):
        r0, c0 = max(0, top - half), max(0, left - half)
        r1, c1 = min(90, top + height + half), min(110, left + width + half)
        block = speckle_filter(name, image[r0:r1, c0:c1], valid[r0:r1, c0:c1], window, LOOKS)
        core = block[top - r0:top - r0 + height, left - c0:left - c0 + width]
        assert np.array_equal(core, whole[top:top + height, left:left + width])
    assert whole[valid].max() < 10  # no nodata value reached a valid pixel


def test_looks_are_estimated_from_pure_speckle():
    image = speckled(np.full((210, 210), 0.1), 3)
    assert estimate_looks(image, np.ones(image.shape, bool)) == pytest.approx(LOOKS, rel=0.15)
    assert estimate_looks(image, np.zeros(image.shape, bool)) is None


def test_an_even_window_is_refused():
    with pytest.raises(ValueError, match="odd"):
        lee(np.ones((5, 5)), np.ones((5, 5), bool), window=4)
