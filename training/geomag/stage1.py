"""Stage 1: the TMRA task granularity classifier (paper §3.2.1) on (query, granularity) pairs.

BERT is frozen, so each query's [CLS] feature is computed once, before training; the
classifier (768-256-128-3 for BERT-base) learns with cross-entropy. The export,
``tmra_classifier.safetensors``, holds the classifier's state dict (the ``tmra.*`` tensors of
a GeoMag checkpoint, without the prefix); stage 2 takes it as ``model.tmra_weights``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from backend.errors import CheckpointFormatError, UserInputError
from backend.models.geomag.tmra import GranularityClassifier, QueryEncoder
from training.common.loop import LoopResult, train_from_config
from training.common.sampling import SampleKey
from training.geomag.config import TmraConfig
from training.geomag.generated import granularity_pairs
from training.geomag.pairs import labels, read_pairs

EXPORT_FILE = "tmra_classifier.safetensors"
FORMAT = "rs-openvocab/geomag-tmra"


class QueryFeatures(Dataset):
    """Precomputed (N, hidden) query features and their (N,) labels; ``{"query", "label"}`` per item."""

    def __init__(self, features: torch.Tensor, targets: torch.Tensor) -> None:
        self.features, self.targets = features, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: SampleKey | int) -> dict[str, torch.Tensor]:
        index = key.index if isinstance(key, SampleKey) else int(key)
        return {"query": self.features[index], "label": self.targets[index]}


def encode_pairs(encoder: QueryEncoder, pairs: list[tuple[str, str]], batch_size: int = 64) -> QueryFeatures:
    features = [encoder.encode([query for query, _ in pairs[start:start + batch_size]]).cpu()
                for start in range(0, len(pairs), batch_size)]
    return QueryFeatures(torch.cat(features), torch.tensor(labels(pairs)))


@torch.no_grad()
def accuracy(classifier: GranularityClassifier, data: QueryFeatures, device: torch.device) -> float:
    was_training = classifier.training
    classifier.eval()
    predicted = classifier(data.features.to(device)).argmax(1).cpu()
    classifier.train(was_training)
    return float((predicted == data.targets).float().mean())


class TmraTask:
    """The loop's ``TrainingTask``: cross-entropy of the classifier on precomputed features."""

    def __init__(self, hidden: int, config: TmraConfig, device: torch.device,
                 validation: QueryFeatures | None) -> None:
        self.module = GranularityClassifier(hidden)
        self.config, self.device, self.validation = config, device, validation

    def losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"total": F.cross_entropy(self.module(batch["query"].float()), batch["label"])}

    def scalars(self) -> dict[str, float]:
        return {}

    def after_step(self) -> None:
        pass

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        return {} if self.validation is None else {"accuracy": accuracy(self.module, self.validation, self.device)}

    def export(self, out_dir: Path, epoch: int) -> Path:
        return save_tmra(out_dir / EXPORT_FILE, self.module, self.config.model.bert)


def save_tmra(path: Path, classifier: GranularityClassifier, bert: str) -> Path:
    """The classifier's state dict as safetensors (atomically), the BERT it was trained on in the metadata."""
    import os

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tensors = {key: value.detach().cpu().contiguous() for key, value in classifier.state_dict().items()}
    try:
        save_file(tensors, str(partial), metadata={"format": FORMAT, "bert": bert})
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_tmra(path: str | Path) -> dict[str, torch.Tensor]:
    """A stage 1 export's state dict; anything else is one sentence naming the file."""
    from safetensors import safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserInputError(f"model.tmra_weights: {path} does not exist; give stage 1's {EXPORT_FILE}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception:  # noqa: BLE001 - a damaged header fails in several ways
        raise CheckpointFormatError(f"{path} is not a safetensors file; give stage 1's {EXPORT_FILE}.") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointFormatError(f"{path} is not a TMRA classifier written by stage 1; give its {EXPORT_FILE}.")
    return state


def _pairs(path: str | None, generated: int, seed: int, key: str) -> list[tuple[str, str]]:
    return (read_pairs(path, key) if path else []) + granularity_pairs(generated, seed)


def build_task(config: TmraConfig, device: torch.device) -> tuple[TmraTask, QueryFeatures]:
    data = config.data
    train_pairs = _pairs(data.train_pairs, data.generated_pairs, config.train.seed, "data.train_pairs")
    val_pairs = _pairs(data.val_pairs, data.generated_val_pairs, config.train.seed + 1, "data.val_pairs")
    try:
        encoder = QueryEncoder(config.model.bert, device, config.model.max_length)
    except OSError as error:
        raise UserInputError(f"model.bert: cannot load the BERT {config.model.bert!r} "
                             f"({str(error).splitlines()[0][:120]}); give a Hugging Face name or a local folder.") from None
    validation = encode_pairs(encoder, val_pairs) if val_pairs else None
    task = TmraTask(encoder.hidden_size, config, device, validation)
    return task, encode_pairs(encoder, train_pairs)


def train(config: TmraConfig, resume: bool = False, on_step: Callable[[int], None] | None = None) -> LoopResult:
    """Run (or continue) stage 1; the classifier is exported to out_dir/tmra_classifier.safetensors."""
    return train_from_config(config, build_task, resume, on_step)
