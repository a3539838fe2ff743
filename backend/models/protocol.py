"""What the engine asks of a loaded model, whatever its kind.

A segmentor is loaded once (weights on a device) and kept resident between jobs; each job
prompts it with its own classes. SegEarth-OV and the other CLIP segmentors prompt with
class names and synonyms; a referring model (GeoMag) prompts with one sentence, which is a
class list of one class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from backend.prompts import ClassList


@dataclass(frozen=True)
class Prompts:
    """A job's classes as the model needs them: one row of ``embeddings`` per query (synonym)."""

    classes: ClassList
    embeddings: torch.Tensor  # (Q, E) on the model's device


class Segmentor(Protocol):
    """A loaded model: normalised windows + prompts -> per-query logits -> classes."""

    device: torch.device
    patch_size: int  # windows are padded to multiples of this
    autocast_dtype: torch.dtype | None  # None: fp32

    def prompt(self, classes: ClassList) -> Prompts:
        """Encode a job's classes (cached: the same classes cost nothing the second time)."""

    def logits(self, windows: torch.Tensor, prompts: Prompts) -> torch.Tensor:
        """(B, Q, h, w) logits of CLIP-normalised windows (B, 3, h, w)."""

    def classify(self, logits: torch.Tensor, prompts: Prompts) -> tuple[torch.Tensor, torch.Tensor]:
        """Averaged logits (Q, H, W) -> (class map (H, W) int64, class probabilities (C, H, W))."""
