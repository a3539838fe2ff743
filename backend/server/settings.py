"""How a service is set up: its folder, its token, the folders it may write to and its limits."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8765
DEFAULT_MAX_UPLOAD_MB = 8192
DEFAULT_MAX_POLYGONS = 5000  # polygons sent inline as GeoJSON with a result; beyond, only the file


@dataclass(frozen=True)
class ServiceSettings:
    home: Path  # RSOV_HOME: job records, uploads, the token, cached weights
    token: str
    output_roots: tuple[Path, ...] = ()  # empty: each job's input folder and ``home``
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20
    max_polygons: int = DEFAULT_MAX_POLYGONS
    model_capacity: int = 2

    @property
    def state_folder(self) -> Path:
        return self.home / "server"

    @property
    def database(self) -> Path:
        return self.state_folder / "jobs.sqlite"

    @property
    def uploads(self) -> Path:
        return self.home / "uploads"

    @property
    def token_file(self) -> Path:
        return token_file(self.home)


def token_file(home: Path) -> Path:
    return home / "server" / "token"


def load_token(home: Path, given: str | None = None) -> str:
    """``given``, else ``$RSOV_TOKEN``, else the token file, made at first start readable by the user only."""
    token = given or os.environ.get("RSOV_TOKEN")
    if token:
        return token
    path = token_file(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # a copied or restored file may have lost its mode
        token = path.read_text().strip()
        if token:
            return token
        path.unlink()
        return load_token(home)
    token = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token
