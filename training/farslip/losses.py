"""FarSLIP's losses: global image-caption contrast, patch-to-patch self-distillation, region-category contrast.

Every loss is computed in float32 whatever the autocast dtype of the features. ``scale``
is CLIP's exponentiated logit scale (1/temperature).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from training.alignearth.losses import contrastive_loss


def global_contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's loss on (B, E) image and caption features: the mean of the two directions' InfoNCE.

    Pair i is the positive of row and column i; every other caption (image) of the batch is
    a negative, duplicates included, as open_clip's ``ClipLoss`` does.
    """
    return 0.5 * contrastive_loss(image, text, scale)  # AlignEarth's Eq. 10 sums the two directions


def roi_pooled_features(patches: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Patch features pooled over boxes by ROI Align at the patch grid's own resolution, as the authors pool.

    ``patches`` (B, E, h, w); ``boxes`` (B, n, 4) as fractions of the image (x1, y1, x2, y2).
    Each box is resampled to an h x w grid of bin centres (pixel-centre aligned, bilinear with
    torchvision's edge rules: ``roi_align(..., output_size=(h, w), spatial_scale=1,
    sampling_ratio=-1, aligned=True)``) and averaged: (B * n, E), image-major. A box inside
    the image spans at most h x w cells, so the adaptive sampling takes one point per bin and
    the mean is a separable weighting of the patches, computed here without torchvision
    (whose CPU fallback compiles on first use).
    """
    batch, _, height, width = patches.shape
    flat = boxes.reshape(-1, 4).float()
    rows = _bin_centre_weights(flat[:, 1] * height, (flat[:, 3] - flat[:, 1]) * height, height)
    cols = _bin_centre_weights(flat[:, 0] * width, (flat[:, 2] - flat[:, 0]) * width, width)
    owner = torch.arange(batch, device=patches.device).repeat_interleave(boxes.shape[1])
    return torch.einsum("nh,nw,nehw->ne", rows.to(patches.device), cols.to(patches.device), patches.float()[owner])


def _bin_centre_weights(start: torch.Tensor, length: torch.Tensor, cells: int) -> torch.Tensor:
    """(N, cells): the mean bilinear weight of each cell over ``cells`` bin centres spanning [start, start + length).

    Coordinates are shifted by -0.5 (cell i's centre at i); points before the first centre
    take its value and points past the last centre the last one's (torchvision's rules).
    """
    centres = start[:, None] - 0.5 + (torch.arange(cells, device=start.device) + 0.5) * (length[:, None] / cells)
    centres = centres.clamp(0, cells - 1)
    low = centres.floor()
    fraction = (centres - low)[..., None]
    high = (low + 1).clamp(max=cells - 1)
    weights = (1 - fraction) * F.one_hot(low.long(), cells) + fraction * F.one_hot(high.long(), cells)
    return weights.mean(dim=1)


def self_distillation_loss(student_patches: torch.Tensor, boxes: torch.Tensor,
                           teacher_crop_patches: torch.Tensor) -> torch.Tensor:
    """Patch-to-patch self-distillation: ``1 - cos`` between student and teacher, averaged over crops.

    ``student_patches`` (B, E, h, w) of the whole images; ``boxes`` (B, n, 4) the crops'
    boxes as fractions; ``teacher_crop_patches`` (B * n, E, h', w') of the crops themselves,
    image-major. The student side is ROI-pooled over each box, the teacher side averaged over
    the whole crop.
    """
    student = roi_pooled_features(student_patches, boxes)
    teacher = teacher_crop_patches.float().mean(dim=(2, 3))
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def region_category_loss(regions: torch.Tensor, texts: torch.Tensor, labels: torch.Tensor,
                         scale: torch.Tensor | float) -> torch.Tensor:
    """Multi-positive contrast of region features (N, E) with their category texts' features (N, E).

    Region i and text j are a positive pair when their categories (``labels`` (N,)) are equal;
    each row's target spreads evenly over its positives. The loss is the mean over rows of the
    cross-entropy between that target and the softmax of ``scale * cos``, averaged over the
    region-to-text and text-to-region directions.
    """
    regions = F.normalize(regions.float(), dim=-1)
    texts = F.normalize(texts.float(), dim=-1)
    logits = scale * regions @ texts.T
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    to_text = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    to_region = -(target * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (to_text + to_region)
