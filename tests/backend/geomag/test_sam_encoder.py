"""The frozen SAM2 image encoder: SAM2's input normalisation, the released weights format, the FPN levels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.errors import CheckpointFormatError, UserInputError
from backend.models.geomag.sam_encoder import (IMAGENET_MEAN, IMAGENET_STD, SamEncoder, build_sam2_image_encoder,
                                               sam_input)
from tests.helpers.geomag import SAM2_CONFIG, SAM2_IMAGE_SIZE, tiny_sam2_weights


def test_sam_input_is_the_image_resized_to_the_square_and_imagenet_normalised():
    image = np.zeros((10, 30, 3), np.uint8)
    image[..., 0] = 255
    image[..., 2] = 51
    tensor = sam_input(image, 16)
    assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
    for channel, value in enumerate((1.0, 0.0, 0.2)):
        expected = (value - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        torch.testing.assert_close(tensor[channel], torch.full((16, 16), expected), atol=1e-5, rtol=1e-5)


def test_the_encoder_is_the_released_files_frozen_and_gives_three_256_channel_levels(geomag_folder):
    path = tiny_sam2_weights(geomag_folder)
    state = torch.load(path, weights_only=True)["model"]
    encoder = SamEncoder(build_sam2_image_encoder(SAM2_CONFIG, str(path), SAM2_IMAGE_SIZE), SAM2_IMAGE_SIZE)
    for name, tensor in encoder.encoder.state_dict().items():
        assert torch.equal(tensor, state[f"image_encoder.{name}"]), name
    encoder.train()
    assert not encoder.training and not encoder.encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    features = encoder(sam_input(np.zeros((20, 20, 3), np.uint8), SAM2_IMAGE_SIZE)[None])
    assert encoder.levels == 3 and encoder.channels == 256
    assert [tuple(f.shape) for f in features.levels] == [(1, 256, 64, 64), (1, 256, 32, 32), (1, 256, 16, 16)]
    assert [f.shape for f in features.positions] == [f.shape for f in features.levels]


def test_weights_of_another_sam2_config_are_refused_naming_the_file(geomag_folder):
    path = tiny_sam2_weights(geomag_folder)
    with pytest.raises(CheckpointFormatError, match="tiny-sam2.pt"):
        build_sam2_image_encoder("configs/sam2.1/sam2.1_hiera_s.yaml", str(path), SAM2_IMAGE_SIZE)


def test_an_unknown_sam2_config_is_a_user_error():
    with pytest.raises(UserInputError, match="sam2_config"):
        build_sam2_image_encoder("configs/sam9/none.yaml", None, SAM2_IMAGE_SIZE)
