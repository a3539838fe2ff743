"""SegEarth-OV: CLIP ViT with dense last-block attention, SimFeatUp and global bias alleviation.

The model does one job: a batch of CLIP-normalised windows and encoded text queries in,
per-query logits at the windows' pixel size out. Sliding the windows over an image and
turning logits into classes happen elsewhere (``backend.raster.tiling``, ``classify``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backend.models.cpu_workers import on_cores
from backend.models.dense_attention import ATTENTION_MODES, dense_attention
from backend.models.simfeatup_fast import upsampled_cosine_logits

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def interpolate_positional_embedding(positional: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Resize a ViT's (1 + n*n, D) positional embedding to a grid_h x grid_w patch grid.

    Bicubic with a scale factor of (grid + 0.1) / n, as the authors' CLIP does for windows
    that are not the training size.
    """
    tokens, dim = positional.shape
    side = int(math.sqrt(tokens - 1))
    if side * side == grid_h * grid_w and grid_h == grid_w:
        return positional
    patch = positional[1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((grid_h + 0.1) / side, (grid_w + 0.1) / side), mode="bicubic")
    patch = patch.permute(0, 2, 3, 1).reshape(grid_h * grid_w, dim).to(positional.dtype)
    return torch.cat([positional[:1], patch], dim=0)


def embed_tokens(visual: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """An open_clip ViT's tokens entering its first block, in the transformer's own layout.

    conv1 patches, the CLS token, the positional embedding (resized to the patch grid) and
    ``ln_pre``; returns the tokens ((B, 1+h*w, width) batch-first, else transposed) and h, w.
    """
    x = visual.conv1(images)
    batch, width, grid_h, grid_w = x.shape
    x = x.reshape(batch, width, -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype).expand(batch, 1, width)
    x = torch.cat([cls, x], dim=1)
    x = x + interpolate_positional_embedding(visual.positional_embedding, grid_h, grid_w).to(x.dtype)
    x = visual.ln_pre(x)
    return (x if getattr(visual.transformer, "batch_first", True) else x.transpose(0, 1)), grid_h, grid_w


def encode_dense(visual: nn.Module, images: torch.Tensor, mode: str = "segearth", blocks: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense image features from an open_clip VisionTransformer.

    All blocks but the last ``blocks`` run unchanged; each of the last ``blocks`` contributes
    ``dense_attention(ln_1(x))`` computed on its own input (no residual, no FFN) and the
    contributions are summed, then ``ln_post`` and ``proj``. Returns the CLS row (B, E) and
    the patch features (B, E, grid_h, grid_w) in the joint embedding space.
    """
    if not 1 <= blocks <= len(visual.transformer.resblocks):
        raise ValueError(f"attention blocks must be between 1 and {len(visual.transformer.resblocks)}")
    x, grid_h, grid_w = embed_tokens(visual, images)
    batch = images.shape[0]
    resblocks = list(visual.transformer.resblocks)
    batch_first = getattr(visual.transformer, "batch_first", True)
    for block in resblocks[:-blocks]:
        x = block(x)
    dense = 0
    for index, block in enumerate(resblocks[-blocks:]):
        tokens = x if batch_first else x.transpose(0, 1)
        dense = dense + dense_attention(block.attn, block.ln_1(tokens), mode)
        if index < blocks - 1:
            x = block(x)
    out = visual.ln_post(dense) @ visual.proj
    patches = out[:, 1:].transpose(1, 2).reshape(batch, -1, grid_h, grid_w)
    return out[:, 0], patches


class SegEarthOV(nn.Module):
    """Windows + query embeddings -> per-query logits at window resolution."""

    def __init__(self, clip: nn.Module, upsampler: nn.Module | None = None, attention: str = "segearth",
                 attention_blocks: int = 1, gba_lambda: float = -0.3):
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(f"unknown attention {attention!r}; choose one of {', '.join(ATTENTION_MODES)}")
        self.clip = clip
        self.upsampler = upsampler
        self.attention = attention
        self.attention_blocks = attention_blocks
        self.gba_lambda = gba_lambda
        self.eval()

    @property
    def patch_size(self) -> int:
        return int(self.clip.visual.conv1.kernel_size[0])

    @torch.no_grad()
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_text(tokens)

    @torch.no_grad()
    def forward(self, windows: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q, H, W) for CLIP-normalised windows (B, 3, H, W) and unit queries (Q, E).

        H and W must be multiples of the patch size. Each window's logits are
        cos(pixel feature, query) + lambda * cos(CLS, query). On the CPU the windows are
        shared among worker threads of one core each (``cpu_workers``).
        """
        if windows.device.type != "cpu":
            return self._logits(windows, queries)
        # one window per piece: a window's logits do not depend on the batch it came in
        return torch.cat(on_cores(lambda index: self._logits(windows[index:index + 1], queries),
                                  range(windows.shape[0])))

    def _logits(self, windows: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        cls, patches = encode_dense(self.clip.visual, windows, self.attention, self.attention_blocks)
        queries = queries.to(patches.dtype)
        bias = 0
        if self.gba_lambda:
            cls = cls / cls.norm(dim=-1, keepdim=True)
            bias = self.gba_lambda * (cls @ queries.T)[:, :, None, None]
        height, width = windows.shape[-2:]
        if self.upsampler is None:
            features = patches / patches.norm(dim=1, keepdim=True)
            logits = torch.einsum("bchw,qc->bqhw", features, queries) + bias
            return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        logits = upsampled_cosine_logits(self.upsampler, patches, windows, queries)  # float32
        return logits.to(patches.dtype) + bias


def classify(logits: torch.Tensor, query_to_class: list[int], logit_scale: float = 50.0,
             prob_threshold: float = 0.0, background_index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-query logits (Q, H, W) -> (class map (H, W) int64, class probabilities (C, H, W)).

    p = softmax(logit_scale * logits) over queries; a class's probability is the maximum over
    its synonyms; pixels whose best probability is below ``prob_threshold`` get
    ``background_index``.
    """
    probabilities = torch.softmax(logit_scale * logits.float(), dim=0)
    index = torch.as_tensor(query_to_class, device=logits.device)
    classes = int(index.max()) + 1
    if classes == len(query_to_class):
        class_probs = probabilities
    else:
        class_probs = torch.stack([probabilities[index == c].amax(dim=0) for c in range(classes)])
    best, prediction = class_probs.max(dim=0)
    prediction[best < prob_threshold] = background_index
    return prediction, class_probs
