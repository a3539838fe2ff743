import json

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from backend.inference.slide import PIXEL_MEAN, PIXEL_STD
from training.alignearth.data import ImagePair, PairedImages, check_pairs, read_pairs
from training.common.augment import GeometryOptions, sample_geometry
from training.common.images import read_uint8_image
from training.common.sampling import EpochSampler, SampleKey
from tests.training.conftest import write_image


def _pair(folder, name="a", size=(40, 40)):
    optical = write_image(folder / f"{name}_opt.png", np.full((3, *size), 100, np.uint8))
    sar = write_image(folder / f"{name}_sar.tif", np.full((1, *size), 50, np.uint8))
    return optical, sar


def test_csv_manifest_paths_are_read_from_the_manifest_folder(tmp_path):
    (tmp_path / "images").mkdir()
    _pair(tmp_path / "images")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("optical,sar\nimages/a_opt.png,images/a_sar.tif\n")
    assert read_pairs(manifest) == [ImagePair(tmp_path / "images/a_opt.png", tmp_path / "images/a_sar.tif")]


def test_json_manifest_takes_relative_and_absolute_paths(tmp_path):
    optical, sar = _pair(tmp_path)
    manifest = tmp_path / "sub" / "pairs.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps([{"optical": str(optical), "sar": "../a_sar.tif"}]))
    pairs = read_pairs(manifest)
    assert pairs[0].optical == optical and pairs[0].sar.resolve() == sar.resolve()


@pytest.mark.parametrize("name,text,message", [
    ("missing.csv", None, r"manifest .*missing.csv does not exist; give a CSV or JSON list"),
    ("pairs.csv", "optical,radar\na.png,b.png\n",
     r"has no column 'sar'; its first line must name the columns optical,sar"),
    ("pairs.json", '[{"optical": "a.png"}]', r"item 0 has no key 'sar'"),
    ("pairs.json", '{"optical": ', r"is not valid JSON"),
    ("pairs.csv", "optical,sar\n", r"lists no rows"),
    ("pairs.txt", "optical,sar\n", r"is neither .csv nor .json"),
])
def test_bad_manifests_are_refused_in_one_sentence(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(UserInputError, match=message) as error:
        read_pairs(tmp_path / name)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


def test_a_single_band_image_is_repeated_to_three_channels(tmp_path):
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(1, 12, 10)
    pixels = read_uint8_image(write_image(tmp_path / "grey.png", grey))
    assert pixels.shape == (3, 12, 10) and pixels.dtype == np.uint8
    assert all(np.array_equal(pixels[band], grey[0]) for band in range(3))


def test_images_that_are_not_8_bit_1_or_3_bands_or_not_images_are_refused(tmp_path):
    write_image(tmp_path / "wide.tif", np.zeros((1, 4, 4), np.uint16))
    with pytest.raises(UserInputError, match=r"wide.tif has uint16 pixels, not 8-bit; convert it to 8-bit first"):
        read_uint8_image(tmp_path / "wide.tif")
    write_image(tmp_path / "two.tif", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(UserInputError, match=r"two.tif has 2 bands; give 1-band \(grey, SAR\) or 3-band"):
        read_uint8_image(tmp_path / "two.tif")
    (tmp_path / "broken.png").write_bytes(b"this is no image")
    with pytest.raises(UserInputError, match=r"cannot read image .*broken.png .*give an image GDAL reads"):
        read_uint8_image(tmp_path / "broken.png")
    with pytest.raises(UserInputError, match=r"image .*absent.png does not exist; fix its path in the manifest"):
        read_uint8_image(tmp_path / "absent.png")


def test_pairs_of_different_sizes_are_refused_naming_the_pair(tmp_path):
    optical = write_image(tmp_path / "o.png", np.zeros((3, 40, 40), np.uint8))
    sar = write_image(tmp_path / "s.png", np.zeros((1, 40, 32), np.uint8))
    pair = ImagePair(optical, sar)
    message = r"the pair .*o.png / .*s.png has images of different sizes \(40x40 and 32x40 pixels\); co-register"
    with pytest.raises(UserInputError, match=message):
        check_pairs([pair])
    with pytest.raises(UserInputError, match=message):
        PairedImages([pair], 32)[0]


def _raw(normalised: torch.Tensor) -> torch.Tensor:
    """Back to the 0-255 scale."""
    return normalised * torch.tensor(PIXEL_STD).view(3, 1, 1) + torch.tensor(PIXEL_MEAN).view(3, 1, 1)


def test_the_paired_augmentation_moves_both_images_alike(tmp_path):
    # An L-shaped marker, asymmetric under every flip and turn, on a non-square image.
    marker = np.zeros((60, 80), bool)
    marker[10:40, 12:20] = True
    marker[32:40, 12:45] = True
    optical = write_image(tmp_path / "o.png", np.where(marker, 255, 0).astype(np.uint8)[None].repeat(3, 0))
    sar = write_image(tmp_path / "s.tif", np.where(marker, 200, 10).astype(np.uint8)[None])
    dataset = PairedImages([ImagePair(optical, sar)], 32, GeometryOptions(scale=(0.5, 1.0)), seed=3)
    outputs = []
    for epoch in range(8):
        item = dataset[SampleKey(0, epoch)]
        opt, sar_pixels = _raw(item["optical"]), _raw(item["sar"])
        # Crop, resize, flips and turns are linear: the same geometry maps 0/255 and 10/200 alike.
        assert torch.allclose(opt / 255.0, (sar_pixels - 10.0) / 190.0, atol=2e-3)
        assert opt.shape == (3, 32, 32)
        outputs.append(opt)
    assert len({tuple(out[0].flatten().round().int().tolist()) for out in outputs}) == len(outputs)
    assert torch.equal(dataset[SampleKey(0, 5)]["optical"], dataset[SampleKey(0, 5)]["optical"])


def test_without_a_sample_key_the_whole_pair_is_resized(tmp_path):
    optical, sar = _pair(tmp_path, size=(50, 50))
    item = PairedImages([ImagePair(optical, sar)], 32, GeometryOptions())[0]
    assert torch.allclose(_raw(item["optical"]), torch.full((3, 32, 32), 100.0), atol=1e-3)
    assert torch.allclose(_raw(item["sar"]), torch.full((3, 32, 32), 50.0), atol=1e-3)


def test_random_crops_stay_inside_the_image_within_the_scale_range():
    rng = np.random.default_rng(0)
    options = GeometryOptions(scale=(0.5, 1.0), ratio=(0.9, 1 / 0.9))
    for _ in range(200):
        g = sample_geometry(rng, 60, 80, options)
        assert 0 <= g.top and g.top + g.height <= 60 and 0 <= g.left and g.left + g.width <= 80
        assert 0.45 <= g.height * g.width / (60 * 80) <= 1.0


def test_an_epoch_order_is_seeded_and_a_resumed_epoch_continues_it():
    full = list(EpochSampler(50, 8, seed=4, epoch=2))
    assert len(full) == 48 and [key.index for key in full] != list(range(48))
    assert list(EpochSampler(50, 8, seed=4, epoch=2, start_batch=3)) == full[24:]
    assert list(EpochSampler(50, 8, seed=4, epoch=3)) != full
