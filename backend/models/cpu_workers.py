"""Independent pieces of CPU work on worker threads, one core each.

PyTorch splits each operation over all cores and waits for the slowest at its end. On a
machine busy with other work (QGIS beside the backend) one descheduled core stalls every
operation. Giving each worker thread its own share of the windows and one core instead
lets a busy core slow its own windows only (bench/busy_machine.py), and a window's
result no longer depends on how many cores there are.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Callable, Sequence, TypeVar

import torch

Part = TypeVar("Part")
Result = TypeVar("Result")


def on_cores(function: Callable[[Part], Result], parts: Sequence[Part]) -> list[Result]:
    """``[function(part) for part in parts]``, on ``torch.get_num_threads()`` workers of one core each.

    The caller's grad mode and CPU autocast, which PyTorch keeps per thread, are carried
    into the workers. With one thread configured it runs here, in order.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        return [function(part) for part in parts]
    grad = torch.is_grad_enabled()
    autocast = torch.is_autocast_enabled("cpu")
    dtype = torch.get_autocast_dtype("cpu")

    def run(part: Part) -> Result:
        torch.set_num_threads(1)  # also this thread's own MKL setting
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=dtype, enabled=autocast):
            return function(part)

    try:
        return list(_pool(threads).map(run, parts))
    finally:
        torch.set_num_threads(threads)  # the workers set it to 1 for the whole process


@lru_cache(maxsize=4)
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="rsov-cpu")
