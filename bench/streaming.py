"""Throughput and peak memory of `rsov segment` streaming over large rasters on this machine.

    .venv/bin/python bench/streaming.py tiny [--sizes 5000x5000,20000x5000,20000x20000] [--strip-width 4096]
    .venv/bin/python bench/streaming.py vit-b16 [--size 2048] [--upsampler]

``tiny``: the tests' tiny CLIP (random weights, no upsampler) on synthetic 3-band uint8 GeoTIFFs
(HEIGHTxWIDTH), to show what the pipeline itself costs and that peak RSS follows the strip
width, not the height. ``vit-b16``: ViT-B/16 with random weights (and a random SimFeatUp with
--upsampler) on a SIZE² raster. Every run is a fresh `rsov segment` process; its peak RSS is
its own ru_maxrss. Rasters and weights are cached in bench/out/. Results go by hand into
bench/RESULTS.md with the machine they were taken on.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CHILD = ("import resource, sys; from backend.cli import main; code = main(sys.argv[1:]); "
         "print(f'PEAK_MIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}'); sys.exit(code)")


def synthetic_raster(height: int, width: int) -> Path:
    """A smooth 3-band uint8 GeoTIFF (tiled, deflate), written 512 rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    path = OUT / f"synthetic-{height}x{width}.tif"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.tif")
    rng = np.random.default_rng(0)
    cols = np.arange(width)
    with rasterio.open(partial, "w", driver="GTiff", height=height, width=width, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 5000000, 0.5, 0.5), tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="YES") as out:
        for row in range(0, height, 512):
            rows = np.arange(row, min(row + 512, height))[:, None]
            base = 128 + 60 * np.sin(cols[None] / 37.0) * np.cos(rows / 53.0)
            block = np.stack([base, 255 - base, (base + rows % 97) % 256])
            block += rng.normal(0, 8, block.shape)
            out.write(np.clip(block, 0, 255).astype(np.uint8), window=Window(0, row, width, len(rows)))
    partial.rename(path)
    return path


def tiny_weights() -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.helpers.checkpoints import save_open_clip_checkpoint, tiny_clip

    path = OUT / "tiny-open_clip.pt"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        save_open_clip_checkpoint(tiny_clip(), path)
    return path


def vit_b16_weights() -> tuple[Path, Path]:
    import torch

    from backend.torchvision_compat import import_open_clip

    open_clip = import_open_clip()

    sys.path.insert(0, str(ROOT))
    from tests.helpers.checkpoints import save_simfeatup_lightning

    from backend.models.simfeatup import SimFeatUp

    clip_path, upsampler_path = OUT / "vit-b-16-random.pt", OUT / "simfeatup-random.ckpt"
    OUT.mkdir(parents=True, exist_ok=True)
    if not clip_path.exists():
        torch.manual_seed(0)
        torch.save(open_clip.create_model("ViT-B-16", pretrained=None).state_dict(), clip_path)
    if not upsampler_path.exists():
        save_simfeatup_lightning(SimFeatUp(512).eval(), upsampler_path)
    return clip_path, upsampler_path


def segment(raster: Path, *options: str) -> tuple[float, int, str]:
    """Seconds, peak RSS (MiB) and the summary line of one `rsov segment` process."""
    target = OUT / f"classes-{raster.stem}.tif"
    command = [sys.executable, "-c", CHILD, "segment", str(raster), "--classes", "ground; building,roof; water",
               "--out-raster", str(target), "--overwrite", *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    lines = done.stdout.splitlines()
    peak = int(next(line for line in lines if line.startswith("PEAK_MIB")).split()[1])
    return seconds, peak, lines[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    tiny = sub.add_parser("tiny")
    tiny.add_argument("--sizes", default="5000x5000,20000x5000,20000x20000")
    tiny.add_argument("--strip-width", default="4096")
    tiny.add_argument("--batch-size", default="16")
    vit = sub.add_parser("vit-b16")
    vit.add_argument("--size", type=int, default=2048)
    vit.add_argument("--upsampler", action="store_true")
    vit.add_argument("--batch-size", default="8")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {subprocess.check_output(['nproc']).decode().strip()} cores")
    if args.which == "tiny":
        weights = tiny_weights()
        for size in args.sizes.split(","):
            height, width = (int(v) for v in size.split("x"))
            raster = synthetic_raster(height, width)
            seconds, peak, summary = segment(raster, "--clip-weights", str(weights), "--no-upsampler", "--quiet",
                                             "--strip-width", args.strip_width, "--batch-size", args.batch_size)
            print(f"{height}x{width}: {seconds:.0f} s wall, {height * width / 1e6 / seconds:.2f} MP/s, "
                  f"peak RSS {peak} MiB (strip width {args.strip_width})", flush=True)
    else:
        clip, upsampler = vit_b16_weights()
        raster = synthetic_raster(args.size, args.size)
        options = ["--clip-weights", str(clip), "--batch-size", args.batch_size]
        options += ["--upsampler-weights", str(upsampler)] if args.upsampler else ["--no-upsampler"]
        seconds, peak, summary = segment(raster, *options)
        print(f"ViT-B/16 {'+ SimFeatUp ' if args.upsampler else ''}{args.size}x{args.size}: {seconds:.0f} s wall, "
              f"{args.size ** 2 / 1e6 / seconds:.3f} MP/s, peak RSS {peak} MiB\n  rsov: {summary}", flush=True)


if __name__ == "__main__":
    main()
