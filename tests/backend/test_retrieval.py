"""Text-image retrieval in-process with a tiny CLIP: ranks, probabilities, and the image embedding cache."""
import csv
import os
import re

import pytest
import rasterio
import torch
import torch.nn.functional as F

from backend.engine import run
from backend.errors import UserInputError
from backend.jobs import RetrieveJob
from backend.zeroshot.embedding_cache import ImageEmbeddingCache, file_identity
from backend.zeroshot.encoder import ClipEncoder
from backend.zeroshot.images import clip_input
from tests.helpers.rasters import write_scene

QUERY = "a harbour with ships"


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    for index, (height, width) in enumerate([(120, 160), (300, 200), (230, 230), (90, 140)]):
        write_scene(images / ("sub" if index == 3 else "") / f"scene{index}.tif", height, width, seed=index)
    return images


@pytest.fixture(scope="module")
def clip(tiny_files):
    from backend.models.clip_loading import load_clip

    return load_clip(tiny_files["open_clip"], quick_gelu=True)[0]


def job(tiny_files, **fields):
    return RetrieveJob(clip_weights=str(tiny_files["open_clip"]), device="cpu", offline=True, **fields)


@torch.no_grad()
def image_embedding(clip, path):
    with rasterio.open(path) as source:
        return F.normalize(clip.encode_image(clip_input(source.read(), 224)[None]), dim=-1)[0]


@torch.no_grad()
def text_embedding(clip, texts):
    from backend.torchvision_compat import import_open_clip

    return F.normalize(clip.encode_text(import_open_clip().tokenize(texts)), dim=-1)


def counted_encodes(monkeypatch) -> list[int]:
    """The number of images the model encodes, batch by batch."""
    calls: list[int] = []
    encode = ClipEncoder._encode

    def counting(self, images):
        calls.append(images.shape[0])
        return encode(self, images)

    monkeypatch.setattr(ClipEncoder, "_encode", counting)
    return calls


def test_a_folders_images_are_ranked_by_cosine_with_the_text_as_written(folder, tiny_files, clip, tmp_path):
    out = tmp_path / "ranks.csv"
    result = run(job(tiny_files, folder=folder, text=QUERY, top=3, out=out))
    paths = sorted(folder.rglob("*.tif"))
    scores = torch.stack([image_embedding(clip, path) for path in paths]) @ text_embedding(clip, [QUERY])[0]
    best = torch.argsort(scores, descending=True)[:3].tolist()
    assert [row["file"] for row in result.rows] == [str(paths[i]) for i in best]
    assert [row["score"] for row in result.rows] == pytest.approx([float(scores[i]) for i in best], abs=2e-6)
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["rank"], row["file"]) for row in rows] == [(str(n), str(paths[i])) for n, i in enumerate(best, 1)]
    assert (result.mode, result.ranked, result.encoded, result.cached) == ("images", 4, 4, 0)


def test_texts_are_ranked_for_an_image_with_softmax_probabilities(folder, tiny_files, clip, tmp_path):
    texts = ["a harbour", "a dense forest", "a road through fields", "a river"]
    textfile = tmp_path / "texts.txt"
    textfile.write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    from backend.zeroshot.texts import read_texts_file

    image = folder / "scene1.tif"
    result = run(job(tiny_files, image=image, texts=read_texts_file(textfile)))
    scores = text_embedding(clip, texts) @ image_embedding(clip, image)
    probabilities = torch.softmax(clip.logit_scale.detach().exp() * scores, dim=0)
    order = torch.argsort(scores, descending=True).tolist()
    assert [row["text"] for row in result.rows] == [texts[i] for i in order]
    assert [row["probability"] for row in result.rows] == pytest.approx([float(probabilities[i]) for i in order],
                                                                        abs=2e-6)
    assert sum(row["probability"] for row in result.rows) == pytest.approx(1, abs=1e-5)


def test_the_second_query_reads_the_cache_and_a_changed_file_is_encoded_again(folder, tiny_files, monkeypatch,
                                                                              isolated_home):
    encodes = counted_encodes(monkeypatch)
    first = run(job(tiny_files, folder=folder, text=QUERY))
    assert sum(encodes) == 4 and (first.encoded, first.cached) == (4, 0)
    encodes.clear()
    second = run(job(tiny_files, folder=folder, text="an airport"))
    assert encodes == [] and (second.encoded, second.cached) == (0, 4)
    assert len(list((isolated_home / "cache" / "images").glob("*/*.safetensors"))) == 2  # one file per folder
    changed = folder / "scene2.tif"
    write_scene(changed, 230, 230, seed=9)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new modification time, as an edit gives
    third = run(job(tiny_files, folder=folder, text=QUERY))
    assert sum(encodes) == 1 and (third.encoded, third.cached) == (1, 3)
    assert third.rows != first.rows  # scene2 has new pixels


def test_the_cache_is_per_model(folder, tiny_files, monkeypatch):
    encodes = counted_encodes(monkeypatch)
    run(job(tiny_files, folder=folder, text=QUERY))
    run(job(tiny_files, folder=folder, text=QUERY, activation="gelu"))  # another model: its own embeddings
    assert sum(encodes) == 8


def test_a_damaged_or_stale_cache_file_is_not_trusted(tmp_path):
    image = tmp_path / "a.tif"
    image.write_bytes(b"pixels")
    cache = ImageEmbeddingCache(tmp_path / "cache", "model A")
    identity = file_identity(image)
    cache.put(image, identity, torch.ones(4))
    cache.flush()
    assert torch.equal(ImageEmbeddingCache(tmp_path / "cache", "model A").get(image, identity), torch.ones(4))
    assert ImageEmbeddingCache(tmp_path / "cache", "model A").get(image, (identity[0] + 1, identity[1])) is None
    cache.path_for(tmp_path).write_bytes(b"damaged")
    assert ImageEmbeddingCache(tmp_path / "cache", "model A").get(image, identity) is None
    image.unlink()
    cache.put(tmp_path / "b.tif", (1, 1), torch.ones(4))  # b.tif does not exist: dropped at the write, like a.tif
    cache.flush()
    assert not cache.path_for(tmp_path).exists()


@pytest.mark.parametrize("fields,sentence", [
    ({}, "give folder and text to rank a folder's images for a text, or image and texts to rank texts for an "
         "image (one of the two)."),
    ({"folder": "{folder}"}, "folder ranks its images for one text; give text (and texts only with image)."),
    ({"folder": "{folder}", "text": "  "}, "text is empty; give what to search for, e.g. 'a harbour with ships'."),
    ({"image": "{folder}/scene0.tif", "text": "x"}, "image ranks several texts for it; give texts 'a; b; c' (text "
                                                    "only with folder)."),
    ({"image": "{folder}/scene0.tif", "texts": " ; "}, "texts holds no text; give texts separated by ';', e.g. 'a "
                                                       "harbour; a forest'."),
    ({"folder": "{folder}/scene0.tif", "text": "x"}, "folder {folder}/scene0.tif is a file, not a folder; give a "
                                                     "folder, or the file as image with texts."),
    ({"folder": "{folder}", "text": "x", "top": 0}, "top 0 must be at least 1."),
    ({"folder": "{folder}", "text": "x", "out": "{folder}/r.txt"}, "out {folder}/r.txt must end in .csv; rename it."),
    ({"image": "{folder}/nothing.tif", "texts": "a; b"}, "image {folder}/nothing.tif does not exist; check the "
                                                         "path."),
])
def test_bad_input_is_one_sentence_naming_the_field(folder, tiny_files, fields, sentence):
    values = {name: value.format(folder=folder) if isinstance(value, str) else value
              for name, value in fields.items()}
    with pytest.raises(UserInputError) as caught:
        job(tiny_files, **values).validate()
    assert str(caught.value) == sentence.format(folder=folder)
    assert set(re.findall(r"\{(\w+)\}", caught.value.template)) <= set(caught.value.fields) != set()
