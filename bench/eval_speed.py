"""Time `rsov eval` per image: SegEarth-OV (random ViT-B/16 + SimFeatUp) on a generated LoveDA split.

    .venv/bin/python bench/eval_speed.py [--images 6] [--size 1024] [--no-upsampler] [--precision fp32|bf16]

Writes a LoveDA miniature in the authors' layout (img_dir/val + ann_dir/val, 1,024² PNGs
like LoveDA's), saves full-size random weights in their released formats, and runs
``evaluate`` on it: every image is resized to 448 on its long side, so each costs 9 windows
whatever the data set, and the seconds per image give the time of a whole table. Prints
the median seconds per image after the first, the model load with the text encoding, the
first image, peak RSS and the load average. Results are recorded by hand
in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.segment_speed import random_simfeatup, vit_b16  # noqa: E402
from tests.helpers.checkpoints import save_open_clip_safetensors, save_simfeatup_lightning  # noqa: E402

SPLITS = {"OpenEarthMap": 384, "LoveDA": 1669, "iSAID": 11644, "Potsdam": 2016, "Vaihingen": 398,
          "UAVid": 1020}  # images (patches) the authors score, docs/datasets.md


def write_loveda(root: Path, count: int, size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("img_dir/val", "ann_dir/val"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[0:size, 0:size]
    for number in range(count):
        pixels = np.stack([120 + 80 * np.sin(cols / (17.0 + number)), 100 + 60 * np.cos(rows / 11.0),
                           rng.integers(0, 256, (size, size))], axis=-1).astype(np.uint8)
        Image.fromarray(pixels).save(root / "img_dir" / "val" / f"{number}.png")
        Image.fromarray(rng.integers(0, 8, (size, size), dtype=np.uint8)).save(root / "ann_dir" / "val" / f"{number}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--no-upsampler", action="store_true")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()

    from backend.eval.job import EvalJob
    from backend.eval.runner import evaluate

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["RSOV_HOME"] = str(scratch / "home")
        write_loveda(scratch / "LoveDA", args.images, args.size)
        clip = save_open_clip_safetensors(vit_b16(), scratch / "vit-b-16.safetensors")
        upsampler = None if args.no_upsampler else save_simfeatup_lightning(random_simfeatup(),
                                                                             scratch / "simfeatup.ckpt")
        stamps = []
        job = EvalJob(dataset="loveda", root=scratch / "LoveDA", clip_weights=str(clip),
                      upsampler_weights=None if upsampler is None else str(upsampler),
                      no_upsampler=args.no_upsampler, out=scratch / "out", device="cpu", precision=args.precision)
        started = time.perf_counter()
        report = evaluate(job, lambda stage, done, total: stamps.append(time.perf_counter()))
        total = time.perf_counter() - started
    per_image = [b - a for a, b in zip(stamps[1:], stamps[2:])]  # stamps[0]: the model loaded, the classes encoded
    load = os.getloadavg()
    print(f"{args.images} images {args.size}², upsampler {'none' if args.no_upsampler else 'SimFeatUp'}, "
          f"{args.precision}: {statistics.median(per_image):.2f} s per image (median; min {min(per_image):.2f}, "
          f"max {max(per_image):.2f}); model load and text encoding {stamps[0] - started:.1f} s, first image "
          f"{stamps[1] - stamps[0]:.2f} s; "
          f"run {total:.1f} s; mIoU {100 * report.scores['miou']:.1f} (random weights); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load {load[0]:.2f}")
    median = statistics.median(per_image)
    print("whole splits at this rate: " + ", ".join(f"{name} {count * median / 3600:.1f} h"
                                                   for name, count in SPLITS.items()))


if __name__ == "__main__":
    main()
