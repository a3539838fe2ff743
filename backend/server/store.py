"""Job records in SQLite: what was asked, its state, its error sentence and its result, across restarts."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
FINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
_JSON_COLUMNS = ("request", "error_fields", "progress", "result", "output_folders")


@dataclass
class JobRecord:
    id: str
    kind: str
    request: dict  # the body as submitted
    state: str = "queued"
    submitted: float = field(default_factory=time.time)  # seconds since the epoch
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    error_fields: list[str] = field(default_factory=list)
    progress: dict | None = None  # the last progress of a finished job
    result: dict | None = None
    output_folders: list[str] = field(default_factory=list)  # where its scratch folders would be

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


class JobStore:
    """One SQLite file; safe to use from the request threads and the worker at once."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        columns = ", ".join(f"{name} TEXT" if name not in ("submitted", "started", "finished") else f"{name} REAL"
                            for name in JobRecord.__dataclass_fields__ if name != "id")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, {columns})")
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (submitted)")

    def add(self, record: JobRecord) -> None:
        row = _to_row(asdict(record))
        names = ", ".join(row)
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({names}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def update(self, job_id: str, **values) -> None:
        row = _to_row(values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in row)} WHERE id = ?",
                             [*row.values(), job_id])

    def get(self, job_id: str) -> JobRecord | None:
        rows = self._select("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def recent(self, limit: int) -> list[JobRecord]:
        """The last ``limit`` jobs, newest first."""
        return self._select("ORDER BY submitted DESC, rowid DESC LIMIT ?", (limit,))

    def unfinished(self) -> list[JobRecord]:
        return self._select("WHERE state IN ('queued', 'running') ORDER BY submitted", ())

    def _select(self, clause: str, parameters: tuple) -> list[JobRecord]:
        with self._lock:
            cursor = self._db.execute(f"SELECT * FROM jobs {clause}", parameters)
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        return [JobRecord(**_from_row(dict(zip(names, row)))) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _to_row(values: dict) -> dict:
    return {name: json.dumps(value) if name in _JSON_COLUMNS else value for name, value in values.items()}


def _from_row(row: dict) -> dict:
    return {name: json.loads(value) if name in _JSON_COLUMNS and value is not None else value
            for name, value in row.items()}
