"""SimFeatUp's losses (SegEarth-OV, Eqs. 3-5): feature reconstruction L_rec, image reconstruction L_img.

L_rec compares the CLIP features of a jittered view with the downsampled jittered
upsampling, as FeatUp does: both projected on a random unit basis of a few dimensions
(Johnson-Lindenstrauss: a cheap, unbiased stand-in for all 512), and weighted by a
predicted uncertainty s per position, mse / (2 s²) + log s. Without a projection and
without s, it is Eq. 3's mean squared error. Every loss is computed in float32.
"""
from __future__ import annotations

import torch


def random_projection(batch: int, channels: int, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, C, dim) Gaussian directions, each column of unit length (torch's global generator)."""
    projection = torch.randn(batch, channels, dim, device=device)
    return projection / projection.square().sum(dim=1, keepdim=True).sqrt()


def project(features: torch.Tensor, projection: torch.Tensor | None) -> torch.Tensor:
    """(B, C, H, W) features on the (B, C, D) directions -> (B, D, H, W); unchanged for None."""
    if projection is None:
        return features
    return torch.einsum("bchw,bcd->bdhw", features, projection)


def feature_reconstruction_loss(reconstructed: torch.Tensor, target: torch.Tensor,
                                projection: torch.Tensor | None = None,
                                scales: torch.Tensor | None = None) -> torch.Tensor:
    """L_rec between σ↓(σ↑(O)) and O, both (B, C, h, w): the mean of (projected) squared errors.

    With ``scales`` s (B, 1, h, w), each error e becomes e / (2 s²) + log s before the mean
    (a Gaussian likelihood whose variance is predicted: positions the upsampler cannot
    explain may cost less, at the price of log s).
    """
    error = (project(target.float(), projection) - project(reconstructed.float(), projection)).square()
    if scales is None:
        return error.mean()
    scales = scales.float()
    return (error / (2 * scales.square()) + scales.log()).mean()


def image_reconstruction_loss(reconstructed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_img (Eq. 4): the mean squared error between CRN(σ↑(O)) and the normalised image, both (B, 3, H, W)."""
    return (image.float() - reconstructed.float()).square().mean()


def total_loss(feature: torch.Tensor, image: torch.Tensor, image_weight: float = 0.1) -> torch.Tensor:
    """Eq. 5: L_rec + γ L_img (γ = 0.1 in the paper)."""
    return feature + image_weight * image
