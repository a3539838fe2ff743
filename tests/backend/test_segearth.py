import torch
import torch.nn.functional as F

from backend.models.segearth import SegEarthOV, classify, encode_dense
from backend.inference.slide import normalise_pixels, slide_logits
from backend.raster.tiling import centred_padding, grid_count
from tests.helpers.checkpoints import tiny_clip, tiny_simfeatup
from tests.helpers.models import prompts, segmentor

QUERIES = F.normalize(torch.randn(5, 32, generator=torch.Generator().manual_seed(1)), dim=-1)


def test_gba_subtracts_lambda_times_the_cls_similarity():
    clip = tiny_clip()
    windows = torch.randn(2, 3, 224, 224)
    plain = SegEarthOV(clip, None, gba_lambda=0.0)(windows, QUERIES)
    biased = SegEarthOV(clip, None, gba_lambda=-0.3)(windows, QUERIES)
    cls, _ = encode_dense(clip.visual, windows, "segearth", 1)
    expected = -0.3 * (F.normalize(cls, dim=-1) @ QUERIES.T)
    torch.testing.assert_close(biased - plain, expected[:, :, None, None].expand_as(plain), rtol=1e-4, atol=1e-5)


def test_without_upsampler_patch_logits_are_resized_bilinearly():
    clip = tiny_clip()
    windows = torch.randn(1, 3, 224, 224)
    _, patches = encode_dense(clip.visual, windows)
    small = torch.einsum("bchw,qc->bqhw", F.normalize(patches, dim=1), QUERIES)
    expected = F.interpolate(small, size=(224, 224), mode="bilinear", align_corners=False)
    torch.testing.assert_close(SegEarthOV(clip, None, gba_lambda=0)(windows, QUERIES), expected)


def test_multi_block_dense_attention_sums_each_blocks_contribution():
    clip = tiny_clip()
    windows = torch.randn(1, 3, 224, 224)
    cls2, patches2 = encode_dense(clip.visual, windows, "sclip", 2)
    # with two blocks the result differs from one block and is finite; both are in the joint space
    cls1, patches1 = encode_dense(clip.visual, windows, "sclip", 1)
    assert patches2.shape == patches1.shape == (1, 32, 14, 14)
    assert not torch.allclose(patches1, patches2)


def test_windows_of_other_sizes_use_interpolated_positions():
    clip = tiny_clip()
    _, patches = encode_dense(clip.visual, torch.randn(1, 3, 112, 160))
    assert patches.shape == (1, 32, 7, 10)


def authors_slide(model, image, queries, window=224, stride=112):
    """The authors' forward_slide, one window at a time, written out."""
    _, h, w = image.shape
    preds = torch.zeros(queries.shape[0], h, w)
    count = torch.zeros(1, h, w)
    for row in range(grid_count(h, window, stride)):
        for col in range(grid_count(w, window, stride)):
            y1, x1 = row * stride, col * stride
            y2, x2 = min(y1 + window, h), min(x1 + window, w)
            y1, x1 = max(y2 - window, 0), max(x2 - window, 0)
            crop = image[None, :, y1:y2, x1:x2]
            ch, cw = crop.shape[-2:]
            left, right, top, bottom = centred_padding(ch, cw, 16)
            crop = F.pad(crop, (left, right, top, bottom))
            logits = model(crop, queries)[:, :, top:top + ch, left:left + cw]
            preds += F.pad(logits, (x1, w - x2, y1, h - y2))[0]
            count[:, y1:y2, x1:x2] += 1
    return preds / count


def test_batched_slide_inference_equals_the_authors_loop():
    model = segmentor(tiny_clip(), tiny_simfeatup())
    image = normalise_pixels(torch.randint(0, 256, (3, 300, 250), dtype=torch.uint8))
    expected = authors_slide(model.net, image, QUERIES)
    steps = []
    got = slide_logits(model, image, prompts(QUERIES), batch_size=3, progress=lambda d, t: steps.append((d, t)))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert steps[-1] == (4, 4)


def test_small_images_are_padded_and_cropped_back():
    model = segmentor(tiny_clip())
    image = normalise_pixels(torch.randint(0, 256, (3, 90, 130), dtype=torch.uint8))
    torch.testing.assert_close(slide_logits(model, image, prompts(QUERIES)), authors_slide(model.net, image, QUERIES))


def test_classify_takes_the_max_over_synonyms_and_thresholds_to_background():
    logits = torch.zeros(4, 1, 3)
    logits[1, 0, 0] = 0.2      # pixel 0: synonym 1 of class 0... strongly
    logits[2, 0, 1] = 0.2      # pixel 1: first synonym of class 1
    logits[3, 0, 1] = 0.19     # and its second synonym nearly as strong
    query_to_class = [0, 0, 1, 1]
    prediction, probabilities = classify(logits, query_to_class, logit_scale=50.0, prob_threshold=0.3,
                                         background_index=0)
    softmax = torch.softmax(50 * logits, dim=0)
    torch.testing.assert_close(probabilities[1], torch.maximum(softmax[2], softmax[3]))
    assert prediction.tolist() == [[0, 1, 0]]  # pixel 2: all equal, 0.25 < 0.3 -> background
    prediction, _ = classify(logits, query_to_class, prob_threshold=0.0, background_index=1)
    assert prediction[0, 2] == 0  # argmax of a tie is the first class when nothing is thresholded
