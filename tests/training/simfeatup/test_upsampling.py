"""The training forward of SimFeatUp: the backend module's output, with lean hand-written gradients."""
import torch
import torch.nn.functional as F

from backend.models.simfeatup import SimFeatUp
from training.simfeatup.upsampling import adaptive_conv, local_correlation, upsample


def _windows(padded, diameter, height, width):
    """(B, C, d*d, H, W): every pixel's d x d neighbourhood, row-major taps (FeatUp's unfold)."""
    batch, channels = padded.shape[:2]
    return F.unfold(padded, diameter).view(batch, channels, diameter * diameter, height, width)


def test_adaptive_conv_is_each_pixels_kernel_weighted_window_sum_whatever_the_chunk():
    torch.manual_seed(0)
    padded, kernel = torch.randn(2, 5, 9, 10), torch.randn(2, 9, 7, 8)
    expected = torch.einsum("bthw,bcthw->bchw", kernel, _windows(padded, 3, 7, 8))
    out = adaptive_conv(padded, kernel)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(adaptive_conv(padded, kernel, channel_chunk=2), out)


def test_local_correlation_is_each_pixels_dot_product_with_its_neighbours():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 7)
    padded = F.pad(x, [1] * 4, mode="reflect")
    expected = torch.einsum("bcthw,bchw->bthw", _windows(padded, 3, 6, 7), x)
    assert torch.allclose(local_correlation(padded, x, 3), expected, atol=1e-5)


def test_the_hand_written_gradients_pass_gradcheck():
    torch.manual_seed(2)
    padded = torch.randn(1, 3, 6, 7, dtype=torch.double, requires_grad=True)
    kernel = torch.randn(1, 9, 4, 5, dtype=torch.double, requires_grad=True)
    x = torch.randn(1, 3, 4, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, k: adaptive_conv(p, k, channel_chunk=2), (padded, kernel))
    assert torch.autograd.gradcheck(lambda p, v: local_correlation(p, v, 3), (padded, x))


def test_the_training_forward_equals_the_backend_simfeatup_and_so_do_its_gradients():
    torch.manual_seed(3)
    model = SimFeatUp(feat_dim=8).eval()
    with torch.no_grad():
        model.up.range_temp.fill_(1.2)
        model.up.sigma_spatial.fill_(0.6)
    features = torch.randn(2, 8, 3, 3, requires_grad=True)
    image = torch.randn(2, 3, 48, 48, requires_grad=True)
    ours, theirs = upsample(model, features, image), model(features, image)
    assert ours.shape == (2, 8, 48, 48)
    assert torch.allclose(ours, theirs, atol=1e-5)
    weights = torch.randn_like(ours)
    inputs = [features, image, *model.parameters()]
    ours_grads = torch.autograd.grad((ours * weights).sum(), inputs)
    their_grads = torch.autograd.grad((theirs * weights).sum(), inputs)
    for name, a, b in zip(["features", "image", *dict(model.named_parameters())], ours_grads, their_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item()), name
