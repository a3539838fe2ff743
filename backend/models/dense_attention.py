"""Training-free dense attention for a CLIP ViT's last block(s).

Each mode replaces the block's query-key attention with self-affinities and drops the
residual and the FFN, which is what makes CLIP's patch tokens usable for segmentation:
``segearth`` (q-q + k-k + v-v), ``sclip`` (q-q + k-k), ``clearclip`` (q-q) and
``vanilla`` (q-k, the block's own attention without residual and FFN).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ATTENTION_MODES = ("segearth", "sclip", "clearclip", "vanilla")


def _affinity(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return torch.softmax(torch.matmul(a, b.transpose(-1, -2)) * scale, dim=-1)


def dense_attention(attn: nn.MultiheadAttention, x: torch.Tensor, mode: str) -> torch.Tensor:
    """The block's attention output for tokens ``x`` (batch, tokens, width) under ``mode``."""
    if mode not in ATTENTION_MODES:
        raise ValueError(f"unknown attention mode {mode!r}; choose one of {', '.join(ATTENTION_MODES)}")
    batch, tokens, width = x.shape
    heads = attn.num_heads
    head_dim = width // heads
    scale = head_dim ** -0.5
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = (t.reshape(batch, tokens, heads, head_dim).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    if mode == "segearth":
        weights = _affinity(q, q, scale) + _affinity(k, k, scale) + _affinity(v, v, scale)
    elif mode == "sclip":
        weights = _affinity(q, q, scale) + _affinity(k, k, scale)
    elif mode == "clearclip":
        weights = _affinity(q, q, scale)
    else:
        weights = _affinity(q, k, scale)
    out = torch.matmul(weights, v).transpose(1, 2).reshape(batch, tokens, width)
    return attn.out_proj(out)
