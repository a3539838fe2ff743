"""The remote-sensing CLIP presets (FarSLIP, GeoRSCLIP, RemoteCLIP, SkyCLIP): their files load exactly, in the
released key layouts, and their presets are FarSLIP's OVSS protocol (NJU-LHRS/RS-OVSS)."""
import dataclasses

import pytest
import torch

from backend import weights
from backend.cli import main
from backend.errors import CheckpointFormatError
from backend.models.cache import ModelCache
from backend.models.clip_loading import load_clip
from backend.models.clip_segmentor import load_segmentor
from backend.models.registry import MODEL_PRESETS, resolve_config
from backend.prompts import ClassList, encode_queries, openai_imagenet_templates
from backend.torchvision_compat import import_open_clip
from tests.helpers.checkpoints import (LONG_CLIP_CONTEXT, TINY, TINY_B32, farslip_state_dict,
                                       long_clip_encode_text, open_clip_training_payload, save_farslip_checkpoint,
                                       save_open_clip_checkpoint, tiny_clip)

IMAGE = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
RS_PRESETS = [name for name in MODEL_PRESETS if name.startswith(("farslip", "georsclip", "remoteclip", "skyclip"))]
# The activation each model's authors load it with (see backend/weights.py for the sources).
QUICK_GELU = {"farslip1-vit-b-16": True, "farslip1-vit-b-32": True, "farslip2-vit-b-16": True,
              "farslip2-vit-b-32": True, "farslip2-vit-b-16-simfeatup": True, "georsclip-vit-b-32": True,
              "georsclip-vit-l-14": True, "remoteclip-vit-b-32": False, "remoteclip-vit-l-14": False,
              "skyclip-vit-b-32": False, "skyclip-vit-l-14": True}


def tokens(context: int, seed: int = 0) -> torch.Tensor:
    """Prompt-like token rows: SOT, words, EOT (the largest id), zero padding."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.zeros(3, context, dtype=torch.long)
    for row, length in enumerate((5, 30, context - 2)):
        rows[row, 0] = 49406
        rows[row, 1:length + 1] = torch.randint(1, 49000, (length,), generator=generator)
        rows[row, length + 1] = 49407
    return rows


@pytest.mark.parametrize("teacher", [False, True])
def test_farslip_long_clip_release_loads_with_context_248_and_the_authors_text_encoding(tmp_path, teacher):
    model = tiny_clip(seed=11)
    path = save_farslip_checkpoint(model, tmp_path / "FarSLIP2_ViT-B-16.pt", long_clip=True, teacher=teacher)
    loaded, arch = load_clip(path, quick_gelu=True)
    assert arch == dataclasses.replace(TINY, context_length=LONG_CLIP_CONTEXT)
    assert loaded.context_length == LONG_CLIP_CONTEXT and loaded.attn_mask.shape == (248, 248)
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert torch.equal(loaded.encode_image(IMAGE), model.encode_image(IMAGE))  # the student, not the teacher
    state = farslip_state_dict(model, long_clip=True)
    text = tokens(LONG_CLIP_CONTEXT)
    with torch.no_grad():
        expected = long_clip_encode_text(model, state, text)
        assert torch.equal(loaded.encode_text(text), expected)
    # the first 20 positions are the stretched table's, the rest the trained copy's
    folded = loaded.positional_embedding.detach()
    assert torch.equal(folded[:20], state["positional_embedding"][:20])
    assert torch.equal(folded[20:], state["positional_embedding_res"][20:])


def test_long_clip_without_masks_keeps_20_positions(tmp_path):
    """Long-CLIP's own releases keep the masks out of the state dict; keep_len is 20 there."""
    model = tiny_clip(seed=12)
    state = farslip_state_dict(model, long_clip=True)
    del state["mask1"], state["mask2"]
    torch.save(state, tmp_path / "longclip-tiny.pt")
    loaded, arch = load_clip(tmp_path / "longclip-tiny.pt", quick_gelu=True)
    assert arch.context_length == 248
    folded = loaded.positional_embedding.detach()
    assert torch.equal(folded[:20], state["positional_embedding"][:20])
    assert torch.equal(folded[20:], state["positional_embedding_res"][20:])


def test_farslip_vanilla_text_release_loads_with_context_77(tmp_path):
    model = tiny_clip(TINY_B32, seed=13)
    path = save_farslip_checkpoint(model, tmp_path / "FarSLIP1_ViT-B-32.pt", long_clip=False)
    loaded, arch = load_clip(path, quick_gelu=True)
    assert arch == TINY_B32
    text = tokens(77)
    assert torch.equal(loaded.encode_image(IMAGE), model.encode_image(IMAGE))
    assert torch.equal(loaded.encode_text(text), model.encode_text(text))


@pytest.mark.parametrize("damage,expected", [
    (lambda s: s.update(positional_embedding_res=s["positional_embedding_res"][:77]),
     r"positional_embedding_res \(77, 64\) does not match its positional_embedding \(248, 64\)"),
    (lambda s: s.update(mask1=s["mask1"][:77]), r"mask1 is \(77, 1\), expected \(248, 1\)"),
    (lambda s: s.update(positional_embedding=s["positional_embedding"][:, :32]), "does not match"),
])
def test_a_damaged_long_clip_file_is_one_sentence(tmp_path, damage, expected):
    state = farslip_state_dict(tiny_clip(seed=14), long_clip=True)
    damage(state)
    path = tmp_path / "FarSLIP2_ViT-B-16.pt"
    torch.save(open_clip_training_payload(state), path)
    with pytest.raises(CheckpointFormatError, match=expected) as caught:
        load_clip(path, quick_gelu=True)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message and message.count(". ") == 0


def test_a_farslip_preset_runs_from_the_cache_with_248_token_prompts(tmp_path):
    model = tiny_clip(seed=15)
    target = weights.cached_path("farslip2-vit-b-16")
    target.parent.mkdir(parents=True)
    save_farslip_checkpoint(model, target, long_clip=True)
    config = resolve_config("farslip2-vit-b-16", device="cpu", precision="fp32", download=False)
    segmentor = load_segmentor(config, ModelCache())
    assert segmentor.weights.arch.context_length == 248 and segmentor.net.upsampler is None
    classes = ClassList((("building", "roof"), ("water",)))
    embeddings = segmentor.prompt(classes).embeddings
    state = farslip_state_dict(model, long_clip=True)
    tokenize = import_open_clip().tokenize
    with torch.no_grad():
        expected = encode_queries(lambda t: long_clip_encode_text(model, state, t),
                                  lambda texts: tokenize(texts, 248), classes.queries, openai_imagenet_templates())
    assert torch.allclose(embeddings, expected, atol=1e-5)
    assert segmentor.logits(IMAGE[:1], segmentor.prompt(classes)).shape == (1, 3, 224, 224)


@pytest.mark.parametrize("arch,quick_gelu", [(TINY_B32, True), (TINY_B32, False),
                                             (dataclasses.replace(TINY, patch_size=14), True)])
def test_plain_state_dicts_of_georsclip_and_remoteclip_load(tmp_path, arch, quick_gelu):
    """RS5M_ViT-*.pt and RemoteCLIP-ViT-*.pt: model.state_dict() of an open_clip CLIP, nothing around it."""
    model = tiny_clip(arch, quick_gelu=quick_gelu, seed=16)
    path = save_open_clip_checkpoint(model, tmp_path / "RS5M_ViT-B-32.pt", wrapped=False, module_prefix=False)
    assert not any(key.startswith("module.") for key in torch.load(path, weights_only=True))
    loaded, inferred = load_clip(path, quick_gelu=quick_gelu)
    assert inferred == arch
    assert torch.equal(loaded.encode_image(IMAGE), model.encode_image(IMAGE))


def test_a_resnet_clip_and_a_vit_h_are_refused_in_one_sentence(tmp_path):
    from backend.torchvision_compat import import_open_clip as oc

    clip_model = oc().model
    resnet = clip_model.CLIP(32, vision_cfg=clip_model.CLIPVisionCfg(layers=(1, 1, 1, 1), width=16, image_size=64),
                             text_cfg=clip_model.CLIPTextCfg(vocab_size=1000, width=64, heads=1, layers=1))
    torch.save(resnet.state_dict(), tmp_path / "RemoteCLIP-RN50.pt")
    with pytest.raises(CheckpointFormatError, match="RemoteCLIP-RN50.pt is a ResNet CLIP") as caught:
        load_clip(tmp_path / "RemoteCLIP-RN50.pt", quick_gelu=False)
    assert "\n" not in str(caught.value)
    state = tiny_clip().state_dict()
    state["visual.conv1.weight"] = torch.zeros(1280, 3, 14, 14)
    torch.save(state, tmp_path / "RS5M_ViT-H-14.pt")
    with pytest.raises(CheckpointFormatError, match="RS5M_ViT-H-14.pt looks like an open_clip ViT-H CLIP"):
        load_clip(tmp_path / "RS5M_ViT-H-14.pt", quick_gelu=False)


@pytest.mark.parametrize("name", RS_PRESETS)
def test_rs_presets_are_rs_ovss_protocol_with_the_authors_activation(name):
    preset = MODEL_PRESETS[name]
    assert (preset.attention, preset.attention_blocks, preset.window, preset.stride, preset.logit_scale,
            preset.prob_threshold, preset.modality) == ("segearth", 1, 224, 112, 50.0, 0.0, "optical")
    assert preset.quick_gelu is QUICK_GELU[name]
    if name.endswith("-simfeatup"):
        assert preset.upsampler_weights and preset.gba_lambda == -0.3 and "Experimental" in preset.description
    else:
        assert preset.upsampler_weights is None and preset.gba_lambda == 0.0
    spec = weights.REGISTRY[preset.clip_weights]
    assert spec.license and (spec.hf_repo or spec.url)
    architecture = name.split("-vit-")[1][:4]
    assert architecture.upper() in spec.filename.upper().replace("_", "-") or spec.archive_member


def test_rs_weights_are_listed_with_their_licences(capsys):
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("farslip2-vit-b-16", "georsclip-vit-l-14", "remoteclip-vit-b-32", "skyclip-vit-l-14"):
        assert name in listing
    assert "license: Apache-2.0" in listing and "license: MIT" in listing and "license: Creative Commons" in listing
    assert "SkyCLIP_ViT_L14_top50pct.zip (member SkyCLIP_ViT_L14_top50pct/epoch_20.pt of the zip)" in listing
