"""Build open_clip CLIP towers from OpenAI and open_clip checkpoints.

The architecture is read off the tensors as OpenAI's and open_clip's loaders do (widths from
weight shapes, depths from block counts, heads = width / 64), so ViT-B/16, ViT-B/32,
ViT-L/14 and smaller variants load from the same code.

LongCLIP text towers (FarSLIP's, LongCLIP's own) store two 248-row positional tables,
already stretched from CLIP's 77 when training began: ``positional_embedding`` serves the
first positions and ``positional_embedding_res`` the rest, chosen by the 0/1 columns
``mask1``/``mask2`` (FarSLIP saves them as buffers; LongCLIP keeps 20 positions and does not
save them). Their encode_text adds ``positional_embedding * mask1 + positional_embedding_res
* mask2`` (NJU-LHRS/FarSLIP open_clip/model.py, beichenzbc/Long-CLIP model/model_longclip.py);
the loader folds that sum into one 248-row table, so the tower is a plain open_clip one
with context length 248.
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
# Image-tower widths of open_clip's ViT-H/14, ViT-g/14 and ViT-bigG/14, whose heads are 80, 88 and
# 104 wide: the tensors do not show the head count, so such a file would load with wrong heads.
_WIDE_HEAD_VISION_WIDTHS = {1280: "ViT-H", 1408: "ViT-g", 1664: "ViT-bigG"}
# LongCLIP: the positions served by positional_embedding when the file has no masks (Long-CLIP's keep_len).
LONG_CLIP_KEPT_POSITIONS = 20


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


def fold_long_clip_positions(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Replace a LongCLIP text tower's two positional tables (and masks) by the one table its encode_text adds up.

    Changes ``state_dict`` in place; a state dict without ``positional_embedding_res`` is left alone.
    """
    residual = state_dict.pop("positional_embedding_res", None)
    if residual is None:
        return
    kept, stretched = state_dict.pop("mask1", None), state_dict.pop("mask2", None)
    table = state_dict.get("positional_embedding")
    if table is None or residual.shape != table.shape or residual.ndim != 2:
        shape = "none" if table is None else str(tuple(table.shape))
        raise CheckpointFormatError(
            f"{source} has a LongCLIP text tower whose positional_embedding_res {tuple(residual.shape)} does not "
            f"match its positional_embedding {shape}; the file is damaged or of another model: "
            "give the authors' checkpoint."
        )
    rows = table.shape[0]
    if kept is None or stretched is None:
        kept = torch.zeros(rows, 1)
        kept[:LONG_CLIP_KEPT_POSITIONS] = 1
        stretched = 1 - kept
    for name, mask in (("mask1", kept), ("mask2", stretched)):
        if mask.shape != (rows, 1):
            raise CheckpointFormatError(
                f"{source} has a LongCLIP text tower whose {name} is {tuple(mask.shape)}, expected ({rows}, 1); "
                "the file is damaged or of another model: give the authors' checkpoint."
            )
    folded = table.float() * kept.float() + residual.float() * stretched.float()
    state_dict["positional_embedding"] = folded.to(table.dtype)


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
    if any(key.startswith(("visual.attnpool.", "visual.layer1.")) for key in state_dict):
        raise CheckpointFormatError(
            f"{source} is a ResNet CLIP (an RN50-style image tower); only ViT CLIPs can segment here: "
            "give the same model's ViT file (e.g. RemoteCLIP-ViT-B-32.pt instead of RemoteCLIP-RN50.pt)."
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
    if conv.shape[0] in _WIDE_HEAD_VISION_WIDTHS:
        raise CheckpointFormatError(
            f"{source} looks like an open_clip {_WIDE_HEAD_VISION_WIDTHS[conv.shape[0]]} CLIP (image width "
            f"{conv.shape[0]}), whose attention heads are not 64 wide and cannot be read from the file; "
            "give a ViT-B or ViT-L checkpoint."
        )
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
    for key in (*_ARCHIVE_SCALARS, "attn_mask"):  # attn_mask: the causal mask, rebuilt from the context length
        state_dict.pop(key, None)
    fold_long_clip_positions(state_dict, source=str(path))
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

