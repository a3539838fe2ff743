"""Jobs as plain values: what a user asks for, field by field, with the one validation every face shares.

A job's fields are the CLI's long options in snake_case (``--out-raster`` is ``out_raster``),
so the CLI, the service's JSON body and Python code all build the same value. ``validate()``
raises ``UserInputError`` whose sentence writes each field as ``{name}``: the CLI renders it as
its flag, the service as the JSON field.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import KW_ONLY, MISSING, dataclass, fields
from pathlib import Path
from typing import ClassVar, Iterator

from backend.errors import UserInputError, blame
from backend.prompts import ClassList, parse_class_lines, parse_inline_classes
from backend.raster.aoi import is_file
from backend.raster.files import file_parts, same_file
from backend.raster.tiling import DEFAULT_STRIP_WIDTH

MAX_CLASSES = 255  # class values 0-254 in the uint8 class raster; 255 is nodata
RASTER_SUFFIXES = (".tif", ".tiff")
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb")


INT_FIELDS = ("resize_long_side", "speckle_window", "attention_blocks", "background_index", "window", "stride",
              "batch_size", "strip_width", "top_k", "tile", "top", "max_new_tokens", "ray_workers",
              "workers")
FLOAT_FIELDS = ("gsd", "speckle_looks", "simplify", "min_area", "fill_holes", "gba_lambda", "prob_threshold",
                "mask_threshold")
BOOL_FIELDS = ("overwrite", "keep_gsd", "no_upsampler", "offline", "force", "no_magcrop", "probs", "no_polygons")
TEXT_FIELDS = ("name", "aoi", "aoi_layer", "aoi_crs", "modality", "sar_scale", "speckle", "out_crs", "model", "dataset_preset", "clip_weights",
               "upsampler_weights", "attention", "activation", "device", "precision", "text", "prompt", "checkpoint",
               "ray", "inputs", "asset", "manifest_format", "vector_format")
PATH_FIELDS = ("raster", "out_raster", "out", "out_probs", "preview", "input", "folder", "image", "out_dir")
OUTPUT_FIELDS = ("out_raster", "out_probs", "out", "preview")
MAX_PATH_BYTES = 4096
REQUIRED = {"raster": "give the raster to segment", "name": "give a weights name from 'rsov weights list'",
            "input": "give an image or a folder of images",
            "inputs": "give a folder, a glob, a .txt or .csv list of paths or URLs, or a STAC ItemCollection .json",
            "out_dir": "give the folder the scenes' outputs and the manifest go to",
            "prompt": "describe the target, e.g. 'the small boat beside the second pier'",
            "checkpoint": "give a GeoMag checkpoint file (training/geomag writes one)"}


def _typed(name: str, value):
    """``value`` as the field's type (a JSON body gives lists and numbers), or an error naming the field."""
    if value is None:
        if name in REQUIRED:
            raise UserInputError(f"{{{name}}} is missing; {REQUIRED[name]}.", name)
        return None
    if name in PATH_FIELDS:
        if not isinstance(value, (str, Path)) or not str(value):
            raise UserInputError(f"{{{name}}} must be a file path.", name)
        return checked_path(name, value)
    if name in INT_FIELDS and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserInputError(f"{{{name}}} {value!r} must be a whole number.", name)
    if name in FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserInputError(f"{{{name}}} {value!r} must be a number.", name)
        return float(value)
    if name in BOOL_FIELDS and not isinstance(value, bool):
        raise UserInputError(f"{{{name}}} {value!r} must be true or false.", name)
    if name in TEXT_FIELDS and not isinstance(value, str):
        raise UserInputError(f"{{{name}}} {value!r} must be text.", name)
    if name in ("bands", "stretch"):
        return _numbers(name, value, int if name == "bands" else float)
    return value


def checked_path(name: str, value: str | Path) -> Path:
    """``value`` as a path (``~`` expanded), or an error naming the field if no file could have that name."""
    text = str(value)
    try:
        sizes = [len(part.encode("utf-8", "surrogateescape")) for part in (text, *Path(text).parts)]
    except UnicodeEncodeError:  # a lone surrogate from JSON: no file system takes it
        sizes = [MAX_PATH_BYTES + 1]
    if "\0" in text or sizes[0] > MAX_PATH_BYTES or any(size > 255 for size in sizes[1:]):
        raise UserInputError(f"{{{name}}} {text[:80]!r}{'…' if len(text) > 80 else ''} is not a usable file name "
                             "(a NUL character, or a name too long); give another path.", name)
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~user of no such user
        raise UserInputError(f"{{{name}}} {text!r} names the home folder of an unknown user; give the full path.",
                             name) from None


def parse_numbers(value, kind: type) -> tuple:
    """A tuple of ``kind`` from a list or from text like "4,3,2"; ValueError if it is not one."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = tuple(kind(part) if isinstance(part, str) else part for part in parts)
    except TypeError:
        raise ValueError(value) from None
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers) \
            or (kind is int and not all(float(n).is_integer() for n in numbers)):
        raise ValueError(value)
    return tuple(kind(n) for n in numbers)


def _numbers(name: str, value, kind: type) -> tuple:
    try:
        return parse_numbers(value, kind)
    except ValueError:
        raise UserInputError(f"{{{name}}} {value!r} must be a list of {'band numbers' if kind is int else 'numbers'}.",
                             name) from None


def class_list(value):
    """A job's classes from "a; b,c" or a list of lines; anything else as it is, for validation to refuse."""
    if isinstance(value, str):
        return parse_inline_classes(value)
    if isinstance(value, (list, tuple)) and all(isinstance(line, str) for line in value):
        return parse_class_lines(value)
    return value


class Job:
    """What every job kind shares: fields typed from plain values (a JSON body or a Python call)."""

    kind: ClassVar[str]

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.default not in (None, MISSING):
                value = field.default  # null in a JSON body: the default
            if field.name != "classes":
                object.__setattr__(self, field.name, _typed(field.name, value))

    @classmethod
    def field_names(cls) -> list[str]:
        return [field.name for field in fields(cls)]


@dataclass(frozen=True)
class SegmentJob(Job):
    """Segment ``raster`` into ``classes`` and write the outputs asked for."""

    kind: ClassVar[str] = "segment"

    raster: Path
    classes: ClassList  # or "a; b,c" (classes by ';', synonyms by ','), or ["a", "b,c"]
    # outputs (at least out_raster or out)
    out_raster: Path | None = None  # class raster: COG, uint8, nodata 255
    out: Path | None = None  # polygons: .gpkg, .shp, .geojson or .fgb
    out_probs: Path | None = None  # probability raster: COG, float32, band i = class i
    preview: Path | None = None  # PNG
    overwrite: bool = False
    # reading
    bands: tuple[int, ...] | None = None
    stretch: tuple[float, ...] | None = None
    aoi: str | None = None  # XMIN,YMIN,XMAX,YMAX | WKT | vector file
    aoi_layer: str | None = None
    aoi_crs: str | None = None
    gsd: float | None = None
    resize_long_side: int | None = None
    keep_gsd: bool = False
    # SAR
    modality: str = "auto"  # optical, sar, or auto: from the raster (its metadata, bands and data type)
    sar_scale: str = "auto"  # power, amplitude, db, or auto
    speckle: str = "none"  # none, lee or refined-lee
    speckle_window: int = 7  # pixels, odd
    speckle_looks: float | None = None  # None: estimated from the raster
    # polygons
    simplify: float = 0.0  # pixels
    min_area: float = 0.0  # m²
    fill_holes: float = 0.0  # m²
    out_crs: str | None = None
    # model (None: the preset's value)
    model: str = "segearth-ov"
    dataset_preset: str | None = None
    clip_weights: str | None = None
    upsampler_weights: str | None = None
    no_upsampler: bool = False
    attention: str | None = None
    attention_blocks: int | None = None
    activation: str | None = None
    gba_lambda: float | None = None
    prob_threshold: float | None = None
    background_index: int | None = None
    window: int | None = None
    stride: int | None = None
    # running
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 8
    strip_width: int = DEFAULT_STRIP_WIDTH
    offline: bool = False
    # a Ray cluster (docs/scale.md): column strips run on its workers
    ray: str | None = None  # auto (this machine's cluster, else a local one) or HOST:6379 / ray://HOST:10001
    ray_workers: int | None = None  # default: one per GPU, else one per two CPUs

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", class_list(self.classes))

    # -- the parts other modules take --------------------------------------------------------
    def read_options(self):
        from backend.raster.source import ReadOptions

        from backend.models.registry import MODEL_PRESETS

        preset = MODEL_PRESETS.get(self.model)
        return ReadOptions(self.bands, self.stretch, self.aoi, self.aoi_layer, self.aoi_crs, self.gsd,
                           self.resize_long_side, self.modality, preset.modality if preset else "optical",
                           self.sar_scale, self.speckle, self.speckle_window, self.speckle_looks)

    def polygon_options(self):
        from backend.raster.vectorize import PolygonOptions

        return PolygonOptions(self.simplify, self.min_area, self.fill_holes, self.out_crs)

    def model_config(self):
        """The preset with this job's overrides, every value checked (no weights are read)."""
        from backend.models.registry import resolve_config

        return resolve_config(
            self.model, self.dataset_preset, clip_weights=self.clip_weights, upsampler_weights=self.upsampler_weights,
            no_upsampler=self.no_upsampler, attention=self.attention, attention_blocks=self.attention_blocks,
            activation=self.activation, gba_lambda=self.gba_lambda, prob_threshold=self.prob_threshold,
            background_index=self.background_index, window=self.window, stride=self.stride, device=self.device,
            precision=self.precision, download=not self.offline)

    @property
    def outputs(self) -> list[Path]:
        return [getattr(self, name) for name in OUTPUT_FIELDS if getattr(self, name) is not None]

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``UserInputError`` naming the field of the first problem found; nothing is written."""
        self.checked()

    def checked(self):
        """Validate, and return what validation opened: (model config, raster source)."""
        from backend.raster.grid import on_the_ground
        from backend.raster.source import RasterSource

        config = self.checked_model()
        self._check_outputs()
        source = RasterSource.open(self.raster, self.read_options())
        if not on_the_ground(source.crs) and (self.min_area or self.fill_holes or self.out_crs):
            raise UserInputError(f"{self.raster} has no CRS on the ground, so {{min_area}}, {{fill_holes}} and "
                                 "{out_crs} cannot apply; georeference the raster first.",
                                 "min_area", "fill_holes", "out_crs")
        return config, source

    def checked_model(self):
        """Validate every value but the raster and the outputs; return the model config (no weights are read)."""
        self._check_values()
        config = self.model_config()
        if config.background_index >= len(self.classes):
            if self.background_index is not None:
                raise UserInputError(f"{{background_index}} {self.background_index} is not a class index; give a "
                                     f"value from 0 to {len(self.classes) - 1}.", "background_index")
            raise UserInputError(f"{{dataset_preset}} {self.dataset_preset} gives background class "
                                 f"{config.background_index} but only {len(self.classes)} classes are listed; give "
                                 "the preset's classes or {background_index}.", "dataset_preset", "background_index")
        return config

    def _check_values(self) -> None:
        from backend.cluster.session import check_address
        from backend.models.checkpoints import check_weights_file
        from backend.raster.aoi import parse_crs
        from backend.weights import check_reference

        if not isinstance(self.classes, ClassList):
            raise UserInputError("{classes} must be text like 'water; building,roof' or a list like "
                                 "['water', 'building,roof'].", "classes")
        if len(self.classes) > MAX_CLASSES:
            raise UserInputError(f"{{classes}} lists {len(self.classes)} classes but the class raster holds at most "
                                 f"{MAX_CLASSES} (255 is nodata); split them over several runs.", "classes")
        for name in ("simplify", "min_area", "fill_holes"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserInputError(f"{{{name}}} {value} must be 0 or a positive number.", name)
        for name, what in (("batch_size", "window"), ("strip_width", "pixel")):
            if getattr(self, name) < 1:
                raise UserInputError(f"{{{name}}} {getattr(self, name)} must be at least 1 {what}.", name)
        if self.out_crs is not None:
            parse_crs(self.out_crs, "out_crs")
        check_address(self.ray, self.ray_workers)
        for name in ("clip_weights", "upsampler_weights"):
            if getattr(self, name) is not None:
                path = check_reference(getattr(self, name), name)
                if path is not None:
                    with blame(name):
                        check_weights_file(path)

    def _check_outputs(self) -> None:
        if self.out_raster is None and self.out is None:
            raise UserInputError("no output was asked for; give {out_raster} CLASSES.tif and/or {out} POLYGONS.gpkg.",
                                 "out_raster", "out")
        named = [(name, getattr(self, name)) for name in OUTPUT_FIELDS if getattr(self, name) is not None]
        for index, (name, path) in enumerate(named):
            for other, other_path in named[:index]:
                if same_file(path, other_path):
                    raise UserInputError(f"{{{other}}} and {{{name}}} are the same file {path}; give each output "
                                         "its own file name.", other, name)
        suffixes = {"out_raster": RASTER_SUFFIXES, "out_probs": RASTER_SUFFIXES, "preview": (".png",),
                    "out": VECTOR_SUFFIXES}
        for name, path in named:
            if path.suffix.lower() not in suffixes[name]:
                raise UserInputError(f"{{{name}}} {path} must end in {', '.join(suffixes[name])}; rename it.", name)
        inputs = [self.raster] + [Path(value).expanduser() for value in
                                  (self.aoi, self.clip_weights, self.upsampler_weights)
                                  if value is not None and is_file(value)]
        for name, path in named:
            check_output(name, path, inputs, self.overwrite)


def check_output(name: str, path: Path, inputs: list[Path], overwrite: bool) -> None:
    """Output ``path`` (job field ``name``) replaces no input, no folder, and no file unless ``overwrite``."""
    for source in inputs:
        if same_file(path, source):
            raise UserInputError(f"{{{name}}} {path} is an input of this job; outputs never replace inputs, "
                                 "choose another file name.", name)
    if path.exists() and not path.is_file():
        raise UserInputError(f"{{{name}}} {path} is a folder, not a file; give a file name.", name)
    existing = next((part for part in file_parts(path) if part.exists()), None)  # a shapefile's sidecars too
    if existing is not None and not overwrite:
        raise UserInputError(f"{{{name}}} {existing} already exists; pass {{overwrite}} to replace it.",
                             name, "overwrite")
    _check_folder(name, path)


def _check_folder(name: str, path: Path) -> None:
    """The folder of ``path`` exists (or can be made) and takes new files."""
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{{{name}}}: output folder {folder} cannot be created ({existing} is a file); "
                             "choose another output path.", name)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserInputError(f"{{{name}}}: output folder {folder} is not writable ({error.strerror}); "
                             "choose another output path.", name) from None


@dataclass(frozen=True)
class DownloadWeightsJob(Job):
    """Download a registry's weights file into the cache and verify it (``rsov weights download NAME``)."""

    kind: ClassVar[str] = "download_weights"

    name: str
    force: bool = False  # download again even if cached

    @property
    def outputs(self) -> list[Path]:
        return []  # only the weights cache, which the job itself manages

    def validate(self) -> None:
        from backend.weights import spec_for

        with blame("name"):
            spec_for(self.name)


CSV_SUFFIXES = (".csv",)
GRID_SUFFIXES = (".gpkg", ".geojson", ".json", ".fgb")  # no shapefile: it cuts 'probability' to 10 characters
MIN_TILE, MAX_TILE = 16, 4096


@dataclass(frozen=True)
class ClipJob(Job):
    """What classify and retrieve share: a preset's CLIP tower (no upsampler), images read as segment reads them,
    one output. These fields are keywords only, after each kind's own."""

    _: KW_ONLY
    out: Path | None = None  # classify: .csv, or a grid (tile); retrieve: .csv
    overwrite: bool = False
    bands: tuple[int, ...] | None = None
    stretch: tuple[float, ...] | None = None
    model: str = "segearth-ov"
    clip_weights: str | None = None
    activation: str | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 16  # images per model call
    offline: bool = False

    def model_config(self):
        """The preset's CLIP with this job's overrides, every value checked (no weights are read)."""
        from backend.models.registry import resolve_config

        return resolve_config(self.model, clip_weights=self.clip_weights, no_upsampler=True,
                              activation=self.activation, device=self.device, precision=self.precision,
                              download=not self.offline)

    def read_options(self, gsd: float | None = None):
        from backend.models.registry import MODEL_PRESETS
        from backend.raster.source import ReadOptions

        preset = MODEL_PRESETS.get(self.model)
        return ReadOptions(self.bands, self.stretch, gsd=gsd, model_modality=preset.modality if preset else "optical")

    @property
    def outputs(self) -> list[Path]:
        return [self.out] if self.out is not None else []

    def validate(self) -> None:
        """Raise ``UserInputError`` naming the field of the first problem found; nothing is written.

        A folder is searched up to its first image only (the whole search is the job's own work).
        """
        self.checked(search=False)

    def _checked_model(self):
        from backend.models.checkpoints import check_weights_file
        from backend.weights import check_reference

        if self.batch_size < 1:
            raise UserInputError(f"{{batch_size}} {self.batch_size} must be at least 1 image.", "batch_size")
        if self.clip_weights is not None:
            path = check_reference(self.clip_weights, "clip_weights")
            if path is not None:
                with blame("clip_weights"):
                    check_weights_file(path)
        return self.model_config()

    def _check_out(self, suffixes: tuple[str, ...], inputs: list[Path]) -> None:
        if self.out is None:
            return
        if self.out.suffix.lower() not in suffixes:
            raise UserInputError(f"{{out}} {self.out} must end in {', '.join(suffixes)}; rename it.", "out")
        if self.clip_weights is not None and is_file(self.clip_weights):
            inputs = [*inputs, Path(self.clip_weights).expanduser()]
        check_output("out", self.out, inputs, self.overwrite)


def _found_images(name: str, folder: Path, search: bool) -> list[Path]:
    """Every image in ``folder`` and its subfolders, or (not ``search``) the first found."""
    from backend.zeroshot.images import find_images, iter_images

    images = find_images(folder) if search else next(([path] for path in iter_images(folder)), [])
    if not images:
        raise UserInputError(f"{{{name}}} {folder} holds no image GDAL reads (.tif, .jp2, .png, .jpg, ...) in it or "
                             "its subfolders; give another folder.", name)
    return images


def _opened(name: str, path: Path, options):
    """The raster at ``path`` opened as segment opens it, its errors about job field ``name``."""
    from backend.raster.source import RasterSource

    with renamed_field("raster", name):
        return RasterSource.open(path, options)


@dataclass(frozen=True)
class ClassifyJob(ClipJob):
    """Zero-shot scene classification: each image of ``input`` (or each ``tile`` of one raster) against ``classes``."""

    kind: ClassVar[str] = "classify"

    input: Path  # an image, or a folder searched with its subfolders for every raster GDAL reads
    classes: ClassList  # or "a; b,c" (classes by ';', synonyms by ','), or ["a", "b,c"]
    top_k: int = 3
    tile: int | None = None  # pixels: classify tiles of this size of one raster into a grid of polygons (out)
    gsd: float | None = None  # metres: the tiles' ground sampling distance (default: the raster's)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", class_list(self.classes))

    def checked(self, search: bool = True):
        """Validate, and return (model config, the image paths) or, for tiles, (model config, raster source)."""
        from backend.raster.source import check_read_options

        if not isinstance(self.classes, ClassList):
            raise UserInputError("{classes} must be text like 'water; forest,trees' or a list like "
                                 "['water', 'forest,trees'].", "classes")
        if self.top_k < 1:
            raise UserInputError(f"{{top_k}} {self.top_k} must be at least 1.", "top_k")
        if self.tile is not None and not MIN_TILE <= self.tile <= MAX_TILE:
            raise UserInputError(f"{{tile}} {self.tile} must be from {MIN_TILE} to {MAX_TILE} pixels (256 is usual).",
                                 "tile")
        if self.gsd is not None and self.tile is None:
            raise UserInputError("{gsd} sets the tiles' ground sampling distance; give {tile} too (whole images are "
                                 "resized to the model's input size).", "gsd", "tile")
        config = self._checked_model()
        options = self.read_options(self.gsd)
        check_read_options(options)
        if not self.input.exists():
            raise UserInputError(f"input {self.input} does not exist; check the path.", "input")
        if self.tile is not None and self.input.is_dir():
            raise UserInputError(f"{{tile}} classifies the tiles of one raster but {self.input} is a folder; give one "
                                 "raster, or leave out {tile} to classify each image whole.", "tile", "input")
        if self.tile is not None and self.out is None:
            raise UserInputError("{tile} makes a grid of tile polygons; give {out} GRID.gpkg.", "out", "tile")
        self._check_out(GRID_SUFFIXES if self.tile is not None else CSV_SUFFIXES, [self.input])
        if self.input.is_dir():
            return config, _found_images("input", self.input, search)
        source = _opened("input", self.input, options)
        return config, (source if self.tile is not None else [self.input])


@dataclass(frozen=True)
class RetrieveJob(ClipJob):
    """Rank the images of ``folder`` for ``text``, or ``texts`` for ``image``, by CLIP similarity."""

    kind: ClassVar[str] = "retrieve"

    folder: Path | None = None  # images searched in it and its subfolders, ranked for ``text``
    text: str | None = None
    image: Path | None = None  # one image, for which ``texts`` are ranked
    texts: tuple[str, ...] | None = None  # or "a; b; c", or ["a", "b", "c"]
    top: int = 10  # ranks kept

    def __post_init__(self) -> None:
        from backend.zeroshot.texts import parse_texts

        super().__post_init__()
        if self.texts is not None:
            object.__setattr__(self, "texts", parse_texts(self.texts, "texts"))

    def checked(self, search: bool = True):
        """Validate, and return (model config, the image paths to rank, or the one image)."""
        from backend.raster.source import check_read_options

        if (self.folder is None) == (self.image is None):
            raise UserInputError("give {folder} and {text} to rank a folder's images for a text, or {image} and "
                                 "{texts} to rank texts for an image (one of the two).",
                                 "folder", "text", "image", "texts")
        if self.folder is not None and (self.text is None or self.texts is not None):
            raise UserInputError("{folder} ranks its images for one {text}; give {text} (and {texts} only with "
                                 "{image}).", "text", "texts", "folder", "image")
        if self.image is not None and (self.texts is None or self.text is not None):
            raise UserInputError("{image} ranks several {texts} for it; give {texts} 'a; b; c' ({text} only with "
                                 "{folder}).", "texts", "text", "image", "folder")
        if self.text is not None and not self.text.strip():
            raise UserInputError("{text} is empty; give what to search for, e.g. 'a harbour with ships'.", "text")
        if self.top < 1:
            raise UserInputError(f"{{top}} {self.top} must be at least 1.", "top")
        config = self._checked_model()
        check_read_options(self.read_options())
        given = self.folder if self.folder is not None else self.image
        name = "folder" if self.folder is not None else "image"
        if not given.exists():
            raise UserInputError(f"{{{name}}} {given} does not exist; check the path.", name)
        if self.folder is not None and not self.folder.is_dir():
            raise UserInputError(f"{{folder}} {self.folder} is a file, not a folder; give a folder, or the file as "
                                 "{image} with {texts}.", "folder", "image", "texts")
        self._check_out(CSV_SUFFIXES, [given])
        if self.folder is not None:
            return config, _found_images("folder", self.folder, search)
        _opened("image", self.image, self.read_options())
        return config, [self.image]


MAX_PROMPT_CHARS = 2000


@dataclass(frozen=True)
class DescribeJob(Job):
    """What refer and ask share: a sentence about an area of one raster, answered by a GeoMag checkpoint.

    The area (``aoi``, else the whole raster) is read at the model's input size; with MagCrop (the
    default) its task-granularity classifier and prompt-guided crops decide which part is read again
    at full resolution. Masks become polygons in ``out`` (refer: the target; ask: each grounded phrase).
    """

    raster: Path
    prompt: str
    _: KW_ONLY
    checkpoint: str  # a GeoMag checkpoint file (its base models are named inside it)
    no_magcrop: bool = False  # read the whole area at the model's input size, no task routing or crops
    bands: tuple[int, ...] | None = None
    stretch: tuple[float, ...] | None = None
    aoi: str | None = None  # XMIN,YMIN,XMAX,YMAX | WKT | vector file
    aoi_layer: str | None = None
    aoi_crs: str | None = None
    out: Path | None = None  # polygons: .gpkg, .shp, .geojson or .fgb
    overwrite: bool = False
    mask_threshold: float = 0.5  # a pixel is in a mask where its probability is at least this
    simplify: float = 0.0  # pixels
    min_area: float = 0.0  # m²
    device: str = "auto"
    precision: str = "auto"
    offline: bool = False

    def read_options(self):
        from backend.raster.source import ReadOptions

        return ReadOptions(self.bands, self.stretch, self.aoi, self.aoi_layer, self.aoi_crs)

    def polygon_options(self):
        from backend.raster.vectorize import PolygonOptions

        return PolygonOptions(self.simplify, self.min_area, 0.0, None)

    @property
    def outputs(self) -> list[Path]:
        return [self.out] if self.out is not None else []

    def validate(self) -> None:
        """Raise ``UserInputError`` naming the field of the first problem found; nothing is written."""
        self.checked()

    def checked(self):
        """Validate, and return (the checkpoint file, the raster source)."""
        from backend.models.registry import check_device_options
        from backend.raster.source import RasterSource
        from backend.weights import check_reference

        if not self.prompt.strip():
            raise UserInputError("{prompt} is empty; " + REQUIRED["prompt"] + ".", "prompt")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise UserInputError(f"{{prompt}} has {len(self.prompt)} characters; keep it under {MAX_PROMPT_CHARS}.",
                                 "prompt")
        check_device_options(self.device, self.precision)
        checkpoint = check_reference(self.checkpoint, "checkpoint")
        self._check_own()
        self._check_outputs()
        return checkpoint, RasterSource.open(self.raster, self.read_options())

    def _check_own(self) -> None:
        """Each kind's own fields."""

    def _check_outputs(self) -> None:
        if not 0.0 < self.mask_threshold < 1.0:
            raise UserInputError(f"{{mask_threshold}} {self.mask_threshold} must be between 0 and 1 (0.5 is usual).",
                                 "mask_threshold")
        for name in ("simplify", "min_area"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserInputError(f"{{{name}}} {value} must be 0 or a positive number.", name)
        inputs = [self.raster, *(Path(value).expanduser() for value in (self.aoi, self.checkpoint)
                                 if value is not None and is_file(value))]
        for name in ("out", "out_raster"):
            path = getattr(self, name, None)
            if path is None:
                continue
            suffixes = VECTOR_SUFFIXES if name == "out" else RASTER_SUFFIXES
            if path.suffix.lower() not in suffixes:
                raise UserInputError(f"{{{name}}} {path} must end in {', '.join(suffixes)}; rename it.", name)
            check_output(name, path, inputs, self.overwrite)


@dataclass(frozen=True)
class ReferJob(DescribeJob):
    """Referring segmentation: the mask of what ``prompt`` describes, as polygons (``out``: prompt, score,
    area_m2) and/or a mask raster."""

    kind: ClassVar[str] = "refer"

    out_raster: Path | None = None  # GeoTIFF: band 1 mask (1 target, 0 not, 255 outside), band 2 probability %

    @property
    def outputs(self) -> list[Path]:
        return [path for path in (self.out_raster, self.out) if path is not None]

    def _check_own(self) -> None:
        if self.out is None and self.out_raster is None:
            raise UserInputError("no output was asked for; give {out} MASK.gpkg and/or {out_raster} MASK.tif.",
                                 "out", "out_raster")
        if self.out is not None and same_file(self.out, self.out_raster or Path("")):
            raise UserInputError(f"{{out}} and {{out_raster}} are the same file {self.out}; give each its own name.",
                                 "out", "out_raster")


@dataclass(frozen=True)
class AskJob(DescribeJob):
    """Answer ``prompt`` about the area in text (caption, question answering, referring classification); ``out``
    gets the masks of the phrases a grounded answer names (prompt, phrase, score, area_m2)."""

    kind: ClassVar[str] = "ask"

    max_new_tokens: int = 256

    def _check_own(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise UserInputError(f"{{max_new_tokens}} {self.max_new_tokens} must be from 1 to 4096.", "max_new_tokens")


@contextlib.contextmanager
def renamed_field(old: str, new: str) -> Iterator[None]:
    """Errors raised inside about job field ``old`` are about ``new`` (the raster reader's sentences name 'raster')."""
    try:
        yield
    except UserInputError as error:
        error.template = error.template.replace("{" + old + "}", "{" + new + "}")
        error.fields = tuple(new if field == old else field for field in error.fields)
        raise


JOB_KINDS: dict[str, type] = {job.kind: job for job in (SegmentJob, DownloadWeightsJob, ClassifyJob, RetrieveJob,
                                                         ReferJob, AskJob)}
