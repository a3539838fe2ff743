"""A FarSLIP run: the stage I and stage II tasks the shared loop trains, and ``train``.

Stage I (the authors' ``--method farslip1``, ``global_itc distill``, ``roi2pooled``): per
batch of images with captions and n local crops each, the student CLIP gives the images'
CLS tokens and dense patch features and the captions' features; the teacher (an EMA of the
student's image tower) gives the crops' dense patch features. Loss = global contrast of
CLS and captions + 0.1 x (1 - cos) of each crop's box ROI-pooled from the student's patch
map against the teacher's mean crop feature.

Stage II (``--method farslip2``, ``global_itc local_itc``, ``cls``): per batch of images
with captions and up to 4 boxes each, global contrast as above + the region crops' CLS
tokens contrasted with their categories' prompts, same categories counted as positives.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch.utils.data import Dataset

from training.common.augment import GeometryOptions
from training.common.loop import LoopResult, train_from_config
from training.farslip.config import FarSLIPConfig, Stage1Config, Stage2Config
from training.farslip.data import (CaptionedCrops, CaptionedRegions, categories_of, check_annotated_images,
                                   check_captioned_images, read_annotations, read_captioned_images, tokenize)
from training.farslip.evaluate import caption_top1, region_top1
from training.farslip.losses import global_contrastive_loss, region_category_loss, self_distillation_loss
from training.farslip.model import (KEPT_POSITIONS, FarSLIPModel, export_checkpoint, export_name, load_student,
                                    visual_tokens)

log = logging.getLogger("rsov.training")


class _FarSLIPTask:
    """What both stages share: the model, the logit scale, the export and the caption check."""

    stage = 0

    def __init__(self, module: FarSLIPModel, config: FarSLIPConfig, device: torch.device,
                 validation: Dataset | None) -> None:
        self.module, self.config, self.device, self.validation = module, config, device, validation

    def scalars(self) -> dict[str, float]:
        return {"temperature": float(1.0 / self.module.scale().detach())}

    def after_step(self) -> None:
        self.module.after_step(self.config.loss.max_logit_scale)

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        return {"caption_top1": caption_top1(self.module.clip, self.validation, self.device)}

    def export(self, out_dir: Path, epoch: int) -> Path:
        return export_checkpoint(self.module.clip, out_dir / export_name(self.stage), epoch, self.stage)


class Stage1Task(_FarSLIPTask):
    """Image-caption contrast + patch-to-patch self-distillation (local crops seen by the teacher)."""

    stage = 1

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        clip, loss = self.module.clip, self.config.loss
        cls, patches = visual_tokens(clip.visual, batch["image"])
        scale = self.module.scale()
        crops = batch["crops"].flatten(0, 1)
        if loss.distill_teacher == "ema":
            with torch.no_grad():
                teacher_patches = visual_tokens(self.module.teacher, crops, with_cls=False)[1]
            # the authors update the teacher after the backward and before the optimiser step, i.e. from the
            # weights this step's forward used: doing it here, after the teacher's forward, is the same
            self.module.update_teacher(loss.ema_momentum)
        else:  # the authors' released config.py ("active"): the student itself, gradients through both sides
            teacher_patches = visual_tokens(clip.visual, crops, with_cls=False)[1]
        terms = {"global_contrast": global_contrastive_loss(cls, clip.encode_text(batch["text"]), scale),
                 "distill": self_distillation_loss(patches, batch["boxes"], teacher_patches)}
        terms["total"] = loss.global_weight * terms["global_contrast"] + loss.distill_weight * terms["distill"]
        return terms


class Stage2Task(_FarSLIPTask):
    """Image-caption contrast + region-category contrast of region crops' CLS tokens."""

    stage = 2

    def __init__(self, module: FarSLIPModel, config: Stage2Config, device: torch.device, categories: list[str],
                 validation: CaptionedRegions | None) -> None:
        super().__init__(module, config, device, validation)
        prompts = [config.loss.region_template.format(category) for category in categories]
        self.category_tokens = tokenize(prompts, module.clip.context_length).to(device) if prompts else None

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        clip, loss = self.module.clip, self.config.loss
        scale = self.module.scale()
        terms = {"global_contrast": global_contrastive_loss(clip.encode_image(batch["image"]),
                                                            clip.encode_text(batch["text"]), scale)}
        labels = batch["region_labels"]
        valid = labels >= 0
        if valid.any():
            labels = labels[valid]
            present, places = torch.unique(labels, return_inverse=True)  # each category's prompt encoded once
            texts = clip.encode_text(self.category_tokens[present])[places]
            terms["region_contrast"] = region_category_loss(clip.encode_image(batch["regions"][valid]), texts,
                                                            labels, scale)
        else:  # no box in the batch passed the size filter
            terms["region_contrast"] = scale * 0.0
        terms["total"] = loss.global_weight * terms["global_contrast"] + loss.region_weight * terms["region_contrast"]
        return terms

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        values = super().end_of_epoch(epoch)
        if self.validation is not None:
            values["region_top1"] = region_top1(self.module.clip, self.validation, self.config.loss.region_template,
                                                self.device)
        return values


def _fixed_positions(config: FarSLIPConfig) -> int:
    return KEPT_POSITIONS if config.model.long_text else 0


def _stage1(config: Stage1Config, device: torch.device) -> tuple[Stage1Task, CaptionedCrops]:
    data = config.data
    train_images = read_captioned_images(data.train_data)
    val_images = read_captioned_images(data.val_data, "data.val_data") if data.val_data else None
    if data.check_files:
        for images in (train_images, val_images):
            if images is not None:
                check_captioned_images(images)
    student = load_student(config.model)
    size, context = student.arch.image_size, student.arch.context_length
    geometry = GeometryOptions(scale=data.crop_scale, ratio=data.crop_ratio, hflip=False, vflip=False, rot90=False)
    dataset = CaptionedCrops(train_images, size, context, data.local_crops, geometry, config.train.seed)
    validation = CaptionedCrops(val_images, size, context) if val_images is not None else None
    module = FarSLIPModel(student.clip, ema_teacher=config.loss.distill_teacher == "ema",
                          fixed_positions=_fixed_positions(config))
    return Stage1Task(module.to(device), config, device, validation), dataset


def _stage2(config: Stage2Config, device: torch.device) -> tuple[Stage2Task, CaptionedRegions]:
    data = config.data
    train_items = read_annotations(data.train_data, data.image_root)
    val_items = read_annotations(data.val_data, data.image_root, "data.val_data") if data.val_data else None
    if data.check_files:
        check_annotated_images(train_items + (val_items or []))
    student = load_student(config.model)
    size, context = student.arch.image_size, student.arch.context_length
    options = dict(caption=data.caption, max_boxes=data.max_boxes, min_box=data.min_box_size, max_box=data.max_box_size)
    categories = categories_of(train_items)
    dataset = CaptionedRegions(train_items, categories, size, context, seed=config.train.seed, **options)
    validation = (CaptionedRegions(val_items, categories_of(val_items), size, context, **options)
                  if val_items is not None else None)
    module = FarSLIPModel(student.clip, fixed_positions=_fixed_positions(config)).to(device)
    return Stage2Task(module, config, device, categories, validation), dataset


def build_task(config: FarSLIPConfig, device: torch.device):
    """The CLIP, the task of the config's stage and its datasets (files checked first)."""
    return _stage1(config, device) if config.stage == 1 else _stage2(config, device)


def train(config: FarSLIPConfig, resume: bool = False, on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Run (or with ``resume`` continue) the config's stage; the CLIP is exported to out_dir/farslip<stage>.pt."""
    return train_from_config(config, build_task, resume, on_step)
