"""Files on disk: opening rasters, staging outputs beside their targets, and cleaning up after dead runs.

Everything a run writes goes first into a hidden scratch folder beside each target,
``.rsov-<host>-<pid>-<random>``; the finished files are renamed onto their targets together
at the end. A run that is killed outright (``kill -9``, power loss) leaves its scratch
folder behind: the next run, and the service at start, remove those whose process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from backend.errors import UserInputError

SCRATCH_PREFIX = ".rsov-"
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix")
_SCRATCH_NAME = re.compile(r"^\.rsov-(?P<host>.+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def open_raster(path: str | Path, mode: str = "r", **profile):
    """rasterio.open without the warning for images that carry no georeferencing (plain images are allowed)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _parts(path: Path) -> list[Path]:
    """A file and, for a shapefile, its sidecar files."""
    if path.suffix.lower() != ".shp":
        return [path]
    return [path, *(path.with_suffix(suffix) for suffix in SHAPEFILE_SIDECARS)]


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file (or would, once created)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.expanduser().resolve() == b.expanduser().resolve()


class Staging:
    """Temporary files beside their targets, all renamed into place by ``commit()``.

    Used as a context manager: leaving it (after a commit, an error or a cancel) removes
    every scratch folder it made, so nothing half-written is ever left beside a target.
    """

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}
        self._targets: list[tuple[Path, Path]] = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *_) -> None:
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)

    def scratch(self, folder: Path) -> Path:
        """This run's scratch folder inside ``folder`` (made on first use)."""
        folder = Path(folder) if str(folder) else Path(".")
        key = folder.resolve()
        if key not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            with disk_errors(folder):
                self._folders[key] = Path(tempfile.mkdtemp(dir=folder, prefix=f"{SCRATCH_PREFIX}{_host()}-{os.getpid()}-"))
        return self._folders[key]

    def path_for(self, target: Path) -> Path:
        """Where to write ``target``'s contents; it takes the target's place at ``commit()``."""
        target = Path(target)
        temporary = self.scratch(target.parent) / f"output-{len(self._targets)}{target.suffix}"
        self._targets.append((temporary, target))
        return temporary

    def commit(self) -> None:
        """Rename every staged file onto its target (a shapefile's sidecars with it, its .shp last)."""
        for temporary, target in self._targets:
            pairs = list(zip(_parts(temporary), _parts(target)))
            if not temporary.exists() and temporary.with_suffix(temporary.suffix.lower()).exists():
                pairs[0] = (temporary.with_suffix(temporary.suffix.lower()), target)  # GDAL wrote X.SHP as X.shp
            for new, old in pairs[1:]:
                if not new.exists():
                    old.unlink(missing_ok=True)  # a stale sidecar of the shapefile being replaced
            for new, old in reversed(pairs):
                if new.exists():
                    os.replace(new, old)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_debris(folder: Path) -> list[Path]:
    """Remove the scratch folders in ``folder`` left by runs of this host whose process is gone."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _SCRATCH_NAME.match(entry.name)
        if match is None or match["host"] != _host() or not entry.is_dir():
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


LOW_SPACE_BYTES = 1 << 20  # an error with less than this free on the target's disk is a full disk


def _free_bytes(path: Path) -> int | None:
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _no_space(target: Path, detail: str = "") -> UserInputError:
    return UserInputError(f"no space left on device writing {target}{detail}; free some space or write the outputs "
                          "to another disk (nothing was replaced).")


def _is_disk_full(error: BaseException, target: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    if "no space left on device" in text or "disk quota exceeded" in text:
        return True
    free = _free_bytes(target)  # GDAL often reports a full disk as a later, unrelated-looking failure
    return free is not None and free < LOW_SPACE_BYTES


def ensure_free_space(target: Path, needed: int) -> None:
    """Refuse to start writing ``target`` when its disk has less than ``needed`` bytes free."""
    free = _free_bytes(target)
    if free is not None and free < needed:
        raise _no_space(target, f" (about {needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free)")


@contextlib.contextmanager
def disk_errors(target: Path) -> Iterator[None]:
    """Turn 'no space left on device' from Python or GDAL into one sentence naming ``target``."""
    try:
        yield
    except UserInputError:
        raise
    except Exception as error:  # noqa: BLE001 - GDAL reports a full disk in several exception types
        if not _is_disk_full(error, target):
            raise
        raise _no_space(target) from None
