import dataclasses
import threading

import pytest
import torch

from backend.errors import UserInputError
from backend.prompts import (TextEmbeddingCache, encode_queries, openai_imagenet_templates, parse_class_file,
                             parse_inline_classes, prompt_length, templates_digest, text_encoder)
from backend.torchvision_compat import import_open_clip
from tests.helpers.checkpoints import TINY, tiny_clip
from tests.helpers.models import segmentor


def test_class_file_lines_are_classes_and_commas_synonyms(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("background,clutter\nbuilding,roof,house\n\nroad\n", encoding="utf-8")
    classes = parse_class_file(path)
    assert classes.names == ["background", "building", "road"]
    assert classes.queries == ["background", "clutter", "building", "roof", "house", "road"]
    assert classes.query_to_class == [0, 0, 1, 1, 1, 2]


def test_inline_form_matches_the_file_form(tmp_path):
    (tmp_path / "c.txt").write_text("background\nbuilding,roof,house\nroad\n")
    assert parse_inline_classes("background; building, roof ,house; road") == parse_class_file(tmp_path / "c.txt")


@pytest.mark.parametrize("text,message", [
    ("", "holds no class names"), (" ; ", "holds no class names"),
    ("building,,roof", "empty name"), ("road; water; Road", "given to two classes"),
])
def test_bad_class_lists_are_explained(text, message):
    with pytest.raises(UserInputError, match=message):
        parse_inline_classes(text)


def test_a_byte_order_mark_is_not_part_of_the_first_class(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffwater\r\nbuilding,roof\r\n".encode("utf-8"))
    assert parse_class_file(path).synonyms == (("water",), ("building", "roof"))


@pytest.mark.parametrize("content", [b"water\nbuil\x00ding\n", b"water\x1b[31m\nland\n", b"water\x1eland\n"])
def test_control_characters_are_refused_with_their_line(tmp_path, content):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match="holds the control character") as raised:
        parse_class_file(path)
    assert raised.value.fields == ("classes_file",)


def test_missing_class_file_is_named(tmp_path):
    with pytest.raises(UserInputError, match="nope.txt does not exist"):
        parse_class_file(tmp_path / "nope.txt")


def test_query_embedding_is_the_normalised_mean_of_normalised_templates():
    templates = openai_imagenet_templates()
    assert len(templates) == 80 and templates[0]("roof") == "a bad photo of a roof."
    torch.manual_seed(0)
    table = torch.randn(1000, 8)
    encode = lambda tokens: table[tokens].sum(dim=1)  # noqa: E731
    tokenize = lambda texts: torch.tensor([[len(t) % 1000, len(t.split()) % 1000] for t in texts])  # noqa: E731
    features = encode_queries(encode, tokenize, ["roof", "river bank"], templates)
    for row, query in zip(features, ["roof", "river bank"]):
        each = encode(tokenize([t(query) for t in templates]))
        mean = (each / each.norm(dim=-1, keepdim=True)).mean(0)
        torch.testing.assert_close(row, mean / mean.norm())
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))


def test_templates_of_several_queries_may_share_a_batch():
    templates = openai_imagenet_templates()[:5]
    torch.manual_seed(0)
    table = torch.randn(1000, 8)
    encode = lambda tokens: table[tokens].sum(dim=1)  # noqa: E731
    tokenize = lambda texts: torch.tensor([[len(t) % 1000, len(t.split()) % 1000] for t in texts])  # noqa: E731
    queries = ["roof", "river bank", "tree"]
    torch.testing.assert_close(encode_queries(encode, tokenize, queries, templates, queries_per_batch=2),
                               encode_queries(encode, tokenize, queries, templates))


# --- the text tower run at each batch's longest prompt ------------------------------------------------------

def tokenize_at(context: int):
    tokenize = import_open_clip().tokenize
    return lambda texts: tokenize(texts, context)


QUERIES = ["building", "low vegetation", "a very long and unusual class name with many words in it", "car"]


def sequence_lengths(model: torch.nn.Module) -> list[int]:
    """The lengths the model's text blocks see, recorded by a hook."""
    lengths = []
    blocks = model.text.transformer if hasattr(model, "text") else model.transformer
    blocks.register_forward_hook(lambda module, inputs, output: lengths.append(inputs[0].shape[1]))
    return lengths


def assert_cut_equals_full(model: torch.nn.Module, context: int) -> None:
    templates = openai_imagenet_templates()[::8]
    encode = text_encoder(model)
    assert encode != model.encode_text  # the shortened forward
    lengths = sequence_lengths(model)
    full = encode_queries(model.encode_text, tokenize_at(context), QUERIES, templates)
    cut = encode_queries(encode, tokenize_at(context), QUERIES, templates)
    assert lengths[:len(QUERIES)] == [context] * len(QUERIES)
    longest = [int(tokenize_at(context)([t(q) for t in templates]).ne(0).sum(1).max()) for q in QUERIES]
    assert lengths[len(QUERIES):] == longest and max(longest) < context
    torch.testing.assert_close(cut, full, atol=1e-6, rtol=0)
    tokens = torch.randint(1, 49000, (6, context))  # no padding: nothing to cut, the same forward
    torch.testing.assert_close(encode(tokens), model.encode_text(tokens), atol=1e-6, rtol=0)


@pytest.mark.parametrize("context", [77, 248])  # OpenAI's context and LongCLIP's (FarSLIP ViT-B/16)
def test_cut_prompts_give_the_full_length_embeddings(context):
    assert_cut_equals_full(tiny_clip(dataclasses.replace(TINY, context_length=context)), context)


def small_clip(custom_text: bool = False, **text):
    """A small open_clip model of the library's own construction (CLIP, or CustomTextCLIP's TextTransformer)."""
    model = import_open_clip().model
    torch.manual_seed(1)
    vision = model.CLIPVisionCfg(layers=1, width=64, head_width=32, patch_size=16, image_size=32)
    text_cfg = model.CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=2, layers=2, **text)
    kind = model.CustomTextCLIP if custom_text else model.CLIP
    return kind(32, vision_cfg=vision, text_cfg=text_cfg).eval()


@pytest.mark.parametrize("custom_text,text", [(False, {}), (True, {}), (True, {"qk_norm": True}),
                                              (False, {"proj_bias": True, "proj_type": "linear"})])
def test_open_clip_text_towers_are_cut_alike(custom_text, text):
    assert_cut_equals_full(small_clip(custom_text, **text), 77)


class OwnTextForward(torch.nn.Module):
    """A text tower of another library: bidirectional, mean-pooled."""

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(49408, 16)
        self.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)

    def encode_text(self, tokens):
        return self.layer(self.embedding(tokens)).mean(dim=1)


@pytest.mark.parametrize("build", [
    lambda: small_clip(no_causal_mask=True),  # bidirectional
    lambda: small_clip(True, no_causal_mask=True),
    lambda: small_clip(pool_type="last"),
    lambda: small_clip(True, pool_type="first"),
    lambda: small_clip(True, embed_cls=True),  # CoCa's class token
    lambda: small_clip(True, pool_type="eos", eos_id=49407),  # causal, but pooled at the first EOT: not inspected
    lambda: OwnTextForward().eval(),
])
def test_towers_that_cannot_be_cut_run_at_full_length(build):
    model = build()
    assert text_encoder(model) == model.encode_text
    templates = openai_imagenet_templates()[:4]
    torch.testing.assert_close(encode_queries(text_encoder(model), tokenize_at(77), QUERIES, templates),
                               encode_queries(model.encode_text, tokenize_at(77), QUERIES, templates))


def test_a_subclass_with_its_own_text_forward_is_not_cut():
    clip_class = import_open_clip().model.CLIP

    class LongPositions(clip_class):  # LongCLIP's original code mixes two positional tables in encode_text
        def encode_text(self, text, normalize=False):
            return super().encode_text(text, normalize)

    model = small_clip()
    model.__class__ = LongPositions
    assert text_encoder(model) == model.encode_text


def test_a_changed_mask_is_not_cut():
    model = tiny_clip()
    model.attn_mask = torch.zeros_like(model.attn_mask)  # full attention
    assert text_encoder(model) == model.encode_text


def test_prompt_length_keeps_every_token_and_the_eot():
    tokens = torch.tensor([[49406, 5, 49407, 0, 0, 0], [49406, 5, 6, 7, 49407, 0]])
    assert prompt_length(tokens) == 5
    assert prompt_length(torch.zeros(2, 6, dtype=torch.long)) == 1
    assert prompt_length(torch.tensor([[3, 49407, 0, 9, 0]])) == 4  # a stray token after the EOT stays


def test_prompt_uses_the_cut_tower_and_the_cache(isolated_home):
    model = segmentor(tiny_clip())
    classes = parse_inline_classes("background; building,roof; road")
    lengths = sequence_lengths(model.net.clip)
    embeddings = model.prompt(classes).embeddings
    assert len(lengths) == 4 and max(lengths) < 77
    full = encode_queries(model.net.clip.encode_text, tokenize_at(77), classes.queries, openai_imagenet_templates())
    torch.testing.assert_close(embeddings, full, atol=1e-6, rtol=0)
    assert len(list((isolated_home / "cache" / "text").glob("*.safetensors"))) == 4  # one entry per query
    del lengths[:]
    assert torch.equal(model.prompt(parse_inline_classes("road; building")).embeddings, embeddings[[3, 1]])
    assert not lengths  # all from the cache


# --- the cache: one entry per query -------------------------------------------------------------------------

TEMPLATES = [lambda c: f"a photo of a {c}.", lambda c: f"an image of {c}."]


class Counting:
    """A compute function that records the queries it is asked for."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, queries):
        self.calls.append(list(queries))
        return torch.stack([embedding(query) for query in queries])


def embedding(query: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(map(ord, query)))
    return torch.nn.functional.normalize(torch.randn(4, generator=generator), dim=0)


def test_editing_one_class_computes_that_class_only(tmp_path):
    cache, compute = TextEmbeddingCache(tmp_path), Counting()
    first = cache.get_or_compute("model-a", ["water", "building", "road"], TEMPLATES, compute)
    assert compute.calls == [["water", "building", "road"]]
    torch.testing.assert_close(first, torch.stack([embedding(q) for q in ["water", "building", "road"]]))
    edited = cache.get_or_compute("model-a", ["water", "buildings", "road"], TEMPLATES, compute)
    assert compute.calls[1:] == [["buildings"]]
    assert torch.equal(edited[[0, 2]], first[[0, 2]])
    assert torch.equal(cache.get_or_compute("model-a", ["road", "water"], TEMPLATES, compute), first[[2, 0]])
    assert len(compute.calls) == 2


def test_a_repeated_query_is_computed_once(tmp_path):
    cache, compute = TextEmbeddingCache(tmp_path), Counting()
    result = cache.get_or_compute("model-a", ["roof", "roof", "road"], TEMPLATES, compute)
    assert compute.calls == [["roof", "road"]] and torch.equal(result[0], result[1])


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(path.read_bytes()[:40]),  # cut short
    lambda path: path.write_bytes(b"\0" * 200),
    lambda path: path.write_bytes(b""),
])
def test_a_damaged_entry_is_recomputed(tmp_path, damage):
    cache, compute = TextEmbeddingCache(tmp_path), Counting()
    first = cache.get_or_compute("model-a", ["water", "road"], TEMPLATES, compute)
    damage(cache.path("model-a", "road", templates_digest(TEMPLATES)))
    assert torch.equal(cache.get_or_compute("model-a", ["water", "road"], TEMPLATES, compute), first)
    assert compute.calls[1:] == [["road"]]
    cache.get_or_compute("model-a", ["water", "road"], TEMPLATES, compute)  # rewritten whole
    assert len(compute.calls) == 2


def test_an_entry_of_another_query_is_not_trusted(tmp_path):
    cache, compute = TextEmbeddingCache(tmp_path), Counting()
    cache.get_or_compute("model-a", ["water", "road"], TEMPLATES, compute)
    digest = templates_digest(TEMPLATES)
    cache.path("model-a", "water", digest).replace(cache.path("model-a", "road", digest))
    assert torch.equal(cache.get_or_compute("model-a", ["road"], TEMPLATES, compute)[0], embedding("road"))
    assert compute.calls[1:] == [["road"]]


def test_templates_and_model_identity_do_not_share_entries(tmp_path):
    cache, compute = TextEmbeddingCache(tmp_path), Counting()
    cache.get_or_compute("model-a", ["water"], TEMPLATES, compute)
    cache.get_or_compute("model-b", ["water"], TEMPLATES, compute)
    cache.get_or_compute("model-a", ["water"], TEMPLATES[:1], compute)
    cache.get_or_compute("model-a", ["water"], [lambda c: f"a photo of a {c}!", TEMPLATES[1]], compute)  # same count
    assert len(compute.calls) == 4
    assert len(list(tmp_path.glob("*.safetensors"))) == 4
    cache.get_or_compute("model-a", ["water"], [lambda c: "a photo of a " + c + ".", TEMPLATES[1]], compute)
    assert len(compute.calls) == 4  # the same template text, another function


def test_writers_at_once_leave_whole_entries(tmp_path):
    cache = TextEmbeddingCache(tmp_path)
    queries = [f"class {i}" for i in range(5)]
    expected = torch.stack([embedding(q) for q in queries])
    errors = []

    def work():
        try:
            for _ in range(10):
                for query in queries:  # each writer rewrites every entry, the others reading them meanwhile
                    cache._write(cache.path("m", query, templates_digest(TEMPLATES)), embedding(query),
                                 cache._metadata("m", query, templates_digest(TEMPLATES)))
                assert torch.equal(cache.get_or_compute("m", queries, TEMPLATES, Counting()), expected)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".safetensors"] * 5  # no temporary files left
