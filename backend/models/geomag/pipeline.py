"""GeoMag as rsov refer / rsov ask use it: a checkpoint loaded once, MagCrop in front of the model.

MagCrop (paper §3.2) sees the whole area at the model's input size: TMRA picks the task's
granularity and builds Eq. 2's image for the VLM; PSC's innermost crop is the part that
matters. Ours, where the paper is silent on how the pixel decoder sees Eq. 2's image: the
SAM2 encoder gets that crop read again from the raster at full resolution (at most its input
size), so a small target is segmented at the resolution of the file — the magnifier — and
its mask goes back into the crop's place on the area's grid.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from backend.models.geomag.config import GRANULARITIES, Box


class AreaReader(Protocol):
    height: int
    width: int

    def read(self, box: Box | None, max_side: int) -> np.ndarray: ...


@dataclass
class Focus:
    """What MagCrop decided for one prompt (or the whole area without it)."""

    granularity: str | None  # None without MagCrop
    granularity_probabilities: dict[str, float] | None
    box: Box  # the innermost crop, in the area's pixels
    boxes: list[Box]  # every crop, outermost first, in the area's pixels


@dataclass
class ReferOutput:
    probability: np.ndarray  # (h, w) float32 in [0, 1], covering focus.box at its own resolution
    score: float
    focus: Focus


@dataclass
class AskOutput:
    text: str
    focus: Focus
    phrases: list[str]  # grounded conversation: the <p>phrase</p> of each [SEG] the answer emitted
    masks: list[np.ndarray]  # per phrase: (h, w) float32 probabilities covering the whole area


class GeoMagPipeline:
    """A loaded GeoMag checkpoint (and its MagCrop when the checkpoint carries a TMRA classifier)."""

    def __init__(self, model, magcrop, device: torch.device, checkpoint: Path) -> None:
        self.model = model
        self.magcrop = magcrop
        self.device = device
        self.checkpoint = checkpoint
        self.input_side = int(model.config.sam2_image_size)
        self._lock = threading.Lock()  # one query at a time per loaded model (PSC needs gradients)

    def focus(self, area: AreaReader, overview: np.ndarray, prompt: str, magcrop: bool) -> tuple[np.ndarray, Focus]:
        """The VLM's image and the crops, from MagCrop or (without it) the overview and the whole area."""
        whole = Box(0, 0, area.width, area.height)
        if not magcrop:
            return overview, Focus(None, None, whole, [])
        if self.magcrop is None:
            raise ValueError("this checkpoint carries no task-granularity classifier; run without MagCrop")
        prepared = self.magcrop.prepare(overview, prompt)
        sx, sy = area.width / overview.shape[1], area.height / overview.shape[0]
        boxes = [box.scaled(sx, sy).clipped(area.width, area.height) for box in prepared.boxes]
        box = prepared.focus_box.scaled(sx, sy).clipped(area.width, area.height)
        if box.width < 1 or box.height < 1:
            box = whole
        probabilities = {name: float(p) for name, p in zip(GRANULARITIES, prepared.probs)}
        return prepared.vlm_image, Focus(prepared.granularity, probabilities, box, boxes)

    def refer(self, area: AreaReader, prompt: str, magcrop: bool = True) -> ReferOutput:
        with self._lock:
            overview = area.read(None, self.input_side)
            vlm_image, focus = self.focus(area, overview, prompt, magcrop)
            sam_image = overview if focus.box == Box(0, 0, area.width, area.height) else area.read(
                focus.box, self.input_side)
            with torch.no_grad():
                out = self.model.segment(vlm_image, prompt, sam_image=sam_image)
            probability = torch.sigmoid(out.logits.float()).cpu().numpy().astype(np.float32)
            return ReferOutput(probability, float(out.score), focus)

    def ask(self, area: AreaReader, prompt: str, magcrop: bool = True, max_new_tokens: int = 256) -> AskOutput:
        with self._lock:
            overview = area.read(None, self.input_side)
            vlm_image, focus = self.focus(area, overview, prompt, magcrop)
            with torch.no_grad():
                out = self.model.generate(vlm_image, prompt, max_new_tokens=max_new_tokens)
            return AskOutput(out.text, focus, list(out.phrases), [np.asarray(m, np.float32) for m in out.masks])


def load_pipeline(checkpoint: Path, device: torch.device, dtype: torch.dtype, download: bool = True
                  ) -> GeoMagPipeline:
    """The checkpoint's GeoMag on ``device`` and, when it carries TMRA's classifier, its MagCrop.

    The base models the checkpoint names come from the weights cache (registry names, or the hub
    repositories of registry folders, downloaded once) or from the paths given; ``download`` False
    reads only what this machine has.
    """
    from transformers.utils import logging as transformers_logging

    from backend.models.geomag.checkpoint import load_checkpoint

    transformers_logging.disable_progress_bar()  # its per-shard bars are not the user's progress
    model, tmra_state, config = load_checkpoint(checkpoint, device=device, dtype=dtype, download=download)
    magcrop = None
    if tmra_state is not None:
        from backend.models.geomag.magcrop import MagCrop
        from backend.models.geomag.tmra import GranularityClassifier, QueryEncoder, TaskGranularity

        encoder = QueryEncoder(config.bert, device=device, download=download)
        magcrop = MagCrop(TaskGranularity(encoder, GranularityClassifier.from_state_dict(tmra_state)), model)
    return GeoMagPipeline(model, magcrop, device, checkpoint)
