"""The images SimFeatUp trains on: a folder or a list, random crops, normalisation, bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from training.common.sampling import SampleKey
from training.simfeatup.data import ImageCrops, check_images, list_images, pad_to
from tests.training.conftest import write_image


def test_a_folder_is_searched_recursively_in_a_fixed_order_skipping_hidden_and_other_files(tmp_path):
    pixels = np.zeros((3, 8, 8), np.uint8)
    for name in ("b/2.png", "a/1.tif", "0.JPG", ".hidden/3.png", "a/.4.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png") or name.endswith(".tif"):
            write_image(tmp_path / name, pixels)
        else:
            (tmp_path / name).write_bytes(b"listed by its name; read only when trained on")
    (tmp_path / "notes.txt").write_text("not an image")
    assert list_images(tmp_path) == [tmp_path / "0.JPG", tmp_path / "a/1.tif", tmp_path / "b/2.png"]


def test_a_csv_or_json_list_names_the_images_relative_to_itself(tmp_path):
    (tmp_path / "list.csv").write_text("image\nx/1.png\n/data/2.tif\n")
    (tmp_path / "list.json").write_text('[{"image": "x/1.png"}]')
    assert list_images(tmp_path / "list.csv") == [tmp_path / "x/1.png", Path("/data/2.tif")]
    assert list_images(tmp_path / "list.json") == [tmp_path / "x/1.png"]


def test_a_missing_or_empty_source_is_one_sentence_naming_the_config_key(tmp_path):
    with pytest.raises(UserInputError, match=r"^data.images: .*absent does not exist; give a folder of images"):
        list_images(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match=r"^data.val_images: the folder .*empty holds no images \(.png, .jpg"):
        list_images(tmp_path / "empty", "data.val_images")
    (tmp_path / "one.png").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"one.png is neither a folder nor a .csv/.json list"):
        list_images(tmp_path / "one.png")


def test_a_16_bit_image_is_refused_before_training(tmp_path):
    write_image(tmp_path / "deep.tif", np.zeros((3, 8, 8), np.uint16))
    with pytest.raises(UserInputError, match=r"deep.tif has uint16 pixels, not 8-bit; convert it to 8-bit first"):
        check_images(list_images(tmp_path))


def test_training_crops_depend_only_on_seed_epoch_and_image(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (3, 40, 50), dtype=np.uint8)
    dataset = ImageCrops([write_image(tmp_path / "a.png", pixels)], crop_size=32, seed=3)
    first = dataset[SampleKey(0, 0)]["image"]
    assert first.shape == (3, 32, 32) and first.dtype == torch.float32
    assert torch.equal(dataset[SampleKey(0, 0)]["image"], first)
    assert not all(torch.equal(dataset[SampleKey(0, epoch)]["image"], first) for epoch in range(1, 4))
    assert not torch.equal(ImageCrops(dataset.paths, 32, seed=4)[SampleKey(0, 0)]["image"], first)


def test_images_smaller_than_the_crop_are_reflect_padded_on_both_sides():
    row = np.arange(5, dtype=np.uint8).reshape(1, 1, 5)
    assert pad_to(row, 8)[0, 0].tolist() == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]  # 3 more on each side, 11 wide
    assert pad_to(row, 8).shape == (1, 15, 11)  # rows padded by 7 on each side too (one row reflects to itself)
    big = np.zeros((3, 20, 20), np.uint8)
    assert pad_to(big, 16) is big


def test_pixels_are_normalised_with_imagenets_or_clips_mean_and_std(tmp_path):
    path = write_image(tmp_path / "grey.png", np.full((3, 16, 16), 128, np.uint8))
    imagenet = ImageCrops([path], 16)[0]["image"][:, 0, 0]
    clip = ImageCrops([path], 16, normalisation="clip")[0]["image"][:, 0, 0]
    expected = [(128 / 255 - mean) / std for mean, std in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    assert imagenet.tolist() == pytest.approx(expected, rel=1e-5)
    assert clip.tolist() == pytest.approx([(128 - 122.771) / 68.501, (128 - 116.746) / 66.632,
                                          (128 - 104.094) / 70.323], rel=1e-5)
