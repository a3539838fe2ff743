"""MagCrop (paper §3.2): TMRA picks the granularity, PSC the crops, Eq. 2 stitches the image the VLM sees."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from backend.errors import UserInputError
from backend.models.geomag.config import Box
from backend.models.geomag.psc import find_box, locate
from backend.models.geomag.tmra import TaskGranularity, adjust_image, check_image

SECOND_CROPS = ("rerun", "reuse")


@dataclass(frozen=True)
class MagCropResult:
    """granularity (and the classifier's probabilities in GRANULARITIES order; empty when it was given), the adjusted image
    (Eq. 2), the crops C1[, C2] and the innermost one (the whole image for "image"), in the input's pixels;
    heatmaps: PSC's maps (one per VLM pass), each over the image it was computed on."""

    granularity: str
    probs: tuple[float, ...]
    vlm_image: np.ndarray
    boxes: list[Box]
    focus_box: Box
    heatmaps: list[torch.Tensor] = field(default_factory=list)


def heatmap_inside(heatmap: torch.Tensor, box: Box, image_size: tuple[int, int]) -> torch.Tensor:
    """The heatmap of a whole (height, width) image resampled (nearest) onto ``box``: same grid shape, now
    covering the box only."""
    gh, gw = heatmap.shape
    height, width = image_size
    rows = ((box.y0 + (torch.arange(gh) + 0.5) * box.height / gh) * gh / height).long().clamp(0, gh - 1)
    cols = ((box.x0 + (torch.arange(gw) + 0.5) * box.width / gw) * gw / width).long().clamp(0, gw - 1)
    return heatmap[rows][:, cols]


class MagCrop:
    """The MagCrop pipeline for one image and prompt, with a GeoMag ``model`` for PSC.

    ``second_crop``: how C2 is searched inside C1 for pixel tasks — "rerun" (paper: C2(C1(I, P), P), a
    second VLM pass on the crop) or "reuse" (ours: the first pass's heatmap restricted to C1; one pass
    fewer). ``answer``/``answer_tokens``: PSC's cross-entropy target (see psc.locate); ``box_options``:
    find_box's parameters; ``image_side``: the image-level resize of Eq. 2 (paper: 100).
    """

    def __init__(self, granularity: TaskGranularity | None, model: Any, *, second_crop: str = "rerun",
                 image_side: int = 100, answer: str | None = None, answer_tokens: int = 8,
                 box_options: dict[str, Any] | None = None) -> None:
        if second_crop not in SECOND_CROPS:
            raise ValueError(f"second_crop is {second_crop!r}; use one of {SECOND_CROPS}")
        self.granularity = granularity
        self.model = model
        self.second_crop = second_crop
        self.image_side = image_side
        self.answer = answer
        self.answer_tokens = answer_tokens
        self.box_options = dict(box_options or {})

    def prepare(self, image: np.ndarray, prompt: str, granularity: str | None = None) -> MagCropResult:
        """TMRA (unless ``granularity`` is given) -> PSC -> Eq. 2 for ``image`` (H, W, 3) uint8."""
        check_image(image)
        probs: tuple[float, ...] = ()
        if granularity is None:
            if self.granularity is None:
                raise UserInputError("No task granularity classifier is loaded; give the granularity "
                                     "(image, region or pixel).", "granularity")
            granularity, probs = self.granularity.predict(prompt)
        heatmaps: list[torch.Tensor] = []
        first: list[Box] = []

        def psc(part: np.ndarray) -> Box:
            if heatmaps and self.second_crop == "reuse":
                inner = heatmap_inside(heatmaps[0], first[0], image.shape[:2])
                return find_box(inner, part.shape[:2], **self.box_options)
            box, heatmap = locate(self.model, part, prompt, answer=self.answer, answer_tokens=self.answer_tokens,
                                  **self.box_options)
            heatmaps.append(heatmap)
            first.append(box)
            return box

        vlm_image, boxes = adjust_image(image, granularity, psc, self.image_side)
        focus = boxes[-1] if boxes else Box(0, 0, image.shape[1], image.shape[0])
        return MagCropResult(granularity, probs, vlm_image, boxes, focus, heatmaps)
