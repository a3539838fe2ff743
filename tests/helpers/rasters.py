"""Small synthetic scenes: smooth bands plus noise, georeferenced in UTM 33N at 0.5 m."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin


def write_scene(path: Path, height: int, width: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([(120 + 80 * np.sin(cols / 17.0)), (100 + 60 * np.cos(rows / 11.0)),
                       rng.integers(0, 256, (height, width))]).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000.0, 4650000.0, 0.5, 0.5)) as out:
        out.write(pixels)
    return path
