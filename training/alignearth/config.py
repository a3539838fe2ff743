"""The AlignEarth config: sections ``data``, ``model``, ``loss``, ``optim`` and ``train``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from training.common.config import require
from training.common.loop import TrainConfig
from training.common.optim import OptimConfig


@dataclass(frozen=True)
class DataConfig:
    """Paired optical-SAR manifests and the paired augmentation."""

    train_manifest: str
    val_manifest: str | None = None
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (0.9, 1.0 / 0.9)
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    check_files: bool = True

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        require(0 < low <= high <= 1, "crop_scale", "must be two fractions with 0 < first <= second <= 1")
        require(0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio",
                "must be two aspects with 0 < first <= second")


@dataclass(frozen=True)
class ModelConfig:
    """The frozen optical teacher and how the student copy of its image tower is built."""

    teacher_weights: str = "openai-vit-b-16"
    teacher_activation: Literal["quickgelu", "gelu"] = "quickgelu"  # the backend's names (--activation)
    student_activation: Literal["quickgelu", "gelu"] = "gelu"
    grad_checkpointing: bool = False


@dataclass(frozen=True)
class LossConfig:
    """Eq. 10-12 settings and the weights of their sum."""

    regions: int = 7
    temperature: float = 0.07
    max_logit_scale: float = 100.0
    contrastive_weight: float = 1.0
    global_weight: float = 1.0
    local_weight: float = 1.0

    def __post_init__(self) -> None:
        require(self.regions >= 1, "regions", "must be at least 1")
        require(self.temperature > 0, "temperature", "must be greater than 0")
        require(self.max_logit_scale >= 1.0 / self.temperature, "max_logit_scale", "must be at least 1 / temperature")
        for name in ("contrastive_weight", "global_weight", "local_weight"):
            require(getattr(self, name) >= 0, name, "must be 0 or more")


@dataclass(frozen=True)
class AlignEarthConfig:
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/alignearth", epochs=20,
                                                                   batch_size=512))
