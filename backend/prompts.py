"""Class lists (the authors' file format and an inline form) and their text embeddings.

A class list is one class per line; a line may hold comma-separated synonyms
(``building,roof,house``), each of which is its own text query. A class's probability is
the maximum over its synonyms' probabilities.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from backend.errors import UserInputError


@dataclass(frozen=True)
class ClassList:
    """Classes in order (the class raster's values), each with its synonyms."""

    synonyms: tuple[tuple[str, ...], ...]

    @property
    def names(self) -> list[str]:
        """Each class's display name: the first name on its line."""
        return [words[0] for words in self.synonyms]

    @property
    def queries(self) -> list[str]:
        """Every synonym of every class, in order; one text query each."""
        return [word for words in self.synonyms for word in words]

    @property
    def query_to_class(self) -> list[int]:
        """For each query, the index of the class it belongs to."""
        return [index for index, words in enumerate(self.synonyms) for _ in words]

    def __len__(self) -> int:
        return len(self.synonyms)


def _parse_lines(lines: Sequence[str], source: str, field: str) -> ClassList:
    """Classes from lines; ``source`` names them in errors (``{field}`` is rendered by each face)."""
    classes: list[tuple[str, ...]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        bad = next((c for c in line if unicodedata.category(c) == "Cc" and c != "\t"), None)
        if bad is not None:
            raise UserInputError(
                f"{source}: class {number} holds the control character {bad!r}; "
                "save the classes as plain UTF-8 text.", field
            )
        words = tuple(word.strip() for word in line.split(","))
        if any(not word for word in words):
            raise UserInputError(
                f"{source}: class {number} ({line.strip()!r}) has an empty name; "
                "remove the stray comma or write the missing synonym.", field
            )
        classes.append(words)
    if not classes:
        raise UserInputError(f"{source} holds no class names; give at least one class.", field)
    seen: dict[str, int] = {}
    for index, words in enumerate(classes):
        for word in words:
            if word.lower() in seen and seen[word.lower()] != index:
                raise UserInputError(
                    f"{source}: the name {word!r} is given to two classes; "
                    "each name may belong to one class only.", field
                )
            seen[word.lower()] = index
    return ClassList(tuple(classes))


def parse_class_file(path: str | Path) -> ClassList:
    """Read the authors' class file: one class per line, comma-separated synonyms (UTF-8, BOM or not)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserInputError(f"class file {path} does not exist; check the path.", "classes_file") from None
    except UnicodeDecodeError:
        raise UserInputError(f"class file {path} is not UTF-8 text; save it as UTF-8.", "classes_file") from None
    except OSError as error:
        raise UserInputError(f"class file {path} cannot be read ({error.strerror}); give a UTF-8 text file.",
                             "classes_file") from None
    return _parse_lines(re.split(r"\r\n|\n|\r", text), f"class file {path}", "classes_file")


def parse_inline_classes(text: str) -> ClassList:
    """Parse the command line's form: classes separated by ';', synonyms by ','."""
    return _parse_lines(text.split(";"), "{classes}", "classes")


def parse_class_lines(lines: Sequence[str]) -> ClassList:
    """Parse a list of classes (a JSON body's form): one class per item, synonyms by ','."""
    return _parse_lines(list(lines), "{classes}", "classes")


def openai_imagenet_templates() -> list[Callable[[str], str]]:
    """OpenAI's 80 ImageNet prompt templates ('a bad photo of a {}.', ...)."""
    from backend.torchvision_compat import import_open_clip

    return list(import_open_clip().zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES)


@torch.no_grad()
def encode_queries(
    encode_text: Callable[[torch.Tensor], torch.Tensor],
    tokenize: Callable[[list[str]], torch.Tensor],
    queries: Sequence[str],
    templates: Sequence[Callable[[str], str]],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """One unit vector per query: the normalised mean of its normalised template embeddings."""
    features = []
    for query in queries:
        tokens = tokenize([template(query) for template in templates]).to(device)
        embedded = encode_text(tokens).float()
        embedded = embedded / embedded.norm(dim=-1, keepdim=True)
        mean = embedded.mean(dim=0)
        features.append(mean / mean.norm())
    return torch.stack(features)


class TextEmbeddingCache:
    """Query embeddings on disk, keyed by the model's identity and the query list."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def key(self, model_id: str, queries: Sequence[str], template_count: int) -> str:
        payload = json.dumps([model_id, list(queries), template_count], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def get_or_compute(
        self,
        model_id: str,
        queries: Sequence[str],
        template_count: int,
        compute: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        from safetensors.torch import load_file, save_file

        path = self.directory / f"{self.key(model_id, queries, template_count)}.safetensors"
        if path.exists():
            try:
                return load_file(str(path))["queries"]
            except Exception:  # a damaged cache entry is recomputed, never trusted
                path.unlink(missing_ok=True)
        features = compute()
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")  # one per writer: jobs run at once
        os.close(handle)
        try:
            save_file({"queries": features.detach().float().cpu().contiguous()}, temporary)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return features
