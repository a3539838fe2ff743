"""Loaded models kept between jobs: a small least-recently-used cache a long-running service holds.

The key is what decides the loaded weights (files, activation, device); everything a job
may change cheaply (attention, thresholds, classes) is applied on top of a cached model.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

DEFAULT_CAPACITY = 2  # e.g. an optical and a SAR model; each ViT-B with SimFeatUp is ~0.6 GB


class ModelCache:
    """Up to ``capacity`` loaded models by key; ``loads`` counts the loads it has done."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(1, capacity)
        self.loads = 0
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The model under ``key``, loading it with ``load()`` the first time."""
        with self._lock:  # one load at a time: two jobs asking for one model load it once, and GPU memory
            if key in self._items:  # never holds two models being loaded
                self._items.move_to_end(key)
                return self._items[key]
            value = load()  # a failed load leaves the resident models as they were
            self.loads += 1
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return value

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_shared = ModelCache()


def shared_cache() -> ModelCache:
    """The process's cache: every job run in this process without a cache of its own uses it."""
    return _shared
