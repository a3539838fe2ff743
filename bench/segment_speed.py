"""Time SegEarth-OV (ViT-B/16 with random weights + SimFeatUp) on one image on this machine.

    .venv/bin/python bench/segment_speed.py [--size 1024] [--batch-size 8] [--no-upsampler]

Prints windows/s, MP/s, the split between backbone and upsampler, and peak RSS. Results
are recorded by hand in bench/RESULTS.md with the machine they were taken on.
"""
from __future__ import annotations

import argparse
import platform
import resource
import time

import torch
import torch.nn.functional as F

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' segmentor builder

from backend.inference.slide import normalise_pixels, slide_logits  # noqa: E402
from backend.models.clip_loading import build_clip, infer_architecture  # noqa: E402
from backend.models.segearth import encode_dense  # noqa: E402
from backend.models.simfeatup import SimFeatUp  # noqa: E402
from backend.raster.tiling import slide_windows  # noqa: E402
from tests.helpers.models import prompts, segmentor  # noqa: E402


def vit_b16() -> torch.nn.Module:
    from backend.torchvision_compat import import_open_clip

    reference = import_open_clip().create_model("ViT-B-16", pretrained=None)
    return build_clip(infer_architecture(reference.state_dict()), quick_gelu=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=6, help="number of text queries")
    parser.add_argument("--no-upsampler", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = segmentor(vit_b16(), None if args.no_upsampler else SimFeatUp(512).eval(), prob_threshold=0.1)
    queries = prompts(F.normalize(torch.randn(args.classes, 512), dim=-1))
    generator = torch.Generator().manual_seed(0)
    image = normalise_pixels(torch.randint(0, 256, (3, args.size, args.size), generator=generator, dtype=torch.uint8))
    windows = len(slide_windows(args.size, args.size))

    # split: backbone alone on one batch, upsampler alone on one window
    batch = image[:, :224, :224].expand(args.batch_size, 3, 224, 224).contiguous()
    with torch.no_grad():
        started = time.perf_counter()
        _, patches = encode_dense(model.net.clip.visual, batch)
        backbone_s = (time.perf_counter() - started) / args.batch_size
        upsampler_s = 0.0
        if model.net.upsampler is not None:
            started = time.perf_counter()
            model.net.upsampler(patches[:1], batch[:1])
            upsampler_s = time.perf_counter() - started

    started = time.perf_counter()
    model.classify(slide_logits(model, image, queries, batch_size=args.batch_size), queries)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"image {args.size}x{args.size}, {windows} windows, batch {args.batch_size}, "
          f"upsampler {'off' if args.no_upsampler else 'SimFeatUp'}, {args.classes} queries")
    print(f"total {seconds:.1f} s | {windows / seconds:.2f} windows/s | {args.size ** 2 / 1e6 / seconds:.3f} MP/s")
    print(f"per window: backbone {backbone_s:.3f} s, upsampler {upsampler_s:.3f} s")
    print(f"peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
