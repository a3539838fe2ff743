"""Loss logs: a CSV row per logged step (``log.csv``), validation rows (``val.csv``) and TensorBoard."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from backend.errors import UserInputError


class MetricLog:
    """Writes rows to ``out_dir/log.csv``/``val.csv`` and scalars to ``out_dir/tensorboard``.

    Resumed at ``resume_step``, rows of later steps (logged after the checkpoint a killed
    run last wrote) are dropped from the CSVs and TensorBoard, so each step appears once.
    """

    def __init__(self, out_dir: Path, resume_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserInputError("TensorBoard is not installed; install the training extra: "
                                 "pip install -e '.[train]'.") from None
        self.out_dir = out_dir
        self.paths = {"train": out_dir / "log.csv", "val": out_dir / "val.csv"}
        if resume_step is not None:
            for path in self.paths.values():
                _drop_rows_after(path, resume_step)
        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"), purge_step=purge)

    def log_step(self, row: dict[str, float]) -> None:
        """One training row: ``step``, ``epoch``, the loss terms, ``total``, ``lr``, extras, ``seconds``."""
        self._append("train", row)
        step = int(row["step"])
        for key, value in row.items():
            if key not in ("step", "epoch", "seconds"):
                self.writer.add_scalar(key if key in ("lr", "temperature") else f"loss/{key}", value, step)

    def log_validation(self, step: int, epoch: int, values: dict[str, float]) -> None:
        self._append("val", {"step": step, "epoch": epoch, **values})
        for key, value in values.items():
            self.writer.add_scalar(f"val/{key}", value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()

    def _append(self, kind: str, row: dict[str, float]) -> None:
        path = self.paths[kind]
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow({key: _cell(value) for key, value in row.items()})


def _cell(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _drop_rows_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(line.split(",", 1)[0]) <= step]
    if len(kept) != len(lines):
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("".join(kept), encoding="utf-8")
        os.replace(temporary, path)
