"""The CLIP FarSLIP trains: LongCLIP's text positions, the tokens it aligns, the EMA teacher, the fixed positions."""
import math
from dataclasses import replace

import pytest
import torch

from backend.errors import UserInputError
from backend.models.segearth import encode_dense
from training.farslip.config import ModelConfig
from training.farslip.model import FarSLIPModel, load_student, stretch_text_positions, visual_tokens
from tests.helpers.checkpoints import save_open_clip_checkpoint, tiny_clip
from tests.training.farslip.conftest import SMALL


def test_longclip_keeps_20_positions_and_interpolates_the_rest_four_fold():
    linear = torch.arange(77.0)[:, None]  # position i holds i
    stretched = stretch_text_positions(linear)
    assert stretched.shape == (248, 1)
    expected = torch.cat([torch.arange(20.0), 20 + torch.arange(228.0) / 4])  # the last 4 continue the step
    assert torch.equal(stretched[:, 0], expected)
    squares = stretch_text_positions(torch.arange(77.0)[:, None] ** 2)[:, 0]
    assert squares[20:24].tolist() == [400, 400 + 41 / 4, 400 + 41 / 2, 400 + 3 * 41 / 4]  # 20^2 to 21^2
    assert squares[-4:].tolist() == [76 ** 2 + k * (76 ** 2 - 75 ** 2) / 4 for k in range(4)]


def test_long_text_stretches_a_77_token_clip_to_248(small_clip):
    loaded = load_student(ModelConfig(clip_weights=str(small_clip)))
    original = load_student(ModelConfig(clip_weights=str(small_clip), long_text=False))
    assert (loaded.arch.context_length, original.arch.context_length) == (248, 77)
    assert loaded.arch == replace(original.arch, context_length=248)
    assert torch.equal(loaded.clip.positional_embedding[:20], original.clip.positional_embedding[:20])
    assert torch.equal(loaded.clip.visual.conv1.weight, original.clip.visual.conv1.weight)


def test_long_text_refuses_a_clip_of_another_text_length(tmp_path):
    path = save_open_clip_checkpoint(tiny_clip(replace(SMALL, context_length=64)), tmp_path / "short.pt")
    with pytest.raises(UserInputError, match=r"short.pt reads 64 text tokens; model.long_text stretches CLIP's 77 "
                                             r"to 248 \(LongCLIP\): set model.long_text: false to train with 64"):
        load_student(ModelConfig(clip_weights=str(path)))


def test_the_aligned_patches_are_the_segmentors_features_and_the_cls_is_clips():
    clip = tiny_clip(SMALL, seed=3)
    images = torch.randn(2, 3, 64, 64)
    cls, patches = visual_tokens(clip.visual, images)
    assert torch.allclose(cls, clip.encode_image(images), atol=1e-5)
    assert torch.allclose(patches, encode_dense(clip.visual, images, "segearth", 1)[1], atol=1e-5)
    assert patches.shape == (2, SMALL.embed_dim, 4, 4)


def test_the_ema_teacher_moves_one_percent_towards_the_student():
    model = FarSLIPModel(tiny_clip(SMALL, seed=3), ema_teacher=True)
    before = model.teacher.conv1.weight.clone()
    with torch.no_grad():
        model.clip.visual.conv1.weight.add_(1.0)
    model.update_teacher(0.99)
    assert torch.allclose(model.teacher.conv1.weight, 0.99 * before + 0.01 * model.clip.visual.conv1.weight, atol=1e-7)
    assert not any(parameter.requires_grad for parameter in model.teacher.parameters())


def test_the_first_20_text_positions_stay_fixed_and_the_logit_scale_stays_at_most_100():
    model = FarSLIPModel(tiny_clip(SMALL, seed=3), fixed_positions=20)
    fixed = model.clip.positional_embedding[:20].clone()
    tokens = torch.randint(1, 400, (2, 77))
    tokens[:, -1] = 49407  # the end token last: the pooled token sees every position
    model.clip.encode_text(tokens).sum().backward()
    gradient = model.clip.positional_embedding.grad
    assert not gradient[:20].any() and gradient[20:].any()
    with torch.no_grad():
        model.clip.positional_embedding.mul_(0.5)  # as weight decay would
        model.clip.logit_scale.fill_(6.0)
    model.after_step(100.0)
    assert torch.equal(model.clip.positional_embedding[:20], fixed)
    assert model.clip.logit_scale.item() == pytest.approx(math.log(100))
