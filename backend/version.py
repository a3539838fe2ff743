"""The project's version, read from the QGIS plugin's metadata.txt (the one place it lives)."""
from __future__ import annotations

import configparser
from pathlib import Path

_METADATA = Path(__file__).resolve().parent.parent / "rs_openvocab" / "metadata.txt"


def _read_version() -> str:
    parser = configparser.ConfigParser()
    if not parser.read(_METADATA, encoding="utf-8"):
        return "0+unknown"
    return parser.get("general", "version", fallback="0+unknown")


__version__ = _read_version()
