"""Pixel grids on the ground and the areas of what lies on them (planar or geodesic)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window


@dataclass(frozen=True)
class Grid:
    """A pixel grid on the ground: size, geotransform and CRS (None: pixel coordinates)."""

    height: int
    width: int
    transform: Affine
    crs: CRS | None

    def window_bounds(self, window: Window) -> tuple[float, float, float, float]:
        from rasterio.windows import bounds

        return bounds(window, self.transform)

    def subgrid(self, window: Window, height: int | None = None, width: int | None = None) -> Grid:
        """The grid over ``window`` of this one, resampled to ``height`` x ``width`` pixels if given."""
        height = height or int(window.height)
        width = width or int(window.width)
        transform = (self.transform @ Affine.translation(window.col_off, window.row_off)
                     @ Affine.scale(window.width / width, window.height / height))
        return Grid(height, width, transform, self.crs)

    def pixel_polygon(self, row: float, col: float):
        corners = [self.transform @ (col + dx, row + dy) for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))]
        return shapely.Polygon(corners)

    def pixel_areas(self, row: int, count: int) -> np.ndarray:
        """m² of a pixel (at the centre column) in each of ``count`` rows from ``row``."""
        col = self.width // 2
        if self.crs is not None and self.crs.is_projected:  # the same area on every row
            return np.full(count, areas_m2([self.pixel_polygon(row, col)], self.crs)[0])
        return areas_m2([self.pixel_polygon(row + index, col) for index in range(count)], self.crs)

    def ground_sampling_distance(self) -> float:
        """Metres per pixel at the grid's centre: the side of a square of the centre pixel's area."""
        return math.sqrt(areas_m2([self.pixel_polygon(self.height / 2, self.width / 2)], self.crs)[0])


def on_the_ground(crs: CRS | None) -> bool:
    """True for CRSs whose units are known on the earth (geographic or projected), not local ones."""
    return crs is not None and (crs.is_geographic or crs.is_projected)


def areas_m2(geometries, crs: CRS | None) -> np.ndarray:
    """Areas in m²: geodesic on the ellipsoid for geographic CRSs, planar x unit² for projected ones,
    NaN without a CRS or with a local one (units unknown)."""
    geometries = np.asarray(geometries, dtype=object)
    if not on_the_ground(crs):  # no CRS, or a local (engineering) one
        return np.full(len(geometries), np.nan)
    if crs.is_geographic:
        geod = geod_of(crs)
        return np.array([abs(geod.geometry_area_perimeter(geometry)[0]) for geometry in geometries])
    return shapely.area(geometries) * crs.linear_units_factor[1] ** 2


def geod_of(crs: CRS):
    """The pyproj Geod of a CRS's ellipsoid (built once per CRS)."""
    return _geod_of_wkt(crs.to_wkt())


@functools.lru_cache(maxsize=8)
def _geod_of_wkt(wkt: str):
    from pyproj import CRS as ProjCRS

    return ProjCRS.from_user_input(wkt).get_geod()
