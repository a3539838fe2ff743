"""Speckle filters for SAR intensity (Lee, refined Lee) and the looks they assume.

Both are MMSE filters for multiplicative speckle: each pixel becomes
``mean + b * (pixel - mean)`` with ``b = (1 - Cu²/Ci²) / (1 + Cu²)`` clipped to [0, 1], where
``Ci`` is the coefficient of variation of the pixels around it and ``Cu² = 1 / looks``
that of pure speckle (Lee 1980). Refined Lee (Lee 1981) takes those statistics over the
half of the window on the pixel's own side of the strongest edge, so edges stay sharp.

Pixels flagged invalid (nodata, outside the raster) take no part in any statistic, and
every sum runs over the neighbourhood in one fixed order, so a pixel's result depends on
its ``window x window`` neighbourhood only: a block filtered with a halo of
``window // 2`` pixels equals the same pixels of the whole image, bit for bit.
"""
from __future__ import annotations

import numpy as np

SPECKLE_FILTERS = ("none", "lee", "refined-lee")
DEFAULT_WINDOW = 7
# Directions of the refined Lee edge test, as (row, column) steps across the edge.
_EDGE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _box_sums(values: tuple[np.ndarray, ...], half: int, rows: range, cols: range) -> list[np.ndarray]:
    """For each padded array, the sum over the rectangle ``rows x cols`` of offsets around every
    pixel: columns first, then rows, each in one fixed order (2N additions, not N²)."""
    height, width = values[0].shape[0] - 2 * half, values[0].shape[1] - 2 * half
    sums = []
    for array in values:
        across = np.zeros((array.shape[0], width))
        for dx in cols:
            across += array[:, half + dx:half + dx + width]
        total = np.zeros((height, width))
        for dy in rows:
            total += across[half + dy:half + dy + height]
        sums.append(total)
    return sums


def _diagonal_half_sums(values: tuple[np.ndarray, ...], half: int) -> dict[tuple[int, int], list[np.ndarray]]:
    """Sums over the four diagonal half windows (centre diagonal included), keyed by (direction
    index, side), for each padded array: running row sums from each end of the window, each row
    shift added once, in one fixed order (6N additions, not 4 x N(N+1)/2)."""
    height, width = values[0].shape[0] - 2 * half, values[0].shape[1] - 2 * half
    keys = ((2, 1), (2, -1), (3, 1), (3, -1))
    sums = {key: [] for key in keys}
    for array in values:
        totals = {key: np.zeros((height, width)) for key in keys}
        for order, keys_of_k in ((range(half, -half - 1, -1), ((2, 1), (3, -1))),  # columns k..half
                                 (range(-half, half + 1), ((2, -1), (3, 1)))):  # columns -half..k
            running = np.zeros((array.shape[0], width))
            for k in order:
                running += array[:, half + k:half + k + width]
                # row offset -k for the (1, 1) diagonal's sides, +k for the (1, -1) one's
                totals[keys_of_k[0]] += running[half - k:half - k + height]
                totals[keys_of_k[1]] += running[half + k:half + k + height]
        for key in keys:
            sums[key].append(totals[key])
    return sums


def _padded(intensity: np.ndarray, valid: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights, weighted values and weighted squares, padded with invalid pixels."""
    weight = np.pad(valid.astype(np.float64), half)
    value = np.pad(np.where(valid, intensity, 0.0).astype(np.float64), half)
    return weight, value, value * value


def _mmse(intensity: np.ndarray, count: np.ndarray, total: np.ndarray, squares: np.ndarray,
          looks: float) -> np.ndarray:
    """Lee's minimum mean-square-error estimate from the neighbourhood sums."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / count
        variance = np.maximum(squares / count - mean * mean, 0.0)
        speckle = 1.0 / looks
        variation = variance / (mean * mean)
        weight = np.clip((1.0 - speckle / variation) / (1.0 + speckle), 0.0, 1.0)
        result = mean + weight * (intensity - mean)
    return np.where(np.isfinite(result) & (count > 0), result, intensity)


def check_window(window: int) -> None:
    if window < 3 or window % 2 == 0:
        raise ValueError(f"speckle window {window} must be an odd number of pixels, at least 3")


def lee(intensity: np.ndarray, valid: np.ndarray, window: int = DEFAULT_WINDOW, looks: float = 1.0) -> np.ndarray:
    """Lee filter of an (h, w) intensity image over square ``window`` neighbourhoods (float64)."""
    check_window(window)
    half = window // 2
    span = range(-half, half + 1)
    count, total, squares = _box_sums(_padded(intensity, valid, half), half, span, span)
    return _mmse(intensity.astype(np.float64), count, total, squares, looks)


def _subwindow_means(padded: tuple[np.ndarray, ...], half: int, window: int) -> np.ndarray:
    """(3, 3, h, w): means of the 3 x 3 overlapping sub-windows tiling each pixel's window.

    A window of N pixels has sub-windows of N - 2t pixels at steps of t = (N - 1) // 3
    (3 pixels at steps of 2 for the classic 7 x 7).
    """
    step = (window - 1) // 3
    size = window - 2 * step
    weight, value, _ = padded
    means = []
    for i in range(3):
        for j in range(3):
            top, left = -half + i * step, -half + j * step
            count, total = _box_sums((weight, value), half, range(top, top + size), range(left, left + size))
            with np.errstate(divide="ignore", invalid="ignore"):
                means.append(np.where(count > 0, total / np.maximum(count, 1), 0.0))
    return np.stack(means).reshape(3, 3, *means[0].shape)


def refined_lee(intensity: np.ndarray, valid: np.ndarray, window: int = DEFAULT_WINDOW,
                looks: float = 1.0) -> np.ndarray:
    """Refined Lee filter: Lee statistics over the edge-aligned half window (float64).

    The 3 x 3 sub-window means give the gradient in four directions (across columns, rows
    and the two diagonals); across the strongest one, the pixel belongs to the side whose
    outer sub-window mean is closer to the centre's, and its statistics come from that half
    of the window, the centre line included.
    """
    check_window(window)
    half = window // 2
    padded = _padded(intensity, valid, half)
    means = _subwindow_means(padded, half, window)
    centre = means[1, 1]
    gradients, sides = [], []
    for dy, dx in _EDGE_DIRECTIONS:
        before, after = means[1 - dy, 1 - dx], means[1 + dy, 1 + dx]
        gradients.append(np.abs(after - before))
        sides.append(np.where(np.abs(after - centre) <= np.abs(before - centre), 1, -1))
    direction = np.argmax(np.stack(gradients), axis=0)
    side = np.take_along_axis(np.stack(sides), direction[None], axis=0)[0]

    sums = np.zeros((3, *intensity.shape))
    diagonal = _diagonal_half_sums(padded, half)
    full = range(-half, half + 1)
    for index, (dy, dx) in enumerate(_EDGE_DIRECTIONS):
        here = direction == index
        if not here.any():
            continue
        for sign in (1, -1):
            chosen = here & (side == sign)
            if not chosen.any():
                continue
            if dy == 0 or dx == 0:  # a half window across rows or columns is a rectangle
                near = range(0, half + 1) if sign > 0 else range(-half, 1)
                part = _box_sums(padded, half, full if dy == 0 else near, near if dy == 0 else full)
            else:
                part = diagonal[(index, sign)]
            for k in range(3):
                np.copyto(sums[k], part[k], where=chosen)
    return _mmse(intensity.astype(np.float64), sums[0], sums[1], sums[2], looks)


def speckle_filter(name: str, intensity: np.ndarray, valid: np.ndarray, window: int, looks: float) -> np.ndarray:
    """``intensity`` filtered by the named filter ("none" returns it as float64)."""
    if name == "lee":
        return lee(intensity, valid, window, looks)
    if name == "refined-lee":
        return refined_lee(intensity, valid, window, looks)
    return intensity.astype(np.float64)


def estimate_looks(intensity: np.ndarray, valid: np.ndarray, block: int = DEFAULT_WINDOW) -> float | None:
    """The equivalent number of looks: 1 / the median squared coefficient of variation of
    ``block x block`` tiles that are entirely valid and positive (None without any).

    On pure speckle of L looks this is close to L; texture in the scene lowers it, which
    makes the filters smooth a little more.
    """
    height, width = (intensity.shape[0] // block) * block, (intensity.shape[1] // block) * block
    if height == 0 or width == 0:
        return None
    tiles = intensity[:height, :width].astype(np.float64).reshape(height // block, block, width // block, block)
    good = valid[:height, :width].reshape(height // block, block, width // block, block).all(axis=(1, 3))
    good &= (tiles > 0).all(axis=(1, 3))
    if not good.any():
        return None
    tiles = tiles.transpose(0, 2, 1, 3)[good].reshape(-1, block * block)
    variation = tiles.var(axis=1, ddof=1) / tiles.mean(axis=1) ** 2
    median = float(np.median(variation))
    return 1.0 / median if median > 0 else None
