"""SegEarth-OV-2's SAR sets: miniatures of each release layout and of the authors' converted folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.errors import UserInputError
from backend.eval.datasets import IGNORE, find_dataset, open_split, read_label, read_rgb

NO = IGNORE  # not scored


def write(path: Path, array: np.ndarray) -> Path:
    """An 8-bit image file (format by suffix): (H, W) grey/index or (H, W, 3) RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def grey(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (8, 12), dtype=np.uint8)


def index_label(values: list[int]) -> np.ndarray:
    """An 8x12 label whose first row starts with ``values`` (the rest is the first value)."""
    label = np.full((8, 12), values[0], dtype=np.uint8)
    label[0, :len(values)] = values
    return label


def listing(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(names) + "\n", encoding="utf-8")


def decoded(spec_name: str, root: Path, split: str | None = None) -> tuple[str, dict[str, np.ndarray]]:
    layout, samples = open_split(find_dataset(spec_name), root, split)
    return layout.name, {s.id: read_label(layout, s.label) for s in samples}


# -- OpenEarthMap-SAR ------------------------------------------------------------------------------

def test_openearthmap_sar(tmp_path, caplog):
    for name in ("a", "b"):
        write(tmp_path / "test" / "sar_images" / f"{name}.tif", grey(1))
        write(tmp_path / "test" / "labels" / f"{name}.tif", index_label([0, 1, 8, 9]))
    write(tmp_path / "test" / "sar_images" / "unlabelled.tif", grey(2))
    layout, labels = decoded("openearthmap-sar", tmp_path)
    assert "no label" in caplog.text
    assert layout == "official" and list(labels) == ["a", "b"]
    assert labels["a"][0, :4].tolist() == [0, 1, 8, NO]  # 0 is the scored class "background"
    image = read_rgb(tmp_path / "test" / "sar_images" / "a.tif")
    assert image.shape == (8, 12, 3) and (image[..., 0] == image[..., 2]).all()  # grey repeated to RGB
    with pytest.raises(UserInputError, match="no OpenEarthMap-SAR train split"):
        open_split(find_dataset("openearthmap-sar"), tmp_path, "train")


# -- DDHR ------------------------------------------------------------------------------------------

def ddhr_region(base: Path, image_dir: str, names: list[str], values: list[int]) -> None:
    for name in names:
        write(base / image_dir / f"{name}.jpg", grey(3))
        write(base / "label" / f"{name}.png", index_label(values))


def test_ddhr_authors_folders(tmp_path, caplog):
    root = tmp_path / "DDHRNet_DATA"
    ddhr_region(root / "korea" / "no_cloud", "sar", ["1", "2", "3"], [0, 4, 5, 255])
    listing(root / "korea" / "no_cloud" / "val.txt", ["2", "3", "404"])
    ddhr_region(root / "korea" / "cloud", "sar", ["9"], [1])  # the cloudy copy is not the authors'
    ddhr_region(root / "shandong", "sar", ["7"], [2])
    listing(root / "shandong" / "val.txt", ["7"])
    layout, labels = decoded("ddhr-korea-sar", root)
    assert "(first: 404)" in caplog.text  # named in val.txt, not in the folders
    assert layout == "mmseg" and list(labels) == ["2", "3"]
    assert labels["2"][0, :4].tolist() == [0, 4, NO, NO]
    assert decoded("ddhr-korea-sar", root, "all")[1].keys() == {"1", "2", "3"}
    assert list(decoded("ddhr-shandong-sar", root)[1]) == ["7"]
    assert find_dataset("ddhr-shandong-sar").class_lines()[0] == "farmland,grass"
    with pytest.raises(UserInputError, match="no DDHR-XA val split"):
        open_split(find_dataset("ddhr-xian-sar"), root)


def test_ddhr_official_release(tmp_path):
    region = tmp_path / "xian"  # --root may be the region's own folder
    ddhr_region(region / "no_cloud", "GF3", ["5", "6"], [3, 1])
    layout, labels = decoded("ddhr-xian-sar", region / "no_cloud", "all")
    assert layout == "official" and list(labels) == ["5", "6"]
    assert decoded("ddhr-xian-sar", tmp_path, "all")[1].keys() == {"5", "6"}
    with pytest.raises(UserInputError, match="val.txt"):
        open_split(find_dataset("ddhr-xian-sar"), tmp_path)  # the release has no split list


# -- FUSAR-Map -------------------------------------------------------------------------------------

def test_fusar_authors_folders(tmp_path):
    for name in ("c1", "c2"):
        write(tmp_path / "sar" / f"{name}.tif", grey(4))
        write(tmp_path / "label" / f"{name}.png", index_label([0, 1, 2, 3, 4, 5]))
    listing(tmp_path / "test.txt", ["c2"])
    layout, labels = decoded("fusar-map", tmp_path)
    assert layout == "mmseg" and list(labels) == ["c2"]
    assert labels["c2"][0, :6].tolist() == [0, 1, 2, 3, 4, NO]


def test_fusar_official_colours(tmp_path):
    rgb = np.zeros((8, 12, 3), dtype=np.uint8)
    colours = [(0, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 0), (0, 255, 0), (255, 255, 255)]
    for column, colour in enumerate(colours):
        rgb[0, column] = colour
    write(tmp_path / "SAR_1024" / "XiaMen_02_01_SAR_097.tif", grey(5))
    write(tmp_path / "LAB_1024" / "XiaMen_02_01_Label_097.tif", rgb)
    layout, labels = decoded("fusar-map", tmp_path, "all")
    assert layout == "official" and list(labels) == ["XiaMen_02_01_SAR_097"]
    # others, water (blue), road (yellow), building (red), vegetation (green); white is no class
    assert labels["XiaMen_02_01_SAR_097"][0, :6].tolist() == [0, 1, 2, 3, 4, NO]


# -- WHU-SAR ---------------------------------------------------------------------------------------

def test_whu_sar_crops_reduce_zero_label(tmp_path):
    crops = tmp_path / "crop512" / "test"
    for name in ("NH49E001014_000", "NH49E001014_001"):
        write(crops / "sar_dir" / f"{name}.tif", grey(6))
        write(crops / "ann_dir" / f"{name}.tif", index_label([0, 1, 7, 8]))
    layout, labels = decoded("whu-sar", tmp_path)
    assert layout == "mmseg" and list(labels) == ["NH49E001014_000", "NH49E001014_001"]
    assert labels["NH49E001014_000"][0, :4].tolist() == [NO, 0, 6, NO]  # 0 unlabelled, 7 "others" is class 6


def test_whu_sar_official_tiles(tmp_path):
    for tile in ("NH49E001014", "NH49E004021"):  # a test tile and a train tile of the official division
        write(tmp_path / "sar" / f"{tile}.tif", grey(7))
        write(tmp_path / "lbl" / f"{tile}.tif", index_label([0, 10, 40, 70, 5]))
    layout, labels = decoded("whu-sar", tmp_path)
    assert layout == "official" and list(labels) == ["NH49E001014"]
    assert labels["NH49E001014"][0, :5].tolist() == [NO, 0, 3, 6, NO]
    assert list(decoded("whu-sar", tmp_path, "train")[1]) == ["NH49E004021"]


# -- YESeg-SAR -------------------------------------------------------------------------------------

def test_yeseg_converted_and_official(tmp_path):
    for area, name in (("1", "1"), ("HY_C", "3")):
        write(tmp_path / "sar" / area / f"{name}.png", grey(8))
        write(tmp_path / "label" / area / f"{name}.png", index_label([0, 1, 6, 7]))
    layout, labels = decoded("yeseg-sar", tmp_path, "all")
    assert layout == "official" and list(labels) == ["1/1", "HY_C/3"]
    assert labels["1/1"][0, :4].tolist() == [NO, 0, 5, NO]  # background and "other" are not scored
    write(tmp_path / "cvt_label" / "HY_C" / "3.png", index_label([0, 5, 255]))
    listing(tmp_path / "test.txt", ["HY_C/3"])
    layout, labels = decoded("yeseg-sar", tmp_path)
    assert layout == "mmseg" and labels["HY_C/3"][0, :3].tolist() == [0, 5, NO]


# -- PIE-SAR and an end-to-end score ---------------------------------------------------------------

def test_pie_sar_scored_from_predictions(tmp_path):
    from backend.eval.job import EvalJob
    from backend.eval.runner import evaluate

    root, predictions = tmp_path / "PIE-RGB-SAR", tmp_path / "pred"
    label = np.zeros((8, 12), dtype=np.uint8)  # class 0 (background) on rows 0-3, city (1) on rows 4-7
    label[4:] = 1
    label[0, 0] = 9  # not a class: unscored
    prediction = np.zeros((8, 12), dtype=np.uint8)
    prediction[2:] = 1  # rows 2-3 wrongly city
    for name in ("p1", "p2"):
        write(root / "sar" / f"{name}.tif", grey(9))
        write(root / "label" / f"{name}.tif", label)
        write(predictions / f"{name}.png", prediction)
    write(root / "sar" / "p3.tif", grey(9))
    write(root / "label" / "p3.tif", label)
    listing(root / "val.txt", ["p1", "p2"])
    scores = evaluate(EvalJob(dataset="pie-sar", root=root, predictions=predictions, out=tmp_path / "out")).scores
    # per image: background is labelled on 47 scored pixels, predicted on 23 of them (rows 0-1), all correct;
    # city is labelled on 48 pixels (rows 4-7) and predicted on 72 (rows 2-7): IoU 23/47 and 48/72
    assert scores["per_class_iou"][0] == pytest.approx(23 / 47)
    assert scores["per_class_iou"][1] == pytest.approx(48 / 72)
    assert scores["per_class_iou"][2:] == [None] * 4
    assert scores["miou"] == pytest.approx((23 / 47 + 48 / 72) / 2)


def test_wrong_root_and_split(tmp_path):
    with pytest.raises(UserInputError, match="is not a folder"):
        open_split(find_dataset("pie-sar"), tmp_path / "missing")
    with pytest.raises(UserInputError, match="holds no PIE-SAR val split"):
        open_split(find_dataset("pie-sar"), tmp_path)
    with pytest.raises(UserInputError, match="has no split 'test'"):
        open_split(find_dataset("pie-sar"), tmp_path, "test")
