"""What the plugin remembers between sessions (QgsSettings under ``rs_openvocab/``)."""
from __future__ import annotations

import json
import os

from qgis.core import QgsSettings

PREFIX = "rs_openvocab/"
MAX_RECENT_PROMPTS = 10


def _settings() -> QgsSettings:
    return QgsSettings()


def value(key: str, default=None, kind: type = str):
    raw = _settings().value(PREFIX + key, default)
    if raw is None:
        return default
    if kind is bool:
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        return default


def set_value(key: str, data) -> None:
    _settings().setValue(PREFIX + key, data)


# -- the backend ---------------------------------------------------------------------------------
def backend_mode() -> str:
    """'url': connect to a running `rsov serve`; 'python': start one from that environment's Python."""
    return "url" if os.environ.get("RSOV_URL") else value("backend/mode", "python")


def backend_url() -> str:
    return os.environ.get("RSOV_URL") or value("backend/url", "http://127.0.0.1:8765")


def backend_token() -> str:
    return os.environ.get("RSOV_TOKEN") or value("backend/token", "")


def backend_python() -> str:
    return value("backend/python", "")


# -- describing a target ---------------------------------------------------------------------------
def run_kind() -> str:
    """The dock's mode: 'segment' (name the classes) or 'refer' (describe the target)."""
    kind = value("run/kind", "segment")
    return kind if kind in ("segment", "refer") else "segment"


def geomag_checkpoint() -> str:
    """The GeoMag checkpoint file last used to describe a target (a path the backend reads)."""
    return value("geomag/checkpoint", "")


# -- recent prompts ------------------------------------------------------------------------------
def recent_prompts() -> list[str]:
    """Prompt sets run before, newest first, each as the text typed (one class per line)."""
    try:
        prompts = json.loads(value("recent_prompts", "[]"))
    except ValueError:
        return []
    return [p for p in prompts if isinstance(p, str)][:MAX_RECENT_PROMPTS]


def remember_prompts(text: str) -> None:
    text = text.strip()
    if not text:
        return
    prompts = [text] + [p for p in recent_prompts() if p != text]
    set_value("recent_prompts", json.dumps(prompts[:MAX_RECENT_PROMPTS]))


# -- measured speed, for the estimate shown before a run -----------------------------------------
DEFAULT_MP_PER_S = {"cpu": 0.05, "cuda": 2.0, "mps": 0.5}  # ViT-B/16 SegEarth-OV, rough (bench/RESULTS.md)


def megapixels_per_second(device: str) -> tuple[float, bool]:
    """The last measured rate on ``device`` (True), or a rough default for its kind (False)."""
    measured = value(f"speed/{device}", 0.0, float)
    if measured > 0:
        return measured, True
    return DEFAULT_MP_PER_S.get(device.split(":")[0], 0.05), False


def remember_speed(device: str, mp_per_s: float) -> None:
    if mp_per_s and mp_per_s > 0:
        set_value(f"speed/{device}", float(mp_per_s))
