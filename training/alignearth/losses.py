"""AlignEarth's losses (SegEarth-OV-2, section 4.2): Eq. 10 contrastive, Eq. 11 global, Eq. 12 local.

Inputs are the final projected tokens: CLS rows (B, E) and patch maps (B, E, h, w). Every
loss is computed in float32 whatever the autocast dtype of the features.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LearnableTemperature(nn.Module):
    """τ of Eq. 10, kept as log(1/τ) like CLIP's logit scale; 1/τ never exceeds ``max_scale``."""

    def __init__(self, initial: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / initial)))
        self.max_scale = max_scale

    def scale(self) -> torch.Tensor:
        """1/τ (clamped to ``max_scale``)."""
        return self.log_scale.exp().clamp(max=self.max_scale)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the parameter in [0, log max_scale] after an optimiser step, as CLIP does."""
        self.log_scale.clamp_(0.0, math.log(self.max_scale))

    @property
    def temperature(self) -> float:
        return float(1.0 / self.scale().detach())


def contrastive_loss(optical_cls: torch.Tensor, sar_cls: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Eq. 10: symmetric InfoNCE over the cosine similarities of CLS tokens, divided by N.

    ``-(1/N) Σ_i [log softmax_j(s·cos(o_i, s_j))_i + log softmax_j(s·cos(s_i, o_j))_i]`` with
    ``s = 1/τ``: the two directions' terms are summed (not averaged) as the equation writes.
    """
    optical = F.normalize(optical_cls.float(), dim=-1)
    sar = F.normalize(sar_cls.float(), dim=-1)
    logits = scale * optical @ sar.T  # row i: optical i against every SAR token
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def cls_distillation_loss(optical_cls: torch.Tensor, sar_cls: torch.Tensor) -> torch.Tensor:
    """Eq. 11: ``1 - cos(o, s)`` of the CLS tokens, averaged over the batch."""
    return (1.0 - F.cosine_similarity(optical_cls.float(), sar_cls.float(), dim=-1)).mean()


def region_means(patches: torch.Tensor, regions: int) -> torch.Tensor:
    """(B, E, h, w) patch map -> (B, E, K, K) means of K x K non-overlapping regions (K = ``regions``)."""
    height, width = patches.shape[-2:]
    if height % regions or width % regions:
        raise ValueError(f"a {height}x{width} patch grid cannot be split into {regions}x{regions} equal regions; "
                         f"choose a number of regions that divides {height} and {width}.")
    return F.avg_pool2d(patches.float(), kernel_size=(height // regions, width // regions))


def local_distillation_loss(optical_patches: torch.Tensor, sar_patches: torch.Tensor,
                            regions: int = 7) -> torch.Tensor:
    """Eq. 12: ``1 - cos`` of region-mean patch features, averaged over the K² regions and the batch."""
    optical = region_means(optical_patches, regions)
    sar = region_means(sar_patches, regions)
    return (1.0 - F.cosine_similarity(optical, sar, dim=1)).mean()


def alignearth_losses(optical: tuple[torch.Tensor, torch.Tensor], sar: tuple[torch.Tensor, torch.Tensor],
                      scale: torch.Tensor | float, regions: int = 7,
                      weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """The three terms of a batch and ``total``, their sum weighted by (contrastive, global, local).

    ``optical`` and ``sar`` are (CLS (B, E), patches (B, E, h, w)) of teacher and student.
    """
    terms = {
        "cls_contrast": contrastive_loss(optical[0], sar[0], scale),
        "cls_distill": cls_distillation_loss(optical[0], sar[0]),
        "local_distill": local_distillation_loss(optical[1], sar[1], regions),
    }
    terms["total"] = sum(weight * term for weight, term in zip(weights, terms.values()))
    return terms
