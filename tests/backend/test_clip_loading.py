import pytest
import torch

from backend.errors import CheckpointFormatError
from backend.models.checkpoints import read_checkpoint, tensor_state_dict
from backend.models.clip_loading import ClipArchitecture, infer_architecture, load_clip
from tests.helpers.checkpoints import TINY, openai_state_dict, save_open_clip_checkpoint, save_torchscript_archive, tiny_clip

IMAGE = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))


def test_torchscript_archive_and_openai_state_dict_load_the_same_weights(tiny_files):
    scripted, arch = load_clip(tiny_files["torchscript"], quick_gelu=True)
    plain, _ = load_clip(tiny_files["openai_state_dict"], quick_gelu=True)
    assert arch == TINY
    assert torch.equal(scripted.encode_image(IMAGE), plain.encode_image(IMAGE))
    # fp16 weights of the release are widened to fp32 for CPU inference
    assert all(p.dtype == torch.float32 for p in scripted.parameters())


@pytest.mark.parametrize("wrapped,prefix", [(True, True), (True, False), (False, True), (False, False)])
def test_open_clip_checkpoints_wrapped_or_prefixed_reproduce_the_model(tmp_path, wrapped, prefix):
    model = tiny_clip(seed=4)
    path = save_open_clip_checkpoint(model, tmp_path / "ckpt.pt", wrapped=wrapped, module_prefix=prefix)
    loaded, arch = load_clip(path, quick_gelu=True)
    assert arch == TINY
    tokens = torch.randint(1, 49000, (2, 77))
    assert torch.equal(loaded.encode_image(IMAGE), model.encode_image(IMAGE))
    assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))


@pytest.mark.parametrize("patch,grid,width,layers,embed", [(16, 14, 768 // 6, 2, 64), (32, 7, 128, 1, 32),
                                                           (14, 16, 192, 2, 48), (8, 4, 64, 1, 16)])
def test_architecture_is_read_off_the_tensors(tmp_path, patch, grid, width, layers, embed):
    arch = ClipArchitecture(embed_dim=embed, image_size=patch * grid, patch_size=patch, vision_width=width,
                            vision_layers=layers, context_length=248, vocab_size=49408, text_width=64,
                            text_layers=1)
    model = tiny_clip(arch)
    path = save_torchscript_archive(openai_state_dict(model), tmp_path / "variant.pt",
                                    input_resolution=patch * grid)
    loaded, inferred = load_clip(path, quick_gelu=False)
    assert inferred == arch
    assert inferred.vision_heads == max(1, width // 64)
    assert loaded.visual.transformer.resblocks[0].attn.num_heads == inferred.vision_heads


def test_quick_gelu_choice_changes_the_activation(tiny_files):
    quick, _ = load_clip(tiny_files["open_clip"], quick_gelu=True)
    plain, _ = load_clip(tiny_files["open_clip"], quick_gelu=False)
    assert type(quick.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert type(plain.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert not torch.allclose(quick.encode_image(IMAGE), plain.encode_image(IMAGE))


def test_a_file_that_is_not_a_clip_checkpoint_is_named(tmp_path, tiny_files):
    with pytest.raises(CheckpointFormatError, match="xclip_jbu_one_tiny.ckpt is not a CLIP ViT checkpoint"):
        load_clip(tiny_files["simfeatup"], quick_gelu=True)
    garbage = tmp_path / "notes.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointFormatError, match="notes.pt is not a weights file"):
        load_clip(garbage, quick_gelu=True)
    truncated = tmp_path / "truncated.pt"
    data = tiny_files["openai_state_dict"].read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="truncated.pt is not a readable PyTorch checkpoint"):
        load_clip(truncated, quick_gelu=True)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:40])
    with pytest.raises(CheckpointFormatError, match="legacy.pt is not a readable PyTorch checkpoint"):
        load_clip(legacy, quick_gelu=True)


def test_files_whose_tensors_do_not_match_a_whole_clip_are_refused_in_one_sentence(tmp_path):
    state = tiny_clip(quick_gelu=False).state_dict()
    visual_only = tmp_path / "AlignEarth-visual.pt"
    torch.save({k: v for k, v in state.items() if k.startswith("visual.")}, visual_only)
    with pytest.raises(CheckpointFormatError, match="AlignEarth-visual.pt holds an image tower only"):
        load_clip(visual_only, quick_gelu=False)
    reshaped = tmp_path / "reshaped.pt"
    torch.save({"state_dict": {**state, "visual.proj": torch.zeros(128, 16)}}, reshaped)
    with pytest.raises(CheckpointFormatError, match=r"visual.proj is \(128, 16\), expected \(128, 32\)"):
        load_clip(reshaped, quick_gelu=False)
    transformers = tmp_path / "hf.pt"
    torch.save({"vision_model.embeddings.patch_embedding.weight": torch.zeros(8, 3, 16, 16),
                "text_model.embeddings.token_embedding.weight": torch.zeros(10, 8)}, transformers)
    with pytest.raises(CheckpointFormatError, match="hf.pt is a Hugging Face transformers CLIP"):
        load_clip(transformers, quick_gelu=False)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_in_a_weights_file_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": Payload()}, path)
    with pytest.raises(CheckpointFormatError, match="not allowed in a weights file"):
        read_checkpoint(path)
    assert "this must never run" not in capsys.readouterr().out


def test_a_stored_causal_mask_is_rebuilt_not_refused(tmp_path):
    """Some converted releases keep the text tower's attn_mask; it follows from the context length."""
    model = tiny_clip(seed=6)
    state = {**model.state_dict(), "attn_mask": torch.full((77, 77), float("-inf")).triu(1)}
    torch.save(state, tmp_path / "with_mask.pt")
    loaded, _ = load_clip(tmp_path / "with_mask.pt", quick_gelu=True)
    tokens = torch.randint(1, 49000, (2, 77))
    assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))


def test_safetensors_files_load(tmp_path):
    from safetensors.torch import save_file

    model = tiny_clip(seed=5)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "attn_mask"}
    save_file(state, str(tmp_path / "open_clip_model.safetensors"))
    loaded, _ = load_clip(tmp_path / "open_clip_model.safetensors", quick_gelu=True)
    assert torch.equal(loaded.encode_image(IMAGE), model.encode_image(IMAGE))


def test_state_dict_helpers_strip_wrappers():
    inner = {"module.a": torch.ones(1), "module.b": torch.zeros(2)}
    assert set(tensor_state_dict({"state_dict": inner, "epoch": 3})) == {"a", "b"}
    assert set(tensor_state_dict({"x": torch.ones(1), "n": 3})) == {"x"}
    assert infer_architecture(openai_state_dict(tiny_clip())) == TINY
