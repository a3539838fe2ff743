"""FarSLIP's data: webdataset shards and caption lists (stage I), MGRS-200k-style boxes (stage II), bad input."""
import io
import json
import tarfile

import numpy as np
import pytest
import torch

from backend.errors import UserInputError
from backend.inference.slide import normalise_pixels
from training.common.augment import resize_square
from training.common.sampling import SampleKey
from training.farslip.data import (CaptionedCrops, CaptionedRegions, categories_of, check_captioned_images,
                                   read_annotations, read_captioned_images, tokenize)
from tests.training.conftest import write_image
from tests.training.farslip.conftest import (SIZE, background, draw, one_shape_image, png_bytes, write_caption_list)


def _tar(path, members):
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def test_shards_in_a_folder_are_read_in_place_image_and_caption_by_name(shards):
    pairs = read_captioned_images(str(shards["train"]))
    assert len(pairs) == 96 and len(pairs.shards) == 3
    rng = np.random.default_rng(1)  # the generator write_shards drew the training set from
    expected = [one_shape_image(rng) for _ in range(96)]
    for index in (0, 41, 95):
        assert np.array_equal(pairs.pixels(index), expected[index][0])
        assert pairs.caption(index) == expected[index][1]


def test_rs5m_style_members_are_read_and_a_member_without_its_pair_is_skipped(tmp_path):
    pixels, caption = one_shape_image(np.random.default_rng(0))
    shard = _tar(tmp_path / "rs5m.tar", [("a.img_content", png_bytes(pixels)), ("a.caption", caption.encode()),
                                         ("b.jpg", png_bytes(pixels)), ("c.txt", b"alone")])
    pairs = read_captioned_images(str(shard))
    assert len(pairs) == 1 and pairs.caption(0) == caption and np.array_equal(pairs.pixels(0), pixels)


def test_a_caption_list_reads_images_relative_to_its_folder(tmp_path):
    path = write_caption_list(tmp_path, 3, seed=5)
    pairs = read_captioned_images(str(path))
    check_captioned_images(pairs)
    rng = np.random.default_rng(5)
    for index in range(3):
        pixels, caption = one_shape_image(rng)
        assert pairs.caption(index) == caption and np.array_equal(pairs.pixels(index), pixels)


def test_training_items_hold_the_image_its_tokens_and_crops_matching_their_boxes(shards):
    pairs = read_captioned_images(str(shards["train"]))
    dataset = CaptionedCrops(pairs, SIZE, 77, crops=4, seed=3)
    item = dataset[SampleKey(7, 0)]
    assert item["crops"].shape == (4, 3, SIZE, SIZE) and item["boxes"].shape == (4, 4)
    assert torch.equal(item["text"], tokenize([pairs.caption(7)], 77)[0])
    pixels = torch.from_numpy(pairs.pixels(7)).float()
    for crop, box in zip(item["crops"], item["boxes"]):
        x1, y1, x2, y2 = (box * SIZE).round().int().tolist()
        assert 0.3 * SIZE ** 2 - 2 * SIZE <= (x2 - x1) * (y2 - y1) <= 0.7 * SIZE ** 2 + 2 * SIZE
        assert torch.allclose(crop, normalise_pixels(resize_square(pixels[:, y1:y2, x1:x2], SIZE)), atol=1e-5)
    again, later = dataset[SampleKey(7, 0)], dataset[SampleKey(7, 1)]
    assert torch.equal(again["boxes"], item["boxes"]) and not torch.equal(later["boxes"], item["boxes"])
    evaluation = dataset[7]
    assert evaluation["caption"] == pairs.caption(7) and "crops" not in evaluation
    assert torch.equal(evaluation["image"], item["image"])


def test_mgrs_keys_are_read_with_the_image_root_and_a_missing_caption_kind_falls_back(tmp_path):
    (tmp_path / "imgs").mkdir()
    write_image(tmp_path / "imgs" / "1.png", background(np.random.default_rng(0)))
    items = [{"global_filepath": "1.png", "brief_caption": "two shapes", "detailed_caption": "a long one",
              "segment": [{"bbox": {"x1": 2, "y1": 3, "x2": 30, "y2": 40, "W": 64, "H": 64}, "category": "car",
                           "category_id": 4}]},
             {"image": "1.png", "short_caption": "short only", "boxes": []}]
    (tmp_path / "text_info.json").write_text(json.dumps(items))
    first, second = read_annotations(tmp_path / "text_info.json", str(tmp_path / "imgs"))
    assert first.image == tmp_path / "imgs" / "1.png"
    assert (first.short_caption, first.long_caption) == ("two shapes", "a long one")
    assert first.regions[0].box == (2.0, 3.0, 30.0, 40.0) and first.regions[0].category == "car"
    assert (second.short_caption, second.long_caption, second.regions) == ("short only", "short only", ())


def test_region_crops_are_the_boxes_pixels_labelled_by_category_small_boxes_skipped(tmp_path):
    pixels = background(np.random.default_rng(0))
    big = draw(pixels, "red", "square", 4, 4, 24)
    small = draw(pixels, "blue", "circle", 40, 40, 10)
    write_image(tmp_path / "a.png", pixels)
    (tmp_path / "a.json").write_text(json.dumps([{"image": "a.png", "short_caption": "s", "long_caption": "l",
                                                  "boxes": [{"box": list(small), "category": "blue circle"},
                                                            {"box": list(big), "category": "red square"}]}]))
    items = read_annotations(tmp_path / "a.json")
    assert categories_of(items) == ["blue circle", "red square"]
    dataset = CaptionedRegions(items, categories_of(items), SIZE, 77, caption="short", max_boxes=3, min_box=12)
    item = dataset[0]
    assert item["region_labels"].tolist() == [1, -1, -1]  # the 10-pixel circle is under 12 x 12 pixels
    x1, y1, x2, y2 = big
    expected = normalise_pixels(resize_square(torch.from_numpy(pixels).float()[:, y1:y2, x1:x2], SIZE))
    assert torch.allclose(item["regions"][0], expected, atol=1e-5) and not item["regions"][1:].any()
    assert item["caption"] == "s" and torch.equal(item["text"], tokenize(["s"], 77)[0])
    both = CaptionedRegions(items, categories_of(items), SIZE, 77, max_boxes=3, min_box=8, seed=1)
    orders = {tuple(both[SampleKey(0, epoch)]["region_labels"][:2].tolist()) for epoch in range(8)}
    assert orders == {(0, 1), (1, 0)}  # shuffled per epoch, from the seed


@pytest.mark.parametrize("item, message", [
    ({"short_caption": "s"}, r"item 0 has no image path; give it an 'image' \(or 'global_filepath'\)"),
    ({"image": "a.png"}, r"item 0 has no caption; give it a 'short_caption' or a 'long_caption'"),
    ({"image": "a.png", "long_caption": "l", "boxes": [{"box": [0, 0, 5, 5]}]},
     r"item 0, box 0: give a 'box' \[x1, y1, x2, y2\] in pixels and a 'category'"),
])
def test_an_incomplete_annotation_is_one_sentence_naming_the_item(tmp_path, item, message):
    (tmp_path / "a.json").write_text(json.dumps([item]))
    with pytest.raises(UserInputError, match=message):
        read_annotations(tmp_path / "a.json")


def test_bad_stage_one_sources_are_one_sentence(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match=r"data.train_data: the folder .*empty holds no .tar shards"):
        read_captioned_images(str(tmp_path / "empty"))
    (tmp_path / "bad.tar").write_bytes(b"not a tar archive at all" * 40)
    with pytest.raises(UserInputError, match=r"cannot read shard .*bad.tar \(.*\); give uncompressed tar files"):
        read_captioned_images(str(tmp_path / "bad.tar"))
    with pytest.raises(UserInputError, match=r"data.val_data: .*absent.csv does not exist"):
        read_captioned_images(str(tmp_path / "absent.csv"), "data.val_data")
    (tmp_path / "list.csv").write_text("image,caption\na.png,\n")
    with pytest.raises(UserInputError, match=r"caption list .*list.csv: line 2 has no caption"):
        read_captioned_images(str(tmp_path / "list.csv"))
    broken = _tar(tmp_path / "broken.tar", [("x.png", b"not an image"), ("x.txt", b"a red circle")])
    with pytest.raises(UserInputError, match=r"cannot decode the image of .*broken.tar \(sample 0\)"):
        read_captioned_images(str(broken)).pixels(0)
