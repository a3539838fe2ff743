import pytest
import torch
from torch import nn

from backend.models.dense_attention import dense_attention


def direct(attn: nn.MultiheadAttention, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Per sample and per head, the formulas of the methods written out."""
    heads = attn.num_heads
    width = x.shape[-1]
    d = width // heads
    wq, wk, wv = attn.in_proj_weight.split(width)
    bq, bk, bv = attn.in_proj_bias.split(width)
    outputs = []
    for sample in x:
        q, k, v = sample @ wq.T + bq, sample @ wk.T + bk, sample @ wv.T + bv
        per_head = []
        for h in range(heads):
            qh, kh, vh = (t[:, h * d:(h + 1) * d] for t in (q, k, v))
            s = d ** -0.5
            soft = lambda a, b: torch.softmax(a @ b.T * s, dim=-1)  # noqa: E731
            weights = {"segearth": soft(qh, qh) + soft(kh, kh) + soft(vh, vh),
                       "sclip": soft(qh, qh) + soft(kh, kh),
                       "clearclip": soft(qh, qh),
                       "vanilla": soft(qh, kh)}[mode]
            per_head.append(weights @ vh)
        outputs.append(torch.cat(per_head, dim=-1) @ attn.out_proj.weight.T + attn.out_proj.bias)
    return torch.stack(outputs)


@pytest.fixture
def attention():
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(48, 3, batch_first=True)
    with torch.no_grad():
        attn.in_proj_bias.normal_()
        attn.out_proj.bias.normal_()
    return attn.eval()


@pytest.mark.parametrize("mode", ["segearth", "sclip", "clearclip", "vanilla"])
def test_modes_match_their_formulas(attention, mode):
    x = torch.randn(2, 10, 48)
    torch.testing.assert_close(dense_attention(attention, x, mode), direct(attention, x, mode))


def test_vanilla_is_the_blocks_own_attention(attention):
    x = torch.randn(2, 10, 48)
    expected, _ = attention(x, x, x, need_weights=False)
    torch.testing.assert_close(dense_attention(attention, x, "vanilla"), expected, rtol=1e-5, atol=1e-5)


def test_unknown_mode_is_refused(attention):
    with pytest.raises(ValueError, match="unknown attention mode"):
        dense_attention(attention, torch.randn(1, 3, 48), "maskclip")
