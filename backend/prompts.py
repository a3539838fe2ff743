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


def templates_digest(templates: Sequence[Callable[[str], str]]) -> str:
    """A hash of the templates' text (each rendered with ``{}`` for the class name)."""
    payload = json.dumps([template("{}") for template in templates], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _causal_mask(size: int) -> torch.Tensor:
    return torch.full((size, size), float("-inf")).triu_(1)


def _truncatable_text_tower(model: torch.nn.Module) -> torch.nn.Module | None:
    """The module holding ``model``'s text tower parts if its text embedding may be computed on a shortened
    sequence, else None.

    That holds for open_clip's own text forward (``CLIP.encode_text``, or ``CustomTextCLIP`` over a
    ``TextTransformer``) with a causal attention mask, argmax (EOT) pooling, no class token and no padding
    mask, over open_clip's standard blocks: a token's output then depends on the tokens before it only, and
    the embedding is read at the EOT token. Anything else (a Hugging Face text tower, a bidirectional mask,
    first/last/eos pooling, a subclass with its own forward) runs at the full length.
    """
    from backend.torchvision_compat import import_open_clip

    open_clip = import_open_clip()
    clip_model, layers = open_clip.model, open_clip.transformer
    encode_text = getattr(type(model), "encode_text", None)
    if encode_text is clip_model.CLIP.encode_text:
        tower, pool_type = model, getattr(model, "text_pool_type", None)
    elif (encode_text is clip_model.CustomTextCLIP.encode_text
          and type(getattr(model, "text", None)).forward is layers.TextTransformer.forward):
        tower, pool_type = model.text, model.text.pool_type
        if tower.cls_emb is not None or tower.use_pad_mask or tower.output_tokens:
            return None
    else:
        return None
    if pool_type != "argmax":
        return None
    positional, mask = getattr(tower, "positional_embedding", None), getattr(tower, "attn_mask", None)
    if not isinstance(positional, torch.Tensor) or not isinstance(mask, torch.Tensor):
        return None  # no mask: bidirectional attention
    size = positional.shape[0]
    if not mask.is_floating_point() or mask.shape != (size, size) \
            or not torch.equal(mask.detach().float().cpu(), _causal_mask(size)):
        return None
    body = tower.transformer
    if type(body).forward not in (layers.Transformer.forward, layers.CustomTransformer.forward):
        return None
    standard_blocks = {layers.ResidualAttentionBlock: torch.nn.MultiheadAttention,
                       layers.CustomResidualAttentionBlock: layers.Attention}
    for block in body.resblocks:
        attention = standard_blocks.get(type(block))
        if attention is None or type(block.attn) is not attention or hasattr(block, "ln_1_kv"):
            return None
    return tower


def prompt_length(tokens: torch.Tensor) -> int:
    """The shortest length that keeps every prompt of the batch: its last non-zero token (and its EOT) + 1."""
    used = (tokens != 0).any(dim=0).nonzero()
    last = int(used[-1]) if len(used) else 0
    return max(last, int(tokens.argmax(dim=-1).max())) + 1


def text_encoder(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s text embedding of a token batch (B, context length), each batch run at its longest prompt
    where the text tower allows it (see ``_truncatable_text_tower``), else at the full length.

    The shortened forward is open_clip's own, with the positional embedding and the causal mask cut to
    the batch's length: the embeddings equal the full-length ones up to float rounding.
    """
    tower = _truncatable_text_tower(model)
    if tower is None:
        return model.encode_text

    def encode(tokens: torch.Tensor) -> torch.Tensor:
        length = prompt_length(tokens)
        tokens = tokens[:, :length]
        cast_dtype = tower.transformer.get_cast_dtype()
        x = tower.token_embedding(tokens).to(cast_dtype)
        x = x + tower.positional_embedding[:length].to(cast_dtype)
        x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
        x = tower.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # the EOT token's features
        projection = tower.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection

    return encode


@torch.no_grad()
def encode_queries(
    encode_text: Callable[[torch.Tensor], torch.Tensor],
    tokenize: Callable[[list[str]], torch.Tensor],
    queries: Sequence[str],
    templates: Sequence[Callable[[str], str]],
    device: torch.device | str = "cpu",
    queries_per_batch: int = 1,
) -> torch.Tensor:
    """One unit vector per query: the normalised mean of its normalised template embeddings.

    The templates of ``queries_per_batch`` queries go through ``encode_text`` together.
    """
    features = []
    for start in range(0, len(queries), queries_per_batch):
        batch = queries[start:start + queries_per_batch]
        tokens = tokenize([template(query) for query in batch for template in templates]).to(device)
        embedded = encode_text(tokens).float()
        embedded = embedded / embedded.norm(dim=-1, keepdim=True)
        mean = embedded.reshape(len(batch), len(templates), -1).mean(dim=1)
        features.append(mean / mean.norm(dim=-1, keepdim=True))
    return torch.cat(features)


class TextEmbeddingCache:
    """Query embeddings on disk, one file per (model identity, query, templates).

    A class list's embeddings are gathered from the files of its queries; only the missing ones
    are computed, in one pass. An entry that cannot be read, or that names another model, query
    or template set, is recomputed and rewritten. Each write goes to its own temporary file and is
    renamed into place, so readers never see a partial entry and two processes writing the same
    entry at once leave one whole copy.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def key(model_id: str, query: str, templates: str) -> str:
        payload = json.dumps(["query", model_id, query, templates], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def path(self, model_id: str, query: str, templates: str) -> Path:
        return self.directory / f"{self.key(model_id, query, templates)}.safetensors"

    def _read(self, path: Path, metadata: dict[str, str]) -> torch.Tensor | None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as entry:
                if entry.metadata() != metadata:
                    return None
                embedding = entry.get_tensor("query")
        except Exception:  # missing or damaged: recomputed, never trusted
            return None
        if embedding.ndim != 1 or not embedding.numel() or not torch.isfinite(embedding).all():
            return None
        return embedding.float()

    def _write(self, path: Path, embedding: torch.Tensor, metadata: dict[str, str]) -> None:
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")  # one per writer: jobs run at once
        os.close(handle)
        try:
            save_file({"query": embedding.detach().float().cpu().contiguous()}, temporary, metadata=metadata)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def get_or_compute(
        self,
        model_id: str,
        queries: Sequence[str],
        templates: Sequence[Callable[[str], str]],
        compute: Callable[[list[str]], torch.Tensor],
    ) -> torch.Tensor:
        """The (Q, E) embeddings of ``queries``; ``compute(missing)`` gives those of the queries not on disk."""
        digest = templates_digest(templates)
        found: dict[str, torch.Tensor] = {}
        for query in dict.fromkeys(queries):
            embedding = self._read(self.path(model_id, query, digest), self._metadata(model_id, query, digest))
            if embedding is not None:
                found[query] = embedding
        missing = [query for query in dict.fromkeys(queries) if query not in found]
        if missing:
            computed = compute(missing)
            if computed.shape[0] != len(missing):
                raise ValueError(f"compute gave {computed.shape[0]} embeddings for {len(missing)} queries")
            for query, embedding in zip(missing, computed):
                embedding = embedding.detach().float().cpu()
                self._write(self.path(model_id, query, digest), embedding, self._metadata(model_id, query, digest))
                found[query] = embedding
        return torch.stack([found[query] for query in queries])

    @staticmethod
    def _metadata(model_id: str, query: str, templates: str) -> dict[str, str]:
        return {"model": model_id, "query": query, "templates": templates}
