"""Named model presets (how to build a segmentor) and dataset presets (thresholds).

Constants from the authors' configs: SegEarth-OV (SegEarth attention, SimFeatUp,
lambda -0.3), SegEarth-OV-2 for SAR (AlignEarth encoder, GELU, SCLIP attention over the
last 2 blocks, threshold 0), FarSLIP for optical OVSS (SegEarth attention, no upsampler,
lambda 0).
"""
from __future__ import annotations

from dataclasses import dataclass

from backend.errors import UserInputError


@dataclass(frozen=True)
class ModelPreset:
    name: str
    clip_weights: str
    quick_gelu: bool
    attention: str = "segearth"
    attention_blocks: int = 1
    upsampler_weights: str | None = "simfeatup-jbu-one-million-aid"
    gba_lambda: float = -0.3
    prob_threshold: float = 0.0
    background_index: int = 0
    window: int = 224
    stride: int = 112
    logit_scale: float = 50.0
    description: str = ""


MODEL_PRESETS: dict[str, ModelPreset] = {p.name: p for p in (
    ModelPreset("segearth-ov", "openai-vit-b-16", quick_gelu=True, prob_threshold=0.1,
                description="SegEarth-OV: OpenAI CLIP ViT-B/16 + SimFeatUp + global bias alleviation (optical)"),
    ModelPreset("segearth-ov-sar", "alignearth-sar-vit-b-16", quick_gelu=False, attention="sclip",
                attention_blocks=2, prob_threshold=0.0,
                description="SegEarth-OV-2 for SAR: AlignEarth encoder, SCLIP attention over 2 blocks"),
    *(ModelPreset(f"farslip{stage}-vit-b-{patch}", f"farslip{stage}-vit-b-{patch}", quick_gelu=True,
                  upsampler_weights=None, gba_lambda=0.0,
                  description=f"FarSLIP{stage} ViT-B/{patch}, SegEarth attention, no upsampler")
      for stage in (1, 2) for patch in (16, 32)),
)}


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    prob_threshold: float
    background_index: int = 0
    gba_lambda: float | None = None  # None: keep the model preset's


DATASET_PRESETS: dict[str, DatasetPreset] = {p.name: p for p in (
    DatasetPreset("openearthmap", 0.1), DatasetPreset("loveda", 0.3), DatasetPreset("isaid", 0.4),
    DatasetPreset("potsdam", 0.1, 5), DatasetPreset("vaihingen", 0.1, 5), DatasetPreset("udd5", 0.4, 4),
    DatasetPreset("uavid", 0.3), DatasetPreset("vdd", 0.3), DatasetPreset("inria", 0.6),
    DatasetPreset("whu-aerial", 0.6), DatasetPreset("whu-sat-ii", 0.7), DatasetPreset("wbs-si", 0.6),
    DatasetPreset("deepglobe", 0.7), DatasetPreset("massachusetts", 0.7), DatasetPreset("spacenet", 0.7),
    DatasetPreset("chn6-cug", 0.8), DatasetPreset("xbd", 0.0, 0, gba_lambda=0.0),
    # SAR (SegEarth-OV-2 configs, with --model segearth-ov-sar)
    DatasetPreset("openearthmap-sar", 0.0), DatasetPreset("ddhr-sar", 0.0), DatasetPreset("fusar-map", 0.0),
    DatasetPreset("pie-sar", 0.0), DatasetPreset("whu-sar", 0.0, 6), DatasetPreset("yeseg-sar", 0.3),
)}


def model_preset(name: str) -> ModelPreset:
    try:
        return MODEL_PRESETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown model {name!r}; choose one of {', '.join(MODEL_PRESETS)}."
        ) from None


def dataset_preset(name: str) -> DatasetPreset:
    try:
        return DATASET_PRESETS[name]
    except KeyError:
        raise UserInputError(
            f"unknown dataset preset {name!r}; choose one of {', '.join(DATASET_PRESETS)}."
        ) from None
