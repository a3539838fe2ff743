"""What trains beside the upsampler, and the CLIP features it learns on."""
import math

import pytest
import torch

from backend.models.clip_loading import load_clip
from training.simfeatup.model import (AttentionDownsampler, ContentRetentionNetwork, ScaleNet, SimFeatUpTraining,
                                      clip_features, gaussian_blur)


def test_clip_features_are_the_last_blocks_input_through_ln_post_and_proj(local_clip):
    clip, _ = load_clip(local_clip, quick_gelu=True)
    visual = clip.visual
    with torch.no_grad():  # give positions back their weight (open_clip's own forward needs 224-pixel images)
        visual.positional_embedding.normal_(0, 0.5)
    captured = {}
    hook = visual.transformer.resblocks[-1].register_forward_pre_hook(lambda _, args: captured.update(x=args[0]))
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        visual(images)
        hook.remove()
        tokens = captured["x"] if visual.transformer.batch_first else captured["x"].transpose(0, 1)
        expected = (visual.ln_post(tokens[:, 1:]) @ visual.proj).transpose(1, 2).reshape(2, 32, 14, 14)
        assert torch.allclose(clip_features(visual, images), expected, atol=1e-5)


def test_the_blur_is_a_normalised_5x5_gaussian_of_sigma_1_with_reflected_edges():
    impulse = torch.zeros(1, 2, 9, 9)
    impulse[:, :, 4, 4] = 1.0
    blurred = gaussian_blur(impulse)
    line = [math.exp(-(x * x) / 2) for x in (-2, -1, 0, 1, 2)]
    total = sum(line)
    assert blurred[0, 0, 4, 4].item() == pytest.approx((1 / total) ** 2, rel=1e-5)
    assert blurred[0, 1, 2, 5].item() == pytest.approx(line[0] * line[3] / total ** 2, rel=1e-5)
    assert blurred.sum().item() == pytest.approx(2.0, rel=1e-5)
    constant = torch.full((1, 1, 6, 6), 3.0)
    assert torch.allclose(gaussian_blur(constant), constant)


def test_the_downsampler_averages_each_patch_block_with_learned_attention():
    torch.manual_seed(0)
    downsampler = AttentionDownsampler(dim=3, kernel_size=4, blur=False).eval()
    features = torch.randn(2, 3, 8, 12)
    with torch.no_grad():  # equal scores everywhere: the plain mean of each 4x4 block
        downsampler.attention_net[1].weight.zero_()
        downsampler.w.fill_(1.0)
        downsampler.b.zero_()
    means = torch.nn.functional.avg_pool2d(features, 4)
    assert torch.allclose(downsampler(features), means, atol=1e-6)
    with torch.no_grad():  # a large bias on the block's top-left position: that pixel alone
        downsampler.b[0, 0] = 50.0
    assert torch.allclose(downsampler(features), features[:, :, ::4, ::4], atol=1e-5)
    with pytest.raises(ValueError, match="does not split into 4x4 blocks"):
        downsampler(torch.randn(1, 3, 10, 12))


def test_the_uncertainty_starts_near_exp_0_1_and_the_crn_draws_three_bands_in_minus_one_to_one():
    torch.manual_seed(1)
    features = torch.randn(2, 8, 5, 6)
    scales = ScaleNet(8)(features)
    assert scales.shape == (2, 1, 5, 6) and torch.allclose(scales, torch.full_like(scales, math.exp(0.1)), rtol=0.3)
    image = ContentRetentionNetwork(8)(10 * features)
    assert image.shape == (2, 3, 5, 6) and image.abs().max() <= 1.0


def test_what_trains_holds_the_upsampler_under_the_released_checkpoints_names():
    keys = SimFeatUpTraining(dim=32, patch_size=16).state_dict().keys()
    upsampler = {key for key in keys if key.startswith("upsampler.")}
    assert upsampler == {"upsampler.up.range_temp", "upsampler.up.sigma_spatial", "upsampler.up.range_proj.0.weight",
                         "upsampler.up.range_proj.0.bias", "upsampler.up.range_proj.3.weight",
                         "upsampler.up.range_proj.3.bias", "upsampler.up.fixup_proj.0.weight",
                         "upsampler.up.fixup_proj.0.bias", "upsampler.up.fixup_proj.3.weight",
                         "upsampler.up.fixup_proj.3.bias", "upsampler.fixup_proj.1.weight",
                         "upsampler.fixup_proj.1.bias"}
    assert SimFeatUpTraining(dim=32, patch_size=16, predicted_uncertainty=False).scale_net is None
