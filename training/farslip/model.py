"""The CLIP FarSLIP fine-tunes, its image tokens, the EMA teacher, LongCLIP's text positions and the export.

Both towers and the logit scale train. With ``model.long_text`` the text tower reads 248
tokens as LongCLIP does: OpenAI CLIP's 77 positional embeddings are stretched (the first 20
kept, the rest interpolated four-fold) and the first 20 stay fixed while training. The
exported file is an open_clip checkpoint of the whole CLIP, which
``backend.models.clip_loading.load_clip(path, quick_gelu=True)`` loads (the
``farslip{1,2}-vit-b-16`` presets).
"""
from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from backend.errors import UserInputError
from backend.models.clip_loading import ClipArchitecture, build_clip, load_clip
from backend.models.dense_attention import dense_attention
from backend.models.segearth import embed_tokens
from backend.weights import resolve_weights
from training.common.checkpoint import atomic_save
from training.farslip.config import LONG_CONTEXT, ModelConfig

log = logging.getLogger("rsov.training")
KEPT_POSITIONS = 20  # LongCLIP keeps CLIP's first 20 text positions as they are (and fixed)
OPENAI_CONTEXT = 77


def export_name(stage: int) -> str:
    return f"farslip{stage}.pt"


def stretch_text_positions(positions: torch.Tensor, keep: int = KEPT_POSITIONS) -> torch.Tensor:
    """LongCLIP's stretch of a (L, W) text positional embedding to (4 L - 3 keep, W); 77 -> 248 for keep 20.

    The first ``keep`` rows are copied; each later gap between rows i and i+1 becomes four
    rows at 0, 1/4, 2/4, 3/4 of the way; the last row is followed by three more that continue
    the step from the row before it by quarters.
    """
    length = positions.shape[0]
    if length < keep + 2:
        raise ValueError(f"cannot stretch {length} positions keeping {keep}")
    head, tail = positions[:keep], positions[keep:]
    fractions = torch.arange(4, dtype=positions.dtype, device=positions.device)[None, :, None] / 4
    between = tail[:-1, None] + fractions * (tail[1:, None] - tail[:-1, None])  # (L - keep - 1, 4, W)
    last = tail[-1] + fractions[0] * (tail[-1] - tail[-2])  # (4, W)
    return torch.cat([head, between.reshape(-1, positions.shape[1]), last])


@dataclass
class LoadedClip:
    """The CLIP to fine-tune, its architecture (after any stretch) and the file it came from."""

    clip: nn.Module
    arch: ClipArchitecture
    source: Path


def load_student(config: ModelConfig) -> LoadedClip:
    """The CLIP ``model.clip_weights`` names (registry name or path), stretched to 248 tokens with long_text."""
    path = resolve_weights(config.clip_weights, field="model.clip_weights")
    quick_gelu = config.activation == "quickgelu"
    clip, arch = load_clip(path, quick_gelu=quick_gelu)
    if config.long_text and arch.context_length < LONG_CONTEXT:
        if arch.context_length != OPENAI_CONTEXT:
            raise UserInputError(f"{path.name} reads {arch.context_length} text tokens; model.long_text stretches "
                                 f"CLIP's {OPENAI_CONTEXT} to {LONG_CONTEXT} (LongCLIP): set model.long_text: false "
                                 f"to train with {arch.context_length}.")
        state = clip.state_dict()
        state["positional_embedding"] = stretch_text_positions(state["positional_embedding"])
        arch = replace(arch, context_length=LONG_CONTEXT)
        clip = build_clip(arch, quick_gelu)
        clip.load_state_dict(state)
        log.info("text tower stretched from %d to %d tokens (LongCLIP)", OPENAI_CONTEXT, LONG_CONTEXT)
    clip.visual.set_grad_checkpointing(config.grad_checkpointing)
    clip.transformer.grad_checkpointing = config.grad_checkpointing
    return LoadedClip(clip.float().train(), arch, path)


def visual_tokens(visual: nn.Module, images: torch.Tensor, with_cls: bool = True
                  ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """CLIP's CLS token (B, E) and dense patch features (B, E, h, w) of CLIP-normalised images, in one pass.

    The CLS is the unchanged forward's (``ln_post``, ``proj``). The patches are what FarSLIP
    aligns: the last block's input through SegEarth attention alone (no residual, no MLP),
    then ``ln_post`` and ``proj`` — the features the segmentor reads at inference.
    """
    x, grid_h, grid_w = embed_tokens(visual, images)
    transformer = visual.transformer
    batch_first = getattr(transformer, "batch_first", True)
    recompute = getattr(transformer, "grad_checkpointing", False) and torch.is_grad_enabled()
    *blocks, last = transformer.resblocks
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
    tokens = x if batch_first else x.transpose(0, 1)
    dense = visual.ln_post(dense_attention(last.attn, last.ln_1(tokens), "segearth")[:, 1:]) @ visual.proj
    patches = dense.transpose(1, 2).reshape(images.shape[0], -1, grid_h, grid_w)
    if not with_cls:
        return None, patches
    out = last(x)
    out = out if batch_first else out.transpose(0, 1)
    return visual.ln_post(out[:, 0]) @ visual.proj, patches


class FarSLIPModel(nn.Module):
    """What trains (the CLIP), the EMA teacher's image tower (stage I) and LongCLIP's fixed text positions.

    The teacher and the fixed positions are state, not parameters: they travel in
    ``last.pt`` with the CLIP and the optimiser never sees them.
    """

    def __init__(self, clip: nn.Module, ema_teacher: bool = False, fixed_positions: int = 0) -> None:
        super().__init__()
        self.clip = clip
        self.teacher = copy.deepcopy(clip.visual).requires_grad_(False) if ema_teacher else None
        self.fixed_positions = fixed_positions
        if fixed_positions:
            self.register_buffer("fixed_text_positions", clip.positional_embedding[:fixed_positions].detach().clone())
            clip.positional_embedding.register_hook(self._without_fixed_rows)

    def _without_fixed_rows(self, grad: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(grad[:self.fixed_positions]), grad[self.fixed_positions:]])

    def scale(self) -> torch.Tensor:
        """1/temperature: the exponentiated logit scale."""
        return self.clip.logit_scale.exp()

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher <- momentum * teacher + (1 - momentum) * student image tower."""
        for teacher, student in zip(self.teacher.parameters(), self.clip.visual.parameters()):
            teacher.lerp_(student.detach(), 1.0 - momentum)

    @torch.no_grad()
    def after_step(self, max_logit_scale: float) -> None:
        """Keep the scale in [1, max_logit_scale] (as CLIP) and put the fixed text positions back (decay moved them)."""
        self.clip.logit_scale.clamp_(0.0, math.log(max_logit_scale))
        if self.fixed_positions:
            self.clip.positional_embedding[:self.fixed_positions] = self.fixed_text_positions


def export_checkpoint(clip: nn.Module, path: Path, epoch: int, stage: int) -> Path:
    """Write ``{"epoch", "name": "farslip<stage>", "state_dict"}``: the whole CLIP in open_clip's keys, fp32."""
    state = {key: value.detach().float().cpu().clone() for key, value in clip.state_dict().items()}
    return atomic_save({"epoch": epoch, "name": f"farslip{stage}", "state_dict": state}, path)
