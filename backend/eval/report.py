"""The report of an evaluation: JSON (every score and the confusion matrices) and a Markdown table.

The Markdown puts the paper's number beside ours, with the difference, for each data set,
then each data set's per-class IoU.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from backend.eval.job import EvalJob


def report_name(job: EvalJob, report) -> str:
    if job.mode == "suite":
        return job.suite
    if job.mode == "labels":
        return "own-labels"
    return f"{report.results[0].dataset}-{report.results[0].model}"


def write_report(report, job: EvalJob) -> list[Path]:
    """``<out>/<name>.json`` and ``<out>/<name>.md``, each renamed into place when complete."""
    job.out.mkdir(parents=True, exist_ok=True)
    name = report_name(job, report)
    data = {"title": report.title, "skipped": report.skipped,
            "results": [dataclasses.asdict(r) | {"value": r.value} for r in report.results]}
    paths = [job.out / f"{name}.json", job.out / f"{name}.md"]
    for path, text in zip(paths, (json.dumps(data, indent=1) + "\n", markdown(report))):
        temporary = path.with_name(path.name + ".part")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    return paths


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def difference(ours: float | None, paper: float | None) -> str:
    return "–" if ours is None or paper is None else f"{ours - paper:+.1f}"


def markdown(report) -> str:
    lines = [f"# {report.title}", "",
             "| data set | split | images | metric | ours | paper | difference |",
             "|---|---|---:|---|---:|---:|---:|"]
    for r in report.results:
        metric = "IoU (foreground)" if r.metric == "foreground_iou" else "mIoU"
        lines.append(f"| {r.title} | {r.split} | {r.images} | {metric} | {percent(r.value)} | {percent(r.paper)} "
                     f"| {difference(r.value, r.paper)} |")
    for name, why in report.skipped.items():
        lines.append(f"| {name} | – | 0 | – | – | – | not run: {why} |")
    sources = sorted({r.paper_source for r in report.results if r.paper_source})
    if sources:
        lines += ["", "Paper numbers: " + "; ".join(sources) + "."]
    for r in report.results:
        s = r.scores
        lines += ["", f"## {r.title}: {r.model}, {r.layout} layout", "",
                  f"mIoU {percent(_times100(s['miou']))}, pixel accuracy {percent(_times100(s['pixel_accuracy']))},"
                  f" mean accuracy {percent(_times100(s['mean_accuracy']))} over {s['scored_pixels']} scored pixels.",
                  "", "| class | IoU | accuracy |", "|---|---:|---:|"]
        for name, iou, accuracy in zip(s["classes"], s["per_class_iou"], s["per_class_accuracy"]):
            lines.append(f"| {name} | {percent(_times100(iou))} | {percent(_times100(accuracy))} |")
    return "\n".join(lines) + "\n"


def _times100(value: float | None) -> float | None:
    return None if value is None else 100.0 * value
