"""Rasters sent by a client on another disk: streamed to the service's disk under a size limit."""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from backend.errors import UserInputError

PARTIAL_PREFIX = ".partial-"
SUFFIXES = (".tif", ".tiff")


async def receive_upload(request: Request, folder: Path, filename: str, limit: int) -> tuple[Path, int]:
    """Write the request body to ``folder/<id>/<filename>``; the file appears only once whole and readable."""
    name = Path(filename).name
    if not re.fullmatch(r"[\w .()+-]+", name) or name.startswith(".") or not name.lower().endswith(SUFFIXES):
        raise UserInputError(f"filename {filename!r} must be a plain file name ending in .tif or .tiff; rename "
                             "the file.", "filename")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, _too_large(int(declared), limit))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # others' uploads are nobody else's business
    target = folder / uuid.uuid4().hex / name
    target.parent.mkdir(mode=0o700)
    partial = target.with_name(PARTIAL_PREFIX + name)
    size = 0
    try:
        with open(partial, "wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, _too_large(size, limit))
                handle.write(chunk)
        await run_in_threadpool(_check_geotiff, partial, name)
        os.replace(partial, target)
    except OSError as error:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise HTTPException(507, f"the upload could not be stored ({error.strerror}); free space on the service's "
                              "disk, or give the file's path on the service's machine.") from None
    except BaseException:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    return target, size


def _too_large(size: int, limit: int) -> str:
    return (f"the upload is larger than the service takes ({size / 2**20:.0f} MB > {limit / 2**20:.0f} MB); "
            "give the file's path on the service's machine instead, or start the service with a larger "
            "--max-upload-mb.")


def _check_geotiff(path: Path, name: str) -> None:
    """A GeoTIFF and nothing else: a VRT in disguise could make the service read other files or URLs."""
    from rasterio.errors import RasterioError

    from backend.raster.files import open_raster

    try:
        with open_raster(path) as raster:
            driver = raster.driver
    except RasterioError:
        driver = None
    if driver != "GTiff":
        raise UserInputError(f"the upload {name} is not a GeoTIFF; send a GeoTIFF (or a COG).", "filename")


def upload_folder(folder: Path, upload_id: str) -> Path | None:
    """The folder of upload ``upload_id``, None if there is no such upload."""
    path = folder / upload_id
    return path if re.fullmatch(r"[0-9a-f]{32}", upload_id) and path.is_dir() else None


def remove_partial_uploads(folder: Path) -> None:
    """Uploads a dead service left half-received."""
    for partial in folder.glob(f"*/{PARTIAL_PREFIX}*"):
        shutil.rmtree(partial.parent, ignore_errors=True)
