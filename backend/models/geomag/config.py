"""GeoMag's configuration (a dataclass that round-trips through JSON) and the pixel Box value.

paper (§3.1, §4): LLaVA-v1.5-7B with LoRA rank 8, a 2-layer MLP text projection 4096 -> 256,
a frozen SAM2 image encoder, BERT-base for the task granularity classifier.
ours: the LoRA alpha/dropout/targets, the loss weights (LISA's: CE 1.0, BCE 2.0, dice 0.5),
the referring answer template and everything else the paper leaves open.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from backend.errors import UserInputError

GRANULARITIES = ("image", "region", "pixel")
LOAD_IN = (None, "4bit", "8bit")


@dataclass(frozen=True)
class Box:
    """A half-open pixel rectangle [x0, x1) x [y0, y1) in the coordinates of the image it refers to."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def scaled(self, sx: float, sy: float) -> "Box":
        """The box in an image resized by (sx, sy); rounded outwards so it still covers the same pixels."""
        return Box(math.floor(self.x0 * sx), math.floor(self.y0 * sy),
                   math.ceil(self.x1 * sx), math.ceil(self.y1 * sy))

    def clipped(self, width: int, height: int) -> "Box":
        """The part of the box inside a (width, height) image."""
        return Box(min(max(self.x0, 0), width), min(max(self.y0, 0), height),
                   min(max(self.x1, 0), width), min(max(self.y1, 0), height))


@dataclass
class GeoMagConfig:
    """Everything that fixes a GeoMag model's architecture and its training objective."""

    vlm: str = "llava-hf/llava-1.5-7b-hf"  # HF repo id or local dir of a LLaVA-format checkpoint
    sam2_config: str = "configs/sam2.1/sam2.1_hiera_l.yaml"  # a config inside the sam2 package
    sam2_weights: str | None = None  # path or weights-registry name; None = random (tests only)
    sam2_image_size: int = 1024
    bert: str = "google-bert/bert-base-uncased"
    seg_token: str = "[SEG]"
    seg_tokens_per_mask: int = 1  # N of Eq. 1
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    decoder_dim: int = 256
    decoder_heads: int = 8
    ce_weight: float = 1.0
    bce_weight: float = 2.0
    dice_weight: float = 0.5
    answer_template: str = "Sure, it is [SEG]."
    load_in: str | None = None  # "4bit" / "8bit" quantised LLM (needs bitsandbytes), None = full precision
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (e.g. training provenance)

    def __post_init__(self) -> None:
        self.lora_targets = tuple(self.lora_targets)
        if self.load_in not in LOAD_IN:
            raise UserInputError(f"GeoMag config load_in is {self.load_in!r}; use \"4bit\", \"8bit\" or null.")
        for name in ("sam2_image_size", "seg_tokens_per_mask", "lora_rank", "decoder_dim", "decoder_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserInputError(f"GeoMag config {name} is {value!r}; give a positive integer.")
        if self.decoder_dim % self.decoder_heads:
            raise UserInputError(f"GeoMag config decoder_dim {self.decoder_dim} is not divisible by decoder_heads "
                                 f"{self.decoder_heads}; change one of them.")
        if self.seg_token not in self.answer_template:
            raise UserInputError(f"GeoMag config answer_template {self.answer_template!r} does not contain the "
                                 f"segmentation token {self.seg_token}; add it.")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lora_targets"] = list(self.lora_targets)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GeoMagConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise UserInputError(f"GeoMag config has an unknown key {key!r}; remove it "
                                     f"(known keys: {', '.join(sorted(known))}).")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "GeoMagConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserInputError(f"GeoMag config is not valid JSON ({error}); fix the file.") from None
        if not isinstance(data, dict):
            raise UserInputError("GeoMag config JSON is not an object; give a mapping of keys to values.")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "GeoMagConfig":
        """A copy with some fields changed (unknown names -> UserInputError)."""
        return GeoMagConfig.from_dict({**self.to_dict(), **changes})
