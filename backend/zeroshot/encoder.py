"""A CLIP's global embeddings: images through its normal visual forward, classes and texts through its text tower.

The tower is the one segment jobs load (``load_segmentor`` without upsampler, the same
model-cache entry). Every embedding is a float32 unit vector on the CPU.
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch

from backend.models.cache import ModelCache
from backend.models.clip_segmentor import ClipSegmentor, load_segmentor
from backend.models.cpu_workers import on_cores
from backend.models.registry import SegmentorConfig
from backend.prompts import ClassList, TextEmbeddingCache, encode_queries, text_encoder
from backend.torchvision_compat import import_open_clip
from backend.weights import rsov_home

MAX_LOGIT_SCALE = 100.0  # CLIP clamps its learned temperature here in training; OpenAI's ViT-B/16 sits on it
AS_WRITTEN = (lambda text: text,)  # retrieval texts are sentences: no "a photo of a {}." around them


class ClipEncoder:
    """Unit embeddings of CLIP-normalised images (B, 3, S, S), of class lists and of texts."""

    def __init__(self, segmentor: ClipSegmentor) -> None:
        self.segmentor = segmentor  # its prompts are segment's: 80 templates, cached per class name
        self.clip = segmentor.weights.clip
        self.device = segmentor.device
        self.autocast_dtype = segmentor.autocast_dtype
        self.input_size = segmentor.weights.arch.image_size  # S: 224 for the ViT-B presets
        self.identity = segmentor.weights.identity  # names the weights in the embedding caches

    @property
    def logit_scale(self) -> float:
        """The model's own learned temperature, exp(logit_scale), at most 100 (CLIP's clamp)."""
        return min(MAX_LOGIT_SCALE, math.exp(float(self.clip.logit_scale.detach().float().reshape(-1)[0])))

    def class_embeddings(self, classes: ClassList) -> torch.Tensor:
        """(Q, E): one row per synonym, as segment prompts them (OpenAI's 80 templates)."""
        return self.segmentor.prompt(classes).embeddings.float().cpu()

    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """(T, E): each text as written, cached like the class names."""
        tokenize = import_open_clip().tokenize
        context = self.segmentor.weights.arch.context_length
        encode_text = text_encoder(self.clip)

        def compute(missing: list[str]) -> torch.Tensor:
            return encode_queries(encode_text, lambda batch: tokenize(batch, context), missing, AS_WRITTEN,
                                  self.device).cpu()

        return TextEmbeddingCache(rsov_home() / "cache" / "text").get_or_compute(self.identity, list(texts),
                                                                                 AS_WRITTEN, compute)

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, E) of CLIP-normalised images (B, 3, S, S); on the CPU one image per core, so a result does not
        depend on the batch it came in."""
        if self.device.type == "cpu":
            return torch.cat(on_cores(lambda index: self._encode(images[index:index + 1]), range(images.shape[0])))
        return self._encode(images)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        with _autocast(self.device, self.autocast_dtype):
            features = self.clip.encode_image(images.to(self.device)).float()
        return (features / features.norm(dim=-1, keepdim=True)).cpu()

    def key(self, reading: str) -> str:
        """What decides an image's embedding: the weights, the precision, how pixels are read, the input size."""
        return f"{self.identity}|{self.autocast_dtype or torch.float32}|{reading}|clip-input {self.input_size}"


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def load_encoder(config: SegmentorConfig, cache: ModelCache | None = None) -> ClipEncoder:
    """The encoder of ``config``'s CLIP (its upsampler, if any, is not loaded)."""
    return ClipEncoder(load_segmentor(config, cache))

