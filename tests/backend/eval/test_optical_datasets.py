"""The multi-class optical benchmarks (SegEarth-OV Table 2): miniatures of each released layout.

Every miniature has the real folder names, file names and label encodings (index PNG/TIFF,
RGB colour labels, a BMP stored under a .png name as the authors' converters write), a few
pixels each; decoded labels are compared with hand-written class arrays.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.errors import UserInputError
from backend.eval.datasets import DATASETS, IGNORE, find_dataset, open_split, read_label, read_rgb
from backend.eval.datasets.optical import ISAID_COLOURS, ISPRS_COLOURS, UAVID_COLOURS, UDD5_COLOURS

X = IGNORE
WHITE, BLUE, CYAN, GREEN, YELLOW, RED, BLACK = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0),
                                               (255, 255, 0), (255, 0, 0), (0, 0, 0))


def save(path: Path, array, fmt: str | None = None) -> Path:
    """Write uint8 (H, W) or (H, W, 3) ``array`` at ``path`` (its format from the suffix unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, format=fmt)
    return path


def rgb_label(rows) -> np.ndarray:
    """Rows of (r, g, b) colours -> (H, W, 3)."""
    return np.asarray(rows, dtype=np.uint8)


def image(h: int = 2, w: int = 3) -> np.ndarray:
    return np.full((h, w, 3), 90, np.uint8)


def decoded(name: str, root: Path, split: str | None = None) -> tuple[str, list[str], list[np.ndarray]]:
    layout, samples = open_split(find_dataset(name), root, split)
    return layout.name, [s.id for s in samples], [read_label(layout, s.label) for s in samples]


# -- the specs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, split, classes, prob_thd, bg_idx", [
    ("openearthmap", "val", 9, 0.1, 0), ("loveda", "val", 7, 0.3, 0), ("isaid", "val", 16, 0.4, 0),
    ("potsdam", "val", 6, 0.1, 5), ("vaihingen", "val", 6, 0.1, 5), ("uavid", "test", 7, 0.3, 0),
    ("udd5", "val", 5, 0.4, 4), ("vdd", "test", 7, 0.3, 0)])
def test_specs_match_the_authors_configs(name, split, classes, prob_thd, bg_idx):
    from backend.models.registry import find_dataset_preset

    spec, preset = DATASETS[name], find_dataset_preset(name)
    assert spec.preset == name and spec.split == split and split in spec.splits
    assert len(spec.class_lines()) == classes
    assert (preset.prob_threshold, preset.background_index) == (prob_thd, bg_idx)
    assert spec.protocol.resize_long_side == 448 and spec.protocol.window == 224 and spec.protocol.stride == 112
    assert spec.modality == "optical" and spec.foreground is None


def test_class_files_order_matches_decoded_indices():
    # index -> the class name the decoders give that index (the authors' mmseg METAINFO / converters)
    lines = {name: [line.split(",")[0] for line in DATASETS[name].class_lines()] for name in DATASETS}
    assert lines["openearthmap"] == ["background", "bareland", "grass", "pavement", "road", "tree", "water",
                                     "cropland", "building"]
    assert lines["loveda"] == ["background", "building", "road", "water", "barren", "forest", "agricultural"]
    assert lines["uavid"] == ["background", "building", "road", "car", "tree", "vegetation", "human"]
    assert lines["udd5"] == ["vegetation", "building", "road", "vehicle", "background"]
    assert lines["vdd"] == ["background", "facade", "road", "vegetation", "vehicle", "roof", "water"]
    assert lines["isaid"][14:] == ["plane", "harbor"] and lines["isaid"][:3] == ["background", "ship", "store tank"]
    for isprs in ("potsdam", "vaihingen"):
        assert lines[isprs][:5] == ["road", "building", "grass", "tree", "car"]  # the journal's prompts
    assert sorted(ISPRS_COLOURS.values()) == list(range(6)) and len(ISAID_COLOURS) == 16
    assert max(UAVID_COLOURS.values()) == 6 and sorted(UDD5_COLOURS.values()) == list(range(5))


# -- OpenEarthMap ------------------------------------------------------------------------------------

def test_openearthmap_official_follows_the_split_list_and_skips_xbd_names(tmp_path):
    save(tmp_path / "aachen/images/aachen_11.tif", image())
    save(tmp_path / "aachen/labels/aachen_11.tif", [[0, 1, 2], [8, 9, 255]])
    save(tmp_path / "aachen/images/aachen_1.tif", image())  # a train image
    save(tmp_path / "aachen/labels/aachen_1.tif", [[3, 3, 3], [3, 3, 3]])
    save(tmp_path / "adelaide/labels/adelaide_7.tif", [[8, 8, 8], [8, 8, 8]])  # xBD-derived: label only
    save(tmp_path / "koeln/images/koeln_6.tif", image())
    save(tmp_path / "koeln/labels/koeln_6.tif", [[4, 5, 6], [7, 7, 7]])
    (tmp_path / "val.txt").write_text("aachen_11.tif\nadelaide_7.tif\nkoeln_6.tif\n")
    (tmp_path / "train.txt").write_text("aachen_1.tif\n")

    layout, ids, labels = decoded("openearthmap", tmp_path)
    assert layout == "official" and ids == ["aachen_11", "koeln_6"]
    np.testing.assert_array_equal(labels[0], [[0, 1, 2], [8, X, X]])
    np.testing.assert_array_equal(labels[1], [[4, 5, 6], [7, 7, 7]])
    assert decoded("openearthmap", tmp_path, "train")[1] == ["aachen_1"]


def test_openearthmap_mmseg(tmp_path):
    save(tmp_path / "img_dir/val/aachen_11.tif", image())
    save(tmp_path / "ann_dir/val/aachen_11.tif", [[0, 8, 3], [1, 2, 10]])
    layout, ids, labels = decoded("openearthmap", tmp_path)
    assert layout == "mmseg" and ids == ["aachen_11"]
    np.testing.assert_array_equal(labels[0], [[0, 8, 3], [1, 2, X]])


# -- LoveDA ------------------------------------------------------------------------------------------

def test_loveda_official_reads_urban_and_rural_and_reduces_zero(tmp_path, caplog):
    save(tmp_path / "Val/Urban/images_png/3514.png", image())
    save(tmp_path / "Val/Urban/masks_png/3514.png", [[0, 1, 7], [4, 255, 8]])
    save(tmp_path / "Val/Rural/images_png/2522.png", image())
    save(tmp_path / "Val/Rural/masks_png/2522.png", [[2, 3, 5], [6, 6, 1]])
    save(tmp_path / "Val/Rural/images_png/2523.png", image())  # no mask: not scored, with a warning
    save(tmp_path / "Train/Urban/images_png/1366.png", image())
    save(tmp_path / "Train/Urban/masks_png/1366.png", [[1, 1, 1], [1, 1, 1]])

    layout, ids, labels = decoded("loveda", tmp_path)
    assert "1 images in" in caplog.text and "2523.png" in caplog.text
    assert layout == "official" and ids == ["2522", "3514"]
    np.testing.assert_array_equal(labels[0], [[1, 2, 4], [5, 5, 0]])
    np.testing.assert_array_equal(labels[1], [[X, 0, 6], [3, X, X]])
    assert decoded("loveda", tmp_path, "train")[1] == ["1366"]


def test_loveda_mmseg_and_its_unlabelled_test_split(tmp_path):
    save(tmp_path / "img_dir/val/3514.png", image())
    save(tmp_path / "ann_dir/val/3514.png", [[1, 0, 7], [2, 3, 4]])
    layout, ids, labels = decoded("loveda", tmp_path)
    assert layout == "mmseg" and ids == ["3514"]
    np.testing.assert_array_equal(labels[0], [[0, X, 6], [1, 2, 3]])
    with pytest.raises(UserInputError, match="LoveDA has no split 'test'"):
        open_split(find_dataset("loveda"), tmp_path, "test")


# -- iSAID -------------------------------------------------------------------------------------------

def test_isaid_official_colour_masks(tmp_path):
    save(tmp_path / "val/images/images/P0003.png", image())
    save(tmp_path / "val/images/images/P0004.png", image())  # no mask: skipped
    save(tmp_path / "val/Semantic_masks/images/P0003_instance_color_RGB.png",
         rgb_label([[(0, 0, 0), (0, 0, 63), (0, 100, 155)], [(0, 127, 255), (0, 127, 127), (9, 9, 9)]]))
    layout, ids, labels = decoded("isaid", tmp_path)
    assert layout == "official" and ids == ["P0003"]
    np.testing.assert_array_equal(labels[0], [[0, 1, 15], [14, 8, 0]])  # unknown colours are background


def test_isaid_mmseg_patches_are_bmp_under_png_names(tmp_path):
    patch = "P0003_0_896_0_896"
    save(tmp_path / f"img_dir/val/{patch}.png", image(), fmt="BMP")
    save(tmp_path / f"ann_dir/val/{patch}_instance_color_RGB.png", [[0, 15, 255], [16, 3, 9]])
    layout, samples = open_split(find_dataset("isaid"), tmp_path)
    assert layout.name == "mmseg" and [s.id for s in samples] == [patch]
    assert read_rgb(samples[0].image).shape == (2, 3, 3)
    np.testing.assert_array_equal(read_label(layout, samples[0].label), [[0, 15, X], [X, 3, 9]])


# -- Potsdam and Vaihingen ---------------------------------------------------------------------------

ISPRS_ROWS = [[WHITE, BLUE, CYAN, GREEN], [YELLOW, RED, BLACK, (254, 255, 0)]]
ISPRS_CLASSES = [[0, 1, 2, 3], [4, 5, X, X]]


def test_potsdam_official_tiles_by_the_converters_split(tmp_path):
    for tile in ("2_13", "2_10"):
        save(tmp_path / f"2_Ortho_RGB/top_potsdam_{tile}_RGB.tif", image(2, 4))
        save(tmp_path / f"5_Labels_all_noBoundary/top_potsdam_{tile}_label_noBoundary.tif", rgb_label(ISPRS_ROWS))
    save(tmp_path / "4_Ortho_RGBIR/top_potsdam_2_13_RGBIR.tif", image(2, 4))  # not the RGB product
    layout, ids, labels = decoded("potsdam", tmp_path)
    assert layout == "official" and ids == ["top_potsdam_2_13_RGB"]
    np.testing.assert_array_equal(labels[0], ISPRS_CLASSES)
    assert decoded("potsdam", tmp_path, "train")[1] == ["top_potsdam_2_10_RGB"]


def test_isprs_mmseg_reduces_zero(tmp_path):
    for name in ("potsdam", "vaihingen"):
        root = tmp_path / name
        save(root / "img_dir/val/2_13_0_0_512_512.png", image(2, 4))
        save(root / "ann_dir/val/2_13_0_0_512_512.png", [[0, 1, 2, 3], [4, 5, 6, 7]])
        layout, ids, labels = decoded(name, root)
        assert layout == "mmseg" and ids == ["2_13_0_0_512_512"]
        np.testing.assert_array_equal(labels[0], [[X, 0, 1, 2], [3, 4, 5, X]])


def test_vaihingen_official_eroded_ground_truth(tmp_path):
    for area in ("area2", "area1"):
        save(tmp_path / f"top/top_mosaic_09cm_{area}.tif", image(2, 4))
        save(tmp_path / f"eroded/top_mosaic_09cm_{area}_noBoundary.tif", rgb_label(ISPRS_ROWS))
    save(tmp_path / "full/top_mosaic_09cm_area2.tif", rgb_label(ISPRS_ROWS))  # full ground truth: not an image
    layout, samples = open_split(find_dataset("vaihingen"), tmp_path)
    assert layout.name == "official" and [s.id for s in samples] == ["top_mosaic_09cm_area2"]
    assert samples[0].image.parent.name == "top"
    np.testing.assert_array_equal(read_label(layout, samples[0].label), ISPRS_CLASSES)
    assert [s.id for s in open_split(find_dataset("vaihingen"), tmp_path, "train")[1]] == ["top_mosaic_09cm_area1"]


# -- UAVid -------------------------------------------------------------------------------------------

UAVID_ROWS = [[(0, 0, 0), (128, 0, 0), (128, 64, 128), (192, 0, 192)],
              [(64, 0, 128), (0, 128, 0), (128, 128, 0), (64, 64, 0)]]


def test_uavid_official_sequences_merge_moving_cars(tmp_path):
    for seq in ("seq22", "seq21"):
        save(tmp_path / f"test_gt/{seq}/Images/000000.png", image(2, 4))
        save(tmp_path / f"test_gt/{seq}/Labels/000000.png", rgb_label(UAVID_ROWS))
    save(tmp_path / "uavid_val/seq16/Images/000100.png", image(2, 4))
    save(tmp_path / "uavid_val/seq16/Labels/000100.png", rgb_label([[(7, 7, 7)] * 4] * 2))
    layout, ids, labels = decoded("uavid", tmp_path)
    assert layout == "official" and ids == ["seq21/000000", "seq22/000000"]
    np.testing.assert_array_equal(labels[0], [[0, 1, 2, 3], [3, 4, 5, 6]])
    val_layout, val_ids, val_labels = decoded("uavid", tmp_path, "val")
    assert val_ids == ["seq16/000100"] and not val_labels[0].any()  # an unknown colour is clutter (0)


def test_uavid_mmseg(tmp_path):
    save(tmp_path / "img_dir/test/seq21_000000_0_1080_0_1280.png", image(), fmt="BMP")
    save(tmp_path / "ann_dir/test/seq21_000000_0_1080_0_1280.png", [[0, 6, 7], [255, 3, 1]])
    layout, ids, labels = decoded("uavid", tmp_path)
    assert layout == "mmseg" and ids == ["seq21_000000_0_1080_0_1280"]
    np.testing.assert_array_equal(labels[0], [[0, 6, X], [X, 3, 1]])


# -- UDD5 and VDD ------------------------------------------------------------------------------------

def test_udd5_index_gt_and_visualisation_colours(tmp_path):
    save(tmp_path / "val/src/DJI_0538.JPG", image(), fmt="JPEG")
    save(tmp_path / "val/gt/DJI_0538.png", [[0, 1, 2], [3, 4, 5]])
    save(tmp_path / "train/src/DJI_0001.JPG", image(), fmt="JPEG")
    save(tmp_path / "train/gt/DJI_0001.png", rgb_label([[(107, 142, 35), (102, 102, 156), (128, 64, 128)],
                                                         [(0, 0, 142), (0, 0, 0), (1, 2, 3)]]))
    layout, ids, labels = decoded("udd5", tmp_path)
    assert layout == "official" and ids == ["DJI_0538"]
    np.testing.assert_array_equal(labels[0], [[0, 1, 2], [3, 4, X]])
    np.testing.assert_array_equal(decoded("udd5", tmp_path, "train")[2][0], [[0, 1, 2], [3, 4, X]])


def test_vdd_test_split(tmp_path):
    save(tmp_path / "test/src/DJI_0001.JPG", image(), fmt="JPEG")
    save(tmp_path / "test/gt/DJI_0001.png", [[0, 1, 2], [5, 6, 7]])
    save(tmp_path / "val/src/DJI_0002.JPG", image(), fmt="JPEG")
    save(tmp_path / "val/gt/DJI_0002.png", [[3, 3, 3], [4, 4, 4]])
    layout, ids, labels = decoded("vdd", tmp_path)
    assert layout == "official" and ids == ["DJI_0001"]
    np.testing.assert_array_equal(labels[0], [[0, 1, 2], [5, 6, X]])
    assert decoded("vdd", tmp_path, "val")[1] == ["DJI_0002"]


# -- bad roots ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["openearthmap", "loveda", "isaid", "potsdam", "vaihingen", "uavid", "udd5",
                                  "vdd"])
def test_a_root_without_the_split_is_one_sentence(tmp_path, name):
    spec = find_dataset(name)
    (tmp_path / "something_else").mkdir()
    with pytest.raises(UserInputError, match=f"holds no {spec.title} {spec.split} split in a known layout"):
        open_split(spec, tmp_path)
    with pytest.raises(UserInputError, match="is not a folder"):
        open_split(spec, tmp_path / "missing")
    with pytest.raises(UserInputError, match="has no split 'nope'"):
        open_split(spec, tmp_path, "nope")


def test_a_single_band_label_where_colours_are_expected_is_refused(tmp_path):
    layout = find_dataset("potsdam").layouts[1]
    path = save(tmp_path / "grey.tif", [[0, 1], [2, 3]])
    with pytest.raises(UserInputError, match="is not a label of this data set.s official layout"):
        read_label(layout, path)


# -- end to end: saved predictions scored ------------------------------------------------------------

def test_potsdam_predictions_scored_by_hand(tmp_path):
    from backend.eval.job import EvalJob
    from backend.eval.runner import evaluate

    root = tmp_path / "potsdam"
    save(root / "2_Ortho_RGB/top_potsdam_2_13_RGB.tif", image(2, 4))
    save(root / "5_Labels_all_noBoundary/top_potsdam_2_13_label_noBoundary.tif",
         rgb_label([[WHITE, WHITE, BLUE, BLACK], [GREEN, GREEN, BLUE, RED]]))  # 0 0 1 X / 3 3 1 5
    save(tmp_path / "pred/top_potsdam_2_13_RGB.png", [[0, 1, 1, 4], [3, 0, 1, 5]])

    report = evaluate(EvalJob(dataset="potsdam", root=root, predictions=tmp_path / "pred", out=tmp_path / "out"))
    scores = report.scores
    # class 0: TP 1, FP 1 (a tree pixel), FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 3: TP 1, FN 1 -> 1/2;
    # class 5: 1; classes 2 and 4 absent from labels and predictions (the car guess is on a boundary pixel)
    assert scores["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, None, 1 / 2, None, 1.0])
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2 + 1) / 4)
    assert scores["pixel_accuracy"] == pytest.approx(5 / 7) and scores["scored_pixels"] == 7
    assert report.results[0].layout == "official" and report.results[0].images == 1


def test_uavid_predictions_with_sequence_ids(tmp_path):
    from backend.eval.job import EvalJob
    from backend.eval.runner import evaluate

    root = tmp_path / "UAVid"
    save(root / "test_gt/seq21/Images/000000.png", image(1, 4))
    save(root / "test_gt/seq21/Labels/000000.png", rgb_label([[(0, 0, 0), (128, 0, 0), (64, 0, 128), (192, 0, 192)]]))
    save(root / "test_gt/seq25/Images/000000.png", image(1, 4))
    save(root / "test_gt/seq25/Labels/000000.png", rgb_label([[(64, 64, 0)] * 4]))
    save(tmp_path / "pred/seq21/000000.png", [[0, 1, 3, 2]])  # labels 0 1 3 3
    save(tmp_path / "pred/seq25/000000.png", [[6, 6, 0, 0]])  # labels 6 6 6 6

    scores = evaluate(EvalJob(dataset="uavid", root=root, predictions=tmp_path / "pred", out=tmp_path / "out")).scores
    # background: TP 1, FP 2 -> 1/3; building 1; road: FP 1 -> 0; car: TP 1, FN 1 -> 1/2; human: TP 2, FN 2 -> 1/2
    assert scores["per_class_iou"] == pytest.approx([1 / 3, 1.0, 0.0, 1 / 2, None, None, 1 / 2])
    assert scores["miou"] == pytest.approx((1 / 3 + 1 + 0 + 1 / 2 + 1 / 2) / 5)
