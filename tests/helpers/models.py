"""Segmentors over in-memory tiny models, for tests that drive the inference code directly."""
from __future__ import annotations

import torch

from backend.models.clip_loading import infer_architecture
from backend.models.clip_segmentor import ClipSegmentor, LoadedWeights
from backend.models.protocol import Prompts
from backend.models.registry import SegmentorConfig
from backend.prompts import ClassList


def segmentor(clip: torch.nn.Module, upsampler: torch.nn.Module | None = None, **changes) -> ClipSegmentor:
    """A ClipSegmentor on the CPU with the segearth-ov settings (``changes`` override them)."""
    settings = dict(preset="test", clip_weights="in memory", upsampler_weights=None, quick_gelu=True,
                    attention="segearth", attention_blocks=1, gba_lambda=-0.3, window=224, stride=112,
                    logit_scale=50.0, prob_threshold=0.0, background_index=0, device="cpu", precision="fp32")
    settings.update(changes)
    arch = infer_architecture(clip.state_dict())
    weights = LoadedWeights(clip, arch, upsampler, torch.device("cpu"), "in memory")
    return ClipSegmentor(weights, SegmentorConfig(**settings))


def prompts(embeddings: torch.Tensor) -> Prompts:
    """Prompts of one class per embedding row."""
    classes = ClassList(tuple((f"class {i}",) for i in range(embeddings.shape[0])))
    return Prompts(classes, embeddings)
