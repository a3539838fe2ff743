"""Texts to rank for an image: inline ("a; b; c"), a list, or a file of one text per line."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Sequence

from backend.errors import UserInputError


def parse_texts(value: str | Sequence[str], field: str = "texts") -> tuple[str, ...]:
    """The texts of ``"a; b; c"`` or of a list, stripped, empty ones dropped; an error naming ``field`` if none."""
    if isinstance(value, str):
        parts = value.split(";")
    elif isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
        parts = list(value)
    else:
        raise UserInputError(f"{{{field}}} must be text like 'a harbour; a forest' or a list of texts.", field)
    texts = tuple(part.strip() for part in parts if part.strip())
    if not texts:
        raise UserInputError(f"{{{field}}} holds no text; give texts separated by ';', e.g. 'a harbour; a forest'.",
                             field)
    bad = next((c for text in texts for c in text if unicodedata.category(c) == "Cc" and c != "\t"), None)
    if bad is not None:
        raise UserInputError(f"{{{field}}} holds the control character {bad!r}; give plain text.", field)
    return texts


def read_texts_file(path: Path, field: str = "texts") -> tuple[str, ...]:
    """One text per line of a UTF-8 file (BOM or not); blank lines are skipped."""
    try:
        content = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserInputError(f"text file {path} does not exist; check the path.", field) from None
    except UnicodeDecodeError:
        raise UserInputError(f"text file {path} is not UTF-8 text; save it as UTF-8.", field) from None
    except OSError as error:
        raise UserInputError(f"text file {path} cannot be read ({error.strerror}); give a UTF-8 text file.",
                             field) from None
    lines = [line for line in re.split(r"\r\n|\n|\r", content) if line.strip()]
    if not lines:
        raise UserInputError(f"text file {path} holds no text; write one text per line.", field)
    return parse_texts(lines, field)
