"""(query, granularity) pairs for the TMRA classifier: read from CSV/JSON lists, labelled in GRANULARITIES order.

A CSV whose first line names the columns ``query,granularity``, or JSON
``[{"query": "segment the red roof", "granularity": "pixel"}, ...]``; granularity is
``image``, ``region`` or ``pixel``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from backend.errors import UserInputError
from backend.models.geomag.config import GRANULARITIES

COLUMNS = ("query", "granularity")


def read_pairs(path: str | Path, key: str = "data.train_pairs") -> list[tuple[str, str]]:
    """The pairs of a CSV/JSON list; a bad file or row is one sentence naming it and the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"{key}: {path} does not exist; give a CSV or JSON list of query,granularity pairs.")
    if path.suffix.lower() not in (".csv", ".json"):
        raise UserInputError(f"{key}: {path} is neither .csv nor .json; give a CSV with the columns "
                             "query,granularity or a JSON list of objects with those keys.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"{key}: {path} cannot be read ({type(error).__name__}); give a UTF-8 text file.") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not set(COLUMNS) <= {name.strip() for name in reader.fieldnames or []}:
            raise UserInputError(f"{key}: {path} must start with the line 'query,granularity'.")
        rows = [(f"line {number}", {k.strip(): v for k, v in row.items() if k})
                for number, row in enumerate(reader, start=2)]
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserInputError(f"{key}: {path} is not valid JSON (line {error.lineno}: {error.msg}); "
                                 "fix its syntax.") from None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise UserInputError(f"{key}: {path} must hold a JSON list of objects with the keys query, granularity.")
        rows = [(f"item {number}", item) for number, item in enumerate(data)]
    pairs = []
    for where, row in rows:
        query, granularity = str(row.get("query") or "").strip(), str(row.get("granularity") or "").strip().lower()
        if not query or granularity not in GRANULARITIES:
            raise UserInputError(f"{key}: {path} {where} needs a query and a granularity of "
                                 f"{', '.join(GRANULARITIES)}; fix or remove it.")
        pairs.append((query, granularity))
    if not pairs:
        raise UserInputError(f"{key}: {path} lists no pairs; add at least one.")
    return pairs


def labels(pairs: list[tuple[str, str]]) -> list[int]:
    return [GRANULARITIES.index(granularity) for _, granularity in pairs]
