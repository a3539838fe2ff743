"""Step time and peak memory of AlignEarth training with the real architecture (ViT-B/16 teacher and student).

    .venv/bin/python bench/alignearth_step.py [--batch 8] [--steps 6] [--device cpu]

A random ViT-B/16 CLIP (the OpenAI architecture, random weights: the cost is the same) is the
teacher; 64 synthetic 256² optical/SAR pairs are the data (bench/out/). The run is the real
command, ``python -m training.alignearth --config ...``, in a fresh process; step times come
from its log.csv (the first step, with its warm-up, is left out of the median) and the peak
RSS from the process's own accounting (on a GPU, watch nvidia-smi for the device's memory).
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "alignearth"
sys.path.insert(0, str(ROOT))
VIT_B16 = dict(embed_dim=512, image_size=224, patch_size=16, vision_width=768, vision_layers=12, context_length=77,
               vocab_size=49408, text_width=512, text_layers=12)


def teacher_file() -> Path:
    import torch

    from backend.models.clip_loading import ClipArchitecture, build_clip

    path = OUT / "random-vit-b-16.pt"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        torch.save({"state_dict": build_clip(ClipArchitecture(**VIT_B16), quick_gelu=True).state_dict()}, path)
    return path


def pairs(count: int = 64) -> Path:
    from PIL import Image

    manifest = OUT / "pairs.csv"
    if manifest.exists():
        return manifest
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["optical,sar"]
    for index in range(count):
        optical = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
        sar = (optical.mean(axis=2) * rng.gamma(4.4, 1 / 4.4, (256, 256))).clip(0, 255).astype(np.uint8)
        Image.fromarray(optical).save(OUT / f"opt_{index}.png")
        Image.fromarray(sar).save(OUT / f"sar_{index}.png")
        rows.append(f"opt_{index}.png,sar_{index}.png")
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    run = OUT / f"run-b{args.batch}-{args.device.replace(':', '')}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    config = OUT / "config.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"train_manifest": str(pairs())},
        "model": {"teacher_weights": str(teacher_file())},
        "train": {"out_dir": str(run), "epochs": 20, "batch_size": args.batch, "device": args.device,
                  "num_workers": 2, "log_every": 1, "checkpoint_every": 10_000, "max_steps": args.steps},
    }))
    load = os.getloadavg()[0]
    subprocess.run([sys.executable, "-m", "training.alignearth", "--config", str(config)], cwd=ROOT, check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(run / "log.csv", newline="") as handle:
        seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    steps = np.diff([0.0, *seconds])
    print(f"ViT-B/16 teacher + student, batch {args.batch}, {args.device}, {os.cpu_count()} cores: "
          f"median step {statistics.median(steps[1:]):.2f} s (first {steps[0]:.2f} s), "
          f"peak RSS {peak:.0f} MiB; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
