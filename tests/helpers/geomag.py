"""Tiny random GeoMag base models written to disk in their released formats, and a tiny GeoMag checkpoint.

- ``tiny_llava_dir``: a LLaVA-format folder (CLIP tower 2 layers width 64, image 64, patch 8 -> 64 image
  tokens; Llama 2 layers hidden 64) with a byte-level BPE tokenizer (any text tokenises; ~1000 tokens learnt
  from the words the generated referring data uses) and a ``LlavaProcessor``, as ``save_pretrained`` writes.
- ``tiny_bert_dir``: a BERT folder (2 layers, hidden 32) with a WordPiece tokenizer.
- ``tiny_sam2_weights``: SAM2.1 hiera-t built at image size 256, random weights, saved as ``{'model': state_dict}``.
- ``tiny_geomag_config`` / ``tiny_geomag_checkpoint``: a GeoMag config over those and a one-file checkpoint.
Every writer returns at once when its output already exists, so a session-scoped folder builds each once.
"""
from __future__ import annotations

from pathlib import Path

import torch

from backend.torchvision_compat import ensure_torchvision_importable

SAM2_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
SAM2_IMAGE_SIZE = 256
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
WORDS = """
USER ASSISTANT Sure , it is . the a an of in on at to and or with what where which how many is are there this
that image picture photo show segment please find locate describe caption object objects region mask
red green blue yellow orange purple white black gray grey brown pink cyan magenta colour color
circle square triangle rectangle star ellipse cross shape shapes small large big tiny top bottom left right
middle center centre upper lower above below next near far one two three four five six seven eight nine ten
0 1 2 3 4 5 6 7 8 9 building buildings road roads car cars ship ships plane airplane tree trees water river
lake field farmland forest house houses bridge harbor harbour airport runway vehicle vehicles storage tank
roundabout stadium court parking lot ground residential area urban rural scene remote sensing satellite aerial
yes no The A It This There Yes No I see can Here here</p> <p> p
""".split()


def _corpus() -> list[str]:
    lines = [" ".join(WORDS)]
    lines += [f"the {colour} {shape} on the {side}" for colour in WORDS[60:80] for shape in WORDS[80:86]
              for side in ("left", "right", "top", "bottom")]
    lines += ["USER: <image>\nPlease segment the red circle. ASSISTANT: Sure, it is [SEG].",
              "<p>the red circle</p> [SEG] and <p>the blue square</p> [SEG]."]
    return lines


def tiny_tokenizer():
    """A byte-level BPE tokenizer (Llama-style special tokens, BOS prepended) as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_corpus(), trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                             special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})


def tiny_llava_dir(folder: Path) -> Path:
    """A random LLaVA-1.5-format checkpoint folder (model + tokenizer + processor); ``from_pretrained`` reads it."""
    folder = Path(folder) / "tiny-llava"
    if (folder / "config.json").exists():
        return folder
    ensure_torchvision_importable()
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    tokenizer = tiny_tokenizer()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=64, patch_size=8, projection_dim=64),
        text_config=LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=4, vocab_size=len(tokenizer), max_position_embeddings=512,
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_seq_length=64,
        vision_feature_layer=-2, vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_bert_dir(folder: Path) -> Path:
    """A random BERT folder (2 layers, hidden 32) with a WordPiece tokenizer over the same words."""
    folder = Path(folder) / "tiny-bert"
    if (folder / "config.json").exists():
        return folder
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w.lower() for w in WORDS if w.isalnum()}),
             *(chr(c) for c in range(33, 127))]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_sam2_weights(folder: Path) -> Path:
    """SAM2.1 hiera-t at image size 256 with random weights, saved as the released ``{'model': state_dict}``."""
    path = Path(folder) / "tiny-sam2.pt"
    if path.exists():
        return path
    ensure_torchvision_importable()
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    model = build_sam2(SAM2_CONFIG, ckpt_path=None, device="cpu",
                       hydra_overrides_extra=[f"++model.image_size={SAM2_IMAGE_SIZE}"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path)
    return path


def tiny_geomag_config(folder: Path, **changes):
    """A GeoMagConfig over the tiny base models in ``folder`` (built there on first use)."""
    from backend.models.geomag.config import GeoMagConfig

    return GeoMagConfig(vlm=str(tiny_llava_dir(folder)), sam2_config=SAM2_CONFIG,
                        sam2_weights=str(tiny_sam2_weights(folder)), sam2_image_size=SAM2_IMAGE_SIZE,
                        bert=str(tiny_bert_dir(folder)), **changes)


def tiny_geomag(folder: Path, seed: int = 0, **changes):
    """A GeoMag on the CPU over the tiny base models, with its trainable parts randomised (LoRA B included)."""
    from backend.models.geomag.model import GeoMag

    model = GeoMag.from_config(tiny_geomag_config(folder, **changes))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in model.trainable_parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


def tiny_geomag_checkpoint(folder: Path, tmra_state: dict[str, torch.Tensor] | None = None, **changes) -> Path:
    """A one-file GeoMag checkpoint over the tiny base models (random trainable parts)."""
    from backend.models.geomag.checkpoint import save_checkpoint

    path = Path(folder) / "tiny-geomag.safetensors"
    if not path.exists():
        save_checkpoint(path, tiny_geomag(folder, **changes), tmra_state=tmra_state)
    return path
