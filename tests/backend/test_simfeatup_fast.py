"""The fast SimFeatUp logits against the module's own forward (the reference the authors' code was checked with)."""
import pytest
import torch
import torch.nn.functional as F

from backend.errors import UserInputError
from backend.models.simfeatup import SimFeatUp
from backend.models.simfeatup_fast import axis_weights, range_similarity, upsampled_cosine_logits
from tests.helpers.checkpoints import tiny_simfeatup


def reference_logits(upsampler, patches, windows, queries):
    """Upsample all channels one window at a time, normalise, dot with the queries."""
    out = []
    for index in range(patches.shape[0]):
        features = upsampler(patches[index:index + 1], windows[index:index + 1])
        features = features / features.norm(dim=1, keepdim=True)
        out.append(torch.einsum("bchw,qc->bqhw", features, queries))
    return torch.cat(out)


def random_case(channels, height, width, batch=2, queries=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    patches = torch.randn(batch, channels, height, width, generator=generator)
    windows = torch.randn(batch, 3, 16 * height, 16 * width, generator=generator)
    text = F.normalize(torch.randn(queries, channels, generator=generator), dim=-1)
    return patches, windows, text


@pytest.mark.parametrize("channels, height, width", [
    (32, 8, 8),  # fewer channels than pixels: upsampled as they are
    (32, 4, 5),  # more channels than pixels: upsampled in the span of the window's features
    (24, 7, 3),  # odd, narrow: the bicubic taps clamp at both borders
])
def test_probabilities_equal_upsampling_every_channel(channels, height, width):
    upsampler = tiny_simfeatup(feat_dim=channels)
    patches, windows, queries = random_case(channels, height, width)
    with torch.no_grad():
        expected = reference_logits(upsampler, patches, windows, queries)
    got = upsampled_cosine_logits(upsampler, patches, windows, queries)
    assert got.shape == expected.shape
    difference = (torch.softmax(50 * got, 1) - torch.softmax(50 * expected, 1)).abs().max()
    assert difference < 1e-5


def test_vit_b16_window_matches_at_full_size():
    """512 channels, 14 x 14 tokens, 224 pixels: the shapes of SegEarth-OV's default."""
    torch.manual_seed(3)
    upsampler = SimFeatUp(512).eval()
    with torch.no_grad():
        upsampler.up.range_temp.fill_(1.5)
        upsampler.up.sigma_spatial.fill_(0.7)
    patches, windows, queries = random_case(512, 14, 14, batch=1, queries=6, seed=3)
    with torch.no_grad():
        expected = reference_logits(upsampler, patches, windows, queries)
    got = upsampled_cosine_logits(upsampler, patches, windows, queries)
    assert (torch.softmax(50 * got, 1) - torch.softmax(50 * expected, 1)).abs().max() < 1e-5
    assert (got - expected).abs().max() < 1e-5


def test_a_window_does_not_depend_on_its_batch():
    upsampler = tiny_simfeatup(feat_dim=32)
    patches, windows, queries = random_case(32, 4, 5, batch=3)
    together = upsampled_cosine_logits(upsampler, patches, windows, queries)
    alone = upsampled_cosine_logits(upsampler, patches[1:2], windows[1:2], queries)
    torch.testing.assert_close(together[1:2], alone, rtol=0, atol=1e-6)


def test_autocast_does_not_reach_the_upsampler():
    upsampler = tiny_simfeatup(feat_dim=32)
    patches, windows, queries = random_case(32, 4, 5, batch=1)
    fp32 = upsampled_cosine_logits(upsampler, patches, windows, queries)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = upsampled_cosine_logits(upsampler, patches, windows, queries)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, fp32, rtol=0, atol=1e-6)


@pytest.mark.parametrize("low", [3, 7, 14])
def test_axis_weights_are_reflect_padded_bicubic_x2(low):
    signal = torch.randn(4, low, dtype=torch.float64)
    upsampled = F.interpolate(signal[None, :, :, None], size=(2 * low, 1), mode="bicubic",
                              align_corners=False)[0, :, :, 0]
    padded = F.pad(upsampled[None], (5, 5), mode="reflect")[0]  # (4, 2 low + 10)
    weights, start = axis_weights(low)
    span = weights.shape[2]
    for y in range(2 * low):
        taps = padded[:, y:y + 11]  # what output y's 11 taps read
        window = signal[:, start[y]:start[y] + span]
        torch.testing.assert_close(window @ weights[y].double().T, taps, rtol=0, atol=1e-6)


def test_range_similarity_is_every_taps_dot_product():
    keys = torch.randn(2, 8, 13, 17)
    radius = 5
    padded = F.pad(keys, [radius] * 4, mode="reflect")
    got = range_similarity(keys, radius)
    for tap in range(121):
        i, j = divmod(tap, 11)
        expected = (padded[:, :, i:i + 13, j:j + 17] * keys).sum(1)
        torch.testing.assert_close(got[:, tap], expected, rtol=0, atol=1e-5)



def test_a_window_too_small_for_simfeatup_is_one_sentence():
    upsampler = tiny_simfeatup(feat_dim=32)
    patches, windows, queries = random_case(32, 2, 4, batch=1)  # 32 x 64 pixels
    with pytest.raises(UserInputError, match=r"32 x 64 pixels, too small for SimFeatUp \(it needs 48 pixels a side\)"):
        upsampled_cosine_logits(upsampler, patches, windows, queries)
