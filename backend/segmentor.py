"""Compose a ready-to-run segmentor from a preset, the user's overrides and a class list."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from backend.engine import ModelSettings
from backend.errors import UserInputError
from backend.prompts import ClassList, TextEmbeddingCache, encode_queries, openai_imagenet_templates
from backend.weights import resolve_weights, rsov_home


@dataclass
class LoadedSegmentor:
    model: torch.nn.Module
    queries: torch.Tensor
    device: torch.device
    autocast_dtype: torch.dtype | None
    window: int
    stride: int
    logit_scale: float
    prob_threshold: float
    background_index: int


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto.")
    if name not in {"cpu"} and not name.startswith("cuda"):
        raise UserInputError(f"unknown device {name!r}; use auto, cpu or cuda.")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: None (fp32) on CPU unless asked; fp16 on CUDA by default."""
    choices = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    if name == "auto":
        return torch.float16 if device.type == "cuda" else None
    if name not in choices:
        raise UserInputError(f"unknown precision {name!r}; use auto, fp32, fp16 or bf16.")
    if device.type == "cpu" and name == "fp16":
        raise UserInputError("fp16 is not supported on the CPU; use fp32 or bf16.")
    return choices[name]


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def load_segmentor(settings: ModelSettings, classes: ClassList) -> LoadedSegmentor:
    """Load weights, build the SegEarth-OV model and encode the class queries (cached)."""
    from backend.models.clip_loading import load_clip  # applies the torchvision shim first
    from backend.models.presets import dataset_preset, model_preset
    from backend.models.segearth import SegEarthOV
    from backend.models.simfeatup import load_simfeatup
    from open_clip import tokenize

    preset = model_preset(settings.model)
    dataset = dataset_preset(settings.dataset) if settings.dataset else None

    def pick(override, dataset_value, preset_value):
        if override is not None:
            return override
        return dataset_value if dataset_value is not None else preset_value

    prob_threshold = pick(settings.prob_threshold, dataset and dataset.prob_threshold, preset.prob_threshold)
    background_index = pick(settings.background_index, dataset and dataset.background_index,
                            preset.background_index)
    gba_lambda = pick(settings.gba_lambda, dataset and dataset.gba_lambda, preset.gba_lambda)
    if not 0 <= background_index < len(classes):
        raise UserInputError(f"--background-index {background_index} is not a class index; "
                             f"give a value from 0 to {len(classes) - 1}.")
    if settings.activation not in (None, "quickgelu", "gelu"):
        raise UserInputError(f"unknown activation {settings.activation!r}; use quickgelu or gelu.")
    quick_gelu = preset.quick_gelu if settings.activation is None else settings.activation == "quickgelu"
    window = settings.window or preset.window
    stride = settings.stride or preset.stride
    if stride > window:
        raise UserInputError(f"--stride {stride} is larger than --window {window}; pixels would be skipped.")

    device = resolve_device(settings.device)
    autocast_dtype = resolve_precision(settings.precision, device)
    clip_path = resolve_weights(settings.clip_weights or preset.clip_weights, settings.download)
    upsampler_source = None if settings.no_upsampler else (settings.upsampler_weights or preset.upsampler_weights)
    upsampler_path = resolve_weights(upsampler_source, settings.download) if upsampler_source else None

    clip, arch = load_clip(clip_path, quick_gelu=quick_gelu)
    if window % arch.patch_size:
        raise UserInputError(f"--window {window} is not a multiple of the model's patch size {arch.patch_size}.")
    upsampler = load_simfeatup(upsampler_path) if upsampler_path else None
    if upsampler is not None and upsampler.fixup_proj[1].in_channels != arch.embed_dim:
        raise UserInputError(f"upsampler {upsampler_path} is for {upsampler.fixup_proj[1].in_channels}-d features "
                             f"but the CLIP model gives {arch.embed_dim}-d; use a matching pair or --no-upsampler.")
    model = SegEarthOV(clip, upsampler, attention=settings.attention or preset.attention,
                       attention_blocks=settings.attention_blocks or preset.attention_blocks,
                       gba_lambda=gba_lambda).to(device)

    templates = openai_imagenet_templates()
    model_id = f"{_file_identity(clip_path)}|quickgelu={quick_gelu}"

    def compute() -> torch.Tensor:
        return encode_queries(model.encode_text, lambda texts: tokenize(texts, arch.context_length),
                              classes.queries, templates, device).cpu()

    cache = TextEmbeddingCache(rsov_home() / "cache" / "text")
    queries = cache.get_or_compute(model_id, classes.queries, len(templates), compute).to(device)
    return LoadedSegmentor(model, queries, device, autocast_dtype, window, stride, preset.logit_scale,
                           float(prob_threshold), int(background_index))
