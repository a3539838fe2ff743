"""The CLIP segmentors (SegEarth-OV, its SAR preset, FarSLIP): loading once, prompting per job.

``load_segmentor(config, cache)`` resolves the weight files, loads the CLIP tower and the
upsampler once per (files, activation, device) into the cache, and wraps them with this
job's attention, bias alleviation and decision settings, which cost nothing to change.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from backend.errors import UserInputError, blame
from backend.models.cache import ModelCache, shared_cache
from backend.models.clip_loading import ClipArchitecture, load_clip
from backend.models.devices import resolve_device, resolve_precision
from backend.models.protocol import Prompts
from backend.models.registry import SegmentorConfig
from backend.models.segearth import SegEarthOV, classify
from backend.models.simfeatup import SimFeatUp, load_simfeatup
from backend.prompts import ClassList, TextEmbeddingCache, encode_queries, openai_imagenet_templates, text_encoder
from backend.torchvision_compat import import_open_clip
from backend.weights import resolve_weights, rsov_home


@dataclass(frozen=True)
class LoadedWeights:
    """What a cache entry holds: the CLIP tower and upsampler on their device."""

    clip: torch.nn.Module
    arch: ClipArchitecture
    upsampler: SimFeatUp | None
    device: torch.device
    identity: str  # names the weights for the text-embedding cache


class ClipSegmentor:
    """SegEarth-OV over cached weights, with one job's settings."""

    def __init__(self, weights: LoadedWeights, config: SegmentorConfig) -> None:
        self.weights = weights
        self.config = config
        self.device = weights.device
        self.autocast_dtype = resolve_precision(config.precision, weights.device)
        self.net = SegEarthOV(weights.clip, weights.upsampler, attention=config.attention,
                              attention_blocks=config.attention_blocks, gba_lambda=config.gba_lambda)
        self.patch_size = self.net.patch_size

    def prompt(self, classes: ClassList) -> Prompts:
        tokenize = import_open_clip().tokenize
        if not 0 <= self.config.background_index < len(classes):
            raise UserInputError(f"{{background_index}} {self.config.background_index} is not a class index; "
                                 f"give a value from 0 to {len(classes) - 1}.", "background_index")
        templates = openai_imagenet_templates()
        context = self.weights.arch.context_length
        encode_text = text_encoder(self.net.clip)  # each batch cut to its longest prompt where the tower allows

        def compute(queries: list[str]) -> torch.Tensor:
            return encode_queries(encode_text, lambda texts: tokenize(texts, context), queries, templates,
                                  self.device).cpu()

        cache = TextEmbeddingCache(rsov_home() / "cache" / "text")
        embeddings = cache.get_or_compute(self.weights.identity, classes.queries, templates, compute)
        return Prompts(classes, embeddings.to(self.device))

    def logits(self, windows: torch.Tensor, prompts: Prompts) -> torch.Tensor:
        return self.net(windows, prompts.embeddings)

    def classify(self, logits: torch.Tensor, prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
        return classify(logits, prompts.classes.query_to_class, self.config.logit_scale,
                        self.config.prob_threshold, self.config.background_index)


def file_identity(path: Path) -> str:
    """What changes when a weights file is replaced: its resolved path, size and modification time."""
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _load_weights(clip_path: Path, upsampler_path: Path | None, quick_gelu: bool,
                  device: torch.device) -> LoadedWeights:
    with blame("clip_weights"):
        clip, arch = load_clip(clip_path, quick_gelu=quick_gelu)
    with blame("upsampler_weights"):
        upsampler = load_simfeatup(upsampler_path) if upsampler_path else None
    if upsampler is not None and upsampler.fixup_proj[1].in_channels != arch.embed_dim:
        raise UserInputError(f"{{upsampler_weights}} {upsampler_path} is for {upsampler.fixup_proj[1].in_channels}-d "
                             f"features but the CLIP model gives {arch.embed_dim}-d; use a matching pair or "
                             "{no_upsampler}.", "upsampler_weights", "no_upsampler")
    clip = clip.to(device)
    upsampler = upsampler.to(device) if upsampler is not None else None
    return LoadedWeights(clip, arch, upsampler, device, f"{file_identity(clip_path)}|quickgelu={quick_gelu}")


def load_segmentor(config: SegmentorConfig, cache: ModelCache | None = None) -> ClipSegmentor:
    """A segmentor for ``config``, its weights from ``cache`` (the process's own by default)."""
    cache = shared_cache() if cache is None else cache
    device = resolve_device(config.device)
    resolve_precision(config.precision, device)
    clip_path = resolve_weights(config.clip_weights, config.download, field="clip_weights")
    upsampler_path = (resolve_weights(config.upsampler_weights, config.download, field="upsampler_weights")
                      if config.upsampler_weights else None)
    key = ("clip", file_identity(clip_path), upsampler_path and file_identity(upsampler_path),
           config.quick_gelu, str(device))
    label = {"clip_weights": str(clip_path), "upsampler_weights": upsampler_path and str(upsampler_path),
             "activation": "quickgelu" if config.quick_gelu else "gelu", "device": str(device)}
    weights = cache.get(key, lambda: _load_weights(clip_path, upsampler_path, config.quick_gelu, device), label)
    depth = weights.arch.vision_layers
    if not 1 <= config.attention_blocks <= depth:
        raise UserInputError(f"{{attention_blocks}} {config.attention_blocks} is out of range: the model has "
                             f"{depth} blocks; give 1 to {depth}.", "attention_blocks")
    if config.window % weights.arch.patch_size:
        raise UserInputError(f"{{window}} {config.window} is not a multiple of the model's patch size "
                             f"{weights.arch.patch_size}.", "window")
    return ClipSegmentor(weights, config)
