"""Miniatures of the released RRSIS-D, RefSegRS and GeoPixelD layouts, written in their own encodings."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.conftest import write_image
from tests.training.geomag.rle import encode


def blocks(seed: int, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8 of flat 8x8 colour blocks (JPEG keeps them nearly exact)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, ((height + 7) // 8, (width + 7) // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(cells, 8, 0), 8, 1)[:height, :width]


def write_rrsisd(root: Path) -> dict:
    """refer/data with rrsisd/refs(unc).p, rrsisd/instances.json and images/rrsisd/JPEGImages: two images,
    three refs (train: a polygon ann with two sentences; val: a compressed RLE; test: an uncompressed RLE)."""
    (root / "rrsisd").mkdir(parents=True)
    (root / "images" / "rrsisd" / "JPEGImages").mkdir(parents=True)
    images = {1: blocks(1, 24, 32), 2: blocks(2, 16, 16)}
    for image_id, pixels in images.items():
        Image.fromarray(pixels).save(root / "images" / "rrsisd" / "JPEGImages" / f"{image_id:05d}.jpg", quality=100, subsampling=0)
    rle_mask = np.zeros((16, 16), bool)
    rle_mask[3:9, 5:12] = True
    raw_mask = np.zeros((24, 32), bool)
    raw_mask[10:20, 0:4] = True
    instances = {
        "images": [{"id": 1, "file_name": "00001.jpg", "height": 24, "width": 32},
                   {"id": 2, "file_name": "00002.jpg", "height": 16, "width": 16}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 10, 2, 10, 6, 2, 6]],
             "bbox": [2, 2, 8, 4], "area": 32, "iscrowd": 0},
            {"id": 11, "image_id": 2, "category_id": 1, "segmentation": encode(rle_mask), "iscrowd": 0},
            {"id": 12, "image_id": 1, "category_id": 2, "segmentation": encode(raw_mask, compressed=False)},
        ],
        "categories": [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "bridge"}],
    }
    (root / "rrsisd" / "instances.json").write_text(json.dumps(instances))
    refs = [
        {"ref_id": 0, "ann_id": 10, "image_id": 1, "category_id": 1, "split": "train", "file_name": "00001_0.jpg",
         "sent_ids": [0, 1], "sentences": [{"raw": "The vehicle on the top", "sent": "the vehicle on the top",
                                            "sent_id": 0, "tokens": ["the", "vehicle", "on", "the", "top"]},
                                           {"raw": "a grey car", "sent": "a grey car", "sent_id": 1,
                                            "tokens": ["a", "grey", "car"]}]},
        {"ref_id": 1, "ann_id": 11, "image_id": 2, "category_id": 1, "split": "val", "sent_ids": [2],
         "sentences": [{"raw": "the car in the middle", "sent": "the car in the middle", "sent_id": 2}]},
        {"ref_id": 2, "ann_id": 12, "image_id": 1, "category_id": 2, "split": "test", "sent_ids": [3],
         "sentences": [{"raw": "the bridge on the left", "sent": "the bridge on the left", "sent_id": 3}]},
    ]
    (root / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    polygon_mask = np.zeros((24, 32), bool)
    polygon_mask[2:6, 2:10] = True
    return {"images": images, "masks": {10: polygon_mask, 11: rle_mask, 12: raw_mask}}


def write_refsegrs(root: Path) -> dict:
    """images/ID.tif, masks/ID.tif (0/255) and output_phrase_{train,val,test}.txt."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    images, masks = {}, {}
    for number in (5, 17):
        images[number] = blocks(number, 20, 20)
        masks[number] = np.zeros((20, 20), bool)
        masks[number][number % 7:number % 7 + 6, 3:15] = True
        write_image(root / "images" / f"{number}.tif", images[number].transpose(2, 0, 1))
        write_image(root / "masks" / f"{number}.tif", (masks[number] * 255).astype(np.uint8)[None])
    (root / "output_phrase_train.txt").write_text("5 road along the vehicle\n17 low vegetation\n\n5 white car\n")
    (root / "output_phrase_val.txt").write_text("17 the road\n")
    (root / "output_phrase_test.txt").write_text("")
    return {"images": images, "masks": masks}


def write_geopixeld(root: Path) -> dict:
    """data/GeoPixelD.json + data/GeoPixelD/{train,test}/NAME.{png,json}, paths as released."""
    train, test = root / "data" / "GeoPixelD" / "train", root / "data" / "GeoPixelD" / "test"
    train.mkdir(parents=True)
    test.mkdir(parents=True)
    image = blocks(3, 12, 16)
    Image.fromarray(image).save(train / "P0001_0_800_0_800.png")
    Image.fromarray(image[::-1].copy()).save(test / "P0002_0_800_0_800.png")
    answer = "The <p> tennis court-1 </p> [SEG] and the <p> tennis court-2 </p> [SEG] ."
    polygons = [[[[1, 1], [4, 1], [4, 3], [1, 3]]], [[[10, 5], [12, 5], [12, 6], [10, 6]], [[0, 10]]]]
    record = {"id": 0, "img": "data/GeoPixelD/train/P0001_0_800_0_800.png", "gcg_description": answer,
              "polygons": polygons}
    (train / "P0001_0_800_0_800.json").write_text(json.dumps(record))
    (test / "P0002_0_800_0_800.json").write_text(json.dumps({**record, "id": 1, "polygons": polygons[:1],
                                                              "gcg_description": "A <p> court </p> [SEG] ."}))
    listing = [{"id": 0, "conversations": [{"from": "human", "value": "Describe it with masks."},
                                           {"from": "bot", "value": answer}],
                "image": "data/GeoPixelD/train/P0001_0_800_0_800.png",
                "polygons": "data/GeoPixelD/train/P0001_0_800_0_800.json"}]
    (root / "data" / "GeoPixelD.json").write_text(json.dumps(listing))
    first = np.zeros((12, 16), bool)
    first[1:4, 1:5] = True
    second = np.zeros((12, 16), bool)
    second[5:7, 10:13] = True
    second[10, 0] = True
    return {"image": image, "answer": answer, "masks": np.stack([first, second])}


@pytest.fixture
def rrsisd(tmp_path):
    return tmp_path / "refer" / "data", write_rrsisd(tmp_path / "refer" / "data")


@pytest.fixture
def refsegrs(tmp_path):
    return tmp_path / "RefSegRS", write_refsegrs(tmp_path / "RefSegRS")


@pytest.fixture
def geopixeld(tmp_path):
    return tmp_path, write_geopixeld(tmp_path)


SAM2_SIZE = 64  # SAM2 hiera-t at 64 pixels: a 16x16 finest feature map, ~0.05 s an image on one thread


@pytest.fixture(scope="session")
def tiny_bases(tmp_path_factory):
    """The tiny random LLaVA and BERT of tests/helpers/geomag.py and a SAM2.1 hiera-t built at 64 pixels."""
    import torch

    from backend.torchvision_compat import ensure_torchvision_importable
    from tests.helpers.geomag import SAM2_CONFIG, tiny_bert_dir, tiny_llava_dir

    folder = tmp_path_factory.mktemp("geomag_bases")
    ensure_torchvision_importable()
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    sam2 = build_sam2(SAM2_CONFIG, ckpt_path=None, device="cpu",
                      hydra_overrides_extra=[f"++model.image_size={SAM2_SIZE}"])
    torch.save({"model": sam2.state_dict()}, folder / "sam2-64.pt")
    return {"vlm": str(tiny_llava_dir(folder)), "bert": str(tiny_bert_dir(folder)), "sam2_config": SAM2_CONFIG,
            "sam2_weights": str(folder / "sam2-64.pt"), "sam2_image_size": SAM2_SIZE}


def write_config(path: Path, out_dir: Path, stage: int, **sections: dict) -> Path:
    """A YAML config for a small CPU run of ``stage``; ``sections`` update the defaults section by section."""
    import yaml

    config = {"stage": stage,
              "train": {"out_dir": str(out_dir), "epochs": 2, "batch_size": 4, "device": "cpu", "num_workers": 0,
                        "log_every": 1, "checkpoint_every": 3}}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config))
    return path


def stage2_config(path: Path, out_dir: Path, bases: dict, **sections: dict) -> Path:
    """Stage 2 on 16 generated 64-pixel scenes, 8 held out, over the tiny bases."""
    defaults = {"data": {"generated": 16, "generated_size": 64, "val": "generated", "val_generated": 8},
                "model": {**bases, "lora_targets": "q_proj,v_proj"},
                "optim": {"lr": 1e-3, "warmup_steps": 0, "schedule": "constant"}}
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    return write_config(path, out_dir, 2, **defaults)
