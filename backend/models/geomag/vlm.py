"""GeoMag's vision-language model: LLaVA loading, the [SEG] token, LoRA, the conversation template.

paper (§3.1, §4): LLaVA-v1.5-7B fine-tuned with LoRA rank 8; a [SEG] token's output carries the target.
ours: LoRA on the language model's q/k/v/o/gate/up/down projections only (vision tower and projector
frozen); the [SEG] rows of the input embeddings and of ``lm_head`` are trained as two separate vectors
(``SegTokenRows``) so every base weight stays frozen and a checkpoint carries only those two rows;
the image is padded to a square with the processor's mean colour before the processor (LLaVA-1.5's own
"pad" preprocessing), so no part of a non-square image is cropped away.
"""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backend.errors import UserInputError
from backend.models.geomag.config import Box, GeoMagConfig

CONVERSATION = "USER: <image>\n{prompt} ASSISTANT:"  # LLaVA-1.5's template (vicuna_v1 without a system line)


def format_prompt(prompt: str) -> str:
    """The LLaVA-1.5 conversation text of one user turn, ending where the assistant's answer begins."""
    return CONVERSATION.format(prompt=prompt.strip())


def lora_target_pattern(targets: tuple[str, ...]) -> str:
    """A peft ``target_modules`` regex matching those projections in the language model only."""
    names = "|".join(re.escape(name) for name in targets)
    return rf".*language_model.*\.({names})"


def square_box(height: int, width: int) -> tuple[int, Box]:
    """The side of the padded square and where the (height, width) image lies in it (centred)."""
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    return side, Box(left, top, left + width, top + height)


def pad_to_square(image: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    """The (H, W, 3) uint8 image centred on a square of colour ``fill`` (see ``square_box``)."""
    height, width = image.shape[:2]
    side, box = square_box(height, width)
    if side == height == width:
        return image
    square = np.empty((side, side, 3), np.uint8)
    square[:] = fill
    square[box.y0:box.y1, box.x0:box.x1] = image
    return square


class SegTokenRows(nn.Module):
    """The trainable [SEG] rows of the input embedding and of ``lm_head``, spliced in by forward hooks."""

    def __init__(self, embeddings: nn.Embedding, lm_head: nn.Linear, token_id: int) -> None:
        super().__init__()
        self.token_id = token_id
        self.input = nn.Parameter(embeddings.weight[token_id].detach().float().clone())
        self.output = nn.Parameter(lm_head.weight[token_id].detach().float().clone())
        self._handles = [embeddings.register_forward_hook(self._embed_hook),
                         lm_head.register_forward_hook(self._head_hook)]

    def _embed_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        is_seg = (args[0] == self.token_id).unsqueeze(-1)
        return torch.where(is_seg, self.input.to(output.dtype), output)

    def _head_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        seg_logit = args[0] @ self.output.to(args[0].dtype)
        column = torch.zeros(output.shape[-1], dtype=torch.bool, device=output.device)
        column[self.token_id] = True
        return torch.where(column, seg_logit.unsqueeze(-1).to(output.dtype), output)


@dataclass
class LoadedVLM:
    """The peft-wrapped LLaVA, its processor (tokenizer knows [SEG]), the [SEG] id and its trainable rows."""

    model: nn.Module
    processor: object
    seg_token_id: int
    seg_rows: SegTokenRows


def _quantization(load_in: str | None, dtype: torch.dtype):
    if load_in is None:
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserInputError(f"GeoMag load_in {load_in!r} needs the bitsandbytes package, which is not installed; "
                             "install it or set load_in to null.")
    from transformers import BitsAndBytesConfig

    skip = ["vision_tower", "multi_modal_projector", "lm_head"]
    if load_in == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype,
                                  llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def load_vlm(config: GeoMagConfig, device: str | torch.device, dtype: torch.dtype,
             download: bool = True) -> LoadedVLM:
    """The LLaVA of ``config.vlm`` with [SEG] added, frozen, LoRA-wrapped (adapters trainable, in fp32);
    ``download`` False reads only what is on this machine."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from backend.weights import pretrained_source

    name = pretrained_source(config.vlm, download, "vlm")
    quantization = _quantization(config.load_in, dtype)
    try:
        processor = AutoProcessor.from_pretrained(name, local_files_only=not download)
        model = LlavaForConditionalGeneration.from_pretrained(
            name, dtype=dtype, quantization_config=quantization, local_files_only=not download,
            device_map={"": str(device)} if quantization else None)
    except OSError as error:
        raise UserInputError(f"GeoMag vlm {config.vlm!r} is not a LLaVA checkpoint that can be read "
                             f"({str(error).splitlines()[0][:160]}); give a hub id or a local folder.") from None
    if quantization is None:
        model.to(device)
    tokenizer = processor.tokenizer
    tokenizer.add_tokens([config.seg_token], special_tokens=True)
    seg_token_id = tokenizer.convert_tokens_to_ids(config.seg_token)
    if seg_token_id >= model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.requires_grad_(False)
    seg_rows = SegTokenRows(model.get_input_embeddings(), model.get_output_embeddings(), seg_token_id).to(device)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=lora_target_pattern(config.lora_targets), bias="none")
    model = get_peft_model(model, lora)
    return LoadedVLM(model, processor, seg_token_id, seg_rows)
