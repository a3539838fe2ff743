"""Build open_clip CLIP towers from OpenAI and open_clip checkpoints.

The architecture is read off the tensors as OpenAI's and open_clip's loaders do (widths from
weight shapes, depths from block counts, heads = width / 64), so ViT-B/16, ViT-B/32,
ViT-L/14 and smaller variants load from the same code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from backend.errors import CheckpointFormatError
from backend.models.checkpoints import read_checkpoint, tensor_state_dict

# Scalars OpenAI's TorchScript archives store beside the weights.
_ARCHIVE_SCALARS = ("input_resolution", "context_length", "vocab_size")
HEAD_WIDTH = 64


@dataclass(frozen=True)
class ClipArchitecture:
    """What a CLIP ViT checkpoint's tensors say about its architecture."""

    embed_dim: int
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    context_length: int
    vocab_size: int
    text_width: int
    text_layers: int

    @property
    def vision_heads(self) -> int:
        return max(1, self.vision_width // HEAD_WIDTH)

    @property
    def text_heads(self) -> int:
        return max(1, self.text_width // HEAD_WIDTH)


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({match.group(1) for key in state_dict if (match := pattern.match(key))})


def infer_architecture(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> ClipArchitecture:
    """Read a ViT CLIP's architecture from its (OpenAI-keyed) state dict."""
    required = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj",
                "positional_embedding", "token_embedding.weight", "ln_final.weight", "text_projection")
    missing = [key for key in required if key not in state_dict]
    if any(key.startswith(("vision_model.", "text_model.")) for key in state_dict):
        raise CheckpointFormatError(
            f"{source} is a Hugging Face transformers CLIP (vision_model.*, text_model.*), not an OpenAI or "
            "open_clip checkpoint; give the authors' open_clip .pt file."
        )
    if missing and "visual.conv1.weight" in state_dict:
        raise CheckpointFormatError(
            f"{source} holds an image tower only (visual.*, no {missing[0]}); give the whole CLIP checkpoint, "
            "image and text towers, as the authors release it (AlignEarth-SAR-ViT-B-16.pt is one)."
        )
    if missing:
        raise CheckpointFormatError(
            f"{source} is not a CLIP ViT checkpoint (no {missing[0]}); "
            "give an OpenAI or open_clip ViT CLIP file."
        )
    conv = state_dict["visual.conv1.weight"]
    patch_size = conv.shape[-1]
    grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    return ClipArchitecture(
        embed_dim=state_dict["text_projection"].shape[1],
        image_size=patch_size * grid,
        patch_size=patch_size,
        vision_width=conv.shape[0],
        vision_layers=_count_blocks(state_dict, "visual.transformer.resblocks."),
        context_length=state_dict["positional_embedding"].shape[0],
        vocab_size=state_dict["token_embedding.weight"].shape[0],
        text_width=state_dict["ln_final.weight"].shape[0],
        text_layers=_count_blocks(state_dict, "transformer.resblocks."),
    )


def build_clip(arch: ClipArchitecture, quick_gelu: bool) -> torch.nn.Module:
    """An open_clip CLIP with this architecture (random weights), in eval mode."""
    from backend.torchvision_compat import import_open_clip

    clip_model = import_open_clip().model
    CLIP, CLIPTextCfg, CLIPVisionCfg = clip_model.CLIP, clip_model.CLIPTextCfg, clip_model.CLIPVisionCfg
    vision = CLIPVisionCfg(layers=arch.vision_layers, width=arch.vision_width, head_width=HEAD_WIDTH,
                           patch_size=arch.patch_size, image_size=arch.image_size)
    text = CLIPTextCfg(context_length=arch.context_length, vocab_size=arch.vocab_size,
                       width=arch.text_width, heads=arch.text_heads, layers=arch.text_layers)
    return CLIP(arch.embed_dim, vision_cfg=vision, text_cfg=text, quick_gelu=quick_gelu).eval()


def load_clip(path: str | Path, quick_gelu: bool) -> tuple[torch.nn.Module, ClipArchitecture]:
    """Load a CLIP ViT from an OpenAI TorchScript archive, state dict or open_clip checkpoint."""
    state_dict = tensor_state_dict(read_checkpoint(path))
    for key in _ARCHIVE_SCALARS:
        state_dict.pop(key, None)
    arch = infer_architecture(state_dict, source=str(path))
    model = build_clip(arch, quick_gelu)
    expected = model.state_dict()
    for key, tensor in state_dict.items():
        if key in expected and expected[key].shape != tensor.shape:
            raise CheckpointFormatError(
                f"{path} does not match the CLIP architecture read from it ({key} is {tuple(tensor.shape)}, "
                f"expected {tuple(expected[key].shape)}); the file is damaged or of another model: "
                "give an OpenAI or open_clip ViT CLIP checkpoint."
            )
    result = model.load_state_dict(state_dict, strict=False)
    unexpected = [key for key in result.unexpected_keys if not key.startswith("logit_bias")]
    missing = [key for key in result.missing_keys if key != "attn_mask"]
    if unexpected or missing:
        problem = f"unexpected {unexpected[0]}" if unexpected else f"missing {missing[0]}"
        raise CheckpointFormatError(
            f"{path} does not match the CLIP architecture read from it ({problem}); "
            "give an OpenAI or open_clip ViT CLIP checkpoint."
        )
    return model.float().eval(), arch

