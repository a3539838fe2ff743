"""A batch's manifest: one row per scene (status, seconds, classes found, outputs, error), saved after each scene.

The file is replaced whole (a temporary file, then ``os.replace``) after every scene, so a
batch that is killed loses no finished scene. A re-run skips the scenes whose row says done
with the same settings (``BatchJob.settings``) and whose outputs are all there; failed and
missing scenes, and scenes done with other classes or options, run again; rows of scenes no
longer named by the inputs are kept.
"""
from __future__ import annotations

import contextlib
import csv
import os
from datetime import datetime, timezone
from pathlib import Path

from backend.batch.inputs import Scene
from backend.errors import UserInputError, first_line

COLUMNS = ("scene", "source", "status", "seconds", "classes", "polygons", "outputs", "error", "finished", "settings")
NEWER = ("settings",)  # columns that manifests of earlier versions lack: their rows are not done
FORMATS = ("csv", "parquet")
DONE, FAILED = "done", "failed"
SEPARATOR = "; "


def scene_row(scene: Scene, seconds: float, result=None, error: str = "") -> dict:
    """A scene's row: done with its ``engine.SegmentResult``, or failed with the one-sentence ``error``."""
    row = {"scene": scene.name, "source": scene.source, "status": DONE if result is not None else FAILED,
           "seconds": round(seconds, 3), "classes": "", "polygons": None, "outputs": "", "error": error,
           "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "settings": ""}
    if result is not None:
        found = [name for name, pixels in zip(result.class_names, result.pixel_counts) if pixels]
        row.update(classes=SEPARATOR.join(found), polygons=result.polygon_count,
                   outputs=SEPARATOR.join(path.name for path in result.outputs))
    return row


def import_pyarrow():
    """``pyarrow.parquet``, or one sentence on how to install it."""
    try:
        import pyarrow.parquet
    except ImportError as error:
        raise UserInputError(f"{{manifest_format}} parquet needs pyarrow, which cannot be imported ({error}); "
                             "install it with: pip install 'rs-openvocab[cluster]', or give csv.",
                             "manifest_format") from None
    return pyarrow.parquet


class Manifest:
    """The rows of ``path`` (CSV or Parquet, by its suffix) by scene name, in file order."""

    def __init__(self, path: Path, rows: dict[str, dict] | None = None) -> None:
        self.path = path
        self.rows: dict[str, dict] = rows or {}

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at ``path``, empty if there is none yet."""
        if not path.exists():
            return cls(path)
        try:
            rows = [_typed(row) for row in (_read_parquet(path) if path.suffix == ".parquet" else _read_csv(path))]
        except (OSError, ValueError, csv.Error) as error:
            raise UserInputError(f"{{out_dir}} holds a manifest {path} that cannot be read ({error}); move it "
                                 "away to start the batch again.", "out_dir") from None
        return cls(path, {row["scene"]: row for row in rows})

    def finished(self, scene: Scene, outputs: list[Path], settings: str) -> bool:
        """True when ``scene`` (from the same source) is done with ``settings`` and each of ``outputs`` was
        written and is there."""
        row = self.rows.get(scene.name)
        if row is None or row["status"] != DONE or row["source"] != scene.source or row["settings"] != settings:
            return False
        written = set(row["outputs"].split(SEPARATOR))
        return all(path.name in written and path.is_file() for path in outputs)

    def record(self, row: dict) -> None:
        """Add or replace a scene's row and save the file."""
        self.rows[row["scene"]] = row
        self.save()

    def order(self, names: list[str]) -> None:
        """Rows of ``names`` in that order first (the batch's input order), then the others as they were."""
        first = [name for name in names if name in self.rows]
        rest = [name for name in self.rows if name not in set(first)]
        self.rows = {name: self.rows[name] for name in first + rest}

    def save(self) -> None:
        """Replace the file with the rows; a disk full or a folder gone is one sentence naming ``out_dir``."""
        temporary = self.path.with_name(f".{self.path.name}.part")  # hidden: never taken for a scene
        rows = list(self.rows.values())
        try:
            if self.path.suffix == ".parquet":
                _write_parquet(temporary, rows)
            else:
                with open(temporary, "w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
                    writer.writeheader()
                    writer.writerows(rows)
            os.replace(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise UserInputError(f"{{out_dir}} {self.path.parent}: the manifest {self.path.name} cannot be saved "
                                 f"({error.strerror or first_line(error)}); free some space or check the folder, "
                                 "then run the batch again (finished scenes are kept).", "out_dir") from None


def _typed(row: dict) -> dict:
    """A row read back: text columns as text, seconds a number, polygons a whole number or None."""
    missing = [name for name in COLUMNS if name not in row and name not in NEWER]
    if missing:
        raise ValueError(f"no column {', '.join(missing)}")
    typed = {name: "" if row.get(name) is None else str(row[name]) for name in COLUMNS}
    typed["seconds"] = float(row["seconds"] or 0.0)
    typed["polygons"] = None if row["polygons"] in (None, "") else int(float(row["polygons"]))
    return typed


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_parquet(path: Path) -> list[dict]:
    parquet = import_pyarrow()
    try:
        return parquet.read_table(path).to_pylist()
    except Exception as error:  # noqa: BLE001 - pyarrow's own error kinds: a file that is not Parquet
        raise ValueError(first_line(error)) from None


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow

    parquet = import_pyarrow()
    types = {"seconds": pyarrow.float64(), "polygons": pyarrow.int64()}
    schema = pyarrow.schema([(name, types.get(name, pyarrow.string())) for name in COLUMNS])
    parquet.write_table(pyarrow.Table.from_pylist(rows, schema=schema), path)
