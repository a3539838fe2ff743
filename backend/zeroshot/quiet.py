"""Library loggers (GDAL through rasterio, pyogrio) kept to warnings while a job reads or writes:
every problem gets its own sentence from the job, and 'Created 9 records' is no news."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator


@contextlib.contextmanager
def libraries_quiet(*names: str) -> Iterator[None]:
    """The loggers ``names`` (default rasterio and pyogrio) show warnings and errors only, inside."""
    loggers = [logging.getLogger(name) for name in names or ("rasterio", "pyogrio")]
    levels = [logger.level for logger in loggers]
    for logger, level in zip(loggers, levels):
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
