"""Segmentors over in-memory tiny models, for tests that drive the inference code directly."""
from __future__ import annotations

import dataclasses

import torch

from backend.models.clip_loading import infer_architecture
from backend.models.clip_segmentor import ClipSegmentor, LoadedWeights
from backend.models.protocol import Prompts
from backend.models.registry import resolve_config
from backend.prompts import ClassList


def segmentor(clip: torch.nn.Module, upsampler: torch.nn.Module | None = None, **changes) -> ClipSegmentor:
    """A ClipSegmentor on the CPU with the segearth-ov preset, threshold 0 (``changes`` override them)."""
    config = resolve_config("segearth-ov", prob_threshold=0.0, device="cpu", precision="fp32")
    config = dataclasses.replace(config, clip_weights="in memory", upsampler_weights=None, **changes)
    arch = infer_architecture(clip.state_dict())
    weights = LoadedWeights(clip, arch, upsampler, torch.device("cpu"), "in memory")
    return ClipSegmentor(weights, config)


def prompts(embeddings: torch.Tensor) -> Prompts:
    """Prompts of one class per embedding row."""
    classes = ClassList(tuple((f"class {i}",) for i in range(embeddings.shape[0])))
    return Prompts(classes, embeddings)
