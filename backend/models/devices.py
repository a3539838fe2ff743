"""Compute devices: names to torch devices, autocast precision, free memory and running out of it."""
from __future__ import annotations

import functools
import gc
import logging
import os

import torch

from backend.errors import UserInputError

OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def resolve_device(name: str) -> torch.device:
    """The device by name, a GPU always with its index (so one GPU is one cache key)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError("{device} cuda was asked for but no CUDA GPU is visible; use cpu or auto.",
                                 "device")
        index = int(name.partition(":")[2] or torch.cuda.current_device())
        if index >= torch.cuda.device_count():
            raise UserInputError(f"{{device}} {name} does not exist: this machine has {torch.cuda.device_count()} "
                                 "GPU(s), cuda:0 and up.", "device")
        return torch.device("cuda", index)
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: None (fp32) on CPU unless asked; fp16 on CUDA by default."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else None
    if device.type == "cpu" and name == "fp16":
        raise UserInputError("{precision} fp16 is not supported on the CPU; use fp32 or bf16.", "precision")
    if device.type == "cpu" and name == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        _warn_emulated_bf16()
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


@functools.lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    logging.getLogger("rsov").warning("this CPU has no bfloat16 instructions (AVX512-BF16 or AMX): bf16 is "
                                      "emulated and slower than fp32 here.")


def free_memory_text(device: torch.device) -> str:
    """" (3.1 GiB free of 79.1 GiB)" for a GPU, "" otherwise: for sentences about memory."""
    if device.type != "cuda":
        return ""
    free, total = torch.cuda.mem_get_info(device)
    return f" ({free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB)"


def release_memory() -> None:
    """Give memory held by dropped tensors back to the device."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe_devices(active: torch.device | None = None) -> list[dict]:
    """The CPU and each visible GPU with its memory; free GPU memory only for ``active``.

    Asking a GPU for its free memory starts a CUDA context on it (hundreds of MB), so only
    the device jobs run on, which has one anyway, is asked.
    """
    devices = [{"name": "cpu", "kind": "cpu", "description": f"{os.cpu_count()} CPU cores",
                "total_bytes": _physical_memory(), "free_bytes": _available_memory()}]
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        properties = torch.cuda.get_device_properties(index)
        free = torch.cuda.mem_get_info(index)[0] if active == torch.device("cuda", index) else None
        devices.append({"name": f"cuda:{index}", "kind": "cuda", "description": properties.name,
                        "total_bytes": properties.total_memory, "free_bytes": free})
    return devices


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
