"""Generated data for tests and smoke runs: a referring set of coloured shapes and (query, granularity) pairs.

The referring set: each scene is a textured background with three shapes, one per third of
the width (left, middle, right); a (colour, shape) kind may appear twice, and then the
prompt names the side ("the blue square on the left"), else the kind alone ("the red
circle"). Scenes depend only on (seed, index). The pairs: queries written from templates
per granularity (image: captions and scene questions; region: counting, attributes, where;
pixel: segmentation requests and bare referring expressions), drawn from a seed.
"""
from __future__ import annotations

import numpy as np

from training.common.seeding import derived_seed
from training.geomag.samples import REFERRING_ANSWER, ReferringSample

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 80, 230), "yellow": (235, 215, 40)}
SHAPES = ("circle", "square", "triangle")
SIDES = ("left", "middle", "right")


def shape_mask(kind: str, size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """(size, size) bool: a disc, an axis-aligned square or an upward triangle around ``centre`` (row, col)."""
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    dy, dx = rows - centre[0], cols - centre[1]
    if kind == "circle":
        return dy ** 2 + dx ** 2 <= radius ** 2
    if kind == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    return (dy <= radius * 0.8) & (np.abs(dx) <= (dy + radius) * 0.55)  # apex at the top


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8: dull noise over soft diagonal stripes (no saturated colour)."""
    rows, cols = np.mgrid[0:size, 0:size]
    stripes = 12 * np.sin((rows + cols) * rng.uniform(0.2, 0.5) + rng.uniform(0, 6.3))
    base = rng.uniform(90, 130, 3)
    pixels = base + stripes[..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


class ShapesReferring:
    """``count`` referring samples of ``size``-pixel scenes; sample i depends only on (seed, i)."""

    def __init__(self, count: int, size: int = 64, seed: int = 0, answer: str = REFERRING_ANSWER) -> None:
        self.count, self.size, self.seed, self.answer = count, size, seed, answer

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> ReferringSample:
        if not 0 <= index < self.count:
            raise IndexError(index)
        rng = np.random.default_rng(derived_seed(self.seed, index))
        size = self.size
        kinds = [(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))) for _ in SIDES]
        if rng.random() < 0.5:  # repeat one kind on another side: the prompt must then name the side
            first, second = rng.choice(3, 2, replace=False)
            kinds[second] = kinds[first]
        image = background(rng, size)
        masks = []
        third = size / 3
        for column, (colour, shape) in enumerate(kinds):
            radius = rng.uniform(0.28, 0.42) * third
            centre = (rng.uniform(radius + 1, size - radius - 1), third * (column + 0.5) + rng.uniform(-2, 2))
            mask = shape_mask(shape, size, centre, radius)
            image[mask] = COLOURS[colour]
            masks.append(mask)
        target = int(rng.integers(3))
        colour, shape = kinds[target]
        same = [column for column, kind in enumerate(kinds) if kind == kinds[target]]
        prompt = f"the {colour} {shape}"
        if len(same) > 1:
            prompt += " on the left" if target == min(same) else " on the right"
        return ReferringSample(image, prompt, self.answer, masks[target][None])


NOUNS = ("building", "car", "ship", "plane", "tree", "house", "bridge", "vehicle", "storage tank", "roundabout",
         "stadium", "court", "river", "lake", "field", "road", "runway")
PLURALS = ("buildings", "cars", "ships", "trees", "houses", "vehicles", "roads")
IMAGES = ("image", "picture", "photo", "satellite image", "aerial photo", "remote sensing image")
PLACES = ("top", "bottom", "left", "right", "middle", "center", "upper left", "lower right")
TEMPLATES = {
    "image": ("describe this {img}", "caption this {img}", "what scene is this {img}",
              "is this {img} urban or rural", "describe the scene in this {img}", "what is this {img} of",
              "show a caption of this {img}", "what area is shown in this {img}"),
    "region": ("how many {plural} are there in this {img}", "what colour is the {noun} at the {place}",
               "is there a {noun} near the {noun2}", "where is the {noun}",
               "which object is at the {place} of the {img}", "are there {plural} next to the {noun2}",
               "what is the {noun} near the {noun2}", "how many {plural} are at the {place}"),
    "pixel": ("segment the {colour} {noun}", "please segment the {noun} on the {place}", "show the mask of the {noun}",
              "find the {noun} at the {place} and show its mask", "locate the {noun} and segment it",
              "segment all {plural} in this {img}", "the {colour} {noun} on the {place}",
              "the {noun} near the {noun2}"),
}


def granularity_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (query, granularity) pairs, granularities in turn, templates and words drawn from ``seed``."""
    rng = np.random.default_rng(derived_seed(seed, 7))
    kinds = tuple(TEMPLATES)
    pairs = []
    for index in range(count):
        granularity = kinds[index % len(kinds)]
        template = str(rng.choice(TEMPLATES[granularity]))
        nouns = rng.choice(NOUNS, 2, replace=False)
        words = {"img": rng.choice(IMAGES), "noun": nouns[0], "noun2": nouns[1], "plural": rng.choice(PLURALS),
                 "place": rng.choice(PLACES), "colour": rng.choice(list(COLOURS))}
        pairs.append((template.format(**{key: str(value) for key, value in words.items()}), granularity))
    return pairs
