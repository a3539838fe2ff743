"""The scenes a batch names: a folder, a glob, a .txt or .csv list of paths or URLs, or a STAC ItemCollection.

A scene is a name (its file stem, or its STAC item id, made safe as a file name and unique in
input order) and a source GDAL opens: a local path, or a ``/vsi`` path for a URL
(``https://`` becomes ``/vsicurl/``, ``s3://`` ``/vsis3/``, ``gs://`` ``/vsigs/``, ``az://``
``/vsiaz/``). Sources stay text: ``pathlib`` would fold the ``//`` of a URL. Relative entries
of a list or hrefs of a STAC file are relative to that file's folder.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from backend.errors import UserInputError

GLOB_CHARACTERS = "*?["
LIST_SUFFIXES = (".txt",)
CSV_SUFFIXES = (".csv",)
STAC_SUFFIXES = (".json", ".geojson")
CSV_COLUMNS = ("path", "url", "href", "source")  # the first of these a list's header has names the scenes
URL_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}
DEFAULT_ASSET = "visual"
GEOTIFF_SUFFIXES = (".tif", ".tiff")
MAX_NAME_CHARACTERS = 120
FORMS = ("give a folder, a glob like 'tiles/*.tif' (quoted), a .txt or .csv list of paths or URLs, or a STAC "
         "ItemCollection .json")


@dataclass(frozen=True)
class Scene:
    """One scene of a batch: its outputs are named ``name``; ``source`` is what GDAL opens."""

    name: str
    source: str


def list_scenes(inputs: str, asset: str | None = None) -> list[Scene]:
    """The scenes ``inputs`` names, in input order (a folder's and a glob's sorted by path)."""
    found = _sources(inputs, asset)
    if not found:
        raise UserInputError(f"{{inputs}} {inputs} names no scene; {FORMS} with at least one raster.", "inputs")
    return unique_names([(_safe_name(name), source if is_remote(source) else str(Path(source).absolute()))
                         for name, source in found])


def is_remote(source: str) -> bool:
    """True for a /vsi path or a URL: nothing on the local disk to check."""
    return source.startswith("/vsi") or urlsplit(source).scheme in (*URL_SCHEMES, "file")


def base_folder(inputs: str) -> Path:
    """The local folder ``inputs`` is or lies in: a folder itself, a file's folder, a glob's fixed part."""
    path = Path(inputs).expanduser()
    if path.is_dir():
        return path
    for index, part in enumerate(path.parts):
        if any(character in part for character in GLOB_CHARACTERS):
            return Path(*path.parts[:index]) if index else Path(".")
    return path.parent


def gdal_source(entry: str, folder: Path) -> str:
    """A list entry or STAC href as GDAL opens it: URLs as /vsi paths, relative paths from ``folder``."""
    entry = entry.strip()
    if entry.startswith("/vsi"):
        return entry
    scheme = urlsplit(entry).scheme.lower()
    if scheme in URL_SCHEMES:
        return URL_SCHEMES[scheme] + (entry if scheme.startswith("http") else entry.split("://", 1)[1])
    if scheme == "file":
        entry = urlsplit(entry).path
    path = Path(entry).expanduser()
    return str(path if path.is_absolute() else folder / path)


def unique_names(scenes: list[tuple[str, str]]) -> list[Scene]:
    """Scenes whose names (and the ``-probs`` names beside them) are distinct, ignoring case: a repeated
    name gets -2, -3, ... in input order."""
    taken: set[str] = set()
    unique = []
    for name, source in scenes:
        candidate, number = name, 1
        while _clashes(candidate.lower(), taken):
            number += 1
            candidate = f"{name}-{number}"
        taken.add(candidate.lower())
        unique.append(Scene(candidate, source))
    return unique


def _clashes(name: str, taken: set[str]) -> bool:
    probs = "-probs"
    return name in taken or name + probs in taken or (name.endswith(probs) and name[:-len(probs)] in taken)


def _safe_name(name: str) -> str:
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._-")[:MAX_NAME_CHARACTERS]
    return safe or "scene"


def _stem(source: str) -> str:
    """The file stem of a path or URL, its query left out."""
    path = urlsplit(source).path if "://" in source else source
    return PurePosixPath(path.rstrip("/")).stem


def _sources(inputs: str, asset: str | None) -> list[tuple[str, str]]:
    """(name, source) pairs of ``inputs``, names not yet made safe or unique."""
    from backend.zeroshot.images import find_images, image_suffixes

    if not inputs.strip():
        raise UserInputError(f"{{inputs}} is empty; {FORMS}.", "inputs")
    if is_remote(inputs):
        raise UserInputError(f"{{inputs}} {inputs} is a URL; list the URLs in a .txt file (one a line) and give "
                             "that file.", "inputs")
    path = Path(inputs).expanduser()
    suffix = path.suffix.lower()
    if path.is_dir():
        return [(found.stem, str(found)) for found in find_images(path)]
    if path.is_file():
        if suffix in LIST_SUFFIXES:
            return [(_stem(entry), gdal_source(entry, path.parent)) for entry in _list_lines(path)]
        if suffix in CSV_SUFFIXES:
            return [(_stem(entry), gdal_source(entry, path.parent)) for entry in _csv_entries(path)]
        if suffix in STAC_SUFFIXES:
            return _stac_sources(path, asset)
        if suffix[1:] in image_suffixes():
            return [(path.stem, str(path))]
        raise UserInputError(f"{{inputs}} {inputs} is neither a list (.txt, .csv), a STAC ItemCollection (.json) "
                             f"nor a raster; {FORMS}.", "inputs")
    if any(character in inputs for character in GLOB_CHARACTERS):
        return _glob_sources(inputs, image_suffixes())
    raise UserInputError(f"{{inputs}} {inputs} does not exist; check the path, or {FORMS}.", "inputs")


def _glob_sources(pattern: str, suffixes: frozenset[str]) -> list[tuple[str, str]]:
    try:
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    except (OSError, ValueError) as error:
        raise UserInputError(f"{{inputs}} {pattern} cannot be searched ({error}); give another pattern.",
                             "inputs") from None
    files = [Path(match) for match in matches if Path(match).suffix[1:].lower() in suffixes
             and Path(match).is_file()]
    if not files:
        raise UserInputError(f"{{inputs}} {pattern} matches no raster file; check the pattern (quote it so the "
                             "shell leaves it to rsov).", "inputs")
    return [(file.stem, str(file)) for file in files]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserInputError(f"{{inputs}} {path} is not UTF-8 text; save it as UTF-8.", "inputs") from None
    except OSError as error:
        raise UserInputError(f"{{inputs}} {path} cannot be read ({error.strerror}); check its permissions.",
                             "inputs") from None


def _list_lines(path: Path) -> list[str]:
    """A .txt list's entries: one a line, blank lines and # comments left out."""
    lines = (line.strip() for line in _text(path).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _csv_entries(path: Path) -> list[str]:
    """A .csv list's entries: the column named path, url, href or source (else the first), under a header row."""
    try:
        rows = list(csv.reader(_text(path).splitlines()))
    except csv.Error as error:
        raise UserInputError(f"{{inputs}} {path} is not a readable CSV ({error}); give one path or URL a row under "
                             "a header row.", "inputs") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise UserInputError(f"{{inputs}} {path} has no header row; give a header (e.g. 'path') and one path or "
                             "URL a row.", "inputs")
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in CSV_COLUMNS if name in header), 0)
    return [row[column].strip() for row in rows[1:] if len(row) > column and row[column].strip()]


def _stac_sources(path: Path, asset: str | None) -> list[tuple[str, str]]:
    """(item id, asset source) of each item of a STAC ItemCollection (or of one STAC Item)."""
    try:
        document = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise UserInputError(f"{{inputs}} {path} is not valid JSON ({error.msg} at line {error.lineno}); give a "
                             "STAC ItemCollection.", "inputs") from None
    kind = document.get("type") if isinstance(document, dict) else None
    items = document.get("features") if kind == "FeatureCollection" else [document] if kind == "Feature" else None
    if not isinstance(items, list) or not all(isinstance(item, dict) and isinstance(item.get("assets"), dict)
                                              and item["assets"] for item in items):
        raise UserInputError(f"{{inputs}} {path} is not a STAC ItemCollection (a FeatureCollection whose "
                             "features have assets); give one, e.g. a STAC API search saved as JSON.", "inputs")
    if asset is None and items and all(DEFAULT_ASSET in item["assets"] for item in items):
        asset = DEFAULT_ASSET
    sources = []
    for number, item in enumerate(items, start=1):
        name = str(item.get("id") or f"item-{number}")
        href = _asset_href(path, item["assets"], name, asset)
        sources.append((name, gdal_source(href, path.parent)))
    return sources


def _asset_href(path: Path, assets: dict, item: str, asset: str | None) -> str:
    """The href of the asset ``asset`` of an item, or of its one GeoTIFF asset when none is named."""
    keys = ", ".join(sorted(map(str, assets)))
    if asset is not None:
        if asset not in assets:
            raise UserInputError(f"{{asset}} {asset!r} is not an asset of item {item} in {path} (its assets: "
                                 f"{keys}); give one of those.", "asset")
        chosen = [asset]
    else:
        chosen = [key for key, value in assets.items() if _is_geotiff(value)]
        if len(chosen) != 1:
            raise UserInputError(f"{{inputs}} {path}: item {item} has {len(chosen) or 'no'} GeoTIFF asset"
                                 f"{'s' * (len(chosen) != 1)} and no {DEFAULT_ASSET!r} asset; choose one with "
                                 f"{{asset}} (its assets: {keys}).", "inputs", "asset")
    href = assets[chosen[0]].get("href") if isinstance(assets[chosen[0]], dict) else None
    if not isinstance(href, str) or not href.strip():
        raise UserInputError(f"{{inputs}} {path}: asset {chosen[0]!r} of item {item} has no href; fix the file or "
                             "choose another {asset}.", "inputs", "asset")
    return href


def _is_geotiff(asset) -> bool:
    if not isinstance(asset, dict):
        return False
    media = str(asset.get("type") or "").lower()
    href = urlsplit(str(asset.get("href") or "")).path
    return "image/tiff" in media or PurePosixPath(href).suffix.lower() in GEOTIFF_SUFFIXES
