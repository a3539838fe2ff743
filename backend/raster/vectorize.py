"""Class raster -> polygons with class, score and area, tile by tile, merged across tile edges.

Tiles are polygonised in pixel coordinates (exact integers), so pieces of one region cut
by tile edges share their edges exactly and union back into one polygon. Simplification
treats all polygons as one coverage, so neighbours keep their shared edges.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine

from backend.errors import Cancelled, UserInputError
from backend.raster.files import open_raster
from backend.raster.grid import areas_m2
from backend.raster.writers import CLASS_NODATA, CONFIDENCE_SCALE

VECTOR_DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
                  ".fgb": "FlatGeobuf"}
TILE = 1024


@dataclass(frozen=True)
class PolygonOptions:
    simplify: float = 0.0  # tolerance in pixels; 0 keeps the pixel edges
    min_area: float = 0.0  # m²: smaller polygons are dropped
    fill_holes: float = 0.0  # m²: smaller holes are filled (and what lay in them dropped)
    out_crs: str | None = None  # default: the raster's CRS


@dataclass
class Pieces:
    """Polygons in pixel coordinates with each one's class and confidence sum and pixel count."""

    geometries: list
    classes: list[int]
    sums: list[float]
    counts: list[int]

    @classmethod
    def empty(cls) -> Pieces:
        return cls([], [], [], [])

    def add(self, geometry, class_id: int, total: float, count: int) -> None:
        self.geometries.append(geometry)
        self.classes.append(class_id)
        self.sums.append(total)
        self.counts.append(count)

    def extend(self, other: Pieces) -> None:
        for name in ("geometries", "classes", "sums", "counts"):
            getattr(self, name).extend(getattr(other, name))


@dataclass
class BandPieces:
    """The polygons of one column band: ``done`` lie inside it, ``open`` touch an inner tile edge."""

    done: Pieces
    open: Pieces


def _polygonize_tile(classes: np.ndarray, confidence: np.ndarray, row: int, col: int, edges: tuple[bool, ...],
                     done: Pieces, open_: Pieces) -> None:
    """Polygons of one tile; those touching an inner tile edge (``edges``: top, bottom, left, right) stay open."""
    from rasterio.features import shapes
    from scipy import ndimage

    offset = Affine.translation(col, row)
    for class_id in np.unique(classes):
        if class_id == CLASS_NODATA:
            continue
        labels, count = ndimage.label(classes == class_id)  # 4-connected, as rasterio's shapes
        totals = np.bincount(labels.ravel(), weights=confidence.ravel(), minlength=count + 1)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        border = set()
        for side, cut in zip((labels[0], labels[-1], labels[:, 0], labels[:, -1]), edges):
            if cut:
                border.update(np.unique(side).tolist())
        for geometry, value in shapes(labels.astype(np.int32), mask=labels > 0, connectivity=4, transform=offset):
            label = int(value)
            target = open_ if label in border else done
            target.add(shapely.geometry.shape(geometry), int(class_id), float(totals[label]), int(sizes[label]))


def _merge_open(open_: Pieces, done: Pieces) -> None:
    """Union the open pieces of each class into whole polygons, adding their sums and counts."""
    classes = np.array(open_.classes, dtype=int)
    geometries = np.array(open_.geometries, dtype=object)
    sums, counts = np.array(open_.sums), np.array(open_.counts)
    for class_id in np.unique(classes):
        chosen = classes == class_id
        parts = shapely.get_parts(shapely.union_all(geometries[chosen]))
        tree = shapely.STRtree(parts)
        points = shapely.point_on_surface(geometries[chosen])
        piece_index, part_index = tree.query(points, predicate="intersects")
        first = np.unique(piece_index, return_index=True)[1]  # a point on a shared vertex: take one part
        owner = np.zeros(len(points), dtype=int)
        owner[piece_index[first]] = part_index[first]
        part_sums = np.bincount(owner, weights=sums[chosen], minlength=len(parts))
        part_counts = np.bincount(owner, weights=counts[chosen], minlength=len(parts))
        for part, total, count in zip(parts, part_sums, part_counts):
            done.add(part, int(class_id), float(total), int(count))


def _fill_holes(geometries: np.ndarray, crs: CRS | None, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Polygons without holes smaller than ``limit`` m², and the mask of polygons not inside a filled hole."""
    filled_holes = []
    result = geometries.copy()
    for index, polygon in enumerate(geometries):
        if not polygon.interiors:
            continue
        holes = np.array([shapely.Polygon(ring) for ring in polygon.interiors], dtype=object)
        small = areas_m2(holes, crs) < limit
        if small.any():
            result[index] = shapely.Polygon(polygon.exterior, [ring for ring, s in zip(polygon.interiors, small) if not s])
            filled_holes.extend(holes[small])
    keep = np.ones(len(geometries), dtype=bool)
    if filled_holes:
        tree = shapely.STRtree(filled_holes)
        inside, _ = tree.query(shapely.point_on_surface(geometries), predicate="within")
        keep[inside] = False
    return result, keep


def band_pieces(classes, confidence, col0: int, col1: int, should_stop: Callable[[], bool] | None = None,
                tile: int = TILE, file_col: int = 0, width: int | None = None) -> BandPieces:
    """The polygons of grid columns ``col0:col1``, tile by tile, in pixel coordinates of the whole grid.

    ``classes`` and ``confidence`` are open rasters whose column 0 is grid column ``file_col``
    (a cluster worker's strip raster; 0 for the whole grid) and ``width`` the grid's width.
    """
    from rasterio.windows import Window

    height, width = classes.height, width or classes.width
    pieces = BandPieces(Pieces.empty(), Pieces.empty())
    for row in range(0, height, tile):
        for col in range(col0, col1, tile):
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            cols = min(tile, col1 - col)
            window = Window(col - file_col, row, cols, min(tile, height - row))
            edges = (row > 0, row + tile < height, col > 0, col + cols < width)
            _polygonize_tile(classes.read(1, window=window), confidence.read(1, window=window).astype(np.float64),
                             row, col, edges, pieces.done, pieces.open)
    return pieces


def polygonize(class_path: Path, confidence_path: Path, class_names: list[str], options: PolygonOptions,
               should_stop: Callable[[], bool] | None = None, tile: int = TILE,
               bands: list[tuple[int, int]] | None = None, pieces: list[BandPieces] | None = None):
    """A GeoDataFrame of class polygons (class_id, class_name, score, area_m2) from the class raster.

    The raster is cut into column ``bands`` (default: one), each into tiles; ``pieces`` are the
    bands' polygons made elsewhere (by cluster workers, with ``band_pieces``), in band order.
    The same bands give the same polygons in the same order, wherever they were made.
    """
    import geopandas as gpd

    with open_raster(class_path) as classes, open_raster(confidence_path) as conf:
        crs, transform, width = classes.crs, classes.transform, classes.width
        if pieces is None:
            pieces = [band_pieces(classes, conf, col0, col1, should_stop, tile) for col0, col1 in bands or [(0, width)]]
    done, open_ = Pieces.empty(), Pieces.empty()
    for band in pieces:
        done.extend(band.done)
        open_.extend(band.open)
    if open_.geometries:
        _merge_open(open_, done)
    geometries = np.array(done.geometries, dtype=object)
    if options.simplify > 0 and len(geometries):
        geometries = shapely.coverage_simplify(geometries, options.simplify)
    geometries = shapely.transform(geometries, lambda xy: np.column_stack(transform @ (xy[:, 0], xy[:, 1])))
    class_ids = np.array(done.classes, dtype=int)
    score = np.array(done.sums) / np.maximum(np.array(done.counts), 1) / CONFIDENCE_SCALE
    keep = ~shapely.is_empty(geometries) if len(geometries) else np.zeros(0, bool)
    if options.fill_holes > 0 and len(geometries):
        geometries, outside_filled = _fill_holes(geometries, crs, options.fill_holes)
        keep &= outside_filled
    area = areas_m2(geometries, crs)
    if options.min_area > 0:
        keep &= area >= options.min_area
    frame = gpd.GeoDataFrame({
        "class_id": class_ids[keep].astype(np.int32),
        "class_name": [class_names[i] for i in class_ids[keep]],
        "score": score[keep].round(4),
        "area_m2": area[keep].round(2),
    }, geometry=gpd.GeoSeries(geometries[keep], crs=crs), crs=crs)
    if options.out_crs is not None:
        frame = frame.to_crs(options.out_crs)
    return frame.sort_values(["class_id", "area_m2"], ascending=[True, False], ignore_index=True)


def vector_driver(path: Path) -> str:
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise UserInputError(f"{{out}} {path} has an unknown extension; use .gpkg, .shp, .geojson or .fgb.", "out")
    return driver


def write_polygons(frame, path: Path, layer: str | None = None) -> None:
    """Write by extension: GPKG (layer ``layer`` or the file's stem), shapefile, GeoJSON, FlatGeobuf."""
    import warnings

    import pyogrio

    driver = vector_driver(path)
    # GeoPackage 1.3: QGIS 3.22's GDAL (3.6) reads 1.4 only "partially" and says so on every open
    extra = {"layer": layer or path.stem, "dataset_options": {"VERSION": "1.3"}} if driver == "GPKG" else {}
    if driver == "ESRI Shapefile":
        extra["encoding"] = "UTF-8"
    with warnings.catch_warnings():  # plain images have no CRS, which pyogrio would warn about
        warnings.simplefilter("ignore", UserWarning)
        pyogrio.write_dataframe(frame, path, driver=driver, geometry_type="Polygon", **extra)
