"""Zero-shot scene classification in-process with a tiny CLIP: top-k rows, probabilities, the tile grid."""
import csv
import re

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from rasterio.transform import from_origin

from backend.engine import run
from backend.errors import Cancelled, UserInputError
from backend.jobs import ClassifyJob
from backend.prompts import parse_inline_classes
from backend.zeroshot.images import clip_input, find_images
from tests.helpers.rasters import write_scene

CLASSES = "water; forest,trees,woodland; road"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three scenes of different shapes, one in a subfolder, beside files that are not images."""
    folder = tmp_path_factory.mktemp("images")
    write_scene(folder / "a.tif", 120, 160)
    write_scene(folder / "b.tif", 300, 200, seed=2)
    write_scene(folder / "sub" / "c.tif", 600, 900, seed=3)  # read by GDAL at 448 on the short side first
    (folder / "notes.txt").write_text("not an image")
    (folder / "a.tif.aux.xml").write_text("<PAMDataset/>")
    (folder / ".hidden").mkdir()
    write_scene(folder / ".hidden" / "d.tif", 50, 50)
    return folder


def job(tiny_files, input, **changes):
    changes = {"classes": CLASSES, "clip_weights": str(tiny_files["open_clip"]), "device": "cpu", "offline": True,
               **changes}
    return ClassifyJob(input, **changes)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_is_searched_with_its_subfolders_for_rasters_only(images):
    assert find_images(images) == [images / "a.tif", images / "b.tif", images / "sub" / "c.tif"]


def test_a_folder_gives_top_k_rows_per_image_ordered_and_summing_to_at_most_one(images, tiny_files, tmp_path):
    out = tmp_path / "classes.csv"
    result = run(job(tiny_files, images, out=out, top_k=2))
    rows = read_rows(out)
    assert list(rows[0]) == ["file", "rank", "class", "probability"]
    assert [row["file"] for row in rows] == [str(p) for p in find_images(images) for _ in range(2)]
    for first, second in zip(rows[::2], rows[1::2]):
        assert (first["rank"], second["rank"]) == ("1", "2")
        assert float(first["probability"]) >= float(second["probability"]) > 0
        assert float(first["probability"]) + float(second["probability"]) <= 1
        assert first["class"] != second["class"] and {first["class"], second["class"]} <= {"water", "forest", "road"}
    assert (result.items, result.unit, result.encoded, sum(result.class_counts)) == (3, "images", 3, 3)
    assert result.rows == [{**row, "rank": int(row["rank"]), "probability": float(row["probability"])}
                           for row in rows]


def test_probabilities_are_the_softmax_of_the_scaled_cosines_best_over_synonyms(images, tiny_files):
    from backend.models.clip_loading import load_clip
    from tests.helpers.models import segmentor

    result = run(job(tiny_files, images / "b.tif", top_k=3))
    clip, _ = load_clip(tiny_files["open_clip"], quick_gelu=True)
    with rasterio.open(images / "b.tif") as source:
        pixels = source.read()
    with torch.no_grad():
        image = F.normalize(clip.encode_image(clip_input(pixels, 224)[None]), dim=-1)[0]
    classes = parse_inline_classes(CLASSES)
    queries = segmentor(clip).prompt(classes).embeddings  # segment's prompts: 80 templates per synonym
    scale = float(clip.logit_scale.detach().exp())
    assert result.logit_scale == pytest.approx(scale) and scale < 100  # the model's own temperature (tiny: 1/0.07)
    per_query = torch.softmax(scale * (queries @ image), dim=0)
    expected = [float(per_query[[i for i, c in enumerate(classes.query_to_class) if c == k]].max()) for k in range(3)]
    got = {row["class"]: row["probability"] for row in result.rows}
    assert [got[name] for name in classes.names] == pytest.approx(expected, abs=2e-6)
    assert [row["class"] for row in result.rows] == [classes.names[i] for i in np.argsort(expected)[::-1]]
    assert sum(expected) < 1  # synonyms: the best of each class's, not their sum


def test_preprocessing_is_clips_resize_of_the_shorter_side_and_centre_crop():
    from PIL import Image

    from backend.torchvision_compat import import_open_clip

    transform = import_open_clip().transform.image_transform(224, is_train=False)
    rows, cols = np.mgrid[0:300, 0:500]
    pixels = np.stack([120 + 80 * np.sin(cols / 17.0), 100 + 60 * np.cos(rows / 11.0),
                       (rows + cols) % 256]).astype(np.uint8)
    reference = transform(Image.fromarray(pixels.transpose(1, 2, 0)))
    ours = clip_input(pixels, 224)
    assert ours.shape == reference.shape == (3, 224, 224)
    assert (ours - reference).abs().mean() < 0.01  # torch's antialiased bicubic against PIL's: ~1 grey level


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """700 x 530 pixels at 0.5 m with nodata (0) over the top right tile of 256."""
    path = tmp_path_factory.mktemp("big") / "big.tif"
    pixels = np.random.default_rng(1).integers(1, 256, (3, 700, 530), dtype=np.uint8)
    pixels[:, :256, 256:512] = 0
    with rasterio.open(path, "w", driver="GTiff", height=700, width=530, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(pixels)
    return path


def test_a_big_raster_becomes_a_georeferenced_grid_of_tiles_without_the_nodata_ones(big, tiny_files, tmp_path):
    import pyogrio
    import shapely

    out = tmp_path / "grid.gpkg"
    result = run(job(tiny_files, big, tile=256, out=out, top_k=2))
    grid = pyogrio.read_dataframe(out)
    assert list(grid.columns) == ["row", "col", "class", "probability", "top_k", "valid_fraction", "geometry"]
    assert grid.crs == "EPSG:32633"
    assert len(grid) == 3 * 3 - 1 and result.skipped == 1  # tile (0, 1) is all nodata
    assert (0, 1) not in set(zip(grid.row, grid.col))
    first = grid[(grid.row == 0) & (grid.col == 0)].geometry.iloc[0]
    assert first.equals(shapely.box(500000, 4650000 - 128, 500128, 4650000))  # 256 px of 0.5 m
    corner = grid[(grid.row == 2) & (grid.col == 2)].iloc[0]  # cut by both edges: 18 x 188 pixels
    assert corner.geometry.equals(shapely.box(500256, 4650000 - 350, 500265, 4650000 - 256))
    assert corner.valid_fraction == pytest.approx(18 * 188 / 256**2, abs=1e-4)
    assert grid.geometry.union_all().area == pytest.approx(530 * 700 * 0.25 - 128 * 128)
    for row in grid.itertuples():
        best, second = row.top_k.split("; ")
        assert best == f"{row._3} {row.probability:.3f}" and float(second.split()[-1]) <= row.probability
    assert result.rows[0]["bounds"] == pytest.approx((500000, 4650000 - 128, 500128, 4650000))


def test_tiles_at_another_gsd_cover_more_ground(big, tiny_files, tmp_path):
    import pyogrio

    out = tmp_path / "grid.fgb"
    run(job(tiny_files, big, tile=128, gsd=2.0, out=out))  # 265 x 350 m at ~2 m: 132 x 175 px, 2 x 2 tiles
    grid = pyogrio.read_dataframe(out)
    assert len(grid) == 4
    first = grid[(grid.row == 0) & (grid.col == 0)].geometry.iloc[0]  # working-grid pixels: 265/132 x 350/175 m
    assert first.bounds == pytest.approx((500000, 4650000 - 128 * 2, 500000 + 128 * 265 / 132, 4650000))


def test_a_cancelled_run_writes_nothing(images, tiny_files, tmp_path):
    out = tmp_path / "classes.csv"
    with pytest.raises(Cancelled):
        run(job(tiny_files, images, out=out), should_stop=lambda: True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("changes,sentence", [
    ({"tile": 256}, "tile classifies the tiles of one raster but {images} is a folder; give one raster, or leave out "
                    "tile to classify each image whole."),
    ({"gsd": 2.0}, "gsd sets the tiles' ground sampling distance; give tile too (whole images are resized to the "
                   "model's input size)."),
    ({"top_k": 0}, "top_k 0 must be at least 1."),
    ({"out": "{tmp}/classes.gpkg"}, "out {tmp}/classes.gpkg must end in .csv; rename it."),
    ({"input": "{big}", "tile": 256}, "tile makes a grid of tile polygons; give out GRID.gpkg."),
    ({"input": "{big}", "tile": 256, "out": "{tmp}/grid.shp"}, "out {tmp}/grid.shp must end in .gpkg, .geojson, "
                                                               ".json, .fgb; rename it."),
    ({"input": "{tmp}/nothing"}, "input {tmp}/nothing does not exist; check the path."),
    ({"input": "{tmp}"}, "input {tmp} holds no image GDAL reads (.tif, .jp2, .png, .jpg, ...) in it or its "
                         "subfolders; give another folder."),
    ({"classes": " ; "}, "classes holds no class names; give at least one class."),
    ({"model": "nope"}, None),
])
def test_bad_input_is_one_sentence_naming_the_field(images, big, tiny_files, tmp_path, changes, sentence):
    values = {name: value.format(tmp=tmp_path, big=big) if isinstance(value, str) else value
              for name, value in changes.items()}
    with pytest.raises(UserInputError) as caught:
        job(tiny_files, values.pop("input", images), **values).validate()
    if sentence is not None:
        assert str(caught.value) == sentence.format(images=images, tmp=tmp_path, big=big)
    assert set(re.findall(r"\{(\w+)\}", caught.value.template)) <= set(caught.value.fields) != set()


def test_an_existing_output_is_kept_without_overwrite(images, tiny_files, tmp_path):
    out = tmp_path / "classes.csv"
    out.write_text("precious")
    with pytest.raises(UserInputError, match="already exists; pass overwrite"):
        run(job(tiny_files, images, out=out))
    assert out.read_text() == "precious"
    run(job(tiny_files, images, out=out, overwrite=True))
    assert read_rows(out)[0]["rank"] == "1"
