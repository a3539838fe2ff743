"""From unit embeddings to class probabilities and ranks: the decision rule of segment's pixels, per image."""
from __future__ import annotations

import torch

from backend.models.segearth import classify


def class_probabilities(images: torch.Tensor, queries: torch.Tensor, query_to_class: list[int],
                        logit_scale: float) -> torch.Tensor:
    """(N, C) probabilities of N unit image embeddings (N, E) for the classes of unit query embeddings (Q, E).

    softmax(logit_scale * cosine) over the queries, then a class's probability is the maximum
    over its synonyms: each image's probabilities sum to at most 1 (exactly 1 without synonyms).
    """
    logits = queries.float() @ images.float().T  # (Q, N): segment's (Q, H, W) with one row of N pixels
    _, probabilities = classify(logits[:, None, :], query_to_class, logit_scale)
    return probabilities[:, 0, :].T


def top_k(probabilities: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, class indices), each (N, min(k, C)), best first."""
    return probabilities.topk(min(k, probabilities.shape[1]), dim=1)


def ranked(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` best scores, best first; ties keep the items' order."""
    order = torch.sort(scores.float(), descending=True, stable=True).indices
    return order[:count].tolist()
