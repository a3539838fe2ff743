"""AdamW with decay on weight matrices only, and a stateless learning-rate schedule (warmup, cosine)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from training.common.config import require


@dataclass(frozen=True)
class OptimConfig:
    """The ``optim`` section: AdamW and its learning-rate schedule."""

    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    grad_clip_norm: float | None = None

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", "must be greater than 0")
        require(self.weight_decay >= 0, "weight_decay", "must be 0 or more")
        require(all(0 <= beta < 1 for beta in self.betas), "betas", "must both be in [0, 1)")
        require(self.eps > 0, "eps", "must be greater than 0")
        require(self.warmup_steps >= 0, "warmup_steps", "must be 0 or more")
        require(0 <= self.min_lr <= self.lr, "min_lr", "must be between 0 and lr")
        require(self.grad_clip_norm is None or self.grad_clip_norm > 0, "grad_clip_norm",
                "must be greater than 0, or null for no clipping")


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: matrices decayed; biases, norms, scalars and tokens not."""
    decay, plain = [], []
    for parameter in module.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else plain).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def build_adamw(module: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(module, config.weight_decay), lr=config.lr, betas=config.betas,
                             eps=config.eps)


def learning_rate(step: int, total_steps: int, config: OptimConfig) -> float:
    """The rate for the optimiser step ``step`` (0-based): linear warmup, then constant or cosine to min_lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate
