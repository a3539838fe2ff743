"""The one entry point every face calls: ``run(job)`` segments a raster and writes the outputs."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.errors import UserInputError
from backend.prompts import ClassList
from backend.raster.stitching import Progress


@dataclass(frozen=True)
class ModelSettings:
    """Everything that decides the model's output; None means "the preset's value"."""

    model: str = "segearth-ov"
    dataset: str | None = None
    clip_weights: str | None = None
    upsampler_weights: str | None = None
    no_upsampler: bool = False
    attention: str | None = None
    attention_blocks: int | None = None
    activation: str | None = None  # "quickgelu" or "gelu"
    gba_lambda: float | None = None
    prob_threshold: float | None = None
    background_index: int | None = None
    window: int | None = None
    stride: int | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: fp32 on CPU, fp16 autocast on CUDA
    batch_size: int = 8
    download: bool = True


@dataclass(frozen=True)
class SegmentJob:
    input: Path
    classes: ClassList
    out_raster: Path
    out_probs: Path | None = None
    preview: Path | None = None
    resize_long_side: int | None = None
    overwrite: bool = False
    settings: ModelSettings = field(default_factory=ModelSettings)


@dataclass
class SegmentResult:
    class_names: list[str]
    pixel_counts: list[int]
    pixel_area: float | None
    windows: int
    seconds: float
    megapixels: float
    device: str
    outputs: list[Path]

    @property
    def megapixels_per_second(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else float("nan")


def _check_outputs(job: SegmentJob) -> list[Path]:
    outputs = [p for p in (job.out_raster, job.out_probs, job.preview) if p is not None]
    for path in outputs:
        if path.exists() and not job.overwrite:
            raise UserInputError(f"output {path} already exists; pass --overwrite to replace it.")
        folder = path.parent if str(path.parent) else Path(".")
        if folder.exists() and not folder.is_dir():
            raise UserInputError(f"output folder {folder} is a file; choose another output path.")
    for path, suffixes in ((job.out_raster, {".tif", ".tiff"}), (job.out_probs, {".tif", ".tiff"}),
                           (job.preview, {".png"})):
        if path is not None and path.suffix.lower() not in suffixes:
            raise UserInputError(f"output {path} must end in {' or '.join(sorted(suffixes))}; rename it.")
    return outputs


def run(job: SegmentJob, progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None) -> SegmentResult:
    """Segment ``job.input`` with the job's model and write its outputs (atomically)."""
    import torch
    import torch.nn.functional as F

    from backend.raster.io import read_rgb, write_class_raster, write_preview_png, write_probability_raster
    from backend.raster.stitching import normalise_pixels, slide_logits
    from backend.raster.tiling import slide_windows
    from backend.segmentor import load_segmentor

    outputs = _check_outputs(job)
    image = read_rgb(job.input)
    if job.resize_long_side is not None and job.resize_long_side < 16:
        raise UserInputError(f"--resize-long-side {job.resize_long_side} is too small; give at least 16 pixels.")
    loaded = load_segmentor(job.settings, job.classes)
    started = time.perf_counter()
    pixels = torch.from_numpy(image.pixels)
    if job.resize_long_side:
        scale = job.resize_long_side / max(image.height, image.width)
        size = (max(1, round(image.height * scale)), max(1, round(image.width * scale)))
        pixels = F.interpolate(pixels[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    normalised = normalise_pixels(pixels)
    logits = slide_logits(loaded.model, normalised, loaded.queries, loaded.window, loaded.stride,
                          job.settings.batch_size, loaded.autocast_dtype, progress, should_stop)
    if logits.shape[-2:] != (image.height, image.width):
        logits = F.interpolate(logits[None], size=(image.height, image.width), mode="bilinear",
                               align_corners=False)[0]
    from backend.models.segearth import classify

    classes, probabilities = classify(logits, job.classes.query_to_class, loaded.logit_scale,
                                      loaded.prob_threshold, loaded.background_index)
    class_map = classes.cpu().numpy().astype(np.uint8)
    write_class_raster(job.out_raster, class_map, image, job.classes.names)
    if job.out_probs is not None:
        write_probability_raster(job.out_probs, probabilities.cpu().numpy(), image, job.classes.names)
    if job.preview is not None:
        write_preview_png(job.preview, class_map, image, job.classes.names)
    seconds = time.perf_counter() - started
    counts = np.bincount(class_map.ravel(), minlength=len(job.classes)).tolist()
    pixel_area = None  # m² per pixel, for projected CRSs only (geographic areas are geodesic)
    if image.crs is not None and image.crs.is_projected:
        metres = image.crs.linear_units_factor[1]
        pixel_area = abs(image.transform.a * image.transform.e) * metres ** 2
    return SegmentResult(job.classes.names, counts, pixel_area,
                         len(slide_windows(*normalised.shape[-2:], loaded.window, loaded.stride)),
                         seconds, image.height * image.width / 1e6, str(loaded.device), outputs)

