"""Loaded models kept between jobs: a small least-recently-used cache a long-running service holds.

The key is what decides the loaded weights (files, activation, device); everything a job
may change cheaply (attention, thresholds, classes) is applied on top of a cached model.
Beyond ``capacity`` models, or when a load runs out of device memory, the least recently
used model is dropped.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

from backend.errors import DeviceMemoryError

_MISSING = object()
DEFAULT_CAPACITY = 2  # e.g. an optical and a SAR model; each ViT-B with SimFeatUp is ~0.6 GB


class ModelCache:
    """Up to ``capacity`` loaded models by key; ``loads`` counts the loads it has done."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(1, capacity)
        self.loads = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._labels: dict[Hashable, dict] = {}
        self._lock = threading.Lock()  # guards the table; held for moments only
        self._loading = threading.Lock()  # one load at a time: GPU memory never holds two models being loaded

    def get(self, key: Hashable, load: Callable[[], Any], label: dict | None = None) -> Any:
        """The model under ``key``, loading it with ``load()`` the first time; ``label`` describes it."""
        from backend.models.devices import OUT_OF_MEMORY

        resident = self._resident(key)  # at once, even while another model loads
        if resident is not _MISSING:
            return resident
        with self._loading:  # two jobs asking for one model load it once
            resident = self._resident(key)
            if resident is not _MISSING:
                return resident
            while True:
                try:
                    value = load()  # a failed load leaves the resident models as they were
                    break
                except OUT_OF_MEMORY:
                    if not self.keys():
                        raise DeviceMemoryError("the model does not fit in the device's free memory; use "
                                                "{device} cpu, or free the GPU from other programs.",
                                                "device") from None
                self.shrink_to(len(self.keys()) - 1)  # outside the handler: the failed load's tensors are gone
            with self._lock:
                self.loads += 1
                self._items[key] = value
                self._labels[key] = label or {"key": repr(key)}
            self.shrink_to(self.capacity)
            return value

    def _resident(self, key: Hashable) -> Any:
        with self._lock:
            if key not in self._items:
                return _MISSING
            self._items.move_to_end(key)
            return self._items[key]

    def shrink_to(self, count: int) -> None:
        """Drop the least recently used models until at most ``count`` remain, and free their memory."""
        from backend.models.devices import release_memory

        with self._lock:
            dropped = 0
            while len(self._items) > max(0, count):
                key, _ = self._items.popitem(last=False)
                self._labels.pop(key, None)
                dropped += 1
        if dropped:
            release_memory()

    def describe(self) -> list[dict]:
        """The labels of the resident models, least recently used first."""
        with self._lock:
            return [dict(self._labels[key]) for key in self._items]

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)


_shared = ModelCache()


def shared_cache() -> ModelCache:
    """The process's cache: every job run in this process without a cache of its own uses it."""
    return _shared
