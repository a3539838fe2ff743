"""Whole images to unit embeddings: from the cache while a file is unchanged, else read ahead and encoded."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from backend.errors import Cancelled, UserInputError
from backend.inference.slide import BatchSize, fitted_batches
from backend.jobs import renamed_field
from backend.raster.source import ReadOptions
from backend.weights import rsov_home
from backend.zeroshot.embedding_cache import Identity, ImageEmbeddingCache, file_identity
from backend.zeroshot.encoder import ClipEncoder
from backend.zeroshot.images import clip_input, read_image
from backend.zeroshot.quiet import libraries_quiet
from backend.zeroshot.read_ahead import read_ahead

FLUSH_EVERY = 1024  # new embeddings between writes of the cache: a cancelled first run keeps most of its work
MAX_SKIP_WARNINGS = 10
log = logging.getLogger("rsov")


@dataclass
class EmbeddedImages:
    paths: list[Path]  # the images embedded, in the order given
    embeddings: torch.Tensor  # (N, E) unit vectors
    encoded: int = 0  # by the model in this run
    cached: int = 0  # read from the cache
    skipped: list[UserInputError] = field(default_factory=list)  # why each image left out was


def reading_key(options: ReadOptions) -> str:
    """How pixels are read, as far as it changes an embedding."""
    return f"bands={options.bands} stretch={options.stretch} modality={options.modality}/{options.model_modality}"


def image_cache(encoder: ClipEncoder, options: ReadOptions) -> ImageEmbeddingCache:
    return ImageEmbeddingCache(rsov_home() / "cache" / "images", encoder.key(reading_key(options)))


def embed_images(encoder: ClipEncoder, paths: list[Path], options: ReadOptions, batch_size: int,
                 progress: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 strict_field: str | None = None) -> EmbeddedImages:
    """The embeddings of ``paths``; images that cannot be read, or hold no valid pixel, are skipped with the
    reason, or, with ``strict_field``, the reason is raised as an error about that job field.

    ``progress(done, total)`` counts images (cached, encoded or skipped); ``should_stop()``
    returning True cancels, keeping in the cache what was encoded.
    """
    run = _Run(encoder, paths, options, BatchSize(batch_size, encoder.device), progress, should_stop, strict_field)
    todo = run.look_up()
    pending: list = []
    try:
        with libraries_quiet(), contextlib.closing(read_ahead(todo, run.load, ahead=2 * batch_size)) as loads:
            for item, loaded in loads:
                if should_stop is not None and should_stop():
                    raise Cancelled("cancelled")
                if isinstance(loaded, UserInputError):
                    run.skip(loaded)
                    continue
                pending.append((*item, loaded))
                if len(pending) >= batch_size:
                    run.encode(pending)
                    pending = []
            if pending:
                run.encode(pending)
    finally:
        run.cache.flush()  # a cancelled or failed run keeps what it encoded
    return run.finished()


class _Run:
    """One ``embed_images`` call: what was found in the cache, encoded and skipped so far."""

    def __init__(self, encoder: ClipEncoder, paths: list[Path], options: ReadOptions, sizes: BatchSize,
                 progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None,
                 strict_field: str | None) -> None:
        self.encoder, self.paths, self.options, self.sizes = encoder, paths, options, sizes
        self.progress, self.should_stop, self.strict_field = progress, should_stop, strict_field
        self.cache = image_cache(encoder, options)
        self.found: dict[int, torch.Tensor] = {}
        self.result = EmbeddedImages([], torch.empty(0))

    def report(self) -> None:
        if self.progress is not None:
            self.progress(len(self.found) + len(self.result.skipped), len(self.paths))

    def skip(self, error: UserInputError) -> None:
        if self.strict_field is not None:
            with renamed_field("raster", self.strict_field):
                raise error
        self.result.skipped.append(error)

    def look_up(self) -> list[tuple[int, Path, Identity]]:
        """The embeddings in the cache; the images to encode as (index, resolved path, file identity)."""
        todo = []
        for index, path in enumerate(self.paths):
            resolved = path.resolve()
            try:
                identity = file_identity(resolved)
            except OSError as error:
                self.skip(UserInputError(f"{path} cannot be read ({error.strerror}).", "raster"))
                continue
            embedding = self.cache.get(resolved, identity)
            if embedding is None:
                todo.append((index, resolved, identity))
            else:
                self.found[index] = embedding
        self.result.cached = len(self.found)
        self.report()
        return todo

    def load(self, item: tuple[int, Path, Identity]) -> torch.Tensor | UserInputError:
        """The image as the model takes it (on a reading thread), or why it cannot be."""
        path, size = self.paths[item[0]], self.encoder.input_size
        try:
            pixels, valid = read_image(path, self.options, size)
        except UserInputError as error:
            return error
        if not valid.any():
            return UserInputError(f"{path} has no valid pixels (all nodata); check its nodata value.", "raster")
        return clip_input(pixels, size)

    def encode(self, batch: list) -> None:
        """Embed (index, resolved path, identity, image) items, into the results and the cache."""
        def run(part):
            return self.encoder.image_embeddings(torch.stack([item[3] for item in part]))

        for part, embeddings in fitted_batches(batch, self.sizes, run, self.encoder.input_size, self.should_stop):
            for (index, resolved, identity, _), embedding in zip(part, embeddings):
                self.cache.put(resolved, identity, embedding)
                self.found[index] = embedding
        self.result.encoded += len(batch)
        if self.result.encoded % FLUSH_EVERY < len(batch):
            self.cache.flush()
        self.report()

    def finished(self) -> EmbeddedImages:
        self.report()
        order = sorted(self.found)
        self.result.paths = [self.paths[index] for index in order]
        self.result.embeddings = torch.stack([self.found[i] for i in order]) if order else torch.empty(0, 0)
        return self.result


def skipped_notes(embedded: EmbeddedImages, folder: Path, field: str) -> list[str]:
    """A note per image skipped (the first few also logged as warnings); an error about job field ``field``
    when no image of ``folder`` could be read."""
    if not embedded.paths and embedded.skipped:
        first = embedded.skipped[0]
        fields = dict.fromkeys(field if name == "raster" else name for name in (field, *first.fields))
        raise UserInputError(f"no image in {folder} could be read; the first: {first.template}", *fields)
    notes = [f"skipped {error}" for error in embedded.skipped]
    for note in notes[:MAX_SKIP_WARNINGS]:
        log.warning("%s", note)
    if len(notes) > MAX_SKIP_WARNINGS:
        log.warning("skipped %d more images that could not be read.", len(notes) - MAX_SKIP_WARNINGS)
    return notes
