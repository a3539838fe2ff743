"""Stage 2: LoRA (rank 8) + the [SEG] rows + text projection + pixel decoder of GeoMag on the referring mix.

One step: the batch's examples (image, prompt, answer with [SEG], masks) through
``GeoMag.forward``: LISA's objective, ce_w * next-token cross-entropy on the answer tokens +
bce_w * per-pixel BCE + dice_w * dice on the masks. Only the trainable parts are in
``last.pt`` (the base models are named by the config and loaded again on resume). After each
epoch, with ``data.val``: P@0.5, oIoU and mIoU of ``GeoMag.segment`` (logit > 0) on the
held-out set. The export is one GeoMag checkpoint (``backend.models.geomag.save_checkpoint``),
with stage 1's classifier as its ``tmra.*`` tensors when ``model.tmra_weights`` is given.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from backend.eval.referring import ReferringScores
from backend.models.geomag.checkpoint import save_checkpoint
from backend.models.geomag.config import GeoMagConfig
from backend.models.geomag.model import Batch, GeoMag
from training.common.loop import LoopResult, train_from_config
from training.geomag.config import GeoMagTrainConfig
from training.geomag.mix import MixedExamples, training_sources, validation_source
from training.geomag.samples import ReferringSample
from training.geomag.stage1 import load_tmra

EXPORT_FILE = "geomag.safetensors"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def geomag_config(config: GeoMagTrainConfig) -> GeoMagConfig:
    """The GeoMagConfig a stage 2 config describes (model + loss sections)."""
    model = {f.name: getattr(config.model, f.name) for f in dataclasses.fields(GeoMagConfig)
             if hasattr(config.model, f.name)}
    model["lora_targets"] = tuple(name.strip() for name in config.model.lora_targets.split(",") if name.strip())
    return GeoMagConfig(**model, **dataclasses.asdict(config.loss))


class TrainableParts(nn.Module):
    """What trains in a GeoMag, as one module: its parameters and state dict are the trainable ones only.

    The parameters are GeoMag's own (shared, not copied); ``train()``/``eval()`` reach the whole
    model (LoRA dropout). The frozen base weights stay out of ``last.pt``.
    """

    def __init__(self, model: GeoMag) -> None:
        super().__init__()
        object.__setattr__(self, "model", model)  # not a submodule: its frozen weights are not state
        self.parts = nn.ParameterDict({name.replace(".", "/"): parameter
                                       for name, parameter in model.trainable_parameters()})

    def train(self, mode: bool = True) -> "TrainableParts":
        self.model.train(mode)
        return super().train(mode)


class GeoMagTask:
    """The loop's ``TrainingTask`` for stage 2."""

    def __init__(self, model: GeoMag, config: GeoMagTrainConfig, validation: Sequence[ReferringSample] | None,
                 tmra_state: dict[str, torch.Tensor] | None) -> None:
        self.model, self.config, self.validation, self.tmra_state = model, config, validation, tmra_state
        self.module = TrainableParts(model)

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self.model(batch)
        return {"ce": out["ce"], "bce": out["bce"], "dice": out["dice"], "total": out["loss"]}

    def scalars(self) -> dict[str, float]:
        return {}

    def after_step(self) -> None:
        pass

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        return evaluate(self.model, self.validation, self.config.data.val_limit)

    def export(self, out_dir: Path, epoch: int) -> Path:
        return save_checkpoint(out_dir / EXPORT_FILE, self.model, tmra_state=self.tmra_state)


def referring_samples(source: Sequence[ReferringSample], limit: int | None) -> Iterator[ReferringSample]:
    for index in range(len(source) if limit is None else min(limit, len(source))):
        yield source[index]


def evaluate(model: GeoMag, source: Sequence[ReferringSample], limit: int | None = None) -> dict[str, float]:
    """P@0.5, oIoU and mIoU of ``model.segment`` (logit > 0) over the first ``limit`` samples of ``source``."""
    scores = ReferringScores()
    for sample in referring_samples(source, limit):
        predicted = model.segment(sample.image, sample.prompt).logits.numpy() > 0
        scores.add(predicted, sample.masks.any(0))
    result = scores.result()
    return {"p_at_0_5": result["p_at_0_5"], "oiou": result["oiou"], "miou": result["miou"]}


def build_model(config: GeoMagTrainConfig, device: torch.device) -> GeoMag:
    model = GeoMag.from_config(geomag_config(config), device=device, dtype=DTYPES[config.model.base_dtype])
    if config.model.grad_checkpointing:
        model.enable_gradient_checkpointing()
    return model


def build_task(config: GeoMagTrainConfig, device: torch.device) -> tuple[GeoMagTask, MixedExamples]:
    """The data (checked first), the model and what trains."""
    answer = config.model.answer_template
    sources = training_sources(config.data, answer, config.train.seed)
    validation = validation_source(config.data, answer, config.train.seed)
    tmra_state = load_tmra(config.model.tmra_weights) if config.model.tmra_weights else None
    model = build_model(config, device)
    dataset = MixedExamples(sources, model.prepare, model.collate)
    return GeoMagTask(model, config, validation, tmra_state), dataset


def train(config: GeoMagTrainConfig, resume: bool = False,
          on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Run (or continue) stage 2; the GeoMag checkpoint is exported to out_dir/geomag.safetensors."""
    return train_from_config(config, build_task, resume, on_step)
