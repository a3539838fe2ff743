"""What reading a SAR raster costs: dB conversion, stretch and speckle filters, in the blocks the engine reads.

    .venv/bin/python bench/sar_conversion.py [--size 2048] [--repeat 3]

Writes a SIZE² dual-pol (VV, VH) float32 sigma0 GeoTIFF (bench/out/), opens it as ``rsov
segment`` does and reads it in the engine's pattern: rows 224 pixels high every 112 rows over
the whole width (one strip), so every pixel is read and converted twice. Reports megapixels
of the raster per second (median of the repeats) per setting, the time to open the raster
(stretch percentiles, looks estimate), and the load average beside them.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "grey, no filter": dict(),
    "grey, Lee 7x7": dict(speckle="lee"),
    "grey, refined Lee 7x7": dict(speckle="refined-lee"),
    "dual-pol, no filter": dict(bands=(1, 2)),
    "dual-pol, refined Lee 7x7": dict(bands=(1, 2), speckle="refined-lee"),
}


def synthetic_sentinel1(size: int) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path = OUT / f"s1-{size}.tif"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    truth = np.where(np.add.outer(np.arange(size) // 64, np.arange(size) // 64) % 3 == 0, 0.004, 0.08)
    bands = np.stack([truth, truth * 0.2]) * rng.gamma(4.4, 1 / 4.4, (2, size, size))
    with rasterio.open(path, "w", driver="GTiff", height=size, width=size, count=2, dtype="float32",
                       crs="EPSG:32633", transform=from_origin(500000, 4650000, 10, 10), tiled=True,
                       compress="deflate") as out:
        out.write(bands.astype(np.float32))
        out.set_band_description(1, "VV")
        out.set_band_description(2, "VH")
    return path


def read_like_the_engine(source) -> None:
    rows = list(range(0, max(1, source.height - 224) + 1, 112))
    with source.reader() as read:
        for row in rows:
            read(row, 0, min(224, source.height - row), source.width)


def main() -> None:
    from backend.raster.source import RasterSource, ReadOptions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = synthetic_sentinel1(args.size)
    megapixels = args.size * args.size / 1e6
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.size}² dual-pol float32, "
          f"{args.repeat} repeats; load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'setting':28} {'open s':>7} {'read MP/s':>10}")
    for name, options in SETTINGS.items():
        opens, reads = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            source = RasterSource.open(path, ReadOptions(**options))
            opens.append(time.perf_counter() - started)
            started = time.perf_counter()
            read_like_the_engine(source)
            reads.append(time.perf_counter() - started)
        print(f"{name:28} {statistics.median(opens):7.2f} {megapixels / statistics.median(reads):10.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
