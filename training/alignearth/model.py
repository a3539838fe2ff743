"""Teacher and student image towers, their projected tokens, and the checkpoint the backend loads.

The teacher is an optical CLIP's image tower, frozen. The student is the same ViT
architecture initialised from the teacher's weights, built with its own activation (GELU
by default: the ``segearth-ov-sar`` preset loads AlignEarth weights with GELU). The
exported file is an open_clip checkpoint: the student's ``visual.*`` tensors beside the
teacher file's text tower, logit scale and the rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from backend.models.clip_loading import ClipArchitecture, build_clip, load_clip
from backend.models.segearth import embed_tokens
from backend.weights import resolve_weights
from training.alignearth.losses import LearnableTemperature
from training.common.checkpoint import atomic_save

EXPORT_NAME = "alignearth_sar.pt"


def projected_tokens(visual: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An open_clip ViT's final projected tokens O: CLS O[0] (B, E) and patches O[1:hw+1] as (B, E, h, w).

    ``ln_post`` and ``proj`` are applied to every token (open_clip's forward returns only
    the pooled CLS). ``images`` are CLIP-normalised (B, 3, H, W).
    """
    x, grid_h, grid_w = embed_tokens(visual, images)
    batch = images.shape[0]
    x = visual.transformer(x)
    x = x if getattr(visual.transformer, "batch_first", True) else x.transpose(0, 1)
    out = visual.ln_post(x) @ visual.proj
    return out[:, 0], out[:, 1:].transpose(1, 2).reshape(batch, -1, grid_h, grid_w)


@dataclass
class Teacher:
    """The frozen optical image tower, its architecture, and the file's other tensors (for export)."""

    visual: nn.Module
    arch: ClipArchitecture
    other_tensors: dict[str, torch.Tensor]
    source: Path


def load_teacher(weights: str, activation: str = "quickgelu") -> Teacher:
    """The teacher from a registry name (downloaded once) or a CLIP checkpoint path; frozen, eval mode."""
    path = resolve_weights(weights, field="model.teacher_weights")
    clip, arch = load_clip(path, quick_gelu=activation == "quickgelu")
    others = {key: value.detach().clone() for key, value in clip.state_dict().items() if not key.startswith("visual.")}
    visual = clip.visual.eval().requires_grad_(False)
    return Teacher(visual, arch, others, path)


def student_from(teacher: Teacher, activation: str = "gelu") -> nn.Module:
    """A trainable image tower of the teacher's architecture, holding the teacher's weights."""
    visual = build_clip(teacher.arch, quick_gelu=activation == "quickgelu").visual
    visual.load_state_dict(teacher.visual.state_dict())
    return visual.train().requires_grad_(True)


class AlignEarthStudent(nn.Module):
    """What trains: the SAR image tower and the contrastive temperature."""

    def __init__(self, visual: nn.Module, temperature: LearnableTemperature) -> None:
        super().__init__()
        self.visual = visual
        self.temperature = temperature


def export_checkpoint(student_visual: nn.Module, teacher: Teacher, path: Path, epoch: int) -> Path:
    """Write ``{"epoch", "name": "alignearth", "state_dict"}``: student ``visual.*`` + teacher's other tensors.

    ``backend.models.clip_loading.load_clip(path, quick_gelu=False)`` loads it as a CLIP.
    """
    state = dict(teacher.other_tensors)
    state.update({f"visual.{key}": value.detach().float().cpu().clone()
                  for key, value in student_visual.state_dict().items()})
    return atomic_save({"epoch": epoch, "name": "alignearth", "state_dict": state}, path)
