"""Polygons from a class raster: whole across tile edges, scored, simplified as a coverage, filtered."""
import contextlib

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from backend.raster.files import Staging
from backend.raster.vectorize import PolygonOptions, band_pieces, polygonize, write_polygons
from backend.raster.writers import CLASS_NODATA, CONFIDENCE_SCALE


@contextlib.contextmanager
def atomic_output(target):
    """One staged file, renamed onto ``target`` when the block succeeds."""
    with Staging() as staging:
        yield staging.path_for(target)
        staging.commit()

NAMES = ["background", "building", "water"]


def write_pair(folder, classes, confidence, crs="EPSG:32633", transform=from_origin(500000, 4650000, 2, 2)):
    paths = []
    for name, data, dtype in (("classes", classes, "uint8"), ("confidence", confidence, "uint16")):
        path = folder / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1,
                           dtype=dtype, crs=crs, transform=transform) as out:
            out.write(data.astype(dtype), 1)
        paths.append(path)
    return paths


@pytest.fixture
def blobs(tmp_path):
    rng = np.random.default_rng(3)
    classes = np.zeros((90, 120), np.uint8)
    classes[10:70, 20:100] = 1  # a big building crossing many tile edges
    classes[30:40, 40:60] = 2  # a pond inside it: a hole
    classes[75:80, 5:8] = 2
    classes[0:3, 0:3] = CLASS_NODATA
    classes[50:52, 110:112] = 1  # a small one
    confidence = rng.integers(0, CONFIDENCE_SCALE, classes.shape)
    return classes, confidence, write_pair(tmp_path, classes, confidence)


def test_column_bands_made_apart_give_the_polygons_of_the_whole_raster(blobs, tmp_path):
    """Bands polygonised from their own strip rasters (as Ray workers do) equal the bands of the whole raster,
    and cutting into bands changes no polygon's shape, score or area."""
    classes, confidence, (class_path, confidence_path) = blobs
    bands = [(0, 50), (50, 75), (75, 120)]
    together = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=16, bands=bands)
    pieces = []
    for col0, col1 in bands:
        folder = tmp_path / f"band-{col0}"
        folder.mkdir()
        strip_classes, strip_confidence = write_pair(folder, classes[:, col0:col1], confidence[:, col0:col1])
        with rasterio.open(strip_classes) as c, rasterio.open(strip_confidence) as f:
            pieces.append(band_pieces(c, f, col0, col1, tile=16, file_col=col0, width=classes.shape[1]))
    apart = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=16, bands=bands, pieces=pieces)
    assert len(apart) == len(together) > 3
    assert apart.drop(columns="geometry").equals(together.drop(columns="geometry"))
    assert all(a.equals_exact(b, 0) for a, b in zip(apart.geometry, together.geometry))
    whole = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=4096)
    assert len(whole) == len(together)
    for a, b in zip(whole.geometry, together.geometry):
        assert shapely.equals(a, b)
    np.testing.assert_array_equal(whole.score, together.score)


def test_polygons_cut_by_tiles_come_out_whole(blobs):
    classes, confidence, (class_path, confidence_path) = blobs
    whole = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=4096)
    tiled = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=16)
    assert len(whole) == len(tiled)
    for a, b in zip(whole.geometry, tiled.geometry):
        assert shapely.equals(a, b)
    np.testing.assert_array_equal(whole.score, tiled.score)
    building = tiled[tiled.class_name == "building"].iloc[0]
    assert building.area_m2 == (60 * 80 - 10 * 20) * 4.0 and len(building.geometry.interiors) == 1
    inside = (classes == 1)
    inside[50:52, 110:112] = False
    assert building.score == pytest.approx(confidence[inside].mean() / CONFIDENCE_SCALE, abs=1e-4)
    assert set(tiled.class_id) == {0, 1, 2} and CLASS_NODATA not in set(tiled.class_id)
    assert tiled.crs == "EPSG:32633" and tiled.total_bounds[0] == 500000


def test_simplification_keeps_shared_edges(tmp_path):
    rows, cols = np.mgrid[0:200, 0:200]
    classes = ((rows - 100) ** 2 + (cols - 100) ** 2 < 70 ** 2).astype(np.uint8)  # a disc on background
    class_path, confidence_path = write_pair(tmp_path, classes, np.full(classes.shape, 1000))
    raw = polygonize(class_path, confidence_path, NAMES, PolygonOptions(), tile=64)
    simple = polygonize(class_path, confidence_path, NAMES, PolygonOptions(simplify=2), tile=64)
    assert shapely.get_num_coordinates(simple.geometry.values).sum() < shapely.get_num_coordinates(raw.geometry.values).sum() / 3
    disc = simple[simple.class_id == 1].geometry.iloc[0]
    ground = simple[simple.class_id == 0].geometry.iloc[0]
    assert shapely.equals(disc.exterior, shapely.LinearRing(ground.interiors[0]).reverse()) or \
        shapely.equals(shapely.Polygon(disc.exterior), shapely.Polygon(ground.interiors[0]))
    assert shapely.intersection(disc, ground).area == pytest.approx(0, abs=1e-6)  # no overlaps, no gaps


def test_min_area_and_hole_filling(blobs):
    _, _, (class_path, confidence_path) = blobs
    frame = polygonize(class_path, confidence_path, NAMES, PolygonOptions(min_area=100, fill_holes=1000))
    building = frame[frame.class_name == "building"]
    assert len(building) == 1 and not building.geometry.iloc[0].interiors  # 800 m² pond filled
    assert (frame.class_name == "water").sum() == 0  # the pond went with its hole; the 60 m² one is too small
    assert frame.area_m2.min() >= 100


def test_geographic_rasters_get_geodesic_areas(tmp_path):
    classes = np.ones((10, 10), np.uint8)
    class_path, confidence_path = write_pair(tmp_path, classes, np.zeros((10, 10)), crs="EPSG:4326",
                                             transform=from_origin(10.0, 60.0, 0.001, 0.001))
    frame = polygonize(class_path, confidence_path, NAMES, PolygonOptions(out_crs="EPSG:3857"))
    # 0.01 degrees square at 60 N: ~1113 m (lon, x cos 60) by ~1115 m (lat)
    assert frame.area_m2.iloc[0] == pytest.approx(556.5 * 1115.9, rel=0.005)
    assert frame.crs == "EPSG:3857"


@pytest.mark.parametrize("name", ["out.gpkg", "out.shp", "out.geojson", "out.fgb"])
def test_every_format_round_trips(blobs, tmp_path, name):
    _, _, (class_path, confidence_path) = blobs
    frame = polygonize(class_path, confidence_path, NAMES, PolygonOptions())
    target = tmp_path / "vectors" / name
    with atomic_output(target) as temporary:
        write_polygons(frame, temporary, layer="buildings")
    back = pyogrio.read_dataframe(target)
    assert list(back.columns) == ["class_id", "class_name", "score", "area_m2", "geometry"]
    assert len(back) == len(frame) and back.crs == frame.crs
    if name.endswith(".gpkg"):
        assert [layer for layer, _ in pyogrio.list_layers(target)] == ["buildings"]
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == []


def test_a_failed_write_leaves_the_old_shapefile(blobs, tmp_path):
    _, _, (class_path, confidence_path) = blobs
    frame = polygonize(class_path, confidence_path, NAMES, PolygonOptions())
    target = tmp_path / "old.shp"
    write_polygons(frame.iloc[:1], target)
    target.with_suffix(".qix").write_bytes(b"stale spatial index")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("old.*")}
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        pyogrio.write_dataframe(frame, temporary)
        raise RuntimeError("crash while writing")
    assert {p.name: p.read_bytes() for p in tmp_path.glob("old.*")} == {**before, "old.qix": b"stale spatial index"}
    assert not list(tmp_path.glob(".old*"))
    with atomic_output(tmp_path / "NEW.SHP") as temporary:
        write_polygons(frame, temporary)
    assert sorted(p.name for p in tmp_path.glob("NEW.*")) == ["NEW.SHP", "NEW.cpg", "NEW.dbf", "NEW.prj", "NEW.shx"]
    assert len(pyogrio.read_dataframe(tmp_path / "NEW.SHP")) == len(frame)
