"""Placeholder: filled in by the data set work of issue #11."""
from __future__ import annotations

from backend.eval.datasets.base import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
