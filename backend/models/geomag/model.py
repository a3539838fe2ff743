"""The GeoMag model: LLaVA + [SEG] + frozen SAM2 encoder + text projection + pixel decoder (paper §3.1).

Training (``forward``) is LISA's objective: next-token cross-entropy on the answer tokens plus per-pixel
binary cross-entropy and dice on the masks (weights from the config). Inference: ``segment`` teacher-forces
the referring answer template (one deterministic forward); ``generate`` decodes greedily and then runs one
teacher-forced forward over prompt + generated tokens to read the hidden states of the [SEG] tokens emitted.

ours: a mask's [SEG] embedding is the last layer's hidden state *at* the [SEG] token (the state that has seen
the [SEG] input row); with N [SEG] tokens per mask (config ``seg_tokens_per_mask``) each [SEG] of an answer
template stands for N consecutive tokens. The score of a segmentation is the mean probability over the
pixels predicted inside (probability > 0.5), 0 when none is. The trainable heads stay in float32 whatever the
VLM's dtype.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backend.errors import UserInputError
from backend.models.geomag.config import GeoMagConfig
from backend.models.geomag.pixel_decoder import PixelDecoder, TextProjection
from backend.models.geomag.sam_encoder import ImageFeatures, SamEncoder, build_sam2_image_encoder, sam_input
from backend.models.geomag.vlm import LoadedVLM, format_prompt, load_vlm, pad_to_square

IGNORE = -100  # label of tokens without a loss (prompt, image, padding)
PHRASE = re.compile(r"<p>(.*?)</p>", re.S)


@dataclass
class Example:
    """One tokenised sample: (T,) ids and labels, the VLM's and SAM2's image tensors, (M, S, S) target masks."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    sam_image: torch.Tensor
    masks: torch.Tensor | None
    image_size: tuple[int, int]  # (H, W) of the image SAM2 sees


@dataclass
class Batch:
    """Right-padded examples: (B, T) ids/labels/attention, (B, 3, h, w) and (B, 3, S, S) images, (M, S, S) masks."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    sam_images: torch.Tensor
    masks: torch.Tensor | None
    image_sizes: list[tuple[int, int]]

    def to(self, device: torch.device | str) -> "Batch":
        def move(tensor):
            return None if tensor is None else tensor.to(device)

        return replace(self, input_ids=move(self.input_ids), attention_mask=move(self.attention_mask),
                       labels=move(self.labels), pixel_values=move(self.pixel_values),
                       sam_images=move(self.sam_images), masks=move(self.masks))


@dataclass
class SegmentOutput:
    logits: torch.Tensor  # (H, W) float32 mask logits at the SAM2 image's size
    score: float


@dataclass
class GenerateOutput:
    text: str  # without [SEG] and <p></p> markup
    phrases: list[str]  # per mask: the <p>phrase</p> before its [SEG] ("" when none)
    masks: list[np.ndarray]  # per mask: (H, W) float32 probabilities at the SAM2 image's size


def check_image(image: np.ndarray, name: str = "image") -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        raise UserInputError(f"GeoMag {name} must be an (H, W, 3) uint8 RGB array; convert it first.")


def mask_losses(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LISA's mask terms for (M, S, S) logits and 0/1 targets: mean per-pixel BCE and dice, averaged over masks."""
    logits, targets = logits.float().flatten(1), targets.float().flatten(1)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).mean()
    probs = logits.sigmoid()
    dice = 1 - (2 * (probs * targets).sum(1) + 1) / (probs.sum(1) + targets.sum(1) + 1)
    return bce, dice.mean()


def mask_score(logits: torch.Tensor) -> float:
    """Mean probability over the pixels predicted inside (> 0.5); 0 when the mask is empty."""
    probs = logits.float().sigmoid()
    inside = probs > 0.5
    return float(probs[inside].mean()) if inside.any() else 0.0


class GeoMag(nn.Module):
    """LLaVA with [SEG] -> TextProjection -> PixelDecoder over frozen SAM2 features (Eq. 1)."""

    def __init__(self, config: GeoMagConfig, vlm: LoadedVLM, sam_encoder: SamEncoder) -> None:
        super().__init__()
        self.config = config
        self.vlm = vlm.model
        self.processor = vlm.processor
        self.seg_token_id = vlm.seg_token_id
        self.seg_rows = vlm.seg_rows
        self.sam_encoder = sam_encoder
        device = vlm.seg_rows.input.device
        self.text_projection = TextProjection(vlm.seg_rows.input.shape[0], config.decoder_dim).to(device)
        self.pixel_decoder = PixelDecoder(config.decoder_dim, config.decoder_heads, sam_encoder.levels,
                                          config.seg_tokens_per_mask).to(device)

    @classmethod
    def from_config(cls, config: GeoMagConfig, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32, download: bool = True) -> "GeoMag":
        """Load the base models the config names (``download`` False: only what this machine has) and build
        fresh trainable parts (LoRA B = 0, as peft inits); the model comes in eval mode (``.train()`` to train)."""
        vlm = load_vlm(config, device, dtype, download)
        encoder = build_sam2_image_encoder(config.sam2_config, config.sam2_weights, config.sam2_image_size, download)
        sam_encoder = SamEncoder(encoder, config.sam2_image_size).to(device=device, dtype=dtype)
        if sam_encoder.channels != config.decoder_dim:
            raise UserInputError(f"GeoMag decoder_dim {config.decoder_dim} differs from the {sam_encoder.channels} "
                                 f"channels of SAM2 {config.sam2_config}; set decoder_dim to {sam_encoder.channels}.")
        return cls(config, vlm, sam_encoder).eval()

    @property
    def device(self) -> torch.device:
        return self.seg_rows.input.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vlm.get_input_embeddings().weight.dtype

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def trainable_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """LoRA adapters, the [SEG] rows, the text projection and the pixel decoder (everything else is frozen)."""
        return ((name, p) for name, p in self.named_parameters() if p.requires_grad)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the LLM's activations in the backward pass (the LoRA inputs then need gradients)."""
        base = self.vlm.get_base_model()
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()

    # --- tokenisation shared by training and inference

    def vlm_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the VLM sees it before its processor: centred on a square of the processor's mean colour."""
        mean = getattr(self.processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        return pad_to_square(image, tuple(int(round(255 * value)) for value in mean))

    def vlm_inputs(self, image: np.ndarray, prompt: str, answer: str | None = None) -> dict[str, torch.Tensor]:
        """The processor's tensors for one image + prompt (+ answer, then also ``labels``), batch of 1, on device."""
        example = self.prepare(image, prompt, answer)
        inputs = {"input_ids": example.input_ids[None].to(self.device),
                  "attention_mask": torch.ones_like(example.input_ids)[None].to(self.device),
                  "pixel_values": example.pixel_values[None].to(self.device, self.dtype)}
        if answer is not None:
            inputs["labels"] = example.labels[None].to(self.device)
        return inputs

    def _expand_seg(self, answer: str) -> str:
        seg = self.config.seg_token
        return answer.replace(seg, seg * self.config.seg_tokens_per_mask)

    def prepare(self, image: np.ndarray, prompt: str, answer: str | None = None,
                masks: np.ndarray | None = None, sam_image: np.ndarray | None = None) -> Example:
        """Tokenise one sample. ``masks`` (M, H, W) bool/0-1 at ``sam_image``'s (default ``image``'s) size, one
        per [SEG] of ``answer``; labels are IGNORE on the prompt and image tokens, the answer ids and EOS else."""
        check_image(image)
        sam_image = image if sam_image is None else sam_image
        check_image(sam_image, "sam_image")
        seg = self.config.seg_token
        if seg in prompt:
            raise UserInputError(f"GeoMag prompt contains the segmentation token {seg}; remove it.")
        count = answer.count(seg) if answer is not None else 0
        if masks is not None and len(masks) != count:
            raise UserInputError(f"GeoMag sample has {len(masks)} masks but its answer has {count} {seg} tokens; "
                                 "give one mask per token.")
        text = format_prompt(prompt)
        encoded = self.processor(images=self.vlm_image(image), text=text, return_tensors="pt")
        input_ids = encoded["input_ids"][0]
        labels = torch.full_like(input_ids, IGNORE)
        if answer is not None:
            prompt_ids = input_ids
            full = self.processor(images=self.vlm_image(image), text=f"{text} {self._expand_seg(answer.strip())}",
                                  return_tensors="pt")["input_ids"][0]
            input_ids = torch.cat([full, torch.tensor([self.tokenizer.eos_token_id])])
            common = int((prompt_ids[:len(full)] == full[:len(prompt_ids)]).cumprod(0).sum())
            labels = input_ids.clone()
            labels[:common] = IGNORE
        size = self.config.sam2_image_size
        target = None
        if masks is not None:
            target = torch.as_tensor(np.asarray(masks, dtype=np.float32))
            if target.ndim != 3 or tuple(target.shape[1:]) != sam_image.shape[:2]:
                raise UserInputError(f"GeoMag masks have shape {tuple(target.shape)}; give (M, H, W) at the size of "
                                     f"the image, {sam_image.shape[:2]}.")
            target = F.interpolate(target[None], size=(size, size), mode="bilinear", align_corners=False)[0]
            target = (target > 0.5).float()
        return Example(input_ids, labels, encoded["pixel_values"][0], sam_input(sam_image, size), target,
                       tuple(sam_image.shape[:2]))

    def collate(self, examples: list[Example]) -> Batch:
        """Right-pad and stack examples; masks of all examples concatenated in order (None when none has any)."""
        length = max(len(example.input_ids) for example in examples)
        input_ids = torch.full((len(examples), length), self.tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(examples), length), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example.input_ids)
            input_ids[row, :n], labels[row, :n], attention[row, :n] = example.input_ids, example.labels, 1
        masks = [example.masks for example in examples if example.masks is not None]
        return Batch(input_ids, attention, labels, torch.stack([e.pixel_values for e in examples]),
                     torch.stack([e.sam_image for e in examples]), torch.cat(masks) if masks else None,
                     [example.image_size for example in examples])

    # --- the model

    def _run_vlm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor,
                 logits: bool):
        return self.vlm(input_ids=input_ids, attention_mask=attention_mask,
                        pixel_values=pixel_values.to(self.device, self.dtype), output_hidden_states=True,
                        use_cache=False, logits_to_keep=0 if logits else 1)

    def mask_logits(self, hidden: torch.Tensor, input_ids: torch.Tensor, features: ImageFeatures) -> torch.Tensor:
        """(B, T, hidden) last-layer states -> (M, S, S) logits, one mask per N consecutive [SEG] tokens (in order)."""
        rows, columns = torch.nonzero(input_ids == self.seg_token_id, as_tuple=True)
        n = self.config.seg_tokens_per_mask
        if len(rows) % n:
            raise ValueError(f"{len(rows)} [SEG] tokens do not make whole masks of {n}")
        tokens = self.text_projection(hidden[rows, columns]).view(len(rows) // n, n, -1)
        size = (self.sam_encoder.image_size, self.sam_encoder.image_size)
        return self.pixel_decoder(tokens, features, rows[::n], size)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """LISA's objective: {'loss', 'ce', 'bce', 'dice'} with loss = ce_w * ce + bce_w * bce + dice_w * dice."""
        batch = batch.to(self.device)
        output = self._run_vlm(batch.input_ids, batch.attention_mask, batch.pixel_values, logits=True)
        logits, labels = output.logits[:, :-1].float(), batch.labels[:, 1:]
        zero = logits.new_zeros(())
        ce = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE) \
            if (labels != IGNORE).any() else zero
        bce = dice = zero
        if batch.masks is not None and len(batch.masks):
            predicted = self.mask_logits(output.hidden_states[-1], batch.input_ids, self.sam_encoder(batch.sam_images))
            if predicted.shape != batch.masks.shape:
                raise ValueError(f"{len(predicted)} predicted masks for {len(batch.masks)} targets")
            bce, dice = mask_losses(predicted, batch.masks)
        config = self.config
        loss = config.ce_weight * ce + config.bce_weight * bce + config.dice_weight * dice
        return {"loss": loss, "ce": ce.detach(), "bce": bce.detach(), "dice": dice.detach()}

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def _masks_for(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, sam_image: np.ndarray) -> torch.Tensor:
        """(M, H, W) logits at ``sam_image``'s size for the [SEG] tokens of one teacher-forced sequence."""
        output = self._run_vlm(input_ids, torch.ones_like(input_ids), pixel_values, logits=False)
        features = self.sam_encoder(sam_input(sam_image, self.config.sam2_image_size)[None].to(self.device))
        logits = self.mask_logits(output.hidden_states[-1], input_ids, features)
        return F.interpolate(logits[:, None], size=sam_image.shape[:2], mode="bilinear", align_corners=False)[:, 0]

    def segment(self, image: np.ndarray, prompt: str, sam_image: np.ndarray | None = None) -> SegmentOutput:
        """Referring segmentation: the answer template teacher-forced, its [SEG] -> mask logits at sam_image's size."""
        sam_image = image if sam_image is None else sam_image
        with self._inference():
            example = self.prepare(image, prompt, self.config.answer_template, sam_image=sam_image)
            logits = self._masks_for(example.input_ids[None].to(self.device), example.pixel_values[None], sam_image)
        combined = logits[0].float().cpu()
        return SegmentOutput(combined, mask_score(combined))

    def generate(self, image: np.ndarray, prompt: str, max_new_tokens: int = 128,
                 sam_image: np.ndarray | None = None) -> GenerateOutput:
        """Greedy answer; each [SEG] group emitted gives a mask (GCG: ``<p>phrase</p> [SEG]``)."""
        sam_image = image if sam_image is None else sam_image
        with self._inference():
            inputs = self.vlm_inputs(image, prompt)
            generated = self.vlm.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id,
                                          eos_token_id=self.tokenizer.eos_token_id)
            prompt_length = inputs["input_ids"].shape[1]
            new = generated[0, prompt_length:]
            stop = torch.nonzero(new == self.tokenizer.eos_token_id)
            new = new[:int(stop[0])] if len(stop) else new
            n = self.config.seg_tokens_per_mask
            positions = torch.nonzero(new == self.seg_token_id)[:, 0]
            whole = len(positions) // n * n  # a trailing partial group of [SEG]s makes no mask
            masks = []
            if whole:  # causal: the states of those [SEG]s depend on nothing after the last of them
                sequence = torch.cat([inputs["input_ids"][0], new[:int(positions[whole - 1]) + 1]])[None]
                probs = self._masks_for(sequence, inputs["pixel_values"], sam_image).float().sigmoid()
                masks = list(probs.cpu().numpy())
        text, phrases = self._read_answer(new, n)
        return GenerateOutput(text, phrases[:len(masks)], masks)

    def _read_answer(self, ids: torch.Tensor, n: int) -> tuple[str, list[str]]:
        """Text without markup, and per group of n [SEG]s the last <p>phrase</p> before it."""
        special = set(self.tokenizer.all_special_ids) - {self.seg_token_id}
        text = self.tokenizer.decode([int(i) for i in ids if int(i) not in special], skip_special_tokens=False)
        parts = text.split(self.config.seg_token)
        phrases = []
        for group in range(0, len(parts) - 1, n):
            found = PHRASE.findall(parts[group])
            phrases.append(found[-1].strip() if found else "")
        clean = PHRASE.sub(lambda match: match.group(1), "".join(parts))
        return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", clean)).strip(), phrases
