"""The FarSLIP configs: ``stage: 1`` or ``stage: 2`` at the top, then ``data``, ``model``, ``loss``, ``optim``,
``train``.

Each stage has its own schema, whose defaults are that stage's hyper-parameters (the
authors' ``NJU-LHRS/FarSLIP`` README commands and ``open_clip_train/config.py``), so a key
left out of a file takes the value the authors trained that stage with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

from backend.errors import UserInputError
from training.common.config import load_config, require
from training.common.loop import TrainConfig
from training.common.optim import OptimConfig

LONG_CONTEXT = 248  # LongCLIP's text length (the released ViT-B/16 FarSLIP checkpoints)


@dataclass(frozen=True)
class ModelConfig:
    """The CLIP that trains (both towers) and how its text tower is set up."""

    clip_weights: str = "openai-vit-b-16"
    activation: Literal["quickgelu", "gelu"] = "quickgelu"
    long_text: bool = True
    grad_checkpointing: bool = False


def _check_weights(section, names: tuple[str, ...]) -> None:
    for name in names:
        require(getattr(section, name) >= 0, name, "must be 0 or more")
    require(section.max_logit_scale >= 1, "max_logit_scale", "must be at least 1")


@dataclass(frozen=True)
class Stage1Data:
    """Image-caption pairs (webdataset shards or a caption list) and the local crops drawn from each image."""

    train_data: str
    val_data: str | None = None
    local_crops: int = 4
    crop_scale: tuple[float, float] = (0.3, 0.7)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    check_files: bool = True

    def __post_init__(self) -> None:
        require(self.local_crops >= 1, "local_crops", "must be at least 1")
        low, high = self.crop_scale
        require(0 < low <= high <= 1, "crop_scale", "must be two fractions with 0 < first <= second <= 1")
        require(0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio",
                "must be two aspects with 0 < first <= second")


@dataclass(frozen=True)
class Stage1Loss:
    """Global image-caption contrast plus patch-to-patch self-distillation, and the distillation teacher."""

    global_weight: float = 1.0
    distill_weight: float = 0.1
    distill_teacher: Literal["ema", "student"] = "ema"
    ema_momentum: float = 0.99
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        _check_weights(self, ("global_weight", "distill_weight"))
        require(0 <= self.ema_momentum < 1, "ema_momentum", "must be in [0, 1)")


@dataclass(frozen=True)
class Stage2Data:
    """An MGRS-200k-style JSON list: image, short and long captions, boxes with categories."""

    train_data: str
    val_data: str | None = None
    image_root: str | None = None
    caption: Literal["long", "short"] = "long"
    max_boxes: int = 4
    min_box_size: int = 64
    max_box_size: int | None = 1024
    check_files: bool = True

    def __post_init__(self) -> None:
        require(self.max_boxes >= 1, "max_boxes", "must be at least 1")
        require(self.min_box_size >= 1, "min_box_size", "must be at least 1")
        require(self.max_box_size is None or self.max_box_size >= self.min_box_size, "max_box_size",
                "must be at least data.min_box_size, or null for no limit")


@dataclass(frozen=True)
class Stage2Loss:
    """Global image-caption contrast plus region-category contrast on the region crops' CLS tokens."""

    global_weight: float = 1.0
    region_weight: float = 1.0
    region_template: str = "a satellite image of {}"
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        _check_weights(self, ("global_weight", "region_weight"))
        require(self.region_template.count("{}") == 1, "region_template",
                "must hold the category's place as {} once, e.g. 'a satellite image of {}'")


def _stage_check(stage: int, expected: int) -> None:
    require(stage == expected, "stage", f"must be {expected} in this schema")


def _authors_optim(lr: float, warmup_steps: int):
    """AdamW with open_clip's ViT betas and eps, the authors' weight decay 1.0, warmup then cosine."""
    return field(default_factory=lambda: OptimConfig(lr=lr, weight_decay=1.0, warmup_steps=warmup_steps))


def _authors_train(stage: int, epochs: int):
    """The authors' 4 GPUs x 40 as one batch of 160; bf16 autocast on CUDA (theirs: fp16 'amp')."""
    return field(default_factory=lambda: TrainConfig(out_dir=f"runs/farslip{stage}_vit_b16", epochs=epochs,
                                                     batch_size=160, precision="bf16", num_workers=8,
                                                     checkpoint_every=500))


@dataclass(frozen=True)
class Stage1Config:
    """Stage I (RS5M): lr 1e-6, weight decay 1.0, warmup 1000, 1 epoch, 4 GPUs x 40 = 160 a step."""

    stage: int
    data: Stage1Data
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Stage1Loss = field(default_factory=Stage1Loss)
    optim: OptimConfig = _authors_optim(lr=1e-6, warmup_steps=1000)
    train: TrainConfig = _authors_train(stage=1, epochs=1)

    def __post_init__(self) -> None:
        _stage_check(self.stage, 1)


@dataclass(frozen=True)
class Stage2Config:
    """Stage II (MGRS-200k): lr 4e-9, weight decay 1.0, warmup 250, 10 epochs, 160 a step, from stage I."""

    stage: int
    data: Stage2Data
    model: ModelConfig = field(default_factory=lambda: ModelConfig(clip_weights="farslip1-vit-b-16"))
    loss: Stage2Loss = field(default_factory=Stage2Loss)
    optim: OptimConfig = _authors_optim(lr=4e-9, warmup_steps=250)
    train: TrainConfig = _authors_train(stage=2, epochs=10)

    def __post_init__(self) -> None:
        _stage_check(self.stage, 2)


FarSLIPConfig = Union[Stage1Config, Stage2Config]
SCHEMAS = {1: Stage1Config, 2: Stage2Config}


def load_farslip_config(path: str | Path) -> FarSLIPConfig:
    """The config at ``path`` read with the schema of the stage it declares (``stage: 1`` or ``stage: 2``)."""
    stage = _declared_stage(Path(path))
    if stage is None:  # a missing, unreadable or non-YAML file: the shared loader names the problem
        return load_config(path, Stage1Config)
    if isinstance(stage, bool) or not isinstance(stage, int) or stage not in SCHEMAS:
        raise UserInputError(f"{path}: 'stage' must be 1 (image-caption contrast and self-distillation) or 2 "
                             f"(region-category contrast), not {stage!r}; fix it in the file.")
    return load_config(path, SCHEMAS[stage])


def _declared_stage(path: Path) -> object:
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - load_config reports what is wrong with the file
        return None
    if not isinstance(data, dict):
        return None
    if "stage" not in data:
        raise UserInputError(f"{path}: 'stage' is missing; add 'stage: 1' or 'stage: 2' at the top of the file.")
    return data["stage"]
