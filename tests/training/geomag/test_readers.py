"""The RRSIS-D, RefSegRS and GeoPixelD readers on miniatures of the released layouts, pixel for pixel."""
import json

import numpy as np
import pytest
from PIL import Image

from backend.errors import UserInputError
from training.geomag.geopixeld import GeoPixelD
from training.geomag.refsegrs import RefSegRS
from training.geomag.rrsisd import RRSISD

ANSWER = "Sure, it is [SEG]."


def _jpeg(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_rrsisd_yields_one_sample_per_sentence_with_polygon_and_rle_masks(rrsisd):
    root, truth = rrsisd
    train = RRSISD(root, "train")
    assert len(train) == 2
    first, second = train[0], train[1]
    assert (first.prompt, second.prompt, first.answer) == ("The vehicle on the top", "a grey car", ANSWER)
    jpeg = _jpeg(root / "images" / "rrsisd" / "JPEGImages" / "00001.jpg")
    assert first.image.dtype == np.uint8 and first.image.shape == (24, 32, 3)
    assert np.array_equal(first.image, jpeg)
    assert np.abs(first.image.astype(int) - truth["images"][1]).max() <= 3  # JPEG at quality 100, no chroma subsampling
    assert first.masks.dtype == bool and first.masks.shape == (1, 24, 32)
    assert np.array_equal(first.masks[0], truth["masks"][10]) and np.array_equal(second.masks[0], truth["masks"][10])
    val, test = RRSISD(root, "val"), RRSISD(root, "test")
    assert [len(val), len(test)] == [1, 1]
    assert val[0].prompt == "the car in the middle" and np.array_equal(val[0].masks[0], truth["masks"][11])
    assert val[0].image.shape == (16, 16, 3)
    assert test[0].prompt == "the bridge on the left" and np.array_equal(test[0].masks[0], truth["masks"][12])


def test_a_bad_rrsisd_folder_names_what_is_missing(rrsisd, tmp_path):
    root, _ = rrsisd
    with pytest.raises(UserInputError, match=r"RRSIS-D refs file .*refs\(unc\).p does not exist; give the folder "
                                             r"that holds rrsisd/ and images/rrsisd/JPEGImages"):
        RRSISD(tmp_path, "train")
    (root / "images" / "rrsisd" / "JPEGImages" / "00002.jpg").unlink()
    with pytest.raises(UserInputError, match=r"image .*00002.jpg does not exist"):
        RRSISD(root, "val")[0]
    with pytest.raises(UserInputError, match=r"RRSIS-D has no split 'testA'"):
        RRSISD(root, "testA")


def test_a_refs_pickle_that_would_run_code_is_refused(rrsisd):
    import pickle

    root, _ = rrsisd
    (root / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps([{"x": np.float64(1)}]))
    with pytest.raises(UserInputError, match=r"is not a refs pickle of plain lists and dicts"):
        RRSISD(root, "train")


def test_refsegrs_reads_the_phrase_file_tif_images_and_255_masks(refsegrs):
    root, truth = refsegrs
    train = RefSegRS(root, "train")
    assert [(train.items[i]) for i in range(3)] == [("5", "road along the vehicle"), ("17", "low vegetation"),
                                                     ("5", "white car")]
    for index, number in enumerate((5, 17, 5)):
        sample = train[index]
        assert np.array_equal(sample.image, truth["images"][number])
        assert sample.masks.shape == (1, 20, 20) and np.array_equal(sample.masks[0], truth["masks"][number])
        assert sample.answer == ANSWER
    assert len(RefSegRS(root, "val")) == 1 and len(RefSegRS(root, "test")) == 0


def test_a_bad_refsegrs_folder_names_what_is_missing(refsegrs):
    root, _ = refsegrs
    (root / "output_phrase_val.txt").write_text("seventeen the road\n")
    with pytest.raises(UserInputError, match=r"output_phrase_val.txt line 1 is not 'ID expression'"):
        RefSegRS(root, "val")
    (root / "output_phrase_test.txt").unlink()
    with pytest.raises(UserInputError, match=r"RefSegRS phrase file .*output_phrase_test.txt does not exist; give "
                                             r"the RefSegRS folder holding images/, masks/"):
        RefSegRS(root, "test")


def test_geopixeld_reads_the_conversation_list_with_its_polygon_files(geopixeld):
    root, truth = geopixeld
    data = GeoPixelD(root / "data" / "GeoPixelD.json")  # paths are relative to the list's parent folder
    assert len(data) == 1
    sample = data[0]
    assert (sample.prompt, sample.answer) == ("Describe it with masks.", truth["answer"])
    assert np.array_equal(sample.image, truth["image"])
    assert sample.masks.shape == (2, 12, 16) and np.array_equal(sample.masks, truth["masks"])


def test_geopixeld_reads_rle_segmentations_and_a_folder_of_per_image_files(geopixeld):
    from tests.training.geomag.rle import encode

    root, truth = geopixeld
    listing = json.loads((root / "data" / "GeoPixelD.json").read_text())
    del listing[0]["polygons"]
    listing[0]["segmentation"] = [encode(mask) for mask in truth["masks"]]
    (root / "rle.json").write_text(json.dumps(listing))
    assert np.array_equal(GeoPixelD(root / "rle.json", image_root=root)[0].masks, truth["masks"])
    test = GeoPixelD(root / "data" / "GeoPixelD" / "test")
    sample = test[0]
    assert sample.answer == "A <p> court </p> [SEG] ." and sample.prompt.startswith("Could you perform")
    assert np.array_equal(sample.image, truth["image"][::-1]) and np.array_equal(sample.masks, truth["masks"][:1])


def test_geopixeld_with_masks_not_matching_its_seg_tokens_or_missing_images_is_one_sentence(geopixeld):
    root, _ = geopixeld
    listing = json.loads((root / "data" / "GeoPixelD.json").read_text())
    listing[0]["conversations"][1]["value"] = "Only <p> one </p> [SEG] ."
    (root / "data" / "bad.json").write_text(json.dumps(listing))
    with pytest.raises(UserInputError, match=r"GeoPixelD record 0 has 2 masks for 1 \[SEG\] tokens"):
        GeoPixelD(root / "data" / "bad.json")[0]
    with pytest.raises(UserInputError, match=r"GeoPixelD record 0: data/GeoPixelD/train/P0001_0_800_0_800.png is "
                                             r"not under .*; set image_root"):
        GeoPixelD(root / "data" / "GeoPixelD.json", image_root=root / "elsewhere")[0]
    with pytest.raises(UserInputError, match=r"GeoPixelD annotations .*absent.json does not exist"):
        GeoPixelD(root / "absent.json")
