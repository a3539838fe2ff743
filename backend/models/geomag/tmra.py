"""TMRA (paper §3.2.1): the task granularity classifier and the resolution adjustment of Eq. 2-3.

paper: a frozen pre-trained BERT encodes the query; fully connected layers 768-256-128-3 classify it
as an image-, region- or pixel-level task; Eq. 2 then picks the image the VLM sees.
ours: the query vector is BERT's last-layer [CLS] state; Eq. 3 shrinks by area averaging and
enlarges bilinearly (PIL, per channel on uint8); the image-level resize is area averaging when it
shrinks and bilinear when it enlarges; H/4 x W/4 is rounded down (at least one pixel).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

from backend.errors import UserInputError
from backend.models.geomag.config import GRANULARITIES, Box

Locate = Callable[[np.ndarray], Box]


class QueryEncoder:
    """A frozen BERT: ``encode(texts) -> (B, hidden)``, the [CLS] state of the last layer."""

    def __init__(self, bert_name_or_dir: str, device: str | torch.device = "cpu", max_length: int = 128,
                 download: bool = True) -> None:
        from transformers import AutoModel, AutoTokenizer

        from backend.weights import pretrained_source

        name = pretrained_source(bert_name_or_dir, download, "bert")
        self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=not download)
        self.model = AutoModel.from_pretrained(name, local_files_only=not download).to(device).eval()
        self.model.requires_grad_(False)
        self.device = torch.device(device)
        self.max_length = max_length  # ours: queries are sentences; longer ones are truncated

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device)
        return self.model(**tokens).last_hidden_state[:, 0].float()


class GranularityClassifier(nn.Module):
    """paper: FCs with hidden layers of 256 and 128 and 3 outputs (logits in GRANULARITIES order)."""

    def __init__(self, hidden: int = 768) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(hidden, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                    nn.Linear(128, len(GRANULARITIES)))

    def forward(self, query: torch.Tensor) -> torch.Tensor:
        return self.layers(query)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "GranularityClassifier":
        """A classifier sized from its saved weights (the checkpoint's ``tmra.*`` tensors without the prefix)."""
        classifier = cls(hidden=int(state["layers.0.weight"].shape[1]))
        classifier.load_state_dict(state)
        return classifier.eval()


class TaskGranularity:
    """The Task Granularity Classifier of Fig. 2: a prompt -> "image", "region" or "pixel"."""

    def __init__(self, encoder: QueryEncoder, classifier: GranularityClassifier) -> None:
        if classifier.layers[0].in_features != encoder.hidden_size:
            raise ValueError(f"the classifier takes {classifier.layers[0].in_features}-d queries but the BERT "
                             f"gives {encoder.hidden_size}-d ones")
        self.encoder = encoder
        self.classifier = classifier.to(encoder.device).eval()

    @torch.no_grad()
    def predict(self, prompt: str) -> tuple[str, tuple[float, ...]]:
        """The most probable granularity and the softmax probabilities in GRANULARITIES order."""
        if not prompt.strip():
            raise UserInputError("The prompt is empty; describe the target or ask a question.", "prompt")
        probs = torch.softmax(self.classifier(self.encoder.encode([prompt]))[0], dim=0).tolist()
        return GRANULARITIES[int(np.argmax(probs))], tuple(probs)


def _resize(image: np.ndarray, width: int, height: int, resample: Image.Resampling) -> np.ndarray:
    return np.array(Image.fromarray(image).resize((width, height), resample))  # a writable copy


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """ours: area averaging where a side shrinks, bilinear otherwise."""
    shrinks = width < image.shape[1] or height < image.shape[0]
    return _resize(image, width, height, Image.Resampling.BOX if shrinks else Image.Resampling.BILINEAR)


def degrade(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Eq. 3: D(x) = Resize(Resize(x, H/factor x W/factor), H x W) — same size, 1/factor of the detail."""
    height, width = image.shape[:2]
    small = _resize(image, max(1, width // factor), max(1, height // factor), Image.Resampling.BOX)
    return _resize(small, width, height, Image.Resampling.BILINEAR)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    return image[box.y0:box.y1, box.x0:box.x1]


def stitch(base: np.ndarray, patch: np.ndarray, box: Box) -> np.ndarray:
    """The ⊕ of Eq. 2: a copy of ``base`` with ``patch`` put back at ``box`` (its place in the frame)."""
    if patch.shape[:2] != (box.height, box.width):
        raise ValueError(f"a {patch.shape[1]}x{patch.shape[0]} patch does not fill the {box.width}x{box.height} box")
    out = base.copy()
    out[box.y0:box.y1, box.x0:box.x1] = patch
    return out


def check_image(image: np.ndarray) -> None:
    """UserInputError unless ``image`` is an (H, W, 3) uint8 RGB array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise UserInputError(f"The image is {type(image).__name__} {shape} {getattr(image, 'dtype', '')}; give an "
                             "(H, W, 3) uint8 RGB array (scale other data types to 0-255 first).", "image")
    if min(image.shape[:2]) < 1:
        raise UserInputError("The image is empty; give at least one pixel.", "image")


def _located(locate: Locate, image: np.ndarray) -> Box:
    height, width = image.shape[:2]
    box = locate(image).clipped(width, height)
    if box.width < 1 or box.height < 1:
        raise ValueError(f"the located box {box} is empty in a {width}x{height} image")
    return box


def adjust_image(image: np.ndarray, granularity: str, locate: Locate,
                 image_side: int = 100) -> tuple[np.ndarray, list[Box]]:
    """Eq. 2: the image the VLM sees for a task of ``granularity`` and the crops (C1[, C2]) in ``image``'s pixels.

    ``locate(x)`` is PSC on ``x`` (a Box in x's pixels). image: resized to image_side²; region: C1 over D(I);
    pixel: C2(C1) over D(C1) over D(D(I)), C2 searched by ``locate`` inside the crop C1 (paper: C2(C1(I, P), P)).
    Region and pixel keep the input's size.
    """
    check_image(image)
    if granularity not in GRANULARITIES:
        raise UserInputError(f"The granularity {granularity!r} is unknown; use one of {', '.join(GRANULARITIES)}.",
                             "granularity")
    if granularity == "image":
        return resize(image, image_side, image_side), []
    first = _located(locate, image)
    inner = crop(image, first)
    if granularity == "region":
        return stitch(degrade(image), inner, first), [first]
    local = _located(locate, inner)
    second = Box(first.x0 + local.x0, first.y0 + local.y0, first.x0 + local.x1, first.y0 + local.y1)
    adjusted = stitch(degrade(degrade(image)), degrade(inner), first)
    return stitch(adjusted, crop(image, second), second), [first, second]
