"""Partial results of one (data set, model) run, saved as it goes so an interrupted run resumes.

``state.json`` holds what decides the numbers (the fingerprint), the ids of the images
already scored and the confusion matrix over exactly those images. It is replaced
atomically, so a run killed at any moment leaves either the previous state or the new one:
resuming never counts an image twice or drops one.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend.errors import UserInputError
from backend.eval.metrics import ConfusionMatrix

SAVE_EVERY_SECONDS = 2.0


@dataclass
class RunState:
    path: Path
    fingerprint: dict
    matrix: ConfusionMatrix
    done: list[str] = field(default_factory=list)
    seconds: float = 0.0  # model and scoring time over the done images, across runs
    _saved_at: float = 0.0

    @classmethod
    def open(cls, path: Path, fingerprint: dict, num_classes: int, overwrite: bool) -> RunState:
        """The saved state if it was made with this fingerprint, else a new one (``overwrite`` discards any)."""
        fresh = cls(path, fingerprint, ConfusionMatrix(num_classes))
        if overwrite or not path.exists():
            return fresh
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return fresh  # unreadable: start again (it is rewritten whole before anything else)
        if saved.get("fingerprint") != fingerprint:
            changed = sorted(k for k in set(fingerprint) | set(saved.get("fingerprint", {}))
                             if fingerprint.get(k) != saved.get("fingerprint", {}).get(k))
            raise UserInputError(f"{path.parent} holds partial results made with other settings ({', '.join(changed)});"
                                 " give {overwrite} to start again, or another {out}.", "overwrite", "out")
        return cls(path, fingerprint, ConfusionMatrix.from_json(saved["matrix"]), list(saved["done"]),
                   float(saved.get("seconds", 0.0)))

    def add(self, sample_id: str, seconds: float) -> None:
        self.done.append(sample_id)
        self.seconds += seconds
        if time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".part")
        temporary.write_text(json.dumps({"fingerprint": self.fingerprint, "done": self.done,
                                         "seconds": self.seconds, "matrix": self.matrix.to_json()}),
                             encoding="utf-8")
        os.replace(temporary, self.path)
        self._saved_at = time.monotonic()
