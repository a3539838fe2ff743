"""``retrieve`` jobs: a folder's images ranked for a text, or texts ranked for an image, by CLIP similarity.

The score is the cosine of the unit image and text embeddings; texts are encoded as written
(no prompt templates: they are sentences). For texts ranked for an image, ``probability`` is
softmax(logit scale x score) over the texts given. Image embeddings come from the cache
(``embedding_cache``) while a file is unchanged, so a second query over a folder only reads.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from backend.jobs import RetrieveJob
from backend.models.cache import ModelCache
from backend.zeroshot.encoder import load_encoder
from backend.zeroshot.image_embeddings import embed_images, skipped_notes
from backend.zeroshot.outputs import write_csv, write_staged
from backend.zeroshot.scores import ranked

Progress = Callable[[str, float, float], None]  # (stage, done, total): images
IMAGE_COLUMNS = ["rank", "file", "score"]
TEXT_COLUMNS = ["rank", "text", "score", "probability"]
STAGES = ("loading model", "encoding texts", "encoding images", "writing")


@dataclass
class RetrieveResult:
    mode: str  # "images": a folder's images for a text; "texts": texts for an image
    query: str  # the text, or the image
    rows: list[dict]  # the top ranks: IMAGE_COLUMNS or TEXT_COLUMNS
    ranked: int  # images or texts ranked
    seconds: float  # reading, encoding and ranking the images
    device: str
    logit_scale: float
    outputs: list[Path]
    encoded: int = 0  # images encoded by the model (the others came from the embedding cache)
    cached: int = 0
    skipped: int = 0  # images that could not be read
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return IMAGE_COLUMNS if self.mode == "images" else TEXT_COLUMNS


def retrieve(job: RetrieveJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             models: ModelCache | None = None) -> RetrieveResult:
    """Validate and run ``job``: its top ranks, and its ``out`` CSV renamed into place at the end."""
    config, paths = job.checked()
    report = progress or (lambda stage, done, total: None)
    report("loading model", 0, len(paths))
    encoder = load_encoder(config, models)
    report("encoding texts", 0, len(paths))
    texts = [job.text] if job.folder is not None else list(job.texts)
    text_embeddings = encoder.text_embeddings(texts)
    started = time.perf_counter()
    embedded = embed_images(encoder, paths, job.read_options(), job.batch_size,
                            lambda done, total: report("encoding images", done, total), should_stop,
                            strict_field=None if job.folder is not None else "image")
    if job.folder is not None:
        notes = skipped_notes(embedded, job.folder, "folder")
        scores = embedded.embeddings @ text_embeddings[0]
        rows = [{"rank": rank, "file": str(embedded.paths[index]), "score": round(float(scores[index]), 6)}
                for rank, index in enumerate(ranked(scores, job.top), start=1)]
        result = RetrieveResult("images", job.text, rows, len(embedded.paths), 0.0, str(encoder.device),
                                encoder.logit_scale, job.outputs, notes=notes)
    else:
        scores = text_embeddings @ embedded.embeddings[0]
        probabilities = torch.softmax(encoder.logit_scale * scores, dim=0)
        rows = [{"rank": rank, "text": texts[index], "score": round(float(scores[index]), 6),
                 "probability": round(float(probabilities[index]), 6)}
                for rank, index in enumerate(ranked(scores, job.top), start=1)]
        result = RetrieveResult("texts", str(job.image), rows, len(texts), 0.0, str(encoder.device),
                                encoder.logit_scale, job.outputs)
    result.encoded, result.cached, result.skipped = embedded.encoded, embedded.cached, len(embedded.skipped)
    result.seconds = time.perf_counter() - started
    if job.out is not None:
        report("writing", len(paths), len(paths))
        write_staged(job.out, lambda path: write_csv(path, result.columns, rows), should_stop)
    return result
