"""Ray scale-out on this machine: one raster on 1 and 2 workers, Ray's cost per strip, a batch of small scenes.

    .venv/bin/python bench/ray_scale.py raster [--size 768x1536] [--strip-width 384] [--repeat 2]
    .venv/bin/python bench/ray_scale.py overhead [--strips 8,32]
    .venv/bin/python bench/ray_scale.py batch [--scenes 200] [--side 128]

``raster``: ViT-B/16 (random weights, no upsampler) over a HEIGHTxWIDTH raster in one process
with one thread, then on a local Ray cluster of 1 CPU (one worker) and of 2 CPUs (two
workers), each worker one thread: wall time of `engine.run` (cluster start excluded, worker
start and model load included) and the scaling efficiency T1 / (2 T2).
``overhead``: the tests' tiny CLIP on 448-row rasters of 8 and 32 strips of 448 columns, in
one process and on one Ray worker: the difference per extra strip is Ray's cost per strip,
the rest its fixed cost (worker start, model load, stitching).
``batch``: SCENES generated SIDE² GeoTIFFs through `rsov batch` with the tiny CLIP: in this
process, in 2 processes, and on 2 Ray workers; scenes/s.
Every measurement runs in a fresh Python process. Run with nothing else on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from streaming import OUT, synthetic_raster, tiny_weights, vit_b16_weights  # noqa: E402

CLASSES = "ground; building,roof; water; trees"


def child(spec: dict) -> dict:
    """One measurement, in this (fresh) process."""
    import torch

    from backend.engine import run
    from backend.jobs import SegmentJob

    torch.set_num_threads(1)
    if spec.get("ray_cpus"):
        import ray

        ray.init(num_cpus=spec["ray_cpus"], include_dashboard=False, log_to_driver=False, configure_logging=False,
                 object_store_memory=256 * 2**20)
    if spec["what"] == "batch":
        from backend.batch.job import BatchJob

        job = BatchJob(spec["inputs"], CLASSES, out_dir=spec["out_dir"], clip_weights=spec["weights"],
                       no_upsampler=True, device="cpu", workers=spec.get("workers", 1), ray=spec.get("ray"),
                       ray_workers=spec.get("ray_workers"))
        started = time.perf_counter()
        result = run(job)
        return {"seconds": time.perf_counter() - started, "done": result.done, "failed": result.failed}
    target = OUT / f"ray-{os.getpid()}.tif"
    job = SegmentJob(spec["raster"], CLASSES, out_raster=target, overwrite=True, clip_weights=spec["weights"],
                     no_upsampler=True, device="cpu", strip_width=spec["strip_width"], batch_size=8,
                     ray=spec.get("ray"), ray_workers=spec.get("ray_workers"))
    started = time.perf_counter()
    result = run(job)
    seconds = time.perf_counter() - started
    target.unlink()
    return {"seconds": seconds, "windows": result.windows, "notes": result.notes[1:]}


def measure(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "child", json.dumps(spec, default=str)], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def bench_raster(args) -> None:
    height, width = (int(v) for v in args.size.split("x"))
    raster = synthetic_raster(height, width)
    clip, _ = vit_b16_weights()
    base = {"what": "segment", "raster": str(raster), "weights": str(clip), "strip_width": args.strip_width}
    runs = {"one process, 1 thread": {}, "Ray, 1 worker": {"ray": "auto", "ray_workers": 1, "ray_cpus": 1},
            "Ray, 2 workers": {"ray": "auto", "ray_workers": 2, "ray_cpus": 2}}
    medians = {}
    for label, extra in runs.items():
        times = []
        for _ in range(args.repeat):
            result = measure({**base, **extra})
            times.append(result["seconds"])
            print(f"  {label}: {result['seconds']:.1f} s ({result['windows']} windows) load {load()}", flush=True)
        medians[label] = statistics.median(times)
        print(f"{label}: median {medians[label]:.1f} s", flush=True)
    one, two = medians["Ray, 1 worker"], medians["Ray, 2 workers"]
    print(f"ViT-B/16 {height}x{width}: scaling efficiency 1 -> 2 workers {one / (2 * two):.2f} "
          f"(speed-up {one / two:.2f}x); Ray, 1 worker vs one process: {one / medians['one process, 1 thread']:.2f}x")


def bench_overhead(args) -> None:
    weights = tiny_weights()
    rows = {}
    for strips in (int(v) for v in args.strips.split(",")):
        raster = synthetic_raster(448, 448 * strips)
        base = {"what": "segment", "raster": str(raster), "weights": str(weights), "strip_width": 448}
        local = statistics.median(measure(base)["seconds"] for _ in range(args.repeat))
        ray = statistics.median(measure({**base, "ray": "auto", "ray_workers": 1, "ray_cpus": 1})["seconds"]
                                for _ in range(args.repeat))
        rows[strips] = (local, ray)
        print(f"{strips} strips: one process {local:.2f} s, one Ray worker {ray:.2f} s, load {load()}", flush=True)
    (few, (l1, r1)), (many, (l2, r2)) = sorted(rows.items())[:2]
    per_strip = ((r2 - l2) - (r1 - l1)) / (many - few)
    print(f"Ray's cost per strip {per_strip * 1000:.0f} ms; fixed cost {(r1 - l1) - few * per_strip:.1f} s "
          "(worker start, model load, stitching)")


def scenes(count: int, side: int) -> Path:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    folder = OUT / f"scenes-{count}x{side}"
    if folder.is_dir() and len(list(folder.glob("*.tif"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        with rasterio.open(folder / f"scene-{index:04d}.tif", "w", driver="GTiff", height=side, width=side, count=3,
                           dtype="uint8", crs="EPSG:32633",
                           transform=from_origin(500000 + index * side, 5000000, 0.5, 0.5)) as out:
            out.write(rng.integers(0, 256, (3, side, side), dtype=np.uint8))
    return folder


def bench_batch(args) -> None:
    import shutil

    inputs, weights = scenes(args.scenes, args.side), tiny_weights()
    runs = {"this process": {}, "2 processes": {"workers": 2},
            "Ray, 2 workers": {"ray": "auto", "ray_workers": 2, "ray_cpus": 2}}
    for label, extra in runs.items():
        rates = []
        for _ in range(args.repeat):
            out_dir = OUT / "batch-out"
            shutil.rmtree(out_dir, ignore_errors=True)
            result = measure({"what": "batch", "inputs": str(inputs), "out_dir": str(out_dir), "weights": str(weights),
                              **extra})
            rates.append(result["done"] / result["seconds"])
            print(f"  {label}: {result['done']} scenes in {result['seconds']:.1f} s, load {load()}", flush=True)
        print(f"{label}: median {statistics.median(rates):.2f} scenes/s", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    raster = sub.add_parser("raster")
    raster.add_argument("--size", default="768x1536")
    raster.add_argument("--strip-width", type=int, default=384)
    overhead = sub.add_parser("overhead")
    overhead.add_argument("--strips", default="8,32")
    batch = sub.add_parser("batch")
    batch.add_argument("--scenes", type=int, default=200)
    batch.add_argument("--side", type=int, default=128)
    for each in (raster, overhead, batch):
        each.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load()}")
    {"raster": bench_raster, "overhead": bench_overhead, "batch": bench_batch}[args.which](args)


if __name__ == "__main__":
    main()
