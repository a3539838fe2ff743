"""The SimFeatUp config: sections ``data``, ``model``, ``loss``, ``optim`` and ``train``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from training.common.config import require
from training.common.loop import TrainConfig
from training.common.optim import OptimConfig


@dataclass(frozen=True)
class DataConfig:
    """Where the images are, the crop size and the pixel normalisation."""

    images: str
    val_images: str | None = None
    crop_size: int = 224
    normalisation: Literal["imagenet", "clip"] = "imagenet"
    check_files: bool = True

    def __post_init__(self) -> None:
        require(self.crop_size >= 1, "crop_size", "must be at least 1")


@dataclass(frozen=True)
class ModelConfig:
    """The frozen CLIP whose features are upsampled, and how the training forward spends memory."""

    clip_weights: str = "openai-vit-b-16"
    clip_activation: Literal["quickgelu", "gelu"] = "quickgelu"
    recompute_views: bool = True
    channel_chunk: int | None = None

    def __post_init__(self) -> None:
        require(self.channel_chunk is None or self.channel_chunk >= 1, "channel_chunk",
                "must be at least 1, or null for all channels at once")


@dataclass(frozen=True)
class LossConfig:
    """The multi-view jitter, FeatUp's L_rec options and the weight of L_img."""

    jitters: int = 5
    max_pad: int = 20
    max_zoom: float = 2.0
    flips: bool = True
    random_projection: int | None = 30
    predicted_uncertainty: bool = True
    image_weight: float = 0.1

    def __post_init__(self) -> None:
        require(self.jitters >= 1, "jitters", "must be at least 1")
        require(self.max_pad >= 0, "max_pad", "must be 0 or more")
        require(self.max_zoom >= 1.0, "max_zoom", "must be at least 1 (1: no zoom)")
        require(self.random_projection is None or self.random_projection >= 1, "random_projection",
                "must be at least 1, or null to compare all channels")
        require(self.image_weight >= 0, "image_weight", "must be 0 or more")


@dataclass(frozen=True)
class SimFeatUpConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, schedule="constant", warmup_steps=0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/simfeatup", epochs=1, batch_size=8, precision="fp32", num_workers=4, log_every=10,
        checkpoint_every=100))
