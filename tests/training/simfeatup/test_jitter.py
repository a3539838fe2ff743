"""FeatUp's multi-view jitter: reflect pad, zoom, crop and flip, alike for images and feature maps."""
import torch
import torch.nn.functional as F

from training.simfeatup.jitter import Jitter, apply_jitter, sample_jitter


def _featup_view(x, jitter, max_pad):
    """What FeatUp's apply_jitter computes: pad, zoom the whole map, crop, flip."""
    height, width = x.shape[-2:]
    padded = F.pad(x, [max_pad] * 4, mode="reflect")
    zoomed = F.interpolate(padded, scale_factor=jitter.zoom, mode="bilinear") if jitter.zoom > 1 else padded
    out = zoomed[:, :, jitter.top:jitter.top + height, jitter.left:jitter.left + width]
    return out.flip(-1) if jitter.flip else out


def test_a_view_equals_padding_zooming_the_whole_map_cropping_and_flipping():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 48, 40)
    views = [Jitter(False, 1.0, 0, 0), Jitter(True, 1.0, 12, 3), Jitter(False, 1.37, 5, 9),
             Jitter(True, 1.999, 71, 63)]  # the last: the bottom-right corner of a 2x zoom
    views += [sample_jitter(48, 40, 6, 2.0) for _ in range(30)]
    for jitter in views:
        expected = _featup_view(x, jitter, 6)
        assert torch.allclose(apply_jitter(x, jitter, 6), expected, atol=1e-5), jitter


def test_a_view_is_differentiable():
    x = torch.randn(1, 2, 24, 24, requires_grad=True)
    apply_jitter(x, Jitter(True, 1.5, 4, 7), 4).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_views_are_drawn_as_featup_draws_them():
    torch.manual_seed(1)
    views = [sample_jitter(48, 48, 6, 2.0) for _ in range(400)]
    zooms = [view.zoom for view in views]
    assert 150 < sum(zoom == 1.0 for zoom in zooms) < 250  # half the views are not zoomed
    assert all(1.0 <= zoom < 2.0 for zoom in zooms) and max(zooms) > 1.9
    assert 150 < sum(view.flip for view in views) < 250
    for view in views:  # the crop lies inside the padded, zoomed map
        last = int(60 * view.zoom) - 48
        assert 0 <= view.top <= last and 0 <= view.left <= last
    assert not any(sample_jitter(48, 48, 6, 2.0, flips=False).flip for _ in range(50))
    assert all(sample_jitter(48, 48, 6, 1.0).zoom == 1.0 for _ in range(50))
    torch.manual_seed(2)
    first = [sample_jitter(48, 48, 6, 2.0) for _ in range(5)]
    torch.manual_seed(2)
    assert [sample_jitter(48, 48, 6, 2.0) for _ in range(5)] == first  # torch's generator: resumable
