"""What a resident model saves: two jobs with different classes in one process, one shared ModelCache.

    .venv/bin/python bench/model_cache.py [--upsampler]

ViT-B/16 with random weights (and a random SimFeatUp with --upsampler), written once to
bench/out/ as real checkpoint files, on a 224² raster (one window), with an empty text-embedding
cache: job 1 loads the weights and encodes its classes, job 2 (other classes) only encodes its
classes, job 3 (job 1's classes again) finds both in memory and on disk. Prints seconds per job
and the loads.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streaming import synthetic_raster, vit_b16_weights  # noqa: E402

from backend.engine import run  # noqa: E402
from backend.jobs import SegmentJob  # noqa: E402
from backend.models.cache import ModelCache  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upsampler", action="store_true")
    args = parser.parse_args()
    clip, upsampler = vit_b16_weights()
    raster = synthetic_raster(224, 224)
    weights = {"clip_weights": str(clip)}
    weights.update({"upsampler_weights": str(upsampler)} if args.upsampler else {"no_upsampler": True})
    cache = ModelCache()
    os.environ["RSOV_HOME"] = tempfile.mkdtemp(prefix="rsov-bench-")  # cold text-embedding cache
    print(f"machine: {platform.machine()}, {subprocess.check_output(['nproc']).decode().strip()} cores")
    first = "ground; building,roof; water"
    for index, classes in enumerate((first, "road; tree; car; field", first)):
        job = SegmentJob(raster, classes, out_raster=OUT / f"cache-{index}.tif", overwrite=True, offline=True,
                         **weights)
        started = time.perf_counter()
        run(job, models=cache)
        print(f"job {index + 1} ({classes}): {time.perf_counter() - started:.2f} s, loads so far {cache.loads}")


if __name__ == "__main__":
    main()
