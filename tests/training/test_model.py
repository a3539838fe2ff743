import torch

from backend.models.clip_loading import load_clip
from training.alignearth.model import export_checkpoint, load_teacher, projected_tokens, student_from
from tests.training.conftest import SMALL

IMAGES = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))


def test_projected_tokens_give_open_clips_pooled_cls_and_the_projected_patch_map(small_teacher):
    teacher = load_teacher(str(small_teacher))
    with torch.no_grad():
        cls, patches = projected_tokens(teacher.visual, IMAGES)
        pooled = teacher.visual(IMAGES)
        tokens = teacher.visual.transformer(teacher.visual._embeds(IMAGES))
        expected_patch = teacher.visual.ln_post(tokens[1, 1 + 3 * 7 + 4]) @ teacher.visual.proj
    assert cls.shape == (2, SMALL.embed_dim) and patches.shape == (2, SMALL.embed_dim, 7, 7)
    assert torch.allclose(cls, pooled, atol=1e-5)
    assert torch.allclose(patches[1, :, 3, 4], expected_patch, atol=1e-5)  # token 1 + row * 7 + column


def test_the_teacher_is_frozen_and_the_student_starts_from_its_weights_with_gelu(small_teacher):
    teacher = load_teacher(str(small_teacher), "quickgelu")
    student = student_from(teacher, "gelu")
    assert not teacher.visual.training and not any(p.requires_grad for p in teacher.visual.parameters())
    assert student.training and all(p.requires_grad for p in student.parameters())
    assert type(teacher.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert type(student.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    teacher_state = teacher.visual.state_dict()
    assert all(torch.equal(value, teacher_state[key]) for key, value in student.state_dict().items())
    assert all(not key.startswith("visual.") for key in teacher.other_tensors)
    assert "logit_scale" in teacher.other_tensors


def test_the_export_loads_as_a_gelu_clip_with_student_vision_and_teacher_text(small_teacher, tmp_path):
    teacher = load_teacher(str(small_teacher))
    student = student_from(teacher)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.01)
    path = export_checkpoint(student, teacher, tmp_path / "alignearth_sar.pt", epoch=3)
    payload = torch.load(path, weights_only=True)
    assert payload["epoch"] == 3 and payload["name"] == "alignearth"
    clip, arch = load_clip(path, quick_gelu=False)
    assert arch == SMALL
    assert type(clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    for key, value in student.state_dict().items():
        assert torch.equal(clip.visual.state_dict()[key], value), key
    original, _ = load_clip(small_teacher, quick_gelu=True)
    for key, value in original.state_dict().items():
        if not key.startswith("visual."):
            assert torch.equal(clip.state_dict()[key], value), key
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, renamed into place
