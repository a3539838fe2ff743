"""The training loop every trainer shares: seeded epochs, AdamW, logs, resumable ``last.pt``, Ctrl-C.

A trainer supplies a ``TrainingTask`` (what trains and how its losses are computed) and a
dataset indexed by ``SampleKey``; ``run_training`` does the rest. ``last.pt`` holds the
task's module, the optimiser, the step, the epoch and the position in it, the elapsed
time and the RNG states; resuming from it reaches the same weights as a run never stopped.
"""
from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from backend.errors import UserInputError
from backend.models.devices import resolve_device
from training.common.checkpoint import atomic_save, load_training_state
from training.common.config import as_dict, dump_config, require
from training.common.metrics import MetricLog
from training.common.optim import OptimConfig, build_adamw, learning_rate, set_learning_rate
from training.common.sampling import epoch_loader
from training.common.seeding import restore_rng_state, rng_state, seed_everything
from training.common.stopping import StopRequests

log = logging.getLogger("rsov.training")
STATE_FILE = "last.pt"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section: how long, in what batches, where, and what is written when."""

    out_dir: str = "runs/train"
    epochs: int = 1
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    num_workers: int = 4
    max_steps: int | None = None
    log_every: int = 10
    checkpoint_every: int = 500
    export_every: int | None = None

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", "must be at least 1")
        require(self.batch_size >= 1, "batch_size", "must be at least 1")
        require(self.seed >= 0, "seed", "must be 0 or more")
        require(DEVICE_PATTERN.fullmatch(self.device) is not None, "device", "must be auto, cpu, cuda or cuda:N")
        require(self.num_workers >= 0, "num_workers", "must be 0 or more")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be at least 1, or null")
        require(self.log_every >= 1, "log_every", "must be at least 1")
        require(self.checkpoint_every >= 1, "checkpoint_every", "must be at least 1")
        require(self.export_every is None or self.export_every >= 1, "export_every", "must be at least 1, or null")


class TrainingTask(Protocol):
    """What a trainer brings to the loop."""

    module: nn.Module  # everything that trains; its state_dict is what last.pt keeps

    def losses(self, batch: Any) -> Mapping[str, torch.Tensor]:
        """The loss terms of a batch (already on the device) and their weighted sum as ``total``."""

    def scalars(self) -> Mapping[str, float]:
        """Values logged beside the losses (e.g. ``temperature``)."""

    def after_step(self) -> None:
        """Called after each optimiser step (e.g. to clamp a temperature)."""

    def end_of_epoch(self, epoch: int) -> Mapping[str, float]:
        """Validation values after epoch ``epoch`` (0-based); empty for none."""

    def export(self, out_dir: Path, epoch: int) -> Path:
        """Write the model in the format the backend loads; its path."""


@dataclass
class Progress:
    """Where a run is: optimiser steps taken, the epoch (0-based), batches done in it, seconds trained."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class LoopResult:
    """How a run ended: its progress, whether Ctrl-C stopped it, and the exported checkpoint."""

    step: int
    epoch: int
    interrupted: bool
    out_dir: Path
    exported: Path | None = None
    last_losses: dict[str, float] = field(default_factory=dict)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: only on CUDA (on the CPU training runs in fp32 whatever the config says)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a NamedTuple
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def train_from_config(config: Any, build_task: Callable[[Any, torch.device], tuple[TrainingTask, Dataset]],
                      resume: bool = False, on_step: Callable[[int], None] | None = None) -> LoopResult:
    """What every trainer's ``train`` does: seed, build the task on the device, record the config, run the loop.

    ``config`` has ``train`` (TrainConfig) and ``optim`` (OptimConfig) sections.
    """
    device = resolve_device(config.train.device)
    seed_everything(config.train.seed)
    task, dataset = build_task(config, device)
    out_dir = Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume and not (out_dir / STATE_FILE).exists():  # an existing run is refused by the loop, untouched
        dump_config(config, out_dir / "config.yaml")
    if config.train.precision != "fp32" and device.type != "cuda":
        log.info("precision %s applies on CUDA only; training on %s in fp32.", config.train.precision, device)
    return run_training(task, dataset, config.train, config.optim, device, resume=resume, record=as_dict(config),
                        on_step=on_step)


def run_training(task: TrainingTask, dataset: Dataset, train: TrainConfig, optim: OptimConfig, device: torch.device,
                 resume: bool = False, record: dict | None = None,
                 on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Train ``task`` on ``dataset`` as ``train`` and ``optim`` say; ``record`` (the config) goes into last.pt.

    A dataset with a ``collate(items)`` method batches its own items (e.g. token sequences of many lengths).

    ``on_step(step)`` is called after every optimiser step (tests use it to stop a run).
    """
    out_dir = Path(train.out_dir)
    steps_per_epoch = len(dataset) // train.batch_size
    if steps_per_epoch == 0:
        raise UserInputError(f"the training set has {len(dataset)} items, fewer than one batch of "
                             f"{train.batch_size}; lower train.batch_size or add data.")
    total_steps = train.epochs * steps_per_epoch
    task.module.to(device)
    optimizer = build_adamw(task.module, optim)
    dtype = autocast_dtype(train.precision, device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    progress = _start(task.module, optimizer, scaler, out_dir, resume, train.seed, steps_per_epoch)
    runner = _Runner(task, optimizer, scaler, optim, dtype, device, total_steps)
    stop_at = min(total_steps, train.max_steps or total_steps)
    began, seconds_before = time.monotonic(), progress.seconds
    losses: dict[str, float] = {}

    def save() -> None:
        progress.seconds = seconds_before + time.monotonic() - began
        _save_state(out_dir / STATE_FILE, task.module, optimizer, scaler, progress, steps_per_epoch, record)

    from tqdm import tqdm

    metrics = MetricLog(out_dir, resume_step=progress.step)
    bar = tqdm(total=total_steps, initial=progress.step, desc=out_dir.name, unit="step", dynamic_ncols=True,
               disable=None)
    try:
        with StopRequests() as stop:
            while progress.step < stop_at and not stop.requested:
                loader = epoch_loader(dataset, train.batch_size, train.seed, progress.epoch, progress.batch,
                                      train.num_workers, pin_memory=device.type == "cuda",
                                      collate_fn=getattr(dataset, "collate", None))
                for batch in loader:
                    losses = runner.step(to_device(batch, device), progress.step)
                    progress.step += 1
                    progress.batch += 1
                    bar.update(1)
                    bar.set_postfix({key: f"{value:.4f}" for key, value in losses.items()}, refresh=False)
                    if progress.step % train.log_every == 0 or progress.step == stop_at:
                        seconds = seconds_before + time.monotonic() - began
                        metrics.log_step({"step": progress.step, "epoch": progress.epoch + 1, **losses,
                                          "lr": runner.rate, **task.scalars(), "seconds": round(seconds, 3)})
                    if progress.batch == steps_per_epoch:
                        _finish_epoch(task, metrics, progress)
                    if train.export_every and progress.step % train.export_every == 0:
                        task.export(out_dir, progress.epoch)
                    if progress.step % train.checkpoint_every == 0:
                        save()
                    if on_step is not None:
                        on_step(progress.step)
                    if stop.requested or progress.step >= stop_at:
                        break
            interrupted = stop.requested and progress.step < stop_at
    except UserInputError:
        if progress.step:
            save()  # errors come between steps: once the input is fixed, --resume continues from here
        raise
    finally:
        bar.close()
        metrics.close()
    save()
    exported = None if interrupted else task.export(out_dir, progress.epoch)
    return LoopResult(progress.step, progress.epoch, interrupted, out_dir, exported, losses)


class _Runner:
    """One optimiser step: learning rate, autocast forward, (scaled) backward, clipping, step."""

    def __init__(self, task: TrainingTask, optimizer: torch.optim.Optimizer, scaler, optim: OptimConfig,
                 dtype: torch.dtype | None, device: torch.device, total_steps: int) -> None:
        self.task, self.optimizer, self.scaler, self.optim = task, optimizer, scaler, optim
        self.dtype, self.device, self.total_steps = dtype, device, total_steps
        self.rate = optim.lr

    def step(self, batch: Any, step: int) -> dict[str, float]:
        self.rate = learning_rate(step, self.total_steps, self.optim)
        set_learning_rate(self.optimizer, self.rate)
        self.task.module.train()
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            losses = dict(self.task.losses(batch))
        total = losses["total"]
        if not torch.isfinite(total.detach()):
            raise UserInputError(f"the loss became {total.item()} at step {step + 1}; lower optim.lr, "
                                 "or train in fp32 or bf16.")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
            self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            self._clip()
            self.optimizer.step()
        self.task.after_step()
        return {key: float(value.detach()) for key, value in losses.items()}

    def _clip(self) -> None:
        if self.optim.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.task.module.parameters(), self.optim.grad_clip_norm)


def _finish_epoch(task: TrainingTask, metrics: MetricLog, progress: Progress) -> None:
    values = dict(task.end_of_epoch(progress.epoch))
    if values:
        metrics.log_validation(progress.step, progress.epoch + 1, values)
        log.info("epoch %d: %s", progress.epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    progress.epoch += 1
    progress.batch = 0


def _start(module: nn.Module, optimizer: torch.optim.Optimizer, scaler, out_dir: Path, resume: bool,
           seed: int, steps_per_epoch: int) -> Progress:
    """A fresh start (seeded; refused over an earlier run) or the state of out_dir/last.pt put back."""
    path = out_dir / STATE_FILE
    if not resume:
        if path.exists():
            raise UserInputError(f"{out_dir} already holds a run ({STATE_FILE}); add --resume to continue it, "
                                 "or choose another --out-dir.")
        out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        return Progress()
    if not path.exists():
        raise UserInputError(f"--resume was given but {path} does not exist; run without --resume to start, "
                             "or give the --out-dir of the run to continue.")
    state = load_training_state(path)
    if state.get("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
        raise UserInputError(f"{path} was written with {state['steps_per_epoch']} batches an epoch, not "
                             f"{steps_per_epoch}; resume with the manifest and train.batch_size it was started with.")
    try:
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as error:
        reason = str(error).splitlines()[0][:120]
        raise UserInputError(f"{path} was written by a different model or optimiser setup ({reason}); "
                             "resume with the config it was started with.") from None
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"])
    return Progress(state["step"], state["epoch"], state["batch"], state["seconds"])


def _save_state(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scaler, progress: Progress,
                steps_per_epoch: int, record: dict | None) -> None:
    atomic_save({
        "module": module.state_dict(), "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "step": progress.step, "epoch": progress.epoch, "batch": progress.batch, "seconds": progress.seconds,
        "steps_per_epoch": steps_per_epoch, "rng": rng_state(), "config": record,
    }, path)
