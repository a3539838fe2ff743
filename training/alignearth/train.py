"""An AlignEarth run: the task the shared loop trains, how well the student matches, and ``train``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from backend.errors import UserInputError
from training.alignearth.config import AlignEarthConfig
from training.alignearth.data import PairedImages, check_pairs, read_pairs
from training.alignearth.losses import LearnableTemperature, alignearth_losses, region_means
from training.alignearth.model import (EXPORT_NAME, AlignEarthStudent, Teacher, export_checkpoint, load_teacher,
                                       projected_tokens, student_from)
from training.common.augment import GeometryOptions
from training.common.loop import LoopResult, train_from_config

log = logging.getLogger("rsov.training")


class AlignEarthTask:
    """The loop's ``TrainingTask``: the teacher sees the optical image, the student the SAR one."""

    def __init__(self, teacher: Teacher, config: AlignEarthConfig, device: torch.device,
                 validation: Dataset | None = None) -> None:
        grid = teacher.arch.image_size // teacher.arch.patch_size
        regions = config.loss.regions
        if grid % regions:
            raise UserInputError(f"loss.regions {regions} does not divide the {grid}x{grid} patch grid of "
                                 f"{teacher.source.name}; choose a divisor of {grid} (the paper uses 7 with "
                                 "ViT-B/16 at 224 pixels).")
        self.teacher = teacher
        self.teacher.visual.to(device)
        visual = student_from(teacher, config.model.student_activation)
        visual.set_grad_checkpointing(config.model.grad_checkpointing)
        self.module = AlignEarthStudent(visual, LearnableTemperature(config.loss.temperature,
                                                                     config.loss.max_logit_scale))
        self.loss_config, self.device, self.validation = config.loss, device, validation

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            optical = projected_tokens(self.teacher.visual, batch["optical"])
        sar = projected_tokens(self.module.visual, batch["sar"])
        weights = (self.loss_config.contrastive_weight, self.loss_config.global_weight, self.loss_config.local_weight)
        return alignearth_losses(optical, sar, self.module.temperature.scale(), self.loss_config.regions, weights)

    def scalars(self) -> dict[str, float]:
        return {"temperature": self.module.temperature.temperature}

    def after_step(self) -> None:
        self.module.temperature.clamp_()

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        return evaluate_alignment(self.teacher.visual, self.module.visual, self.validation, self.device,
                                  self.loss_config.regions)

    def export(self, out_dir: Path, epoch: int) -> Path:
        return export_checkpoint(self.module.visual, self.teacher, out_dir / EXPORT_NAME, epoch)


@torch.no_grad()
def evaluate_alignment(teacher: torch.nn.Module, student: torch.nn.Module, dataset: Dataset,
                       device: torch.device, regions: int = 7, batch_size: int = 32) -> dict[str, float]:
    """Mean cosine of student (SAR) to teacher (optical): CLS tokens and K x K region means."""
    was_training = student.training
    student.eval()
    cls_sum = region_sum = count = 0.0
    for batch in DataLoader(dataset, batch_size=batch_size):
        optical = projected_tokens(teacher, batch["optical"].to(device))
        sar = projected_tokens(student, batch["sar"].to(device))
        cls_sum += F.cosine_similarity(optical[0].float(), sar[0].float(), dim=-1).sum().item()
        region = F.cosine_similarity(region_means(optical[1], regions), region_means(sar[1], regions), dim=1)
        region_sum += region.mean(dim=(1, 2)).sum().item()
        count += optical[0].shape[0]
    student.train(was_training)
    return {"cls_cosine": cls_sum / count, "region_cosine": region_sum / count}


def _geometry(config: AlignEarthConfig) -> GeometryOptions:
    data = config.data
    return GeometryOptions(scale=data.crop_scale, ratio=data.crop_ratio, hflip=data.hflip, vflip=data.vflip,
                           rot90=data.rot90)


def build_task(config: AlignEarthConfig, device: torch.device) -> tuple[AlignEarthTask, PairedImages]:
    """The teacher, the student and the datasets a config describes (files checked first)."""
    train_pairs = read_pairs(config.data.train_manifest)
    val_pairs = read_pairs(config.data.val_manifest) if config.data.val_manifest else None
    if config.data.check_files:
        check_pairs(train_pairs + (val_pairs or []))
    teacher = load_teacher(config.model.teacher_weights, config.model.teacher_activation)
    size = teacher.arch.image_size
    dataset = PairedImages(train_pairs, size, _geometry(config), config.train.seed)
    validation = PairedImages(val_pairs, size) if val_pairs else None
    return AlignEarthTask(teacher, config, device, validation), dataset


def train(config: AlignEarthConfig, resume: bool = False, on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Run (or with ``resume`` continue) the distillation; the student is exported to out_dir/alignearth_sar.pt."""
    return train_from_config(config, build_task, resume, on_step)
