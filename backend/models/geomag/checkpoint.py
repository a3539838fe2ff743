"""One-file GeoMag checkpoints: the trained parts in safetensors, the config in its metadata.

Tensors: ``lora.*`` (peft's adapter state dict), ``seg_token.input`` / ``seg_token.output`` (the [SEG] rows
of the input embeddings and of ``lm_head``), ``text_projection.*``, ``pixel_decoder.*`` and optionally
``tmra.*`` (MagCrop's granularity classifier). Metadata: {"format": "rs-openvocab/geomag", "version": "1",
"config": the GeoMagConfig JSON}. The base models (LLaVA, SAM2, BERT) are named by the config, not stored.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from backend.errors import CheckpointFormatError, UserInputError
from backend.models.geomag.config import GeoMagConfig

FORMAT = "rs-openvocab/geomag"
VERSION = "1"
_HEADS = ("text_projection", "pixel_decoder")


def _tensors(model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    tensors = {f"lora.{key}": value for key, value in get_peft_model_state_dict(model.vlm).items()}
    tensors["seg_token.input"] = model.seg_rows.input
    tensors["seg_token.output"] = model.seg_rows.output
    for head in _HEADS:
        tensors.update({f"{head}.{key}": value for key, value in getattr(model, head).state_dict().items()})
    return tensors


def save_checkpoint(path: str | Path, model, tmra_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model``'s trained parts (and the TMRA classifier's state) to one safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = _tensors(model)
    tensors.update({f"tmra.{key}": value for key, value in (tmra_state or {}).items()})
    tensors = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
    metadata = {"format": FORMAT, "version": VERSION, "config": model.config.to_json()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, partial, metadata=metadata)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> tuple[GeoMagConfig, dict[str, torch.Tensor]]:
    """The config and tensors of a GeoMag checkpoint; anything else -> CheckpointFormatError naming the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"GeoMag checkpoint {path} does not exist; check the path.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception:  # noqa: BLE001 - safetensors reports a damaged header in several ways
        raise CheckpointFormatError(f"{path} is not a safetensors file (damaged or of another kind); "
                                    "give a GeoMag checkpoint written by rs-openvocab.") from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointFormatError(f"{path} is not a GeoMag checkpoint (its metadata has no format {FORMAT!r}); "
                                    "give a checkpoint written by rs-openvocab's GeoMag training.")
    if metadata.get("version") != VERSION:
        raise CheckpointFormatError(f"{path} is a GeoMag checkpoint of version {metadata.get('version')!r}, this "
                                    f"program reads version {VERSION}; update rs-openvocab.")
    try:
        config = GeoMagConfig.from_json(metadata["config"])
    except UserInputError as error:
        raise CheckpointFormatError(f"{path} carries a config this program cannot read ({error})") from None
    return config, tensors


def _load_into(path: Path, model, tensors: dict[str, torch.Tensor]) -> None:
    from peft import set_peft_model_state_dict

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}

    expected = set(_tensors(model))
    missing = sorted(expected - {key for key in tensors if not key.startswith("tmra.")})
    if missing:
        raise CheckpointFormatError(f"{path} lacks {len(missing)} tensors of this GeoMag (first: {missing[0]}); "
                                    "it was written for another base model: give the matching checkpoint.")
    try:
        result = set_peft_model_state_dict(model.vlm, part("lora."))
        if getattr(result, "unexpected_keys", None):
            raise RuntimeError(f"unexpected {result.unexpected_keys[0]}")
        with torch.no_grad():
            model.seg_rows.input.copy_(tensors["seg_token.input"])
            model.seg_rows.output.copy_(tensors["seg_token.output"])
        for head in _HEADS:
            getattr(model, head).load_state_dict(part(f"{head}."), strict=True)
    except RuntimeError as error:
        raise CheckpointFormatError(f"{path} does not fit this GeoMag ({str(error).splitlines()[0][:160]}); "
                                    "give the checkpoint written for its base models.") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                    base_overrides: dict[str, Any] | None = None, download: bool = True):
    """(GeoMag, TMRA state dict or None, config) from a checkpoint; ``base_overrides`` change config fields
    first (e.g. where the base models are: vlm, sam2_weights, bert, or load_in)."""
    from backend.models.geomag.model import GeoMag

    path = Path(path)
    config, tensors = read_checkpoint(path)
    if base_overrides:
        config = config.replace(**base_overrides)
    model = GeoMag.from_config(config, device=device, dtype=dtype, download=download)
    _load_into(path, model, tensors)
    tmra = {key[len("tmra."):]: value for key, value in tensors.items() if key.startswith("tmra.")}
    return model, tmra or None, config
