"""GeoMag's frozen vision encoder: SAM2's image encoder -> multi-scale 256-channel features f_img^l.

paper (§3.1): a frozen SAM2 gives multi-scale segmentation features f_img^l, l = 1..L.
ours (from SAM2's own code): the image is resized (aspect not kept) to the model's square input size and
normalised with ImageNet's mean/std as SAM2's predictor does; the features are the image encoder's FPN
outputs ``backbone_fpn`` (L = 3 for the released configs, strides 4, 8, 16) with their sine position
encodings ``vision_pos_enc``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.errors import CheckpointFormatError, UserInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ImageFeatures:
    """SAM2 features of a batch, finest first: ``levels[l]`` and ``positions[l]`` are (B, 256, h_l, w_l)."""

    levels: list[torch.Tensor]
    positions: list[torch.Tensor]


def sam_input(image: np.ndarray, size: int) -> torch.Tensor:
    """An (H, W, 3) uint8 RGB image as SAM2's (3, size, size) normalised float32 input."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((tensor - mean) / std)[0]


def build_sam2_image_encoder(config_name: str, weights: str | None, image_size: int,
                             download: bool = True) -> nn.Module:
    """SAM2's image encoder from a packaged config, loaded from a released ``{'model': ...}`` file (or random)."""
    from sam2.build_sam import build_sam2

    try:
        model = build_sam2(config_name, ckpt_path=None, device="cpu",
                           hydra_overrides_extra=[f"++model.image_size={image_size}"])
    except Exception as error:  # noqa: BLE001 - hydra reports a missing config in several ways
        raise UserInputError(f"GeoMag sam2_config {config_name!r} is not a SAM2 config of the sam2 package "
                             f"({type(error).__name__}); use e.g. configs/sam2.1/sam2.1_hiera_l.yaml.") from None
    if weights is not None:
        from backend.models.checkpoints import read_checkpoint, tensor_state_dict
        from backend.weights import resolve_weights

        path = resolve_weights(weights, download, field="sam2_weights")
        state = tensor_state_dict(read_checkpoint(path))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointFormatError(
                f"{path} does not match SAM2 config {config_name} ({str(error).splitlines()[0][:120]}); "
                "give the SAM2 checkpoint released for that config.") from None
    return model.image_encoder


class SamEncoder(nn.Module):
    """Frozen SAM2 image encoder; always in eval mode and without gradients."""

    def __init__(self, encoder: nn.Module, image_size: int) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.image_size = image_size

    def train(self, mode: bool = True) -> "SamEncoder":
        return super().train(False)

    @property
    def channels(self) -> int:
        return self.encoder.neck.d_model

    @property
    def levels(self) -> int:
        """L of Eq. 1: the FPN levels the encoder returns (its ``scalp`` coarsest ones dropped)."""
        return len(self.encoder.neck.backbone_channel_list) - self.encoder.scalp

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> ImageFeatures:
        """(B, 3, S, S) normalised inputs (``sam_input``) -> the FPN levels, finest first."""
        dtype = next(self.encoder.parameters()).dtype
        output = self.encoder(images.to(dtype))
        return ImageFeatures(list(output["backbone_fpn"]), list(output["vision_pos_enc"]))
