"""GeoMag (pixel-level RS vision-language model): config, model, checkpoint; MagCrop beside it.

Importing this package makes torchvision importable first (transformers' LLaVA classes and sam2
import it); the heavy modules load only when one of their names is used.
"""
from __future__ import annotations

import importlib
from typing import Any

from backend.torchvision_compat import ensure_torchvision_importable
from backend.models.geomag.config import GRANULARITIES, Box, GeoMagConfig

ensure_torchvision_importable()

_LAZY = {
    "GeoMag": "model", "Example": "model", "Batch": "model", "SegmentOutput": "model", "GenerateOutput": "model",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
}
__all__ = ["GRANULARITIES", "Box", "GeoMagConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"backend.models.geomag.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
