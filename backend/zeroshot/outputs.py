"""Writing a job's table (CSV) or grid of polygons: staged beside the target, renamed into place at the end."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from backend.errors import Cancelled
from backend.raster.files import Staging, disk_errors, remove_debris


def write_staged(target: Path, write: Callable[[Path], None], should_stop: Callable[[], bool] | None = None) -> None:
    """``write(temporary)``, then the temporary file takes ``target``'s place; a failure or a cancel leaves
    ``target`` as it was."""
    remove_debris(target.parent)
    with Staging() as staging:
        with disk_errors(target):
            write(staging.path_for(target))
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled")
        staging.commit()


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """UTF-8 CSV with a header row; each row a dict by column."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
