"""SegEarth-OV's single-class sets: miniatures of each released and converted layout, found and decoded."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.errors import UserInputError
from backend.eval.datasets import IGNORE, find_dataset, open_split, read_label
from backend.eval.datasets.base import Protocol
from backend.eval.datasets.single_class import SPECS, _at_least, _converted, inria_tiles, wbs_si_val_names

H, W = 8, 16  # two 8x8 blocks: JPEG keeps each constant block exact


def rgb(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(path, quality=95)
    return path


def mask(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path, quality=95)
    return path


def halves(left: int, right: int) -> np.ndarray:
    """A label whose left 8x8 block is ``left`` and right block ``right``."""
    values = np.full((H, W), left, np.uint8)
    values[:, 8:] = right
    return values


def found(name: str, root: Path, split: str | None = None) -> tuple[str, list[str]]:
    layout, samples = open_split(find_dataset(name), root, split)
    return layout.name, [s.id for s in samples]


def decoded(name: str, root: Path, split: str | None = None) -> dict[str, np.ndarray]:
    layout, samples = open_split(find_dataset(name), root, split)
    return {s.id: read_label(layout, s.label) for s in samples}


BUILDING_RIGHT = halves(0, 1)


# -- the specs -------------------------------------------------------------------------------------

def test_specs_are_the_papers_single_class_sets_with_their_presets():
    from backend.models.registry import DATASET_PRESETS

    assert [s.name for s in SPECS] == ["whu-aerial", "whu-sat-ii", "inria", "xbd", "chn6-cug", "deepglobe",
                                       "massachusetts", "spacenet", "wbs-si"]
    for spec in SPECS:
        assert spec.preset == spec.name and spec.name in DATASET_PRESETS
        assert spec.foreground == 1 and spec.split in spec.splits and spec.protocol == Protocol()
        assert spec.class_lines()[0] == "background" and len(spec.class_lines()) == 2
        assert [layout.name for layout in spec.layouts] == ["mmseg", "official"]
    assert {s.name: s.class_lines()[1] for s in SPECS if s.name in ("inria", "chn6-cug", "wbs-si")} == {
        "inria": "building", "chn6-cug": "road", "wbs-si": "water"}


def test_split_lists():
    assert len(inria_tiles("test")) == len(inria_tiles("val")) == 27 and len(inria_tiles("train")) == 126
    assert "vienna3" in inria_tiles("test") and "chicago24" in inria_tiles("val") and "austin2" in inria_tiles("train")
    names = wbs_si_val_names()
    assert len(names) == len(set(names)) == 499 and "water_body_2396" in names


def test_decoders():
    raw = np.array([[[0, 1, 2, 127, 128, 255]]], np.uint8)
    assert _converted(raw).tolist() == [[0, 1, IGNORE, IGNORE, 1, 1]]
    assert _at_least(128)(raw).tolist() == [[0, 0, 0, 0, 1, 1]]  # JPEG noise on a 0/255 mask stays background
    assert _at_least(1)(np.array([[[0, 1, 2, 4]]], np.uint8)).tolist() == [[0, 1, 1, 1]]


# -- buildings -------------------------------------------------------------------------------------

def test_whu_aerial_released_and_converted(tmp_path):
    for name in ("b", "a"):
        rgb(tmp_path / "val" / "image" / f"{name}.tif")
        mask(tmp_path / "val" / "label" / f"{name}.tif", halves(0, 255))
    rgb(tmp_path / "test" / "image" / "c.tif")
    mask(tmp_path / "test" / "label" / "c.tif", halves(255, 255))
    assert found("whu-aerial", tmp_path) == ("official", ["a", "b"])
    assert decoded("whu-aerial", tmp_path, "test")["c"].tolist() == np.ones((H, W)).tolist()
    assert (decoded("whu-aerial", tmp_path)["a"] == BUILDING_RIGHT).all()

    mask(tmp_path / "val" / "label_cvt" / "a.png", BUILDING_RIGHT)  # the authors' converted label wins
    mask(tmp_path / "val" / "label_cvt" / "b.png", halves(1, 0))
    assert found("whu-aerial", tmp_path) == ("mmseg", ["a", "b"])
    assert (decoded("whu-aerial", tmp_path)["b"] == halves(1, 0)).all()


def test_whu_sat_ii_found_below_the_root(tmp_path):
    authors = tmp_path / "Satellite_dataset_Ⅱ_East_Asia" / "1.cropped" / "test"
    rgb(authors / "image" / "1.tif")
    mask(authors / "label_cvt" / "1.tif", BUILDING_RIGHT)
    mask(authors / "label" / "1.tif", halves(255, 0))
    rgb(authors.parent / "train" / "image" / "2.tif")
    mask(authors.parent / "train" / "label" / "2.tif", halves(255, 0))
    assert found("whu-sat-ii", tmp_path) == ("mmseg", ["1"])
    assert (decoded("whu-sat-ii", tmp_path)["1"] == BUILDING_RIGHT).all()
    assert found("whu-sat-ii", tmp_path, "train") == ("official", ["2"])
    assert (decoded("whu-sat-ii", tmp_path, "train")["2"] == halves(1, 0)).all()


def test_inria_whole_tiles_of_fctl_split(tmp_path):
    train = tmp_path / "AerialImageDataset" / "train"
    for tile in ("austin1", "vienna3", "austin2", "chicago24"):
        rgb(train / "images" / f"{tile}.tif")
        mask(train / "gt" / f"{tile}.tif", halves(0, 255))
    rgb(tmp_path / "AerialImageDataset" / "test" / "images" / "bellingham1.tif")  # the unlabelled official test
    with pytest.warns(UserWarning, match="25 of the 27 Inria test tiles are missing"):
        assert found("inria", tmp_path) == ("official", ["austin1", "vienna3"])
    with pytest.warns(UserWarning):
        assert found("inria", tmp_path, "val") == ("official", ["chicago24"])
        assert found("inria", tmp_path, "train") == ("official", ["austin2"])
    with pytest.warns(UserWarning):
        assert (decoded("inria", tmp_path)["vienna3"] == BUILDING_RIGHT).all()


def test_inria_authors_patches(tmp_path):
    train = tmp_path / "AerialImageDataset" / "train"
    for patch in ("austin1_0_0_1000_1000", "austin1_1000_0_2000_1000"):
        rgb(train / "img_dir" / "split_test" / f"{patch}.png")
        mask(train / "ann_dir" / "split_test" / f"{patch}.png", BUILDING_RIGHT)
    assert found("inria", tmp_path) == ("mmseg", ["austin1_0_0_1000_1000", "austin1_1000_0_2000_1000"])
    assert (decoded("inria", tmp_path)["austin1_0_0_1000_1000"] == BUILDING_RIGHT).all()


def test_xbd_pre_disaster_only(tmp_path):
    test = tmp_path / "test"
    for stem in ("palu-tsunami_00000001", "guatemala-volcano_00000003"):
        rgb(test / "images" / f"{stem}_pre_disaster.png")
        rgb(test / "images" / f"{stem}_post_disaster.png")
        mask(test / "targets" / f"{stem}_pre_disaster_target.png", halves(0, 1))
        mask(test / "targets" / f"{stem}_post_disaster_target.png", halves(0, 3))
        (test / "labels").mkdir(exist_ok=True)
    assert found("xbd", tmp_path) == ("official", ["guatemala-volcano_00000003_pre_disaster",
                                                   "palu-tsunami_00000001_pre_disaster"])
    assert (decoded("xbd", tmp_path)["palu-tsunami_00000001_pre_disaster"] == BUILDING_RIGHT).all()

    rgb(test / "images_pre" / "palu-tsunami_00000001_pre_disaster.png")
    mask(test / "targets_cvt_pre" / "palu-tsunami_00000001_pre_disaster.png", halves(1, 0))
    assert found("xbd", tmp_path) == ("mmseg", ["palu-tsunami_00000001_pre_disaster"])
    assert (decoded("xbd", tmp_path)["palu-tsunami_00000001_pre_disaster"] == halves(1, 0)).all()


# -- roads -----------------------------------------------------------------------------------------

def test_chn6_cug_released_names_and_converted(tmp_path):
    rgb(tmp_path / "val" / "images" / "am100001_sat.jpg")
    mask(tmp_path / "val" / "gt" / "am100001_mask.png", halves(0, 255))
    rgb(tmp_path / "train" / "images" / "bj100002_sat.jpg")
    mask(tmp_path / "train" / "gt" / "bj100002_mask.png", halves(255, 0))
    assert found("chn6-cug", tmp_path) == ("official", ["am100001_sat"])
    assert (decoded("chn6-cug", tmp_path)["am100001_sat"] == BUILDING_RIGHT).all()
    assert found("chn6-cug", tmp_path, "train") == ("official", ["bj100002_sat"])

    rgb(tmp_path / "val" / "image_cvt" / "am100001.jpg")
    mask(tmp_path / "val" / "label_cvt" / "am100001.png", halves(1, 0))
    assert found("chn6-cug", tmp_path) == ("mmseg", ["am100001"])
    assert (decoded("chn6-cug", tmp_path)["am100001"] == halves(1, 0)).all()


def test_global_road_set_validation_subsets(tmp_path):
    deepglobe = tmp_path / "DeepGlobe_test_1530"
    rgb(deepglobe / "img" / "104_sat.jpg")
    mask(deepglobe / "gt" / "104_mask.png", halves(0, 255))
    for subset, name in (("Massachusetts_test_49", "10228690_15"), ("SpaceNet_test_567", "AOI_2_Vegas_img1")):
        rgb(tmp_path / subset / "img" / f"{name}.jpg")
        mask(tmp_path / subset / "gt" / f"{name}.png", halves(0, 255))
    assert found("deepglobe", tmp_path) == ("official", ["104_sat"])
    assert found("massachusetts", tmp_path) == ("official", ["10228690_15"])
    assert found("spacenet", tmp_path) == ("official", ["AOI_2_Vegas_img1"])
    assert (decoded("spacenet", tmp_path)["AOI_2_Vegas_img1"] == BUILDING_RIGHT).all()

    rgb(deepglobe / "image_cvt" / "104.jpg")
    mask(deepglobe / "label_cvt" / "104.png", halves(1, 0))
    mask(tmp_path / "Massachusetts_test_49" / "label_cvt" / "10228690_15.png", halves(1, 0))
    assert found("deepglobe", tmp_path) == ("mmseg", ["104"])
    assert found("massachusetts", tmp_path) == ("mmseg", ["10228690_15"])
    assert (decoded("massachusetts", tmp_path)["10228690_15"] == halves(1, 0)).all()


# -- water -----------------------------------------------------------------------------------------

def test_wbs_si_listed_validation_images(tmp_path):
    base = tmp_path / "WaterBodiesDatasetPreprocessed" / "WaterBodiesDatasetPreprocessed"
    for name in ("water_body_2396", "water_body_8", "water_body_1"):  # water_body_1 is a training image
        rgb(base / "Images" / f"{name}.jpg")
        mask(base / "Masks" / f"{name}.jpg", halves(0, 255))
    with pytest.warns(UserWarning, match="497 of the 499 WBS-SI"):
        assert found("wbs-si", tmp_path) == ("official", ["water_body_2396", "water_body_8"])
    with pytest.warns(UserWarning):
        assert (decoded("wbs-si", tmp_path)["water_body_8"] == BUILDING_RIGHT).all()

    for name in ("water_body_2396", "water_body_8"):
        mask(base / "Masks_cvt" / f"{name}.jpg", halves(1, 0))
    with pytest.warns(UserWarning):
        assert found("wbs-si", tmp_path) == ("mmseg", ["water_body_2396", "water_body_8"])
    with pytest.warns(UserWarning):
        assert (decoded("wbs-si", tmp_path)["water_body_2396"] == halves(1, 0)).all()


# -- bad input -------------------------------------------------------------------------------------

def test_unknown_split_and_wrong_root(tmp_path):
    with pytest.raises(UserInputError, match="WHU Aerial has no split 'split_test'"):
        open_split(find_dataset("whu-aerial"), tmp_path, "split_test")
    with pytest.raises(UserInputError, match="holds no CHN6-CUG val split in a known layout"):
        open_split(find_dataset("chn6-cug"), tmp_path)
    rgb(tmp_path / "val" / "images" / "a_sat.jpg")  # images without their gt folder
    with pytest.raises(UserInputError, match=r"official: val/images/\*_sat.jpg \+ val/gt/\*_mask.png"):
        open_split(find_dataset("chn6-cug"), tmp_path)
    with pytest.raises(UserInputError, match="is not a folder"):
        open_split(find_dataset("inria"), tmp_path / "missing")


# -- scored end to end -----------------------------------------------------------------------------

def test_evaluate_saved_predictions_by_hand(tmp_path):
    """Two CHN6-CUG images in the authors' layout; one label pixel is JPEG-noise 2 and not scored."""
    from backend.eval.job import EvalJob
    from backend.eval.predictions import write_prediction
    from backend.eval.runner import evaluate

    root, predictions = tmp_path / "CHN6-CUG", tmp_path / "pred"
    label_a, pred_a = halves(0, 1), halves(0, 1)
    pred_a[:2, :] = 1  # 16 background pixels called road (the top two rows of the left block)
    label_b, pred_b = halves(1, 1), halves(0, 1)  # 64 road pixels called background
    label_b[0, 0] = 2  # unscored
    for name, label, pred in (("a", label_a, pred_a), ("b", label_b, pred_b)):
        rgb(root / "val" / "image_cvt" / f"{name}.jpg")
        mask(root / "val" / "label_cvt" / f"{name}.png", label)
        write_prediction(predictions, name, pred)

    report = evaluate(EvalJob(dataset="chn6-cug", root=root, predictions=predictions, out=tmp_path / "out"))
    # scored: 255 pixels. road: TP 64 (a) + 64 (b) = 128, FP 16, FN 63 -> 128 / 207
    # background: TP 48 (a), FP 63, FN 16 -> 48 / 127
    scores = report.scores
    assert report.results[0].layout == "mmseg" and report.results[0].images == 2
    assert scores["foreground_iou"] == pytest.approx(128 / 207)
    assert scores["per_class_iou"] == pytest.approx([48 / 127, 128 / 207])
    assert scores["miou"] == pytest.approx((48 / 127 + 128 / 207) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(176 / 255)
