"""The stage 2 training mix: the configured sources as one dataset of GeoMag examples, and its held-out set.

Each item is one source sample tokenised by ``GeoMag.prepare`` (no augmentation: a flip would
swap "left" and "right" in the prompts); a source's ``repeat`` lists it that many times in
an epoch, which weighs the mix.
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch.utils.data import Dataset

from training.common.sampling import SampleKey
from training.geomag.config import MixData
from training.geomag.generated import ShapesReferring
from training.geomag.geopixeld import GeoPixelD
from training.geomag.refsegrs import RefSegRS
from training.geomag.rrsisd import RRSISD
from training.geomag.samples import ReferringSample


class Prompted(Dataset):
    """A referring source whose expressions are put into ``template`` ("{expression}" kept as the prompt)."""

    def __init__(self, source: Sequence[ReferringSample], template: str) -> None:
        self.source, self.template = source, template

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> ReferringSample:
        sample = self.source[index]
        return ReferringSample(sample.image, self.template.format(expression=sample.prompt), sample.answer,
                               sample.masks)


def training_sources(data: MixData, answer: str, seed: int) -> list[tuple[Sequence[ReferringSample], int]]:
    """(source, repeat) for every configured source, in the order rrsisd, refsegrs, geopixeld, generated."""
    sources: list[tuple[Sequence[ReferringSample], int]] = []
    if data.rrsisd:
        sources.append((Prompted(RRSISD(data.rrsisd, "train", answer), data.prompt_template), data.rrsisd_repeat))
    if data.refsegrs:
        sources.append((Prompted(RefSegRS(data.refsegrs, "train", answer), data.prompt_template),
                        data.refsegrs_repeat))
    if data.geopixeld:
        sources.append((GeoPixelD(data.geopixeld, data.geopixeld_image_root), data.geopixeld_repeat))
    if data.generated:
        sources.append((Prompted(ShapesReferring(data.generated, data.generated_size, seed, answer),
                                 data.prompt_template), data.generated_repeat))
    return sources


def validation_source(data: MixData, answer: str, seed: int) -> Sequence[ReferringSample] | None:
    """The held-out referring samples (``data.val``), or None."""
    if data.val == "rrsisd":
        source = RRSISD(data.rrsisd or "", data.val_split, answer)
    elif data.val == "refsegrs":
        source = RefSegRS(data.refsegrs or "", data.val_split, answer)
    elif data.val == "generated":
        source = ShapesReferring(data.val_generated, data.generated_size, seed + 1_000_003, answer)
    else:
        return None
    return Prompted(source, data.prompt_template)


class MixedExamples(Dataset):
    """The sources (each listed ``repeat`` times) as GeoMag examples; ``collate`` makes the model's Batch."""

    def __init__(self, sources: list[tuple[Sequence[ReferringSample], int]], prepare: Callable, collate: Callable):
        self.sources, self.prepare, self.collate = sources, prepare, collate
        self.index = [(number, item) for number, (source, repeat) in enumerate(sources)
                      for _ in range(repeat) for item in range(len(source))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: SampleKey | int):
        number, item = self.index[key.index if isinstance(key, SampleKey) else int(key)]
        sample = self.sources[number][0][item]
        return self.prepare(sample.image, sample.prompt, sample.answer, sample.masks)
