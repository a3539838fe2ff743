"""Areas of interest: a bounding box, a WKT geometry or a vector file, reprojected to the raster."""
from __future__ import annotations

from pathlib import Path

import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError
from shapely.geometry.base import BaseGeometry

from backend.errors import UserInputError


def parse_crs(text: str, field: str) -> CRS:
    """A CRS from EPSG:XXXX, WKT, PROJ or a URN; otherwise a one-line error naming the job ``field``."""
    try:
        return CRS.from_user_input(text)
    except (CRSError, ValueError):
        raise UserInputError(f"{{{field}}} {text!r} is not a coordinate reference system; "
                             "give one like EPSG:4326 or EPSG:32633.", field) from None


def _bbox(text: str) -> BaseGeometry | None:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 4:
        return None
    try:
        xmin, ymin, xmax, ymax = (float(part) for part in parts)
    except ValueError:
        return None
    if not (xmin < xmax and ymin < ymax):
        raise UserInputError(f"{{aoi}} {text!r} is not a bounding box: give XMIN,YMIN,XMAX,YMAX with XMIN < XMAX "
                             "and YMIN < YMAX.", "aoi")
    return shapely.box(xmin, ymin, xmax, ymax)


def is_file(text: str) -> bool:
    """True when ``text`` names an existing file (``~`` expanded); a long WKT string is no file name."""
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError, RuntimeError):  # a long WKT string, a NUL, ~nosuchuser: no file name
        return False


def _read_vector(path: Path, layer: str | None) -> tuple[BaseGeometry, CRS | None]:
    import pyogrio

    try:
        layers = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as error:  # noqa: BLE001 - GDAL's many ways to fail on a file it cannot read
        raise UserInputError(f"AOI file {path} cannot be read ({str(error).splitlines()[0][:100]}); "
                             "give a GeoPackage, shapefile, GeoJSON or another vector file GDAL opens.", "aoi") from None
    if layer is not None and layer not in layers:
        raise UserInputError(f"AOI file {path} has no layer {layer!r}; its layers are {', '.join(layers)}.",
                             "aoi_layer")
    frame = pyogrio.read_dataframe(path, layer=layer or layers[0])
    if frame.empty:
        raise UserInputError(f"AOI file {path} holds no features; draw the area of interest first.", "aoi")
    crs = CRS.from_user_input(frame.crs) if frame.crs is not None else None
    return shapely.union_all(frame.geometry.values), crs


def load_aoi(text: str, layer: str | None = None, aoi_crs: str | None = None,
             raster_crs: CRS | None = None) -> BaseGeometry:
    """The area of interest as a valid (Multi)Polygon in the raster's CRS.

    ``text`` is ``XMIN,YMIN,XMAX,YMAX``, a WKT geometry, or a vector file (its first layer
    unless ``layer``). Box and WKT are in ``aoi_crs`` or else the raster's CRS; a file is in
    its own CRS, or ``aoi_crs`` when it declares none.
    """
    crs = parse_crs(aoi_crs, "aoi_crs") if aoi_crs else None
    geometry = _bbox(text)
    if geometry is None and is_file(text):
        geometry, file_crs = _read_vector(Path(text).expanduser(), layer)
        crs = file_crs or crs
    elif geometry is None:
        try:
            geometry = shapely.from_wkt(text)
        except shapely.errors.ShapelyError:
            raise UserInputError(f"{{aoi}} {text[:60]!r} is neither XMIN,YMIN,XMAX,YMAX, a WKT geometry, nor an "
                                 "existing vector file; check the value.", "aoi") from None
    if geometry is None or geometry.is_empty:
        raise UserInputError(f"{{aoi}} {text[:60]!r} is empty; give an area with a non-zero extent.", "aoi")
    if not shapely.is_valid(geometry):
        raise UserInputError(f"{{aoi}} {text[:60]!r} is not a valid geometry ({shapely.is_valid_reason(geometry)}); "
                             "fix it first, e.g. with QGIS's Fix Geometries.", "aoi")
    polygons = shapely.get_parts(geometry)
    polygons = [part for part in polygons if part.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        raise UserInputError(f"{{aoi}} {text[:60]!r} has no area ({geometry.geom_type}); give a polygon.", "aoi")
    geometry = shapely.union_all(polygons)
    if crs is not None and raster_crs is None:
        raise UserInputError(f"{{aoi}} is in {crs.to_string()} but the raster has no CRS; give the AOI in "
                             "pixel coordinates without a CRS.", "aoi")
    if crs is None or crs == raster_crs:
        return geometry
    return _reproject(geometry, crs, raster_crs)


def _reproject(geometry: BaseGeometry, source: CRS, target: CRS) -> BaseGeometry:
    """Densify the edges first so long straight sides follow the target projection."""
    import numpy as np
    from pyproj import Transformer

    xmin, ymin, xmax, ymax = geometry.bounds
    dense = shapely.segmentize(geometry, max(xmax - xmin, ymax - ymin) / 64)
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    moved = shapely.transform(dense, move)
    if not np.isfinite(shapely.get_coordinates(moved)).all():
        raise UserInputError(f"{{aoi}} cannot be expressed in the raster's CRS {target.to_string()} (it lies outside "
                             "that projection's area); check {aoi_crs}.", "aoi", "aoi_crs")
    return moved if shapely.is_valid(moved) else shapely.make_valid(moved)
