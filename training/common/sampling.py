"""Batches in a seeded order per epoch that a resumed run can pick up mid-epoch.

The order of an epoch depends only on (seed, epoch), and each item comes with its
``SampleKey`` so a dataset can draw its augmentation from (seed, epoch, index): a run
resumed at batch b of epoch e sees exactly the batches an uninterrupted run would, with
any number of workers.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training.common.seeding import derived_seed, seed_worker


class SampleKey(NamedTuple):
    """What a training dataset is indexed with: the item and the epoch it is drawn in."""

    index: int
    epoch: int


class EpochSampler(Sampler[SampleKey]):
    """The full batches of one epoch in a seeded random order, from batch ``start_batch`` on."""

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start_batch: int = 0) -> None:
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, epoch
        self.start = start_batch * batch_size
        self.stop = (size // batch_size) * batch_size  # the incomplete last batch is dropped

    def __iter__(self) -> Iterator[SampleKey]:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator)[self.start:self.stop]
        return (SampleKey(int(index), self.epoch) for index in order)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def epoch_loader(dataset: Dataset, batch_size: int, seed: int, epoch: int, start_batch: int = 0,
                 num_workers: int = 0, pin_memory: bool = False,
                 collate_fn: Callable[[list], Any] | None = None) -> DataLoader:
    """A DataLoader over epoch ``epoch`` from batch ``start_batch``, seeded workers included.

    ``collate_fn`` batches the items (torch's default stacks tensors of one shape).
    """
    sampler = EpochSampler(len(dataset), batch_size, seed, epoch, start_batch)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=num_workers,
                      pin_memory=pin_memory, worker_init_fn=seed_worker, collate_fn=collate_fn,
                      generator=torch.Generator().manual_seed(derived_seed(seed, epoch, 1)))
