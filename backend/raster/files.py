"""Files on disk: opening rasters, staging outputs beside their targets, and cleaning up after dead runs.

Everything a run writes goes first into a hidden scratch folder beside each target,
``.rsov-<host>-<pid>-<random>``; the finished files are renamed onto their targets together
at the end. A run that is killed outright (``kill -9``, power loss) leaves its scratch
folder behind: the next run, and the service at start, remove those whose process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
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
LOCK_NAME = "run.lock"
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml")
_SCRATCH_NAME = re.compile(r"^\.rsov-(?P<host>.+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def open_raster(path: str | Path, mode: str = "r", **profile):
    """rasterio.open without the warning for images that carry no georeferencing (plain images are allowed)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(_FOLDED_URL.sub(r"\1//", str(path)) if isinstance(path, Path) else path, mode, **profile)


# a /vsicurl/ path held as a Path: pathlib folds the URL's "//" (https:/host/...), which GDAL reads only partly
_FOLDED_URL = re.compile(r"^(/vsicurl(?:_streaming)?/[A-Za-z][A-Za-z0-9+.-]*:)/(?!/)")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def file_parts(path: Path) -> list[Path]:
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
    Each scratch folder holds a lock file, locked for as long as the run lives; that is how
    ``remove_debris`` tells a dead run's folder from a live one (or from a user's folder).
    """

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}
        self._locks: list[int] = []
        self._targets: list[tuple[Path, Path]] = []
        self._made: list[Path] = []  # output folders this run created, deepest first
        self._committed = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *_) -> None:
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        for descriptor in self._locks:
            os.close(descriptor)
        if not self._committed:  # a cancelled or failed run leaves no empty folder behind either
            for folder in self._made:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def scratch(self, folder: Path) -> Path:
        """This run's scratch folder inside ``folder`` (made on first use)."""
        folder = Path(folder) if str(folder) else Path(".")
        key = folder.resolve()
        if key not in self._folders:
            self._make_folders(folder)
            with disk_errors(folder):
                scratch = Path(tempfile.mkdtemp(dir=folder, prefix=f"{SCRATCH_PREFIX}{_host()}-{os.getpid()}-"))
                descriptor = os.open(scratch / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._locks.append(descriptor)
            self._folders[key] = scratch
        return self._folders[key]

    def _make_folders(self, folder: Path) -> None:
        """``folder`` and its missing parents, one level at a time, remembering those this run made."""
        for level in reversed([folder, *folder.parents]):  # as written: "new/../keep" makes "new" only
            if level.is_dir():
                continue
            try:
                level.mkdir()
            except FileExistsError:  # made by someone else meanwhile: not ours to remove
                continue
            self._made.append(level)
        self._made.sort(key=lambda made: len(made.parts), reverse=True)  # deepest first

    def path_for(self, target: Path) -> Path:
        """Where to write ``target``'s contents; it takes the target's place at ``commit()``."""
        target = Path(target)
        temporary = self.scratch(target.parent) / f"output-{len(self._targets)}{target.suffix}"
        self._targets.append((temporary, target))
        return temporary

    def commit(self) -> None:
        """Rename every staged file onto its target (a shapefile's sidecars with it).

        The targets' current files are first moved aside into the scratch folder; if any rename
        fails, every target gets its old files back before the error goes on.
        """
        moves = []
        for index, (temporary, target) in enumerate(self._targets):
            if not temporary.exists() and temporary.with_suffix(temporary.suffix.lower()).exists():
                temporary = temporary.with_suffix(temporary.suffix.lower())  # GDAL wrote X.SHP as X.shp
            parts = [(new, old, temporary.parent / f"previous-{index}-{part}")
                     for part, (new, old) in enumerate(zip(file_parts(temporary), file_parts(target)))]
            moves.extend(reversed(parts))  # a shapefile's .shp last
        done: list[tuple[Path, Path, Path]] = []
        try:
            for new, old, aside in moves:
                if old.is_file():
                    os.replace(old, aside)
                done.append((new, old, aside))
                if new.exists():
                    os.replace(new, old)
        except BaseException:
            for new, old, aside in reversed(done):
                if aside.exists():
                    os.replace(aside, old)
                elif old.exists() and not new.exists():
                    old.unlink()  # a file that did not exist before this commit
            raise
        self._committed = True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _abandoned(folder: Path) -> bool:
    """True when the run that made ``folder`` holds its lock no more (it is gone, whatever its PID namespace)."""
    lock = folder / LOCK_NAME
    if not lock.is_file():
        return False  # not a folder a run made: leave it alone
    try:
        descriptor = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


def remove_debris(folder: Path) -> list[Path]:
    """Remove the scratch folders in ``folder`` left by runs of this host that are gone."""
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
        # a folder with our own PID is a dead run's when its lock is free (a service restarted as PID 1 in a
        # container); another live PID may be a run between making its folder and locking it: left alone
        if (pid == os.getpid() or not _alive(pid)) and _abandoned(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


LOW_SPACE_BYTES = 1 << 20  # an error with less than this free on the target's disk is a full disk


def _free_bytes(path: Path) -> int | None:
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return usage.free if usage.total > 0 else None  # some FUSE mounts report no sizes at all


def _no_space(target: Path, detail: str = "") -> UserInputError:
    return UserInputError(f"no space left on device writing {target}{detail}; free some space or write the outputs "
                          "to another disk (nothing was replaced).")


def _is_disk_full(error: BaseException, target: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    if "no space left on device" in text or "disk quota exceeded" in text:
        return True
    if not isinstance(error, OSError) and not type(error).__module__.startswith("rasterio"):
        return False
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
        raise _no_space(target) from error
