"""Tiny random checkpoints in exactly the released formats, built at test time."""
from __future__ import annotations

import argparse
import dataclasses
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
    """An open_clip training checkpoint: {'epoch', 'state_dict': {'module.' + key}, ...}; with neither wrapper nor
    prefix, the plain ``model.state_dict()`` that GeoRSCLIP's RS5M_*.pt and RemoteCLIP-*.pt are."""
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


# -- the remote-sensing CLIPs' releases ------------------------------------------------------------------------

TINY_B32 = dataclasses.replace(TINY, patch_size=32)
LONG_CLIP_CONTEXT = 248


def long_clip_stretch(table: torch.Tensor, keep: int = 20) -> torch.Tensor:
    """LongCLIP's knowledge-preserving stretch of a 77-row positional table to 248 rows: the first ``keep``
    rows kept, each later gap split in four by linear interpolation, the last row extrapolated (a transcription
    of ``load_from_pretrained_short_pe``, NJU-LHRS/FarSLIP open_clip/model.py; Long-CLIP model/longclip.py)."""
    length, dim = table.shape
    new = torch.zeros(4 * length - 3 * keep, dim, dtype=table.dtype)
    new[:keep] = table[:keep]
    for i in range(length - 1 - keep):
        a, b = table[i + keep], table[i + 1 + keep]
        for step in range(4):
            new[4 * i + step + keep] = (4 - step) * a / 4 + step * b / 4
    last, before = table[length - 1], table[length - 2]
    for step in range(4):
        new[4 * length - 3 * keep - 4 + step] = last + step * (last - before) / 4
    return new


def farslip_state_dict(model: nn.Module, long_clip: bool, seed: int = 7) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` of FarSLIP's CLIP (open_clip/model.py) built from a 77-context ``model``: with
    ``long_clip`` its text tower has 248-row ``positional_embedding`` (the stretched table, frozen in training)
    and ``positional_embedding_res`` (the trained copy), and the 0/1 buffers ``mask1`` (first 20 rows) and
    ``mask2`` (the rest) that choose between them."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if long_clip:
        generator = torch.Generator().manual_seed(seed)
        table = long_clip_stretch(state["positional_embedding"])
        kept = torch.zeros(table.shape[0], 1)
        kept[:20] = 1
        state.update(positional_embedding=table,
                     positional_embedding_res=table + 0.02 * torch.randn(table.shape, generator=generator),
                     mask1=kept, mask2=1 - kept)
    return state


def long_clip_encode_text(model: nn.Module, state: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """The text embedding FarSLIP's ``CLIP.encode_text`` computes with long_clip enabled (a transcription), with
    ``model``'s text layers and ``state``'s two positional tables and masks; tokens of 248 columns."""
    x = model.token_embedding(tokens)
    x = x + state["positional_embedding"] * state["mask1"] + state["positional_embedding_res"] * state["mask2"]
    mask = torch.empty(tokens.shape[1], tokens.shape[1]).fill_(float("-inf")).triu_(1)
    x = model.transformer(x, attn_mask=mask)
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    return x @ model.text_projection


def open_clip_training_payload(state: dict[str, torch.Tensor], module_prefix: bool = True,
                               teacher: dict[str, torch.Tensor] | None = None) -> dict:
    """What open_clip's training loop saves each epoch (FarSLIP's open_clip_train/main.py, SkyScript's
    src/training/main.py): epoch, name, the (DDP: ``module.``-prefixed) state_dict, the optimizer's and the
    AMP scaler's states, and FarSLIP's ``state_dict_teacher`` when it trains with a frozen teacher."""
    prefix = "module." if module_prefix else ""
    parameter = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([parameter], lr=1e-6, weight_decay=1.0)
    parameter.grad = torch.full((3,), 0.5)
    optimizer.step()
    payload = {"epoch": 1, "name": "tiny", "state_dict": {prefix + k: v for k, v in state.items()},
               "optimizer": optimizer.state_dict(),
               "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                          "_growth_tracker": 0}}
    if teacher is not None:
        payload["state_dict_teacher"] = {prefix + k: v for k, v in teacher.items()}
    return payload


def save_farslip_checkpoint(model: nn.Module, path: Path, long_clip: bool, teacher: bool = False) -> Path:
    """A FarSLIP release (FarSLIP{1,2}_ViT-B-{16,32}.pt): the training payload of ``farslip_state_dict``."""
    state = farslip_state_dict(model, long_clip)
    other = {k: v + 1 for k, v in state.items()} if teacher else None
    torch.save(open_clip_training_payload(state, teacher=other), path)
    return path


def save_skyclip_zip(model: nn.Module, path: Path, member: str = "SkyCLIP_ViT_B32_top50pct/epoch_20.pt") -> Path:
    """A SkyCLIP release: a zip holding the open_clip training checkpoint as ``member`` (SkyScript README)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    torch.save(open_clip_training_payload(model.state_dict()), buffer)
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr(member.rsplit("/", 1)[0] + "/", b"")
        bundle.writestr(member, buffer.getvalue())
    return path
