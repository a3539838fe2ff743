"""A land-cover grid from a prompt: each tile of a raster classified whole, as a polygon in the raster's CRS.

Tiles are ``tile`` pixels of the working grid (the raster's, or resampled to ``gsd``), in
rows from the top left. A tile cut by the raster's edge is completed with black, as nodata
pixels are, so every tile is seen at the same scale; its polygon ends at the edge. Tiles
without any valid pixel are skipped.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import shapely
import torch
from rasterio.windows import Window

from backend.errors import Cancelled
from backend.inference.slide import BatchSize, fitted_batches
from backend.raster.grid import Grid
from backend.raster.source import RasterSource
from backend.zeroshot.encoder import ClipEncoder
from backend.zeroshot.images import clip_input, padded_tile
from backend.zeroshot.quiet import libraries_quiet
from backend.zeroshot.read_ahead import read_ahead
from backend.zeroshot.scores import class_probabilities, top_k

COLUMNS = ["row", "col", "class", "probability", "top_k", "valid_fraction"]


def tile_windows(height: int, width: int, tile: int) -> list[Window]:
    """Windows of ``tile`` pixels over a height x width grid, row by row; those at the edges cut by it."""
    return [Window(col, row, min(tile, width - col), min(tile, height - row))
            for row in range(0, height, tile) for col in range(0, width, tile)]


def tile_polygon(grid: Grid, window: Window) -> shapely.Polygon:
    """The window's outline in the grid's CRS (a rotated geotransform gives a rotated square)."""
    corners = [(window.col_off, window.row_off), (window.col_off + window.width, window.row_off),
               (window.col_off + window.width, window.row_off + window.height),
               (window.col_off, window.row_off + window.height)]
    return shapely.Polygon([grid.transform @ corner for corner in corners])


@dataclass
class GridRows:
    rows: list[dict]  # COLUMNS and "bounds" (xmin, ymin, xmax, ymax in the grid's CRS), one per classified tile
    polygons: list[shapely.Polygon]
    tiles: int  # in the grid, nodata ones included
    skipped: int  # without any valid pixel


def classify_tiles(encoder: ClipEncoder, source: RasterSource, tile: int, queries: torch.Tensor,
                   query_to_class: list[int], names: list[str], k: int, batch_size: int,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> GridRows:
    """Every tile of ``source``'s working grid with its top-``k`` classes, in row order."""
    grid = source.grid
    windows = tile_windows(grid.height, grid.width, tile)
    result = GridRows([], [], len(windows), 0)
    size = encoder.input_size
    sizes = BatchSize(batch_size, encoder.device)
    report = progress or (lambda done, total: None)
    scale = encoder.logit_scale
    done = 0

    def encode(batch: list) -> None:
        nonlocal done
        run = lambda part: encoder.image_embeddings(torch.stack([item[1] for item in part]))  # noqa: E731
        for part, embeddings in fitted_batches(batch, sizes, run, size, should_stop):
            values, indices = top_k(class_probabilities(embeddings, queries, query_to_class, scale), k)
            for (window, _, fraction), best, classes in zip(part, values.tolist(), indices.tolist()):
                polygon = tile_polygon(grid, window)
                result.polygons.append(polygon)
                result.rows.append({
                    "row": window.row_off // tile, "col": window.col_off // tile, "class": names[classes[0]],
                    "probability": round(best[0], 6),
                    "top_k": "; ".join(f"{names[c]} {p:.3f}" for c, p in zip(classes, best)),
                    "valid_fraction": round(fraction, 4), "bounds": polygon.bounds})
        done += len(batch)
        report(done + result.skipped, len(windows))

    with source.reader() as read:
        def load(window: Window):
            pixels, valid = read(window.row_off, window.col_off, window.height, window.width)
            if not valid.any():
                return None
            return clip_input(padded_tile(pixels, tile), size), float(valid.sum()) / (tile * tile)

        pending: list = []
        report(0, len(windows))
        with contextlib.closing(read_ahead(windows, load, threads=1, ahead=2 * batch_size)) as loads:  # one handle
            for window, loaded in loads:
                if should_stop is not None and should_stop():  # also where whole rows of tiles are nodata
                    raise Cancelled("cancelled")
                if loaded is None:
                    result.skipped += 1
                    continue
                pending.append((window, *loaded))
                if len(pending) >= batch_size:
                    encode(pending)
                    pending = []
        if pending:
            encode(pending)
    report(len(windows), len(windows))
    return result


def write_grid(rows: GridRows, crs, path, layer: str) -> None:
    """The tiles as polygons with COLUMNS, in ``crs``, by the file's extension (GeoPackage, GeoJSON, FlatGeobuf)."""
    import geopandas as gpd

    from backend.raster.vectorize import write_polygons

    frame = gpd.GeoDataFrame({name: [row[name] for row in rows.rows] for name in COLUMNS},
                             geometry=gpd.GeoSeries(rows.polygons, crs=crs), crs=crs)
    with libraries_quiet():
        write_polygons(frame, path, layer=layer)
