"""``EvalJob``: what ``rsov eval`` is asked, as one value, checked before anything is read or loaded.

Three ways to ask, exactly one per job:
- ``dataset`` + ``root``: one benchmark split in its released folder layout;
- ``suite`` + ``root``: a paper's table, each data set in its own folder under ``root``;
- ``labels`` + ``images`` + ``classes`` (+ ``class_values``): a user's own GeoTIFF labels.
Fields are the CLI's long options in snake_case; errors name them as ``{field}``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from backend.errors import UserInputError


@dataclass(frozen=True)
class EvalJob:
    dataset: str | None = None
    suite: str | None = None
    root: Path | None = None
    split: str | None = None  # None: the split the paper reports
    limit: int | None = None  # the first N images of the split (by id)
    # a user's own labelled rasters
    labels: Path | None = None  # a GeoTIFF label raster or a folder of them
    images: Path | None = None  # the image(s) they label: a file or a folder (paired by file stem)
    classes: str | None = None  # "water; building,roof" as for rsov segment
    class_values: tuple[int, ...] | None = None  # the label value of each class, in order (default 0, 1, ...)
    # model (None: the suite's model, else segearth-ov)
    model: str | None = None
    clip_weights: str | None = None
    upsampler_weights: str | None = None
    no_upsampler: bool = False
    predictions: Path | None = None  # score saved predictions (<id>.png) instead of running a model
    # outputs
    out: Path = Path("rsov-eval")
    save_pred: bool = False
    overwrite: bool = False  # discard saved partial results made with other settings
    # running
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    offline: bool = False

    kind = "eval"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @property
    def mode(self) -> str:
        return "labels" if self.labels is not None else "suite" if self.suite else "dataset"

    def validate(self) -> None:
        """Raise ``UserInputError`` for the first problem; nothing is read or written."""
        from backend.eval.datasets import find_dataset
        from backend.eval.suites import find_suite
        from backend.models.registry import check_device_options, find_model_preset

        asked = [name for name in ("dataset", "suite", "labels") if getattr(self, name) is not None]
        if len(asked) != 1:
            raise UserInputError("give one of {dataset}, {suite} or {labels} (with {images}).",
                                 "dataset", "suite", "labels", "images")
        if self.labels is None:
            for name in ("images", "classes", "class_values"):
                if getattr(self, name) is not None:
                    raise UserInputError(f"{{{name}}} goes with {{labels}}; a benchmark brings its own images and "
                                         "classes.", name, "labels")
            if self.root is None:
                raise UserInputError("{root} is missing; give the folder the data set was unpacked into "
                                     "(see docs/datasets.md).", "root")
            if self.dataset is not None:
                find_dataset(self.dataset)
            else:
                find_suite(self.suite)
        else:
            self._check_own_labels()
        if self.model is not None:
            find_model_preset(self.model)
        if self.limit is not None and self.limit < 1:
            raise UserInputError(f"{{limit}} {self.limit} must be at least 1 image.", "limit")
        if self.batch_size < 1:
            raise UserInputError(f"{{batch_size}} {self.batch_size} must be at least 1.", "batch_size")
        if self.predictions is not None:
            if self.mode != "dataset":
                raise UserInputError("{predictions} scores one data set's saved predictions; give {dataset}.",
                                     "predictions", "dataset")
            if not Path(self.predictions).is_dir():
                raise UserInputError(f"{{predictions}} {self.predictions} is not a folder of <image id>.png "
                                     "class maps.", "predictions")
        if self.out.exists() and not self.out.is_dir():
            raise UserInputError(f"{{out}} {self.out} is a file; give a folder for the results.", "out")
        check_device_options(self.device, self.precision)

    def _check_own_labels(self) -> None:
        from backend.prompts import parse_inline_classes

        if self.images is None:
            raise UserInputError("{images} is missing; give the image (or folder of images) the labels belong to.",
                                 "images")
        if self.classes is None:
            raise UserInputError("{classes} is missing; name the class of each label value, e.g. "
                                 "'background; building'.", "classes")
        for name in ("labels", "images"):
            if not Path(getattr(self, name)).exists():
                raise UserInputError(f"{{{name}}} {getattr(self, name)} does not exist; check the path.", name)
        if self.root is not None or self.split is not None:
            raise UserInputError("{root} and {split} are for benchmarks; own labels need {labels} and {images}.",
                                 "root", "split")
        classes = parse_inline_classes(self.classes)
        values = self.class_values
        if values is not None:
            if len(values) != len(classes):
                raise UserInputError(f"{{class_values}} gives {len(values)} values for {len(classes)} classes; give "
                                     "one label value per class, in order.", "class_values")
            if len(set(values)) != len(values):
                raise UserInputError("{class_values} repeats a value; each label value is one class.",
                                     "class_values")
            if any(v < 0 for v in values):
                raise UserInputError("{class_values} must be label values of 0 or more.", "class_values")
