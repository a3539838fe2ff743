"""A GeoMag checkpoint loaded once per (file, device, precision) and kept in the model cache."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch

from backend.errors import blame
from backend.models.cache import ModelCache, shared_cache
from backend.models.clip_segmentor import file_identity
from backend.models.devices import resolve_device, resolve_precision

log = logging.getLogger("rsov")


def load_geomag(checkpoint: Path, device_name: str, precision: str, download: bool,
                cache: ModelCache | None = None):
    """The ``GeoMagPipeline`` of ``checkpoint``: fp32 on the CPU unless asked, bf16/fp16 weights on a GPU."""
    from backend.models.geomag.pipeline import load_pipeline

    cache = shared_cache() if cache is None else cache
    device = resolve_device(device_name)
    dtype = resolve_precision(precision, device) or torch.float32
    if device.type == "cuda" and precision == "auto" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16  # a 7B LLM overflows in fp16 more easily; bf16 where the GPU has it
    key = ("geomag", file_identity(checkpoint), str(device), str(dtype))
    label = {"checkpoint": str(checkpoint), "device": str(device), "dtype": str(dtype).removeprefix("torch.")}

    def load():
        with blame("checkpoint"):
            return load_pipeline(checkpoint, device, dtype, download)

    return cache.get(key, load, label)


def start(job, report: Callable[[str, float, float], None], models: ModelCache | None):
    """Validate a refer or ask ``job`` and load its checkpoint ('loading model'): (source, pipeline, notes)."""
    checkpoint, source = job.checked()
    report("loading model", 0, 1)
    pipeline = load_geomag(checkpoint, job.device, job.precision, not job.offline, models)
    notes = [source.describe()]
    log.info("%s", notes[0])  # once the model is there: an error is then the only line a failed load prints
    return source, pipeline, notes
