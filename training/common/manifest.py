"""Manifests: CSV (a header row naming the columns) or JSON (a list of objects) of file paths."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from backend.errors import UserInputError


def read_manifest(path: str | Path, columns: Sequence[str]) -> list[dict[str, Path]]:
    """One dict per row giving each of ``columns`` as a path (relative ones from the manifest's folder).

    Refused with one sentence: a missing or unreadable manifest, a missing column or key,
    an empty field, no rows at all.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"manifest {path} does not exist; give a CSV or JSON list of image paths "
                             "(see training/README.md).")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise UserInputError(f"manifest {path} is neither .csv nor .json; give a CSV with the columns "
                             f"{','.join(columns)} or a JSON list of objects with those keys.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"manifest {path} cannot be read ({type(error).__name__}); "
                             "give a UTF-8 text file.") from None
    rows = _csv_rows(text, path, columns) if suffix == ".csv" else _json_rows(text, path, columns)
    if not rows:
        raise UserInputError(f"manifest {path} lists no rows; add at least one.")
    return [{column: _resolve(row[column], path, where, column) for column in columns} for where, row in rows]


def _csv_rows(text: str, path: Path, columns: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in columns if column not in header]
    if missing:
        raise UserInputError(f"manifest {path} has no column '{missing[0]}'; its first line must name the columns "
                             f"{','.join(columns)}.")
    reader.fieldnames = header
    return [(f"line {number}", row) for number, row in enumerate(reader, start=2)]


def _json_rows(text: str, path: Path, columns: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserInputError(f"manifest {path} is not valid JSON (line {error.lineno}: {error.msg}); "
                             "fix its syntax.") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UserInputError(f"manifest {path} must hold a JSON list of objects with the keys {', '.join(columns)}.")
    for number, item in enumerate(data):
        missing = [column for column in columns if column not in item]
        if missing:
            raise UserInputError(f"manifest {path}: item {number} has no key '{missing[0]}'; give every item the keys "
                                 f"{', '.join(columns)}.")
    return [(f"item {number}", item) for number, item in enumerate(data)]


def _resolve(value: Any, manifest: Path, where: str, column: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"manifest {manifest}: {where} has no '{column}' path; fill it in or remove the row.")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else manifest.parent / path
