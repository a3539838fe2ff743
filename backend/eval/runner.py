"""``evaluate(job)``: score a model (or saved predictions) on benchmark splits, resumably, and write the report.

For each data set: find its split under the root in a known layout, take the first
``limit`` images by id, and for each image not scored yet predict it at the authors'
image-level protocol, decode its label and add both to the split's confusion matrix.
Partial results are saved every few seconds (``state.json``), so a second run with the same
settings continues where the first stopped. The report (JSON and Markdown, the paper's
number beside each of ours) is written when every data set is done.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from backend.errors import Cancelled, UserInputError
from backend.eval.datasets import DatasetSpec, find_dataset, open_split, read_label, read_rgb
from backend.eval.job import EvalJob
from backend.eval.predictions import read_prediction, write_prediction
from backend.eval.state import RunState
from backend.eval.suites import find_suite, paper_number
from backend.models.registry import find_model_preset

log = logging.getLogger("rsov")
Progress = Callable[[str, float, float], None]  # (stage: the data set's title, images done, images in all)
DEFAULT_MODEL = "segearth-ov"


@dataclass
class DatasetResult:
    dataset: str
    title: str
    split: str
    layout: str
    model: str
    images: int  # scored
    scores: dict
    metric: str  # "miou" or "foreground_iou": the number the paper reports
    paper: float | None  # the paper's number (%)
    paper_source: str | None
    seconds: float
    settings: dict  # what decided the numbers (the run's fingerprint)
    confusion_matrix: list[list[int]]

    @property
    def value(self) -> float | None:
        """Our number in % (the paper's metric)."""
        value = self.scores[self.metric]
        return None if value is None else 100.0 * value


@dataclass
class EvalReport:
    title: str
    results: list[DatasetResult]
    outputs: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # data set -> why (a suite member not found)

    @property
    def scores(self) -> dict:
        """The scores of the only (or first) data set."""
        return self.results[0].scores


def evaluate(job: EvalJob, progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
             models=None) -> EvalReport:
    """Run ``job`` (see ``EvalJob``) and write its report under ``job.out``."""
    from backend.eval.report import write_report

    job.validate()
    if job.mode == "labels":
        from backend.eval.own_labels import evaluate_own_labels

        report = evaluate_own_labels(job, progress, should_stop, models)
    elif job.mode == "suite":
        suite = find_suite(job.suite)
        report = EvalReport(suite.title, [])
        for name in suite.datasets:
            spec = find_dataset(name)
            root = dataset_root(Path(job.root), spec)
            if root is None:
                report.skipped[name] = (f"no folder {spec.folder} under {job.root}")
                log.warning("%s: no folder %s under %s; skipped (see docs/datasets.md).", spec.title, spec.folder,
                            job.root)
                continue
            report.results.append(evaluate_dataset(job, spec, root, job.model or suite.model, progress, should_stop,
                                                   models))
        if not report.results:
            raise UserInputError(f"{{root}} {job.root} holds none of the data sets of {suite.title} (folders "
                                 f"{', '.join(find_dataset(n).folder for n in suite.datasets)}); see "
                                 "docs/datasets.md.", "root")
    else:
        spec = find_dataset(job.dataset)
        result = evaluate_dataset(job, spec, Path(job.root), job.model or DEFAULT_MODEL, progress, should_stop,
                                  models)
        report = EvalReport(f"{spec.title} ({result.split})", [result])
    report.outputs = write_report(report, job)
    return report


def dataset_root(root: Path, spec: DatasetSpec) -> Path | None:
    """A suite member's folder under ``root``: its usual name, matched without regard to case."""
    exact = root / spec.folder
    if exact.is_dir():
        return exact
    wanted = spec.folder.lower()
    for child in sorted(root.iterdir()) if root.is_dir() else ():
        if child.is_dir() and child.name.lower() == wanted:
            return child
    return None


def run_folder(job: EvalJob, spec: DatasetSpec, model: str) -> Path:
    """Where a (data set, model) run keeps its partial results and predictions."""
    return job.out / (f"{spec.name}-predictions" if job.predictions else f"{spec.name}-{model}")


def evaluate_dataset(job: EvalJob, spec: DatasetSpec, root: Path, model: str, progress: Progress | None,
                     should_stop: Callable[[], bool] | None, models=None) -> DatasetResult:
    layout, samples = open_split(spec, root, job.split)
    if job.limit is not None:
        samples = samples[:job.limit]
    config = None if job.predictions else model_config(job, spec, model)
    class_lines = spec.class_lines(rs_ovss=config is not None and not find_model_preset(model).dataset_thresholds)
    fingerprint = {
        "dataset": spec.name, "split": job.split or spec.split, "layout": layout.name, "classes": class_lines,
        "protocol": dataclasses.asdict(spec.protocol),
        "model": None if config is None else _config_fields(config),
        "predictions": None if job.predictions is None else str(Path(job.predictions).resolve()),
    }
    folder = run_folder(job, spec, model)
    state = RunState.open(folder / "state.json", fingerprint, len(class_lines), job.overwrite)
    done = set(state.done)
    todo = [s for s in samples if s.id not in done]
    if done:
        log.info("%s: resuming, %d of %d images already scored.", spec.title, len(samples) - len(todo),
                 len(samples))
    predict = _predictor(job, spec, config, class_lines, models, should_stop) if todo else None
    report = progress or (lambda stage, done, total: None)
    report(spec.title, len(samples) - len(todo), len(samples))
    try:
        for number, sample in enumerate(todo, start=len(samples) - len(todo) + 1):
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled")
            started = time.perf_counter()
            label = read_label(layout, sample.label)
            pred = predict(sample)
            if pred.shape != label.shape:
                raise UserInputError(f"the prediction of {sample.id} is {pred.shape[1]}x{pred.shape[0]} pixels but its "
                                     f"label {sample.label} is {label.shape[1]}x{label.shape[0]}; predictions must "
                                     "be the label's size.", "predictions")
            try:
                state.matrix.update(pred, label)
            except ValueError as error:
                raise UserInputError(f"{sample.label}: {error}; check that the data set's layout is the one "
                                     "docs/datasets.md describes.", "root") from None
            if job.save_pred and not job.predictions:
                write_prediction(folder / "pred", sample.id, pred)
            state.add(sample.id, time.perf_counter() - started)
            report(spec.title, number, len(samples))
    finally:
        state.save()  # what was scored stays scored, whatever stopped the loop
    beyond = len(set(state.done) - {s.id for s in samples})
    if beyond:
        log.warning("%s: the saved results also hold %d images beyond --limit %s; the scores cover all %d.",
                    spec.title, beyond, job.limit, len(state.done))
    metric = "foreground_iou" if spec.foreground is not None else "miou"
    paper = None if job.predictions else paper_number(model, spec.name)
    return DatasetResult(spec.name, spec.title, job.split or spec.split, layout.name,
                         "predictions" if job.predictions else model, len(state.done),
                         state.matrix.scores([line.split(",")[0].strip() for line in class_lines], spec.foreground),
                         metric,
                         paper[0] if paper else None, paper[1] if paper else None, state.seconds, fingerprint,
                         state.matrix.matrix.tolist())


def model_config(job: EvalJob, spec: DatasetSpec, model: str):
    """The model preset with the data set's thresholds, as the authors evaluate that model family."""
    from backend.models.registry import resolve_config

    preset = find_model_preset(model)
    return resolve_config(model, spec.preset if preset.dataset_thresholds else None,
                          clip_weights=job.clip_weights, upsampler_weights=job.upsampler_weights,
                          no_upsampler=job.no_upsampler, device=job.device, precision=job.precision,
                          download=not job.offline)


def _config_fields(config) -> dict:
    fields = dataclasses.asdict(config)
    for name in ("device", "download"):  # where it runs, not what it computes
        fields.pop(name)
    return fields


def _predictor(job: EvalJob, spec: DatasetSpec, config, class_lines: list[str], models,
               should_stop) -> Callable[[object], np.ndarray]:
    """sample -> its class map: read from ``job.predictions``, or the model at the authors' protocol."""
    if job.predictions is not None:
        folder = Path(job.predictions)
        return lambda sample: read_prediction(folder, sample.id)
    from backend.engine import modality_mismatch
    from backend.eval.protocol import predict_image
    from backend.models.clip_segmentor import load_segmentor
    from backend.prompts import parse_class_lines

    mismatch = modality_mismatch(spec.modality, config.preset)
    if mismatch:
        log.warning("%s: %s", spec.title, mismatch)
    segmentor = load_segmentor(config, models)
    prompts = segmentor.prompt(parse_class_lines(class_lines))
    return lambda sample: predict_image(segmentor, prompts, read_rgb(sample.image), spec.protocol,
                                        job.batch_size, should_stop)
