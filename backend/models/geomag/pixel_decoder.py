"""GeoMag's text projection and pixel decoder (Eq. 1).

paper (§3.1, Eq. 1): Mask = sum_l w_l * PixelDecoder(sum_n beta_n * h_seg^n, f_img^l); the [SEG] outputs
are projected to 256 dimensions by a two-layer MLP; the projection and the decoder are trainable.
ours (the paper is silent on them):
- w and beta are learnt as logits and softmax-normalised (uniform at initialisation); Eq. 1 sums logits.
- one decoder, shared by all L scales: the prompt attends to the scale's features (keys carry SAM2's sine
  position encoding; pre-norm multi-head cross-attention, then a pre-norm MLP, both residual); per-pixel
  features are f + Conv1x1(GELU(DepthwiseConv3x3(f))); the scale's mask logit is the dot product of the
  prompt with each pixel's feature divided by sqrt(d). Each scale's logits are upsampled (bilinear) to the
  SAM2 input size before the weighted sum.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from backend.models.geomag.sam_encoder import ImageFeatures


class TextProjection(nn.Module):
    """Two-layer MLP from the LLM's hidden size to the decoder's dimension (LISA's layout: Linear-ReLU-Linear)."""

    def __init__(self, hidden_size: int, dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, dim))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.layers(hidden.float())


class PixelDecoder(nn.Module):
    """Eq. 1: one prompt-conditioned decoder shared across the L feature scales, mixed by w and beta."""

    def __init__(self, dim: int = 256, heads: int = 8, levels: int = 3, tokens: int = 1) -> None:
        super().__init__()
        self.level_logits = nn.Parameter(torch.zeros(levels))  # w of Eq. 1 before the softmax
        self.token_logits = nn.Parameter(torch.zeros(tokens))  # beta of Eq. 1 before the softmax
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.pixel_head = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, groups=dim), nn.GELU(),
                                        nn.Conv2d(dim, dim, 1))

    @property
    def level_weights(self) -> torch.Tensor:
        """w_l, l = 1..L (softmax of the learnt logits)."""
        return self.level_logits.softmax(0)

    @property
    def token_weights(self) -> torch.Tensor:
        """beta_n, n = 1..N (softmax of the learnt logits)."""
        return self.token_logits.softmax(0)

    def combine_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """sum_n beta_n h_seg^n: (M, N, D) projected [SEG] outputs -> (M, D)."""
        return torch.einsum("n,mnd->md", self.token_weights, tokens.float())

    def decode_level(self, prompt: torch.Tensor, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """PixelDecoder(prompt, f^l): (M, D) prompts, (M, D, h, w) features and positions -> (M, h, w) logits."""
        features, positions = features.float(), positions.float()
        keys = (features + positions).flatten(2).transpose(1, 2)
        values = features.flatten(2).transpose(1, 2)
        query = prompt[:, None]
        normed = self.attention_norm(query)
        query = query + self.attention(normed, keys, values, need_weights=False)[0]
        query = query + self.mlp(self.mlp_norm(query))
        pixels = features + self.pixel_head(features)
        return torch.einsum("md,mdhw->mhw", query[:, 0], pixels) / math.sqrt(prompt.shape[-1])

    def forward(self, tokens: torch.Tensor, features: ImageFeatures, image_index: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
        """Eq. 1: (M, N, D) projected [SEG] outputs of masks on images ``image_index`` (M,) -> (M, *size) logits."""
        prompt = self.combine_tokens(tokens)
        weights = self.level_weights
        mask = prompt.new_zeros((prompt.shape[0], *size))
        for weight, level, position in zip(weights, features.levels, features.positions, strict=True):
            logits = self.decode_level(prompt, level[image_index], position[image_index])
            mask = mask + weight * F.interpolate(logits[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return mask
