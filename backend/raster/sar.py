"""SAR backscatter as the AlignEarth encoder saw it: one 8-bit grey image (three equal bands).

The optical/SAR pairs the encoder was distilled on were released as 8-bit single-channel
images, read as three equal channels. A SAR raster as analysts have it (power, amplitude
or dB, float32, uint16 or complex) becomes that image by:

1. intensity: power as it is, amplitude squared, 10^(dB/10), complex samples' |z|²;
2. an optional speckle filter on the intensity (``speckle.py``), block by block with a halo;
3. dB: 10·log10(intensity);
4. a stretch: the dB values clamped to a range, the scene's 2nd-98th percentiles computed
   once per raster (or a fixed range in dB from the user), scaled to 0-255.

One band (single-pol, or the co-pol band of a dual-pol file) is repeated in R, G and B.
Two bands (co-pol, cross-pol) give the dual-pol colour composite R = co-pol dB,
G = cross-pol dB, B = co − cross (their ratio in dB), each channel stretched on its own:
more information for the eye, but colours the encoder never saw in training. 8-bit SAR
(the form the paired data sets were released in) is taken as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.raster.speckle import speckle_filter

MODALITIES = ("auto", "optical", "sar")
SAR_SCALES = ("auto", "power", "amplitude", "db")
SCALE_WORDS = {"power": "linear power", "amplitude": "amplitude", "db": "dB", "8-bit": "8-bit (as it is)"}
CO_POL = ("VV", "HH")
_SAR_WORDS = re.compile(r"sentinel[-_ ]?1|\bs1[abcd]_|\bsar\b|\bslc\b|\bgrd[hmf]?\b|capella|iceye|umbra|"
                        r"terrasar|cosmo[-_ ]?skymed|radarsat|alos[-_ ]?2|palsar|gaofen[-_ ]?3|sigma0|gamma0|beta0",
                        re.IGNORECASE)
_DB_WORDS = re.compile(r"(?<![a-z])db(?![a-z])|decibel", re.IGNORECASE)
_AMPLITUDE_WORDS = re.compile(r"amplitude|(?<![a-z])amp(?![a-z])|magnitude", re.IGNORECASE)
_POWER_WORDS = re.compile(r"power|intensity|sigma0|gamma0|beta0|sigma_?nought|backscatter", re.IGNORECASE)


def polarisation(text: str | None) -> str | None:
    """The polarisation a band description or file name names (VV, VH, HH, HV), if one."""
    found = re.findall(r"(?<![A-Za-z])(VV|VH|HH|HV)(?![A-Za-z])", text or "", re.IGNORECASE)
    return found[-1].upper() if found else None


def _metadata_text(dataset, path: Path, bands: tuple[int, ...] | None = None) -> str:
    """The descriptions and metadata of ``bands`` (default all), the dataset's metadata and the
    file name, as one text."""
    bands = bands or tuple(range(1, dataset.count + 1))
    parts = [dataset.descriptions[band - 1] or "" for band in bands]
    parts += [f"{k}={v}" for band in bands for k, v in dataset.tags(band).items()]
    parts += [f"{k}={v}" for k, v in dataset.tags().items()]
    return " ".join([*parts, path.name])


@dataclass(frozen=True)
class ModalityChoice:
    modality: str  # optical or sar
    reason: str


def detect_modality(dataset, path: Path, asked: str = "auto", model_modality: str = "optical") -> ModalityChoice:
    """Optical or SAR, from the user's choice, else the file's metadata, data type and band count.

    Only a single 8-bit band is truly ambiguous (a panchromatic image, or 8-bit SAR as the
    paired data sets ship it): it follows the model's modality.
    """
    if asked != "auto":
        return ModalityChoice(asked, "as asked")
    dtype, count = dataset.dtypes[0], dataset.count
    text = _metadata_text(dataset, path)
    named = [pol for pol in (polarisation(d) for d in dataset.descriptions) if pol]
    if dtype.startswith("complex"):
        return ModalityChoice("sar", f"auto: complex {dtype} samples")
    if named:
        return ModalityChoice("sar", f"auto: bands named {', '.join(named)}")
    words = _SAR_WORDS.search(text)
    if words:
        return ModalityChoice("sar", f"auto: the metadata says {words.group(0)!r}")
    if count <= 2 and dtype != "uint8":
        return ModalityChoice("sar", f"auto: {count} {dtype} band{'s' if count > 1 else ''}, no colour")
    if count == 1 and dtype == "uint8":
        return ModalityChoice(model_modality, f"auto: one 8-bit band, like the model's {model_modality} imagery")
    return ModalityChoice("optical", f"auto: {count} {dtype} bands")


def default_sar_bands(dataset) -> tuple[int, ...]:
    """The co-pol band (VV or HH by description, else band 1): the image the encoder knows."""
    for index, description in enumerate(dataset.descriptions):
        if polarisation(description) in CO_POL:
            return (index + 1,)
    return (1,)


def detect_scale(dataset, bands: tuple[int, ...], path: Path, sample: np.ndarray,
                 asked: str = "auto") -> tuple[str, str]:
    """(scale, reason): how the values relate to backscatter, for data read as magnitudes.

    ``sample`` holds valid values of the bands (complex samples already as magnitudes).
    """
    dtype = dataset.dtypes[bands[0] - 1]
    if asked != "auto":
        return asked, "as asked"
    if dtype.startswith("complex"):
        return "amplitude", "complex samples, their magnitude"
    if dtype == "uint8":
        return "8-bit", "8-bit values, the form the paired training data came in"
    text = _metadata_text(dataset, path, bands)
    for scale, words in (("db", _DB_WORDS), ("amplitude", _AMPLITUDE_WORDS), ("power", _POWER_WORDS)):
        found = words.search(text)
        if found:
            return scale, f"the metadata says {found.group(0)!r}"
    if not np.issubdtype(np.dtype(dtype), np.floating):
        return "amplitude", f"{dtype} digital numbers of a detected product"
    if sample.size and np.percentile(sample, 1) < 0:
        return "db", "negative values"
    return "power", "non-negative floats; if they are amplitudes, say so"


def to_intensity(values: np.ndarray, scale: str) -> np.ndarray:
    """Backscatter intensity (float64) from values on ``scale`` (magnitudes for complex data)."""
    values = values.astype(np.float64)
    if scale == "amplitude":
        return values * values
    if scale == "db":
        return np.power(10.0, values / 10.0)
    return values  # power, and 8-bit values taken as they are


def to_db(intensity: np.ndarray) -> np.ndarray:
    """10·log10 of intensity; zero or negative intensity gives -inf (clamped by the stretch)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(intensity > 0, 10.0 * np.log10(np.where(intensity > 0, intensity, 1.0)), -np.inf)


@dataclass(frozen=True)
class SarConversion:
    """How one SAR raster becomes the encoder's 8-bit image; settled once per raster."""

    bands: tuple[int, ...]  # (co-pol,) or (co-pol, cross-pol), 1-based
    names: tuple[str, ...]  # what each band is called (its polarisation, else "band N")
    scale: str  # power, amplitude, db or 8-bit
    scale_reason: str
    speckle: str = "none"
    window: int = 7
    looks: float = 1.0
    looks_reason: str = ""
    stretch: np.ndarray | None = None  # (3, 2) low/high per channel (dB; 8-bit values); None: as is

    @property
    def halo(self) -> int:
        """Pixels of context each side a block needs for the filter to see what the whole image gives."""
        return self.window // 2 if self.speckle != "none" else 0

    def channels(self, data: list[np.ndarray], valid: np.ndarray, filtered: bool = True) -> list[np.ndarray]:
        """The three channels before the stretch (dB; 8-bit data in its own values)."""
        planes = []
        for values in data:
            intensity = to_intensity(values, self.scale)
            if filtered and self.speckle != "none":
                intensity = speckle_filter(self.speckle, intensity, valid, self.window, self.looks)
            planes.append(intensity if self.scale == "8-bit" else to_db(intensity))
        if len(planes) == 1:
            return planes * 3
        with np.errstate(invalid="ignore"):
            return [planes[0], planes[1], planes[0] - planes[1]]

    def to_pixels(self, data: list[np.ndarray], valid: np.ndarray, filtered: bool = True) -> np.ndarray:
        """(3, h, w) uint8 from the bands' values (magnitudes for complex data) and their validity."""
        channels = self.channels(data, valid, filtered)
        out = np.empty((3, *valid.shape), dtype=np.uint8)
        for index, channel in enumerate(channels):
            if self.stretch is None:
                out[index] = np.clip(np.nan_to_num(channel), 0, 255).round().astype(np.uint8)
                continue
            low, high = self.stretch[index]
            scaled = (np.clip(channel, low, high) - low) * (255.0 / (high - low))
            out[index] = np.nan_to_num(scaled).round().astype(np.uint8)
        return out

    def describe(self) -> str:
        """One line: what was read and every step of the conversion."""
        source = " + ".join(f"band {b} ({n})" if not n.startswith("band") else n for b, n in zip(self.bands, self.names))
        steps = [f"{source} as {SCALE_WORDS[self.scale]} ({self.scale_reason})"]
        if self.speckle != "none":
            steps.append(f"{self.speckle} {self.window}×{self.window} speckle filter ({self.looks:.1f} looks"
                         f"{', ' + self.looks_reason if self.looks_reason else ''})")
        if self.scale != "8-bit":
            steps.append("dB")
        if self.stretch is None:
            steps.append("as it is")
        else:
            unit = "" if self.scale == "8-bit" else " dB"
            labels = ("grey",) if len(self.bands) == 1 else ("R co-pol", "G cross-pol", "B co−cross")
            ranges = self.stretch[:1] if len(self.bands) == 1 else self.stretch
            steps.append("stretched " + ", ".join(f"{label} {low:.1f}…{high:.1f}{unit}"
                                                 for label, (low, high) in zip(labels, ranges)))
        composite = "grey in R, G and B" if len(self.bands) == 1 else "dual-pol colour composite"
        return " → ".join(steps) + f"; {composite}"


def band_names(dataset, bands: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(polarisation(dataset.descriptions[b - 1]) or f"band {b}" for b in bands)
