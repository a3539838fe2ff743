"""SegEarth-OV + SimFeatUp on one GPU: precision agreement, images/s at 448², MP/s at 8,192².

    python bench/gpu_speed.py [--device cuda] [--large 8192] [--batch-size 32]

ViT-B/16 (OpenAI architecture, QuickGELU) and JBU_One with random weights; the image is
smooth random fields with noise, held in GPU memory (no file I/O). Prints:
- fp16 and bf16 (the ViT under autocast; the upsampler always float32) against fp32 on a
  1,024² image: the largest probability difference and the share of pixels whose class agrees;
- images/s at 448² (9 windows) for this project's path, for SimFeatUp's module forward on
  all 512 channels (the path before issue #8) and for FeatUp's pure-PyTorch formulation
  (unfold + einsum, what the authors' code falls back to without its CUDA extension);
- MP/s of the whole slide-window inference on a --large² image at each precision.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backend.models.segearth as segearth  # noqa: E402
from backend.inference.slide import normalise_pixels, slide_logits  # noqa: E402
from backend.models.protocol import Prompts  # noqa: E402
from backend.models.segearth import SegEarthOV, classify  # noqa: E402
from backend.models.simfeatup_fast import upsampled_cosine_logits  # noqa: E402
from backend.prompts import ClassList  # noqa: E402
from bench.segment_speed import random_simfeatup, reference_logits, vit_b16  # noqa: E402

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


class Segmentor:
    """The engine's view of a loaded model (backend.models.protocol.Segmentor), without the weights manager."""

    def __init__(self, net: SegEarthOV, device: torch.device, dtype: torch.dtype | None):
        self.net, self.device, self.autocast_dtype = net, device, dtype
        self.patch_size = net.patch_size

    def logits(self, windows, prompts):
        return self.net(windows, prompts.embeddings)


def featup_unfold_logits(upsampler, patches, windows, queries):
    """FeatUp's pure-PyTorch AdaptiveConv (unfold + einsum) through JBU_One, all channels at once."""
    up = upsampler.up
    out = []
    for index in range(patches.shape[0]):
        features, image = patches[index:index + 1].float(), windows[index:index + 1].float()
        for _ in range(upsampler.steps):
            h, w = features.shape[-2:]
            guidance = F.adaptive_avg_pool2d(image, (2 * h, 2 * w))
            kernel = up.range_kernel(guidance) * up.spatial_kernel(guidance.device)
            kernel = kernel / kernel.sum(1, keepdim=True).clamp(min=1e-7)
            kernel = kernel + 0.1 * up.fixup_proj(torch.cat([kernel, guidance], 1))
            hr = F.pad(F.interpolate(features, (2 * h, 2 * w), mode="bicubic", align_corners=False),
                       [up.radius] * 4, mode="reflect")
            patches_hr = F.unfold(hr, up.diameter).view(1, hr.shape[1], up.diameter ** 2, 2 * h, 2 * w)
            features = torch.einsum("bthw,bcthw->bchw", kernel, patches_hr)
        features = features + 0.1 * upsampler.fixup_proj(features)
        features = features / features.norm(dim=1, keepdim=True)
        out.append(torch.einsum("bchw,qc->bqhw", features, queries.float()))
    return torch.cat(out)


PATHS = {"fast": upsampled_cosine_logits, "module": reference_logits, "featup-unfold": featup_unfold_logits}


def image(size: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    coarse = 255 * torch.rand(1, 3, max(1, size // 32), max(1, size // 32), generator=generator)
    pixels = F.interpolate(coarse, size=(size, size), mode="bilinear")[0]
    pixels = (pixels + 8 * torch.randn(pixels.shape, generator=generator)).clamp(0, 255)
    return normalise_pixels(pixels.to(device))


def timed(fn, device, repeat=3):
    seconds = []
    for _ in range(repeat):
        torch.cuda.synchronize(device)
        started = time.perf_counter()
        result = fn()
        torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--large", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=6)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    clip = vit_b16().to(device)
    upsampler = random_simfeatup()
    upsampler = upsampler.to(device)
    net = SegEarthOV(clip, upsampler)
    classes = ClassList(tuple((f"class {i}",) for i in range(args.classes)))
    prompts = Prompts(classes, F.normalize(torch.randn(args.classes, 512), dim=-1).to(device))
    print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")

    def run(img, precision, batch):
        model = Segmentor(net, device, PRECISIONS[precision])
        logits = slide_logits(model, img, prompts, batch_size=batch)
        return classify(logits, list(range(args.classes)), prob_threshold=0.1)

    img = image(1024, device)
    _, (classes32, probs32) = timed(lambda: run(img, "fp32", args.batch_size), device, repeat=1)
    for precision in ("fp16", "bf16"):
        _, (classes_p, probs_p) = timed(lambda: run(img, precision, args.batch_size), device, repeat=1)
        print(f"1024² {precision} vs fp32: max |delta p| {(probs_p - probs32).abs().max():.2e}, "
              f"classes equal {100 * (classes_p == classes32).float().mean():.3f} %")

    small = image(448, device)
    for name, path in PATHS.items():
        segearth.upsampled_cosine_logits = path
        run(small, "fp32", 9)  # warm-up
        seconds, _ = timed(lambda: run(small, "fp32", 9), device)
        print(f"448² fp32, upsampler path {name}: {1 / seconds:.2f} images/s ({seconds * 1000:.0f} ms)")
    segearth.upsampled_cosine_logits = upsampled_cosine_logits

    big = image(args.large, device)
    for precision in ("fp32", "fp16", "bf16"):
        seconds, _ = timed(lambda: run(big, precision, args.batch_size), device, repeat=1)
        print(f"{args.large}² {precision}: {seconds:.1f} s, {args.large ** 2 / 1e6 / seconds:.1f} MP/s "
              f"(batch {args.batch_size}, peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
