"""Image embeddings on disk, one file per (model, folder): a second query over a folder encodes nothing again.

Layout: ``$RSOV_HOME/cache/images/<model key>/<folder key>.safetensors``, where the model
key is a hash of what decides an embedding (weights file identity, activation, precision,
how pixels are read, input size) and the folder key a hash of the folder's resolved path.
Each file holds ``embeddings`` (N, E) float32 and, as metadata, the model key's text, the
folder and ``files``: a JSON list of [name, size, mtime_ns], row i being file i. An entry is
used only while its file keeps that size and modification time; a file that changed is
encoded again and one that is gone is dropped at the next write. Writes go to a temporary
file renamed into place: readers never see half a file, and of two processes writing one
folder's file at once the last wins (the other's new entries are encoded again later).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

log = logging.getLogger("rsov")
Identity = tuple[int, int]  # (size in bytes, modification time in ns)


def file_identity(path: Path) -> Identity:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class ImageEmbeddingCache:
    """Embeddings of one model's images, read one folder file at a time and written by ``flush()``."""

    def __init__(self, root: Path, model_key: str) -> None:
        self.directory = Path(root) / _digest(model_key)
        self.model_key = model_key
        self._folders: dict[Path, dict[str, tuple[Identity, torch.Tensor]]] = {}
        self._changed: set[Path] = set()

    def get(self, path: Path, identity: Identity) -> torch.Tensor | None:
        """The embedding of ``path`` (resolved) if it was computed for the file as it is now."""
        entry = self._entries(path.parent).get(path.name)
        return entry[1] if entry is not None and entry[0] == identity else None

    def put(self, path: Path, identity: Identity, embedding: torch.Tensor) -> None:
        """Remember the embedding of ``path`` as it was when ``identity`` was taken (written by ``flush``)."""
        self._entries(path.parent)[path.name] = (identity, embedding.detach().float().cpu())
        self._changed.add(path.parent)

    def flush(self) -> None:
        """Write the folders that got new entries, keeping only entries of files still as they were."""
        for folder in sorted(self._changed):
            entries = {name: entry for name, entry in self._entries(folder).items() if _unchanged(folder / name,
                                                                                                 entry[0])}
            self._folders[folder] = entries
            try:
                self._write(folder, entries)
            except (OSError, UnicodeError) as error:  # a cache: the job's results do not depend on it
                log.warning("image embeddings of %s not cached (%s).", folder, getattr(error, "strerror", None) or error)
        self._changed.clear()

    def path_for(self, folder: Path) -> Path:
        return self.directory / f"{_digest(str(folder))}.safetensors"

    def _entries(self, folder: Path) -> dict[str, tuple[Identity, torch.Tensor]]:
        if folder not in self._folders:
            self._folders[folder] = self._read(folder)
        return self._folders[folder]

    def _read(self, folder: Path) -> dict[str, tuple[Identity, torch.Tensor]]:
        from safetensors import safe_open

        try:
            with safe_open(str(self.path_for(folder)), framework="pt") as stored:
                metadata = stored.metadata() or {}
                if metadata.get("model") != self.model_key or metadata.get("folder") != json.dumps(str(folder)):
                    return {}
                files = json.loads(metadata["files"])
                embeddings = stored.get_tensor("embeddings")
        except Exception:  # noqa: BLE001 - missing or damaged: encoded again, never trusted
            return {}
        if embeddings.ndim != 2 or embeddings.shape[0] != len(files) or not torch.isfinite(embeddings).all():
            return {}
        return {name: ((int(size), int(mtime)), embeddings[row]) for row, (name, size, mtime) in enumerate(files)}

    def _write(self, folder: Path, entries: dict[str, tuple[Identity, torch.Tensor]]) -> None:
        from safetensors.torch import save_file

        target = self.path_for(folder)
        if not entries:
            target.unlink(missing_ok=True)
            return
        names = sorted(entries)
        files = [[name, *entries[name][0]] for name in names]
        embeddings = torch.stack([entries[name][1] for name in names]).contiguous()
        metadata = {"model": self.model_key, "folder": json.dumps(str(folder)), "files": json.dumps(files)}
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        os.close(handle)
        try:
            save_file({"embeddings": embeddings}, temporary, metadata=metadata)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)


def _unchanged(path: Path, identity: Identity) -> bool:
    try:
        return file_identity(path) == identity
    except OSError:
        return False
