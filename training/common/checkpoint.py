"""Checkpoint files written atomically (temporary file, fsync, rename) and read back safely."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from backend.errors import UserInputError


def atomic_save(payload: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place.

    A process killed at any moment leaves either the previous file or the new one, never
    half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_training_state(path: str | Path) -> dict[str, Any]:
    """A training state written by ``atomic_save`` (tensors and plain values only), on the CPU."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways
        raise UserInputError(f"{path} is not a readable training state ({type(error).__name__}); "
                             "start again without --resume, or in another --out-dir.") from None
    if not isinstance(state, dict) or "module" not in state or "step" not in state:
        raise UserInputError(f"{path} is not a training state of this project; start again without --resume, "
                             "or in another --out-dir.")
    return state
