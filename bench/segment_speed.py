"""Time SegEarth-OV (ViT-B/16 with random weights + SimFeatUp) on one image on this machine.

    .venv/bin/python bench/segment_speed.py [--size 1024] [--batch-size 8] [--repeat 3]
        [--upsampler fast|reference|none] [--precision fp32|bf16] [--stride 112]
        [--compare-with reference|fp32|stride-112]

Model time = slide windows + ViT + upsampler + logits + classification of one image, the
median of ``--repeat`` runs, with the load average beside it. ``--upsampler reference``
runs SimFeatUp's module forward on all 512 channels (the path before issue #8).
``--compare-with`` runs the image once more the other way and prints the largest
probability difference and the share of pixels whose class agrees. Results are recorded
by hand in bench/RESULTS.md with the machine they were taken on.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' segmentor builder

import backend.models.segearth as segearth  # noqa: E402
from backend.inference.slide import normalise_pixels, slide_logits, window_logits  # noqa: E402
from backend.models.clip_loading import build_clip, infer_architecture  # noqa: E402
from backend.models.segearth import encode_dense  # noqa: E402
from backend.models.simfeatup import SimFeatUp  # noqa: E402
from backend.models.simfeatup_fast import upsampled_cosine_logits  # noqa: E402
from backend.raster.tiling import slide_windows  # noqa: E402
from tests.helpers.models import prompts, segmentor  # noqa: E402


def vit_b16() -> torch.nn.Module:
    from backend.torchvision_compat import import_open_clip

    reference = import_open_clip().create_model("ViT-B-16", pretrained=None)
    return build_clip(infer_architecture(reference.state_dict()), quick_gelu=True)


def random_simfeatup() -> SimFeatUp:
    """Random JBU_One with the range temperature and sigma of a trained one's order."""
    model = SimFeatUp(512).eval()
    with torch.no_grad():
        model.up.range_temp.fill_(1.5)
        model.up.sigma_spatial.fill_(0.7)
    return model


@torch.no_grad()
def reference_logits(upsampler, patches, windows, queries):
    """The module's forward on all channels, one window at a time (float32)."""
    out = []
    for index in range(patches.shape[0]):
        features = upsampler(patches[index:index + 1].float(), windows[index:index + 1].float())
        features = features / features.norm(dim=1, keepdim=True)
        out.append(torch.einsum("bchw,qc->bqhw", features, queries.float()))
    return torch.cat(out)


def use_upsampler_path(name: str) -> None:
    segearth.upsampled_cosine_logits = reference_logits if name == "reference" else upsampled_cosine_logits


def run_once(model, image, queries, batch_size, stride=112):
    started = time.perf_counter()
    logits = slide_logits(model, image, queries, stride=stride, batch_size=batch_size)
    classes, probabilities = model.classify(logits, queries)
    return time.perf_counter() - started, classes, probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--classes", type=int, default=6, help="number of text queries")
    parser.add_argument("--upsampler", choices=("fast", "reference", "none"), default="fast")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stride", type=int, default=112, help="224: the fast mode, each pixel upsampled once")
    parser.add_argument("--compare-with", choices=("reference", "fp32", "stride-112"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    upsampler = None if args.upsampler == "none" else random_simfeatup()
    model = segmentor(vit_b16(), upsampler, prob_threshold=0.1, precision=args.precision)
    queries = prompts(F.normalize(torch.randn(args.classes, 512), dim=-1))
    generator = torch.Generator().manual_seed(0)
    coarse = 255 * torch.rand(1, 3, max(1, args.size // 32), max(1, args.size // 32), generator=generator)
    pixels = F.interpolate(coarse, size=(args.size, args.size), mode="bilinear")[0]  # fields with edges
    pixels = (pixels + 8 * torch.randn(pixels.shape, generator=generator)).clamp(0, 255)
    image = normalise_pixels(pixels)
    windows = len(slide_windows(args.size, args.size, stride=args.stride))
    use_upsampler_path(args.upsampler)

    # split on one batch: the backbone alone, then the window logits with it
    batch = image[:, :224, :224].expand(args.batch_size, 3, 224, 224).contiguous()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        encode_dense(model.net.clip.visual, batch)  # warm-up
        started = time.perf_counter()
        encode_dense(model.net.clip.visual, batch)
        backbone_s = (time.perf_counter() - started) / args.batch_size
    started = time.perf_counter()
    window_logits(model, batch, queries)
    head_s = (time.perf_counter() - started) / args.batch_size - backbone_s

    load_before = os.getloadavg()[0]
    runs = [run_once(model, image, queries, args.batch_size, args.stride) for _ in range(args.repeat)]
    load_after = os.getloadavg()[0]
    seconds = [run[0] for run in runs]
    median = statistics.median(seconds)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"image {args.size}x{args.size}, {windows} windows (stride {args.stride}), batch {args.batch_size}, "
          f"upsampler {args.upsampler}, "
          f"{args.precision}, {args.classes} queries")
    print(f"model time {median:.1f} s median of {', '.join(f'{s:.1f}' for s in seconds)} | "
          f"{windows / median:.2f} windows/s | {args.size ** 2 / 1e6 / median:.3f} MP/s")
    print(f"per window: backbone {backbone_s:.3f} s, upsampler + logits {head_s:.3f} s")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after; peak RSS {peak_mib:.0f} MiB")

    if args.compare_with:
        _, classes, probabilities = runs[-1]
        if args.compare_with == "reference":
            use_upsampler_path("reference")
        elif args.compare_with == "fp32":
            model = segmentor(model.net.clip, upsampler, prob_threshold=0.1, precision="fp32")
        stride = 112 if args.compare_with == "stride-112" else args.stride
        _, other_classes, other_probabilities = run_once(model, image, queries, args.batch_size, stride)
        agree = (classes == other_classes).float().mean().item()
        print(f"against {args.compare_with}: max |delta p| {(probabilities - other_probabilities).abs().max():.2e}, "
              f"classes equal {100 * agree:.2f} %")


if __name__ == "__main__":
    main()
