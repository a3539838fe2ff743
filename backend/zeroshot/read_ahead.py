"""Loading the next items on threads while the model works on the current ones, in order, a bounded number ahead."""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")
Loaded = TypeVar("Loaded")


def read_ahead(items: Iterable[Item], load: Callable[[Item], Loaded], threads: int = 2,
               ahead: int = 16) -> Iterator[tuple[Item, Loaded]]:
    """``(item, load(item))`` in the items' order, at most ``ahead`` loads started before they are taken.

    Memory holds at most ``ahead`` loaded items. Closing the iterator early (a cancel, an
    error) drops the loads not yet started and waits for those running.
    """
    source = iter(items)
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="rsov-read")
    pending: deque = deque()
    try:
        for item in source:
            pending.append((item, pool.submit(load, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, future = pending.popleft()
            following = next(source, _END)
            if following is not _END:
                pending.append((following, pool.submit(load, following)))
            yield item, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END = object()
