"""Tiny random checkpoints in exactly the released formats, built at test time."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from backend.models.clip_loading import ClipArchitecture, build_clip
from backend.models.simfeatup import SimFeatUp

TINY = ClipArchitecture(embed_dim=32, image_size=224, patch_size=16, vision_width=128, vision_layers=3,
                        context_length=77, vocab_size=49408, text_width=64, text_layers=2)


def tiny_clip(arch: ClipArchitecture = TINY, quick_gelu: bool = True, seed: int = 0) -> nn.Module:
    """A random CLIP of the given architecture with non-trivial norms and biases."""
    torch.manual_seed(seed)
    model = build_clip(arch, quick_gelu)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or "ln" in name:
                parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval()


def openai_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """OpenAI's keys as in their releases: the weights partly in fp16, no attn_mask."""
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "attn_mask"}
    for key, value in state.items():
        if value.ndim >= 2 and not key.endswith("embedding") and "proj" in key:
            state[key] = value.half()
    return state


class _Holder(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def save_torchscript_archive(state_dict: dict[str, torch.Tensor], path: Path, input_resolution: int = 224) -> Path:
    """A TorchScript archive whose state_dict() has the given keys (as OpenAI's ViT-B-16.pt)."""
    root = _Holder()
    entries = dict(state_dict)
    entries.update(input_resolution=torch.tensor(input_resolution), context_length=torch.tensor(77),
                   vocab_size=torch.tensor(49408))
    for key, value in entries.items():
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, _Holder())
            node = getattr(node, part)
        node.register_buffer(leaf, value.clone())
    torch.jit.script(root).save(str(path))
    return path


def save_open_clip_checkpoint(model: nn.Module, path: Path, wrapped: bool = True, module_prefix: bool = True) -> Path:
    """An open_clip training checkpoint: {'epoch', 'state_dict': {'module.' + key}, ...}."""
    state = {("module." if module_prefix else "") + k: v for k, v in model.state_dict().items()}
    payload = {"epoch": 10, "name": "tiny", "state_dict": state} if wrapped else state
    torch.save(payload, path)
    return path


def tiny_simfeatup(feat_dim: int = TINY.embed_dim, seed: int = 1) -> SimFeatUp:
    torch.manual_seed(seed)
    model = SimFeatUp(feat_dim)
    with torch.no_grad():
        model.up.range_temp.fill_(1.5)
        model.up.sigma_spatial.fill_(0.7)
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def save_simfeatup_lightning(model: SimFeatUp, path: Path) -> Path:
    """The layout of xclip_jbu_one_million_aid.ckpt: Lightning keys, state_dict of upsampler.*."""
    payload = {
        "epoch": 0, "global_step": 2000, "pytorch-lightning_version": "1.9.0",
        "state_dict": {f"upsampler.{k}": v for k, v in model.state_dict().items()},
        "hyper_parameters": argparse.Namespace(model_type="xclip", upsampler_type="jbu_one", lr=1e-3),
        "lr_schedulers": [], "optimizer_states": [],
    }
    torch.save(payload, path)
    return path


def save_open_clip_safetensors(model: nn.Module, path: Path) -> Path:
    """open_clip's published format (open_clip_model.safetensors): the plain state dict as safetensors."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path))
    return path
