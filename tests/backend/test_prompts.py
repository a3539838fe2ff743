import pytest
import torch

from backend.errors import UserInputError
from backend.prompts import (TextEmbeddingCache, encode_queries, openai_imagenet_templates, parse_class_file,
                             parse_inline_classes)


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


def test_cache_is_keyed_by_model_and_queries(tmp_path):
    cache = TextEmbeddingCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return torch.randn(2, 4)

    first = cache.get_or_compute("model-a", ["a", "b"], 80, compute)
    assert torch.equal(cache.get_or_compute("model-a", ["a", "b"], 80, compute), first)
    assert len(calls) == 1
    cache.get_or_compute("model-b", ["a", "b"], 80, compute)
    cache.get_or_compute("model-a", ["b", "a"], 80, compute)
    assert len(calls) == 3
