"""Named model presets (how to build a segmentor), dataset presets (thresholds), and the
resolution of a job's model fields against them into one complete ``SegmentorConfig``.

Constants from the authors' configs: SegEarth-OV (SegEarth attention, SimFeatUp,
lambda -0.3), SegEarth-OV-2 for SAR (AlignEarth encoder, GELU, SCLIP attention over the
last 2 blocks, threshold 0), and the remote-sensing CLIPs (FarSLIP, GeoRSCLIP, RemoteCLIP,
SkyCLIP) in FarSLIP's OVSS protocol, NJU-LHRS/RS-OVSS: ``customized_segmentor.py``
(CustomizedSegmentation: slide_crop 224, slide_stride 112, cls_token_lambda 0, logit_scale
50, prob_thd 0, no upsampler: patch logits resized bilinearly), ``configs/base_config.py``
(model_type 'SegEarth', ignore_residual True: q-q + k-k + v-v attention in the last block,
no residual, no FFN) and ``eval_customized.py`` (crops of images resized to 448).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from backend.errors import UserInputError
from backend.models.dense_attention import ATTENTION_MODES

ACTIVATIONS = ("quickgelu", "gelu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


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
    modality: str = "optical"  # or "sar": the imagery the encoder was trained on
    dataset_thresholds: bool = True  # rsov eval: each data set's prob_thd/bg_idx; False: RS-OVSS's (0, 0, its names)


def _rs_ovss(name: str, quick_gelu: bool, description: str) -> ModelPreset:
    """A remote-sensing CLIP in RS-OVSS's protocol (see the module docstring); its weights share its name."""
    return ModelPreset(name, name, quick_gelu=quick_gelu, attention="segearth", attention_blocks=1,
                       upsampler_weights=None, gba_lambda=0.0, prob_threshold=0.0, window=224, stride=112,
                       logit_scale=50.0, description=description, dataset_thresholds=False)


MODEL_PRESETS: dict[str, ModelPreset] = {p.name: p for p in (
    ModelPreset("segearth-ov", "openai-vit-b-16", quick_gelu=True, prob_threshold=0.1,
                description="SegEarth-OV: OpenAI CLIP ViT-B/16 + SimFeatUp + global bias alleviation (optical)"),
    ModelPreset("segearth-ov-sar", "alignearth-sar-vit-b-16", quick_gelu=False, attention="sclip",
                attention_blocks=2, prob_threshold=0.0, modality="sar",
                description="SegEarth-OV-2 for SAR: AlignEarth encoder, SCLIP attention over 2 blocks"),
    *(_rs_ovss(f"farslip{stage}-vit-b-{patch}", quick_gelu=True,
               description=f"FarSLIP{stage} ViT-B/{patch} (fine-grained RS CLIP, MIT), SegEarth attention, "
                           "no upsampler")
      for stage in (1, 2) for patch in (16, 32)),
    ModelPreset("farslip2-vit-b-16-simfeatup", "farslip2-vit-b-16", quick_gelu=True,
                description="Experimental: FarSLIP2 ViT-B/16 with SegEarth-OV's SimFeatUp and bias alleviation "
                            "(lambda -0.3); the upsampler was trained on OpenAI CLIP features, not FarSLIP's, "
                            "and the authors did not evaluate this pairing"),
    *(_rs_ovss(f"georsclip-vit-{arch}", quick_gelu=True,
               description=f"GeoRSCLIP ViT-{name} (RS5M; licence Creative Commons, version not stated), SegEarth "
                           "attention, no upsampler" + ("" if arch == "b-32" else "; QuickGELU assumed"))
      for arch, name in (("b-32", "B/32"), ("l-14", "L/14"))),
    *(_rs_ovss(f"remoteclip-vit-{arch}", quick_gelu=False,
               description=f"RemoteCLIP ViT-{name} (Apache-2.0), SegEarth attention, no upsampler")
      for arch, name in (("b-32", "B/32"), ("l-14", "L/14"))),
    *(_rs_ovss(f"skyclip-vit-{arch}", quick_gelu=arch == "l-14",
               description=f"SkyCLIP ViT-{name} (SkyScript top 50 %, MIT), SegEarth attention, no upsampler")
      for arch, name in (("b-32", "B/32"), ("l-14", "L/14"))),
)}


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    prob_threshold: float
    background_index: int = 0
    gba_lambda: float | None = None  # None: keep the model preset's
    modality: str = "optical"


DATASET_PRESETS: dict[str, DatasetPreset] = {p.name: p for p in (
    DatasetPreset("openearthmap", 0.1), DatasetPreset("loveda", 0.3), DatasetPreset("isaid", 0.4),
    DatasetPreset("potsdam", 0.1, 5), DatasetPreset("vaihingen", 0.1, 5), DatasetPreset("udd5", 0.4, 4),
    DatasetPreset("uavid", 0.3), DatasetPreset("vdd", 0.3), DatasetPreset("inria", 0.6),
    DatasetPreset("whu-aerial", 0.6), DatasetPreset("whu-sat-ii", 0.7), DatasetPreset("wbs-si", 0.6),
    DatasetPreset("deepglobe", 0.7), DatasetPreset("massachusetts", 0.7), DatasetPreset("spacenet", 0.7),
    DatasetPreset("chn6-cug", 0.8), DatasetPreset("xbd", 0.0, 0, gba_lambda=0.0),
    # SAR (SegEarth-OV-2 configs, with --model segearth-ov-sar)
    *(DatasetPreset(name, threshold, background, modality="sar") for name, threshold, background in (
        ("openearthmap-sar", 0.0, 0), ("ddhr-korea-sar", 0.0, 0), ("ddhr-shandong-sar", 0.0, 0),
        ("ddhr-xian-sar", 0.0, 0), ("fusar-map", 0.0, 0), ("pie-sar", 0.0, 0), ("whu-sar", 0.0, 6),
        ("yeseg-sar", 0.3, 0))),
)}


def preset_for_modality(modality: str) -> str:
    """The default model preset for optical or SAR imagery."""
    return "segearth-ov-sar" if modality == "sar" else "segearth-ov"


def find_model_preset(name: str) -> ModelPreset:
    return _preset(MODEL_PRESETS, name, "model")


def find_dataset_preset(name: str) -> DatasetPreset:
    return _preset(DATASET_PRESETS, name, "dataset_preset")


@cache
def dataset_classes() -> dict[str, dict]:
    """Each dataset preset's class lines (synonyms by commas, in class-index order) and their source file."""
    return json.loads((Path(__file__).with_name("dataset_classes.json")).read_text(encoding="utf-8"))


def _preset(table: dict, name: str, field: str):
    try:
        return table[name]
    except KeyError:
        raise UserInputError(f"unknown {{{field}}} {name!r}; choose one of {', '.join(table)}.", field) from None


@dataclass(frozen=True)
class SegmentorConfig:
    """Everything that decides a segmentor's output, every preset value filled in."""

    preset: str
    clip_weights: str  # registry name or file path
    upsampler_weights: str | None  # None: bilinear logits
    quick_gelu: bool
    attention: str
    attention_blocks: int
    gba_lambda: float
    window: int
    stride: int
    logit_scale: float
    prob_threshold: float
    background_index: int
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    precision: str = "auto"  # auto: fp32 on CPU, fp16 autocast on CUDA
    download: bool = True


def check_device_options(device: str, precision: str) -> None:
    """``device`` and ``precision`` as a job gives them, checked without touching a device."""
    _choice("precision", precision, PRECISIONS)
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device or ""):
        raise UserInputError(f"{{device}} {device!r} is not a device; use auto, cpu, cuda or cuda:N.", "device")
    if precision == "fp16" and device == "cpu":
        raise UserInputError("{precision} fp16 is not supported on the CPU; use fp32 or bf16.", "precision")


def _choice(field: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise UserInputError(f"{{{field}}} {value!r} is not one of {', '.join(choices)}.", field)


def _at_least(field: str, value: int | None, low: int, what: str) -> None:
    if value is not None and value < low:
        raise UserInputError(f"{{{field}}} {value} must be at least {low} {what}.", field)


def resolve_config(model: str = "segearth-ov", dataset_preset: str | None = None, *,
                   clip_weights: str | None = None, upsampler_weights: str | None = None,
                   no_upsampler: bool = False, attention: str | None = None, attention_blocks: int | None = None,
                   activation: str | None = None, gba_lambda: float | None = None,
                   prob_threshold: float | None = None, background_index: int | None = None,
                   window: int | None = None, stride: int | None = None, device: str = "auto",
                   precision: str = "auto", download: bool = True) -> SegmentorConfig:
    """The preset, then the dataset preset, then each value the user gave (None: not given).

    Checks every value that can be checked without the weights; the model's depth and
    patch size are checked when it is loaded.
    """
    preset = find_model_preset(model)
    dataset = find_dataset_preset(dataset_preset) if dataset_preset else None
    _choice("attention", attention, ATTENTION_MODES)
    _choice("activation", activation, ACTIVATIONS)
    check_device_options(device, precision)
    _at_least("attention_blocks", attention_blocks, 1, "block")
    _at_least("window", window, 1, "pixel")
    _at_least("stride", stride, 1, "pixel")
    _at_least("background_index", background_index, 0, "(a class index)")
    if prob_threshold is not None and not 0 <= prob_threshold <= 1:
        raise UserInputError(f"{{prob_threshold}} {prob_threshold} is not a probability; give a value from 0 to 1.",
                             "prob_threshold")
    if gba_lambda is not None and not math.isfinite(gba_lambda):
        raise UserInputError(f"{{gba_lambda}} {gba_lambda} must be a finite number (the paper uses -0.3).",
                             "gba_lambda")
    if no_upsampler and upsampler_weights is not None:
        raise UserInputError("{no_upsampler} and {upsampler_weights} contradict each other; give one.",
                             "no_upsampler", "upsampler_weights")

    def pick(override, dataset_value, preset_value):
        if override is not None:
            return override
        return dataset_value if dataset_value is not None else preset_value

    window = window if window is not None else preset.window
    stride = stride if stride is not None else preset.stride
    if stride > window:
        raise UserInputError(f"{{stride}} {stride} is larger than {{window}} {window}; pixels would be skipped.",
                             "stride", "window")
    return SegmentorConfig(
        preset=preset.name,
        clip_weights=clip_weights or preset.clip_weights,
        upsampler_weights=None if no_upsampler else (upsampler_weights or preset.upsampler_weights),
        quick_gelu=preset.quick_gelu if activation is None else activation == "quickgelu",
        attention=attention or preset.attention,
        attention_blocks=attention_blocks or preset.attention_blocks,
        gba_lambda=float(pick(gba_lambda, dataset and dataset.gba_lambda, preset.gba_lambda)),
        window=window, stride=stride, logit_scale=preset.logit_scale,
        prob_threshold=float(pick(prob_threshold, dataset and dataset.prob_threshold, preset.prob_threshold)),
        background_index=int(pick(background_index, dataset and dataset.background_index, preset.background_index)),
        device=device, precision=precision, download=download)
