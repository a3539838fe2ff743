"""The GeoMag configs: ``stage: 1`` (the TMRA granularity classifier) or ``stage: 2`` (LoRA + text projection +
pixel decoder), then ``data``, ``model``, (``loss``,) ``optim`` and ``train``.

paper (§3.2.1, §4): BERT-base frozen under a 768-256-128-3 classifier; LLaVA-1.5-7B with LoRA rank 8, a
frozen SAM2 encoder, trainable text projection and pixel decoder; one A100 80G. Everything else is ours
(marked in the shipped YAML files and training/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from backend.errors import UserInputError
from backend.models.geomag.config import GeoMagConfig
from training.common.config import load_config, require
from training.common.loop import TrainConfig
from training.common.optim import OptimConfig

_BASE = GeoMagConfig()  # the architecture's defaults live in one place: the backend's config


def _stage(stage: int, expected: int) -> None:
    require(stage == expected, "stage", f"must be {expected} in this schema")


@dataclass(frozen=True)
class PairsData:
    """(query, granularity) pairs: CSV/JSON lists and/or generated ones."""

    train_pairs: str | None = None
    val_pairs: str | None = None
    generated_pairs: int = 0
    generated_val_pairs: int = 0

    def __post_init__(self) -> None:
        require(self.generated_pairs >= 0, "generated_pairs", "must be 0 or more")
        require(self.generated_val_pairs >= 0, "generated_val_pairs", "must be 0 or more")
        require(self.train_pairs is not None or self.generated_pairs > 0, "train_pairs",
                "must name a CSV/JSON of query,granularity pairs (or set generated_pairs)")


@dataclass(frozen=True)
class TmraModel:
    """The frozen query encoder."""

    bert: str = _BASE.bert
    max_length: int = 128

    def __post_init__(self) -> None:
        require(self.max_length >= 8, "max_length", "must be at least 8")


@dataclass(frozen=True)
class TmraConfig:
    """Stage 1: cross-entropy on the classifier's logits, BERT frozen (its [CLS] features computed once)."""

    stage: int
    data: PairsData
    model: TmraModel = field(default_factory=TmraModel)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8, schedule="constant", warmup_steps=0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/geomag_tmra", epochs=20, batch_size=32, precision="fp32", num_workers=0, log_every=10,
        checkpoint_every=200))

    def __post_init__(self) -> None:
        _stage(self.stage, 1)


SOURCES = ("rrsisd", "refsegrs", "geopixeld", "generated")


@dataclass(frozen=True)
class MixData:
    """The training mix: each released set by its folder/file, generated scenes by count; repeats weigh them."""

    rrsisd: str | None = None
    refsegrs: str | None = None
    geopixeld: str | None = None
    geopixeld_image_root: str | None = None
    generated: int = 0
    generated_size: int = 256
    rrsisd_repeat: int = 1
    refsegrs_repeat: int = 1
    geopixeld_repeat: int = 1
    generated_repeat: int = 1
    prompt_template: str = "{expression}"
    val: Literal["rrsisd", "refsegrs", "generated"] | None = None
    val_split: Literal["val", "test"] = "val"
    val_generated: int = 0
    val_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("generated", "rrsisd_repeat", "refsegrs_repeat", "geopixeld_repeat", "generated_repeat",
                     "val_generated"):
            require(getattr(self, name) >= 0, name, "must be 0 or more")
        require(self.generated_size >= 16, "generated_size", "must be at least 16")
        require("{expression}" in self.prompt_template, "prompt_template", "must contain {expression}")
        require(self.val_limit is None or self.val_limit >= 1, "val_limit", "must be at least 1, or null for all")
        require(any((self.rrsisd, self.refsegrs, self.geopixeld, self.generated)), "rrsisd",
                "or another source must be given: set rrsisd, refsegrs, geopixeld or generated")
        require(self.val not in ("rrsisd", "refsegrs") or bool(getattr(self, str(self.val))), "val",
                "names a set whose folder is not given; set its folder too")
        require(self.val != "generated" or self.val_generated > 0, "val_generated",
                "must be at least 1 when val is 'generated'")


@dataclass(frozen=True)
class GeoMagModel:
    """The base models and the trainable parts (GeoMagConfig's fields, its defaults), and how the step spends
    memory."""

    vlm: str = _BASE.vlm
    sam2_config: str = _BASE.sam2_config
    sam2_weights: str | None = _BASE.sam2_weights
    sam2_image_size: int = _BASE.sam2_image_size
    bert: str = _BASE.bert
    seg_token: str = _BASE.seg_token
    seg_tokens_per_mask: int = _BASE.seg_tokens_per_mask
    lora_rank: int = _BASE.lora_rank
    lora_alpha: int = _BASE.lora_alpha
    lora_dropout: float = _BASE.lora_dropout
    lora_targets: str = ",".join(_BASE.lora_targets)  # comma-separated in a YAML config
    decoder_dim: int = _BASE.decoder_dim
    decoder_heads: int = _BASE.decoder_heads
    answer_template: str = _BASE.answer_template
    base_dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    load_in: Literal["4bit", "8bit"] | None = None
    grad_checkpointing: bool = False
    tmra_weights: str | None = None

    def __post_init__(self) -> None:
        require(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        require(bool(self.lora_targets.strip()), "lora_targets", "must name at least one projection")


@dataclass(frozen=True)
class LossWeights:
    """LISA's objective: weights of next-token cross-entropy, per-pixel BCE and dice."""

    ce_weight: float = _BASE.ce_weight
    bce_weight: float = _BASE.bce_weight
    dice_weight: float = _BASE.dice_weight

    def __post_init__(self) -> None:
        for name in ("ce_weight", "bce_weight", "dice_weight"):
            require(getattr(self, name) >= 0, name, "must be 0 or more")


@dataclass(frozen=True)
class GeoMagTrainConfig:
    """Stage 2: LoRA + [SEG] rows + text projection + pixel decoder on the mix, LISA's loss."""

    stage: int
    data: MixData
    model: GeoMagModel = field(default_factory=GeoMagModel)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=3e-4, weight_decay=0.0, betas=(0.9, 0.95), eps=1e-8, schedule="cosine", warmup_steps=100))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/geomag_llava15_7b", epochs=3, batch_size=8, precision="bf16", num_workers=4, log_every=10,
        checkpoint_every=500))

    def __post_init__(self) -> None:
        _stage(self.stage, 2)


SCHEMAS = {1: TmraConfig, 2: GeoMagTrainConfig}


def load_geomag_config(path: str | Path) -> TmraConfig | GeoMagTrainConfig:
    """The config at ``path`` read with the schema of the stage it declares."""
    path = Path(path)
    stage = None
    if path.is_file():
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            data = None  # the shared loader names the problem
        if isinstance(data, dict):
            if "stage" not in data:
                raise UserInputError(f"{path}: 'stage' is missing; add 'stage: 1' (the TMRA classifier) or "
                                     "'stage: 2' (LoRA, text projection and pixel decoder) at the top of the file.")
            stage = data["stage"]
            if isinstance(stage, bool) or stage not in SCHEMAS:
                raise UserInputError(f"{path}: 'stage' must be 1 (the TMRA classifier) or 2 (LoRA, text projection "
                                     f"and pixel decoder), not {stage!r}; fix it in the file.")
    return load_config(path, SCHEMAS.get(stage, TmraConfig))
