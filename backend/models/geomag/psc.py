"""PSC (paper §3.2.2): where the prompt points — the gradient-weighted attention map (Eq. 4) and its box.

paper: the VLM runs with output_attentions=True; A = the last layer's attention (ours: hooked, see below); H = 1/N Σ ReLU(∂L/∂A_i) ⊙ A_i
with L the cross-entropy loss, averaged per image token into a 2D heatmap; then a YOLO-inspired grid
search keeps the candidate box whose total attention most exceeds the mean total of its neighbours.
ours: everything the paper leaves open is a parameter of ``find_box`` or ``locate`` (defaults there).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.models.geomag.config import Box
from backend.models.geomag.tmra import check_image, resize


def gradient_weighted_heatmap(attention: torch.Tensor, gradient: torch.Tensor, image_positions: torch.Tensor,
                              grid: tuple[int, int], query_positions: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 4 on one sequence: (heads, Q, K) attention and ∂L/∂A -> a (gh, gw) float32 heatmap.

    Value at image token j (key column ``image_positions[j]``, row-major on the patch grid) =
    mean over heads and query rows i of ReLU(∂L/∂A)[h, i, j] * A[h, i, j].
    ours: Eq. 4's 1/N Σ_i is read as the mean over the attending rows (``query_positions``, default all):
    in the last layer only rows whose outputs enter the loss get a gradient, so the rows of the image
    tokens themselves would give zero; heads are averaged.
    """
    weighted = F.relu(gradient.float()) * attention.float()
    if query_positions is not None:
        weighted = weighted[:, query_positions]
    per_key = weighted.mean(dim=(0, 1))
    return per_key[image_positions].reshape(grid)


def _box_sums(integral: np.ndarray, y0: np.ndarray, x0: np.ndarray, y1: np.ndarray, x1: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the map over [y0, y1) x [x0, x1) (clipped to the map) and the clipped areas."""
    gh, gw = integral.shape[0] - 1, integral.shape[1] - 1
    y0, y1 = np.clip(y0, 0, gh), np.clip(y1, 0, gh)
    x0, x1 = np.clip(x0, 0, gw), np.clip(x1, 0, gw)
    sums = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return sums, (y1 - y0) * (x1 - x0)


def _candidates(heat: np.ndarray, grid: int, scales: tuple[float, ...], aspects: tuple[float, ...],
                extent_fraction: float) -> np.ndarray:
    """(n, 4) integer boxes (y0, x0, y1, x1) in heatmap cells: per grid cell, anchors of each scale and
    aspect centred on the cell's attention centroid, plus the extent of the cells >= extent_fraction x the
    peak of the cell and its 8 neighbour cells."""
    gh, gw = heat.shape
    rows = np.linspace(0, gh, min(grid, gh) + 1).round().astype(int)
    cols = np.linspace(0, gw, min(grid, gw) + 1).round().astype(int)
    ys, xs = np.mgrid[0:gh, 0:gw] + 0.5
    boxes = []
    for r in range(len(rows) - 1):
        for c in range(len(cols) - 1):
            cell = (slice(rows[r], rows[r + 1]), slice(cols[c], cols[c + 1]))
            mass = heat[cell].sum()
            cy = (heat[cell] * ys[cell]).sum() / mass if mass > 0 else ys[cell].mean()
            cx = (heat[cell] * xs[cell]).sum() / mass if mass > 0 else xs[cell].mean()
            for scale in scales:
                for aspect in aspects:
                    h = min(max(1, round(scale * gh / math.sqrt(aspect))), gh)
                    w = min(max(1, round(scale * gw * math.sqrt(aspect))), gw)
                    y0 = min(max(round(cy - h / 2), 0), max(gh - h, 0))
                    x0 = min(max(round(cx - w / 2), 0), max(gw - w, 0))
                    boxes.append((y0, x0, y0 + h, x0 + w))
            top, left = rows[max(r - 1, 0)], cols[max(c - 1, 0)]
            window = heat[top:rows[min(r + 2, len(rows) - 1)], left:cols[min(c + 2, len(cols) - 1)]]
            if window.max() > 0:
                wy, wx = np.nonzero(window >= extent_fraction * window.max())
                boxes.append((top + wy.min(), left + wx.min(), top + wy.max() + 1, left + wx.max() + 1))
    return np.unique(np.array(boxes, dtype=int), axis=0)


def find_box(heatmap: torch.Tensor | np.ndarray, image_size: tuple[int, int], *, grid: int = 6,
             scales: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5), aspects: tuple[float, ...] = (1.0, 2.0, 0.5),
             extent_fraction: float = 0.5, min_contrast: float = 0.05, tie_tolerance: float = 0.05,
             min_side: int = 32) -> Box:
    """The YOLO-like search: the box (in pixels of an image of ``image_size`` = (height, width), which the
    heatmap covers) whose attention most exceeds its neighbourhood.

    ours: ``grid`` x ``grid`` cells over the heatmap; candidates from ``_candidates``; a candidate's score is
    its total attention minus the mean total of its 8 same-sized neighbours (left, right, above, below,
    diagonals; a neighbour cut by the map's edge counts at its density times the candidate's area; those
    wholly outside are left out). Among candidates within ``tie_tolerance`` of the best score the smallest
    wins (the tight box). If the best score is below ``min_contrast`` x the map's total (a flat map) the
    whole image is returned: nothing is compressed. The pixel box is grown to ``min_side`` pixels a side
    (within the image) so that a crop never falls below what the vision tower can see.
    """
    height, width = image_size
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0, None)
    gh, gw = heat.shape
    whole = Box(0, 0, width, height)
    total = heat.sum()
    if total <= 0:
        return whole
    integral = np.pad(heat.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    y0, x0, y1, x1 = _candidates(heat, grid, scales, aspects, extent_fraction).T
    h, w = y1 - y0, x1 - x0
    inside, area = _box_sums(integral, y0, x0, y1, x1)
    density_sum, count = np.zeros(len(y0)), np.zeros(len(y0))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                sums, cut = _box_sums(integral, y0 + dy * h, x0 + dx * w, y1 + dy * h, x1 + dx * w)
                seen = cut > 0
                density_sum[seen] += sums[seen] / cut[seen]
                count += seen
    score = np.where(count > 0, inside - density_sum / np.maximum(count, 1) * area, -np.inf)
    best = score.max()
    if best < min_contrast * total:
        return whole
    near = np.flatnonzero(score >= best - tie_tolerance * abs(best))
    pick = near[np.argmin(area[near])]
    box = Box(int(x0[pick]), int(y0[pick]), int(x1[pick]), int(y1[pick])).scaled(width / gw, height / gh)
    return _at_least(box.clipped(width, height), min_side, width, height)


def _at_least(box: Box, side: int, width: int, height: int) -> Box:
    """The box grown about its centre to ``side`` pixels a side (at most the image's), kept inside the image."""
    def grow(lo: int, hi: int, limit: int) -> tuple[int, int]:
        size = min(max(hi - lo, side), limit)
        start = min(max((lo + hi - size) // 2, 0), limit - size)
        return start, start + size

    x0, x1 = grow(box.x0, box.x1, width)
    y0, y1 = grow(box.y0, box.y1, height)
    return Box(x0, y0, x1, y1)


def _base_vlm(vlm: nn.Module) -> nn.Module:
    """The LlavaForConditionalGeneration inside a peft wrapper (or the model itself)."""
    return vlm.get_base_model() if hasattr(vlm, "get_base_model") else vlm


@contextlib.contextmanager
def eager_attention(vlm: nn.Module) -> Iterator[nn.Module]:
    """The language model switched to eager attention (the only one that returns its weights); restored after."""
    decoder = _base_vlm(vlm).get_decoder()
    before = decoder.config._attn_implementation
    decoder.set_attn_implementation("eager")
    try:
        yield decoder
    finally:
        decoder.set_attn_implementation(before)


def last_layer_attention_gradient(vlm: nn.Module, inputs: dict[str, torch.Tensor], answer_start: int
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The last layer's attention A (heads, T, T) and ∂L/∂A, L = cross-entropy of tokens answer_start..T-1.

    ours: rather than output_attentions=True (which keeps every layer's maps: ~0.7 GB for a 7B model at
    600 tokens) a hook keeps the last layer's — the tensor its attention output is computed from. The
    layers below run without autograd and the last layer's input is a fresh leaf, so only that layer and
    the head are differentiated (same ∂L/∂A, little memory); no parameter gradient is accumulated.
    """
    kept: list[torch.Tensor] = []

    def start_grad(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        torch.set_grad_enabled(True)  # stays on through the head; restored when no_grad below exits
        if args:
            return (args[0].detach().requires_grad_(), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"].detach().requires_grad_()}

    def keep(module: nn.Module, args: tuple, output: tuple) -> None:
        kept.append(output[1])

    with eager_attention(vlm) as decoder:
        layer = decoder.layers[-1]
        handles = [layer.register_forward_pre_hook(start_grad, with_kwargs=True),
                   layer.self_attn.register_forward_hook(keep)]
        try:
            with torch.no_grad():
                logits = vlm(**inputs, use_cache=False).logits
                ids = inputs["input_ids"]
                loss = F.cross_entropy(logits[0, answer_start - 1:-1].float(), ids[0, answer_start:])
                (gradient,) = torch.autograd.grad(loss, kept[-1])
        finally:
            for handle in handles:
                handle.remove()
    return kept[-1][0].detach(), gradient[0]


def _answer_ids(model: Any, inputs: dict[str, torch.Tensor], answer: str | None, answer_tokens: int) -> torch.Tensor:
    """(1, n) token ids of the answer the loss is taken on: ``answer`` tokenised, or (None) the VLM's own
    greedy answer of at most ``answer_tokens`` tokens, cut after its first end-of-sequence token."""
    tokenizer = model.processor.tokenizer
    if answer is not None:
        ids = tokenizer(answer, add_special_tokens=False, return_tensors="pt").input_ids
        return ids.to(inputs["input_ids"].device)
    with torch.no_grad():
        out = model.vlm.generate(**inputs, max_new_tokens=answer_tokens, do_sample=False,
                                 pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None
                                 else tokenizer.pad_token_id)
    new = out[:, inputs["input_ids"].shape[1]:]
    ends = (new[0] == tokenizer.eos_token_id).nonzero()
    return new[:, :int(ends[0]) + 1] if len(ends) else new


def locate(model: Any, image: np.ndarray, prompt: str, *, answer: str | None = None, answer_tokens: int = 8,
           **box_options: Any) -> tuple[Box, torch.Tensor]:
    """PSC on one image: the box the prompt points at (``image``'s pixels) and the (gh, gw) heatmap over it.

    ``model`` is a GeoMag (uses ``vlm``, ``processor``, ``vlm_inputs``). ours: the image is squashed to the
    vision tower's square input first, so the patch grid covers the whole image whatever its aspect;
    the cross-entropy target is ``answer`` if given, else the VLM's greedy answer (no labels at
    inference); the attending rows are the ones that predict answer tokens; ``box_options`` go to find_box.
    Needs autograd: call it outside ``torch.inference_mode()``.
    """
    check_image(image)
    base = _base_vlm(model.vlm)
    side = int(base.config.vision_config.image_size)
    inputs = dict(model.vlm_inputs(resize(image, side, side), prompt))
    prompt_ids = inputs["input_ids"]
    target = _answer_ids(model, inputs, answer, answer_tokens)
    inputs["input_ids"] = torch.cat([prompt_ids, target], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    start = prompt_ids.shape[1]
    attention, gradient = last_layer_attention_gradient(model.vlm, inputs, start)
    image_positions = (inputs["input_ids"][0] == base.config.image_token_id).nonzero()[:, 0]
    side_tokens = math.isqrt(len(image_positions))
    if side_tokens ** 2 != len(image_positions):
        raise ValueError(f"{len(image_positions)} image tokens do not form a square patch grid")
    rows = torch.arange(start - 1, inputs["input_ids"].shape[1] - 1, device=attention.device)
    heatmap = gradient_weighted_heatmap(attention, gradient, image_positions, (side_tokens, side_tokens), rows)
    return find_box(heatmap.cpu(), image.shape[:2], **box_options), heatmap.cpu()
