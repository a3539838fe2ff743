"""Read tensors from the weight files users have, without unpickling arbitrary objects.

Formats: TorchScript archives (``torch.jit.load``), safetensors, and ``torch.save`` pickles
loaded with ``weights_only=True``. Lightning checkpoints carry plain config objects beside
their tensors; those types are allowed explicitly and nothing else is.
"""
from __future__ import annotations

import argparse
import pathlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from backend.errors import CheckpointFormatError, UserInputError

# Plain config types that released checkpoints carry beside their tensors (Lightning's
# hyper_parameters); constructing them runs no code of the file's choosing.
_ALLOWED_GLOBALS: list[Any] = [argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath]
try:  # Lightning checkpoints from Hydra/OmegaConf configs
    from omegaconf import DictConfig, ListConfig  # type: ignore[import-not-found]
    from omegaconf.base import ContainerMetadata, Metadata  # type: ignore[import-not-found]
    from omegaconf.nodes import AnyNode  # type: ignore[import-not-found]

    _ALLOWED_GLOBALS += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
except ImportError:
    pass


def _allowed_globals():
    """The allow-list for this load (torch >= 2.5), or process-wide where only that exists (2.4)."""
    import contextlib

    if hasattr(torch.serialization, "safe_globals"):
        return torch.serialization.safe_globals(_ALLOWED_GLOBALS)
    torch.serialization.add_safe_globals(_ALLOWED_GLOBALS)
    return contextlib.nullcontext()


def is_torchscript_archive(path: Path) -> bool:
    """True for a TorchScript zip (it holds code/ and constants.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def is_safetensors(path: Path) -> bool:
    """True for a safetensors file (8-byte little-endian header length, then JSON)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < header_length < path.stat().st_size


def _starts_like_a_checkpoint(path: Path) -> bool:
    """A zip (``torch.save``, TorchScript) or a pickle (legacy ``torch.save``), by its first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def check_weights_file(path: Path) -> None:
    """Refuse a file that is no weights file at all, from its first bytes (nothing is unpickled)."""
    if not (_starts_like_a_checkpoint(path) or is_safetensors(path)):
        raise CheckpointFormatError(
            f"{path} is not a weights file (neither a PyTorch checkpoint, TorchScript archive nor safetensors); "
            "give the checkpoint itself."
        )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file's top-level mapping (tensors and plain values) on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"weights file {path} does not exist; check the path.")
    check_weights_file(path)
    try:
        if is_torchscript_archive(path):
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        if is_safetensors(path):
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        with _allowed_globals():
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        if refused:
            raise CheckpointFormatError(
                f"{path} holds Python objects that are not allowed in a weights file "
                f"({refused.group(1)}); give a checkpoint of tensors (safetensors or a state dict)."
            ) from None
        raise CheckpointFormatError(
            f"{path} is not a readable PyTorch checkpoint (unpickling failed); "
            "the file may be truncated: download it again."
        ) from None
    except Exception as error:  # noqa: BLE001 - torch's unpickler fails in many ways on a damaged file
        raise CheckpointFormatError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}); "
            "the file may be truncated: download it again."
        ) from None
    if not isinstance(loaded, dict):
        raise CheckpointFormatError(
            f"{path} holds a {type(loaded).__name__}, not a state dict; give a checkpoint of tensors."
        )
    return loaded


def tensor_state_dict(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's tensors: unwrap ``state_dict``/``model`` and strip a ``module.`` prefix."""
    for wrapper in ("state_dict", "model"):
        inner = checkpoint.get(wrapper)
        if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            checkpoint = inner
            break
    tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if tensors and all(key.startswith("module.") for key in tensors):
        tensors = {key[len("module."):]: value for key, value in tensors.items()}
    return tensors
