"""Time the 80-template text encoding of a class list, full length against cut to each batch's longest prompt.

    .venv/bin/python bench/text_encoding.py [--classes 10] [--repeat 3] [--queries-per-batch 1 2 5]
                                            [--context 77]

A ViT-B/16-architecture CLIP with random weights (as bench/segment_speed.py builds it), the
OpenAI ImageNet templates, context 77 (248: a LongCLIP text tower, as FarSLIP's ViT-B/16 has).
Prints the median of ``--repeat`` runs (taken in turns) for the full-length text tower and for
the cut one (at each ``--queries-per-batch``), and the largest difference between their query
embeddings. Results are recorded by hand in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from typing import Callable

import torch

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.models.clip_loading import build_clip, infer_architecture  # noqa: E402
from backend.prompts import encode_queries, openai_imagenet_templates, text_encoder  # noqa: E402
from backend.torchvision_compat import import_open_clip  # noqa: E402
from bench.segment_speed import vit_b16  # noqa: E402

CLASSES = ["background", "building", "road", "water", "barren land", "forest", "agricultural field",
           "low vegetation", "parking lot", "impervious surface", "tree", "car"]


def interleaved(runs: dict[str, Callable[[], torch.Tensor]], repeat: int) -> dict[str, tuple[float, torch.Tensor]]:
    """Each run's median time and result; the runs take turns, so a load that comes and goes hits them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, torch.Tensor] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            results[name] = run()
            seconds[name].append(time.perf_counter() - started)
    return {name: (statistics.median(seconds[name]), results[name]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries-per-batch", type=int, nargs="+", default=[1])
    parser.add_argument("--context", type=int, default=77, help="text context length (LongCLIP: 248)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = vit_b16()
    if args.context != model.context_length:
        arch = dataclasses.replace(infer_architecture(model.state_dict()), context_length=args.context)
        model = build_clip(arch, quick_gelu=True)
    tokenizer = import_open_clip().tokenize
    queries = (CLASSES * (args.classes // len(CLASSES) + 1))[:args.classes]
    templates = openai_imagenet_templates()
    tokenize = lambda texts: tokenizer(texts, model.context_length)  # noqa: E731
    longest = tokenize([template(query) for query in queries for template in templates]).ne(0).sum(dim=1).max()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"{len(queries)} queries x {len(templates)} templates, context {model.context_length}, "
          f"longest prompt {int(longest)} tokens, median of {args.repeat}")

    cut = text_encoder(model)
    runs = {"full length": lambda: encode_queries(model.encode_text, tokenize, queries, templates)}
    for per_batch in args.queries_per_batch:
        runs[f"cut, {per_batch} queries/batch"] = (
            lambda per_batch=per_batch: encode_queries(cut, tokenize, queries, templates, queries_per_batch=per_batch))
    timings = interleaved(runs, args.repeat)
    full_s, full = timings["full length"]
    for name, (seconds, result) in timings.items():
        print(f"{name + ':':24s} {seconds:6.2f} s  ({full_s / seconds:4.1f}x)  "
              f"max |delta| {(result - full).abs().max().item():.1e}")


if __name__ == "__main__":
    main()
