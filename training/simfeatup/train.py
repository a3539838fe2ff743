"""A SimFeatUp run: the task the shared loop trains, a held-out reconstruction check, and ``train``.

One step, for a batch of crops I (as the authors' ``featup/train_upsampler.py``): the frozen
CLIP gives O = features(I). For each of the views (5 in the paper): draw a jitter t,
O_t = features(t(I)); upsample O guided by I, jitter the result, downsample it to
σ↓(t(σ↑(O))) and compare with O_t (L_rec), and rebuild t(I) from t(σ↑(O)) with the CRN
(L_img). The step's loss is the mean over the views of L_rec + γ L_img.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, Dataset

from backend.errors import UserInputError
from backend.models.clip_loading import load_clip
from backend.weights import resolve_weights
from training.common.loop import LoopResult, train_from_config
from training.simfeatup.config import SimFeatUpConfig
from training.simfeatup.data import ImageCrops, check_images, list_images
from training.simfeatup.jitter import Jitter, apply_jitter, sample_jitter
from training.simfeatup.losses import (feature_reconstruction_loss, image_reconstruction_loss, random_projection,
                                       total_loss)
from training.simfeatup.model import (TRAINING_PARTS_FILE, UPSAMPLER_FILE, SimFeatUpTraining, clip_features,
                                      export_training_parts, export_upsampler)
from training.simfeatup.upsampling import STEPS, upsample

log = logging.getLogger("rsov.training")
SCALE = 2 ** STEPS  # the upsampler's factor: the CLIP patch size must be this
SMALLEST_GRID = 3  # the first step pads a 2x grid by the JBU radius 5 (reflect): 2 x 3 > 5


class SimFeatUpTask:
    """The loop's ``TrainingTask``: the frozen CLIP's features are upsampled, jittered, downsampled and decoded."""

    def __init__(self, visual: torch.nn.Module, config: SimFeatUpConfig, device: torch.device,
                 validation: Dataset | None = None) -> None:
        self.clip = visual.to(device).eval().requires_grad_(False)
        patch_size = int(visual.conv1.kernel_size[0])
        self.module = SimFeatUpTraining(int(visual.proj.shape[1]), patch_size, config.loss.predicted_uncertainty)
        self.loss, self.model_config = config.loss, config.model
        self.device, self.validation = device, validation

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return clip_features(self.clip, images).float()

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images = batch["image"]
        target = self.features(images)
        feature_sum = image_sum = 0.0
        for _ in range(self.loss.jitters):
            jitter = sample_jitter(images.shape[-2], images.shape[-1], self.loss.max_pad, self.loss.max_zoom,
                                   self.loss.flips)
            with torch.no_grad():
                jittered = apply_jitter(images, jitter, self.loss.max_pad)
            jittered_target = self.features(jittered)
            projection = (random_projection(target.shape[0], target.shape[1], self.loss.random_projection, target.device)
                          if self.loss.random_projection else None)
            view = functools.partial(self.view_losses, jitter=jitter)
            if self.model_config.recompute_views:  # keep one view's activations at a time, not all of them
                feature, image = checkpoint(view, images, target, jittered, jittered_target, projection,
                                            use_reentrant=False)
            else:
                feature, image = view(images, target, jittered, jittered_target, projection)
            feature_sum = feature_sum + feature / self.loss.jitters
            image_sum = image_sum + image / self.loss.jitters
        return {"rec": feature_sum, "img": image_sum,
                "total": total_loss(feature_sum, image_sum, self.loss.image_weight)}

    def view_losses(self, images: torch.Tensor, target: torch.Tensor, jittered: torch.Tensor,
                    jittered_target: torch.Tensor, projection: torch.Tensor | None, jitter: Jitter
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_rec and L_img of one view."""
        module = self.module
        upsampled = upsample(module.upsampler, target, images, self.model_config.channel_chunk)
        upsampled = apply_jitter(upsampled, jitter, self.loss.max_pad)
        scales = module.scale_net(jittered_target) if module.scale_net is not None else None
        feature = feature_reconstruction_loss(module.downsampler(upsampled), jittered_target, projection, scales)
        image = image_reconstruction_loss(module.crn(upsampled), jittered)
        return feature, image

    def scalars(self) -> dict[str, float]:
        return {}

    def after_step(self) -> None:
        self.module.step += 1

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        return evaluate_reconstruction(self, self.validation)

    def export(self, out_dir: Path, epoch: int) -> Path:
        export_training_parts(self.module, out_dir / TRAINING_PARTS_FILE, epoch)
        return export_upsampler(self.module, out_dir / UPSAMPLER_FILE, epoch)


@torch.no_grad()
def evaluate_reconstruction(task: SimFeatUpTask, dataset: Dataset, batch_size: int = 8) -> dict[str, float]:
    """Mean squared errors without jitter, projection or uncertainty, in eval mode:
    ``feature_mse`` of σ↓(σ↑(O)) to O, ``image_mse`` of CRN(σ↑(O)) to the image."""
    module = task.module
    was_training = module.training
    module.eval()
    feature_sum = image_sum = count = 0.0
    for batch in DataLoader(dataset, batch_size=batch_size):
        images = batch["image"].to(task.device)
        target = task.features(images)
        upsampled = upsample(module.upsampler, target, images, task.model_config.channel_chunk)
        feature_sum += feature_reconstruction_loss(module.downsampler(upsampled), target).item() * images.shape[0]
        image_sum += image_reconstruction_loss(module.crn(upsampled), images).item() * images.shape[0]
        count += images.shape[0]
    module.train(was_training)
    return {"feature_mse": feature_sum / count, "image_mse": image_sum / count}


def _check_geometry(config: SimFeatUpConfig, patch_size: int, source: Path) -> None:
    crop, pad = config.data.crop_size, config.loss.max_pad
    if patch_size != SCALE:
        raise UserInputError(f"{source.name} has {patch_size}-pixel patches; SimFeatUp's JBU_One upsamples "
                             f"{SCALE}x (4 steps), so give a CLIP with {SCALE}-pixel patches (ViT-B/16).")
    if crop % patch_size or crop // patch_size < SMALLEST_GRID:
        raise UserInputError(f"data.crop_size {crop} must be a multiple of the CLIP's {patch_size}-pixel patches and "
                             f"at least {SMALLEST_GRID * patch_size}; use e.g. 224 (the paper's).")
    if pad >= crop:
        raise UserInputError(f"loss.max_pad {pad} is not smaller than data.crop_size {crop}; reflect padding needs "
                             "a smaller pad (the paper's: 20 at 224).")


def load_frozen_clip(config: SimFeatUpConfig) -> tuple[torch.nn.Module, Path]:
    """The CLIP image tower (registry name or file), frozen, and the file it came from."""
    path = resolve_weights(config.model.clip_weights, field="model.clip_weights")
    clip, _ = load_clip(path, quick_gelu=config.model.clip_activation == "quickgelu")
    return clip.visual, path


def build_task(config: SimFeatUpConfig, device: torch.device) -> tuple[SimFeatUpTask, ImageCrops]:
    """The frozen CLIP, what trains and the datasets a config describes (files checked first)."""
    train_paths = list_images(config.data.images)
    val_paths = list_images(config.data.val_images, "data.val_images") if config.data.val_images else None
    if config.data.check_files:
        check_images(train_paths + (val_paths or []))
    visual, source = load_frozen_clip(config)
    _check_geometry(config, int(visual.conv1.kernel_size[0]), source)
    data = config.data
    dataset = ImageCrops(train_paths, data.crop_size, data.normalisation, config.train.seed)
    validation = ImageCrops(val_paths, data.crop_size, data.normalisation) if val_paths else None
    return SimFeatUpTask(visual, config, device, validation), dataset


def train(config: SimFeatUpConfig, resume: bool = False, on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Run (or with ``resume`` continue) the training; the upsampler is exported to out_dir/simfeatup_jbu_one.ckpt."""
    return train_from_config(config, build_task, resume, on_step)
