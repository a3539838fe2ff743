"""The generated referring set and granularity pairs: deterministic, and each prompt names its mask."""
import re

import numpy as np

from training.geomag.generated import COLOURS, ShapesReferring, granularity_pairs, shape_mask

PROMPT = re.compile(r"the (red|green|blue|yellow) (circle|square|triangle)( on the (left|right))?")


def test_a_scene_depends_only_on_the_seed_and_its_index():
    a, b, other = ShapesReferring(4, 48, seed=3), ShapesReferring(9, 48, seed=3), ShapesReferring(4, 48, seed=4)
    for index in range(4):
        assert np.array_equal(a[index].image, b[index].image) and a[index].prompt == b[index].prompt
    assert not np.array_equal(a[0].image, other[0].image)


def test_each_prompt_names_the_colour_under_its_mask_and_the_side_when_the_kind_repeats():
    data = ShapesReferring(40, 64, seed=0)
    sides = 0
    for index in range(len(data)):
        sample = data[index]
        match = PROMPT.fullmatch(sample.prompt)
        assert match, sample.prompt
        assert sample.masks.shape == (1, 64, 64) and sample.masks.dtype == bool and sample.answer == "Sure, it is [SEG]."
        assert (sample.image[sample.masks[0]] == COLOURS[match.group(1)]).all()
        assert sample.masks.sum() > 40
        sides += match.group(3) is not None
    assert 5 < sides < 35  # both kinds of prompt occur


def test_shape_masks_are_the_hand_described_figures():
    square = shape_mask("square", 10, (5.0, 5.0), 2.0)  # centres r + .5 within 1.7 of 5: pixels 3..6
    assert np.array_equal(np.argwhere(square.any(0)).ravel(), [3, 4, 5, 6]) and square.sum() == 16
    circle = shape_mask("circle", 9, (4.5, 4.5), 1.0)
    assert circle.sum() == 5 and circle[4, 4] and circle[3, 4] and not circle[3, 3]
    triangle = shape_mask("triangle", 20, (10.0, 10.0), 6.0)
    widths = triangle.sum(1)
    assert widths[widths > 0][0] < widths[widths > 0][-1]  # narrow at the top, wide at the bottom


def test_granularity_pairs_cycle_the_three_kinds_and_repeat_with_the_seed():
    pairs = granularity_pairs(30, seed=1)
    assert [g for _, g in pairs[:6]] == ["image", "region", "pixel"] * 2
    assert pairs == granularity_pairs(30, seed=1) and pairs != granularity_pairs(30, seed=2)
    assert all(query and "{" not in query for query, _ in pairs)
