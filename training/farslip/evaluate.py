"""Zero-shot checks of a CLIP on held-out data: images to their captions, region crops to their categories."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.farslip.data import CaptionedRegions, tokenize


@contextlib.contextmanager
def _evaluating(clip: nn.Module) -> Iterator[None]:
    was_training = clip.training
    clip.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        clip.train(was_training)


def encode_texts(clip: nn.Module, texts: Sequence[str], device: torch.device, chunk: int = 256) -> torch.Tensor:
    """Unit text features (len(texts), E), tokenised at the CLIP's own context length."""
    features = [clip.encode_text(tokenize(texts[start:start + chunk], clip.context_length).to(device)).float()
                for start in range(0, len(texts), chunk)]
    return F.normalize(torch.cat(features), dim=-1)


def caption_top1(clip: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 32) -> float:
    """The share of images whose own caption is the closest of the set's distinct captions.

    With captions that are class names this is zero-shot classification accuracy; with
    captions that are all different, image-to-text recall at 1. ``dataset`` items hold
    ``image`` and ``caption`` (the datasets of ``training.farslip.data`` indexed by int).
    """
    with _evaluating(clip):
        features, captions = [], []
        for batch in DataLoader(dataset, batch_size=batch_size):
            features.append(F.normalize(clip.encode_image(batch["image"].to(device)).float(), dim=-1))
            captions.extend(batch["caption"])
        distinct = sorted(set(captions))
        place = {caption: number for number, caption in enumerate(distinct)}
        predicted = (torch.cat(features) @ encode_texts(clip, distinct, device).T).argmax(dim=1).cpu()
        truth = torch.tensor([place[caption] for caption in captions])
    return float((predicted == truth).float().mean())


def region_top1(clip: nn.Module, dataset: CaptionedRegions, template: str, device: torch.device,
                batch_size: int = 16) -> float:
    """The share of region crops whose category's prompt (``template`` filled) is the closest of all categories'."""
    with _evaluating(clip):
        prompts = encode_texts(clip, [template.format(category) for category in dataset.categories], device)
        correct = total = 0
        for batch in DataLoader(dataset, batch_size=batch_size):
            labels = batch["region_labels"]
            valid = labels >= 0
            if not valid.any():
                continue
            crops = F.normalize(clip.encode_image(batch["regions"][valid].to(device)).float(), dim=-1)
            correct += int(((crops @ prompts.T).argmax(dim=1).cpu() == labels[valid]).sum())
            total += int(valid.sum())
    return correct / total if total else float("nan")
