"""How fast the plugin draws a non-file layer (a local XYZ tile folder) into the GeoTIFF it sends, and its memory.

Run with nothing else on the machine: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/plugin_rendering.py
Prints, per area size, the median of 3 runs (MP/s, seconds) and peak RSS, with the load average.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ZOOM, TILES = 17, 24  # 24 × 24 tiles of 256 px: 6144 px square at the tiles' 1.19 m
ORIGIN = 20037508.342789244
FIRST = (70400, 65500)


def tile_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    for dx in range(TILES):
        folder = root / str(ZOOM) / str(FIRST[0] + dx)
        folder.mkdir(parents=True)
        for dy in range(TILES):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / f"{FIRST[1] + dy}.png")


def main() -> None:
    from qgis.core import Qgis, QgsApplication, QgsCoordinateReferenceSystem, QgsRasterLayer, QgsRectangle

    from rs_openvocab.rendering import render_to_geotiff

    app = QgsApplication([], False)
    app.initQgis()
    root = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    tile_folder(root)
    layer = QgsRasterLayer(f"type=xyz&url=file://{root}/{{z}}/{{x}}/{{y}}.png&zmin={ZOOM}&zmax={ZOOM}", "tiles", "wms")
    tile_m = 2 * ORIGIN / 2**ZOOM
    xmin, ymax = -ORIGIN + FIRST[0] * tile_m, ORIGIN - FIRST[1] * tile_m
    gsd = tile_m / 256
    crs = QgsCoordinateReferenceSystem("EPSG:3857")
    print(f"QGIS {Qgis.QGIS_VERSION}; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for side in (1024, 2048, 4096, 6144):
        extent = QgsRectangle(xmin, ymax - side * gsd, xmin + side * gsd, ymax)
        times = []
        for repeat in range(3):
            target = root / f"out-{side}-{repeat}.tif"
            start = time.perf_counter()
            render_to_geotiff(layer, extent, crs, gsd, target)
            times.append(time.perf_counter() - start)
            target.unlink()
        median = statistics.median(times)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{side}² px ({side * side / 1e6:.1f} MP): median {median:.2f} s of {[round(t, 2) for t in times]}, "
              f"{side * side / 1e6 / median:.1f} MP/s, peak RSS so far {peak:.0f} MiB, "
              f"load {os.getloadavg()[0]:.2f}")
    del layer
    app.exitQgis()


if __name__ == "__main__":
    main()
