"""``rsov``: the command line of the engine.

rsov segment INPUT (--classes-file F | --classes "a; b,c") --out-raster CLASSES.tif [...]
rsov batch INPUTS (--classes-file F | --classes "a; b,c") --out-dir DIR [--workers N | --ray auto] [...]
rsov serve [--host H] [--port P] [--token T] [--output-root DIR ...]
rsov weights list | download NAME | verify [NAME] | path NAME
rsov classify IMAGE_OR_FOLDER (--classes-file F | --classes "a; b,c") [--tile PIXELS] [--out CSV_OR_GRID] [...]
rsov retrieve FOLDER --text T | rsov retrieve --image FILE (--texts "a; b" | --texts-file F) [--top N] [...]
rsov refer RASTER --prompt "the small boat beside the second pier" --checkpoint GEOMAG [--aoi ...] --out MASK.gpkg
rsov ask RASTER --prompt "how many tennis courts are there?" --checkpoint GEOMAG [--aoi ...]
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

from backend import __version__
from backend.errors import Cancelled, Terminated, UserInputError
from backend.raster.tiling import DEFAULT_STRIP_WIDTH


def _add_segment(commands) -> None:
    p = commands.add_parser("segment", help="segment a raster into the classes you name",
                            description="Open-vocabulary segmentation of a raster of any size, streamed window "
                                        "by window, into a class raster and/or polygons.")
    p.add_argument("raster", type=Path, metavar="INPUT", help="GeoTIFF, COG, VRT, JP2 or any raster GDAL reads")
    classes = p.add_mutually_exclusive_group(required=True)
    classes.add_argument("--classes-file", type=Path, help="one class per line, comma-separated synonyms")
    classes.add_argument("--classes", help='classes separated by ";", synonyms by ",", e.g. "background; building,roof"')
    out = p.add_argument_group("outputs (at least --out-raster or --out)")
    out.add_argument("--out-raster", type=Path, help="class raster to write (COG, uint8, nodata 255)")
    out.add_argument("--out", type=Path, metavar="POLYGONS", help="polygons to write: .gpkg, .shp, .geojson or .fgb")
    out.add_argument("--out-probs", type=Path, help="probability raster to write (COG, float32, band i = class i)")
    out.add_argument("--preview", type=Path, help="PNG preview of the classes beside the image")
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _add_scene_options(p)
    p.set_defaults(handler=_segment, flags=_flags(p))


def _add_scene_options(p: argparse.ArgumentParser) -> None:
    """How each raster is read, segmented and vectorised: the options segment and batch share."""
    read = p.add_argument_group("reading")
    read.add_argument("--bands", type=_bands, help="1-based bands as R,G,B (e.g. 4,3,2), or one band repeated "
                                                   "(default 1,2,3); SAR: CO or CO,CROSS (default: the VV/HH band)")
    read.add_argument("--stretch", type=_numbers, help="MIN,MAX for all bands or per band, in dB for SAR "
                                                       "(default: 2-98 percentiles, except uint8)")
    read.add_argument("--aoi", help="area of interest: XMIN,YMIN,XMAX,YMAX, a WKT geometry, or a vector file")
    read.add_argument("--aoi-layer", help="layer of the --aoi file (default: the first)")
    read.add_argument("--aoi-crs", help="CRS of --aoi (default: the file's own, else the raster's)")
    read.add_argument("--gsd", type=float, metavar="METRES", help="resample on read to this ground sampling distance")
    read.add_argument("--resize-long-side", type=int, metavar="PIXELS",
                      help="resample on read so the area's long side has this many pixels")
    read.add_argument("--keep-gsd", action="store_true", help="write rasters at the resampled grid, not the input's")
    sar = p.add_argument_group("SAR (see docs/sar.md)")
    sar.add_argument("--modality", default="auto", help="optical, sar, or auto (default): from the raster's "
                     "metadata, band count and data type")
    sar.add_argument("--sar-scale", default="auto", help="what SAR values are: power, amplitude, db, or auto "
                     "(default)")
    sar.add_argument("--speckle", default="none", help="speckle filter before the dB conversion: none (default), lee "
                     "or refined-lee")
    sar.add_argument("--speckle-window", type=int, default=7, metavar="PIXELS", help="filter window, odd (default 7)")
    sar.add_argument("--speckle-looks", type=float, metavar="LOOKS", help="equivalent number of looks "
                     "(default: estimated from the raster; 1 for single-look data)")
    poly = p.add_argument_group("polygons")
    poly.add_argument("--simplify", type=float, default=0.0, metavar="PIXELS",
                      help="simplify polygons by this tolerance, keeping shared edges (default 0: pixel edges)")
    poly.add_argument("--min-area", type=float, default=0.0, metavar="M2", help="drop polygons smaller than this")
    poly.add_argument("--fill-holes", type=float, default=0.0, metavar="M2", help="fill holes smaller than this")
    poly.add_argument("--out-crs", help="CRS of the polygons (default: the raster's)")
    model = p.add_argument_group("model")
    model.add_argument("--model", default="segearth-ov", help="model preset (default: segearth-ov)")
    model.add_argument("--dataset-preset", help="threshold/background preset of a benchmark dataset")
    model.add_argument("--clip-weights", help="CLIP checkpoint file or registry name (default: the preset's)")
    up = model.add_mutually_exclusive_group()
    up.add_argument("--upsampler-weights", help="SimFeatUp checkpoint file or registry name")
    up.add_argument("--no-upsampler", action="store_true", help="bilinear logits instead of SimFeatUp")
    model.add_argument("--attention", help="dense attention: segearth, sclip, clearclip or vanilla")
    model.add_argument("--attention-blocks", type=int, help="how many last blocks use dense attention")
    model.add_argument("--activation", help="quickgelu or gelu (default: the preset's)")
    model.add_argument("--gba-lambda", type=float, help="global bias alleviation weight (default -0.3)")
    model.add_argument("--prob-threshold", type=float, help="pixels below this probability (0-1) become background")
    model.add_argument("--background-index", type=int, help="class index given to low-probability pixels")
    model.add_argument("--window", type=int, help="slide window size in pixels (default 224)")
    model.add_argument("--stride", type=int, help="slide stride in pixels (default 112)")
    run = _add_running(p, (8, "windows per model call"))
    run.add_argument("--strip-width", type=int, default=DEFAULT_STRIP_WIDTH, metavar="PIXELS",
                     help="process wider rasters in column strips of this width (bounds memory)")
    _add_ray(run)


def _add_ray(group) -> None:
    """--ray and --ray-workers (docs/scale.md)."""
    group.add_argument("--ray", metavar="auto|ADDRESS",
                       help="run on a Ray cluster: auto (the cluster of this machine, else a local one) or its "
                            "address HOST:6379 / ray://HOST:10001 (needs rs-openvocab[cluster])")
    group.add_argument("--ray-workers", type=int, metavar="N",
                       help="model workers on the cluster (default: one per GPU, else one per two CPUs)")


def _number_list(kind: type, what: str, example: str):
    """An argparse type for "a,b,c" lists of ``kind``; a bad list is one line naming ``what`` and ``example``."""

    def parse(text: str) -> tuple:
        from backend.jobs import parse_numbers

        try:
            return parse_numbers(text, kind)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of {what}; give {example}") from None

    return parse


_bands = _number_list(int, "band numbers", "e.g. 4,3,2 or 1")
_numbers = _number_list(float, "numbers", "MIN,MAX or MIN,MAX per band")
_whole_numbers = _number_list(int, "whole numbers", "e.g. 0,1,2")


def _add_running(p: argparse.ArgumentParser, batch: tuple[int, str] | None,
                 precision_help: str = "auto, fp32, fp16 or bf16 (auto: fp32 on CPU, fp16 on GPU)",
                 offline_help: str = "never download weights", quiet_help: str = "no progress bar or summary"):
    """The running options every model command shares; ``batch``: (default, help) of --batch-size, or None."""
    run = p.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    run.add_argument("--precision", default="auto", help=precision_help)
    if batch is not None:
        run.add_argument("--batch-size", type=int, default=batch[0], help=batch[1])
    run.add_argument("--offline", action="store_true", help=offline_help)
    run.add_argument("--quiet", action="store_true", help=quiet_help)
    return run


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Job field -> the flag (or argument name) a CLI user knows it by."""
    flags = {}
    for action in parser._actions:
        if action.option_strings:
            flags[action.dest] = max(action.option_strings, key=len)
        elif action.dest != "help":
            flags[action.dest] = action.metavar or action.dest.upper()
    return flags


def _area(square_metres: float) -> str:
    return f"{square_metres / 1e6:.3f} km²" if square_metres >= 1e4 else f"{square_metres:.0f} m²"


def _segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from backend.engine import run
    from backend.jobs import SegmentJob
    from backend.prompts import parse_class_file, parse_inline_classes

    if args.classes_file:
        args.flags["classes"] = "--classes-file"  # sentences about the classes name the flag that was used
    values = {name: getattr(args, name) for name in SegmentJob.field_names() if hasattr(args, name)}
    values["classes"] = parse_class_file(args.classes_file) if args.classes_file else parse_inline_classes(args.classes)
    job = SegmentJob(**values)
    bar = None

    def progress(stage: str, done: float, total: float) -> None:
        nonlocal bar
        if args.quiet or (bar is None and stage != "segmenting"):
            return  # the bar's rate and time left are about the model's work, not the loading
        if bar is None:
            bar = tqdm(total=total, unit="MP", desc=stage, dynamic_ncols=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} MP "
                                  "[{elapsed}<{remaining}, {rate_noinv_fmt}]")
        if bar.desc != stage:
            bar.set_description_str(stage, refresh=False)
        bar.update(done - bar.n)

    try:
        result = run(job, progress)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"{result.megapixels:.2f} MP in {result.seconds:.1f} s ({result.megapixels_per_second:.3f} MP/s, "
              f"{result.windows} windows, {result.device})")
        for name, count, area in zip(result.class_names, result.pixel_counts,
                                     result.class_areas_m2 or [None] * len(result.class_names)):
            if count:
                print(f"  {name}: {count} px" + (f", {_area(area)}" if area is not None else ""))
        if result.polygon_count is not None:
            print(f"{result.polygon_count} polygons")
        print("wrote " + ", ".join(str(p) for p in result.outputs))
    return 0


SERVE_HELP = """\
Serve the engine over HTTP for the QGIS plugin, scripts and notebooks: jobs are submitted
as JSON, run one at a time by a worker that keeps models loaded, and can be polled,
followed as server-sent events, or cancelled. A job's "kind" is segment, batch, classify,
retrieve, refer, ask or download_weights; its other fields are that command's long options
in snake_case ('rsov segment', 'rsov batch', ..., 'rsov weights download').
The API is under /v1; its OpenAPI schema is at /v1/openapi.json:
  GET /v1/health, GET /v1/models, POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/ID,
  GET /v1/jobs/ID/events, GET /v1/jobs/ID/result, DELETE /v1/jobs/ID (cancel),
  POST /v1/uploads?filename=NAME.tif (a GeoTIFF as the body, for clients on another disk),
  DELETE /v1/uploads/ID

Safe by default:
  - it listens on 127.0.0.1 only; another address needs an explicit --host.
  - every request needs 'Authorization: Bearer TOKEN'. The token is --token, else
    $RSOV_TOKEN, else one generated at first start into $RSOV_HOME/server/token
    (readable by you only).
  - paths in requests must be absolute; inputs must be readable files; outputs may only
    go under the --output-root folders (default: the job's input folder and $RSOV_HOME).
    No request can write, replace or delete a file anywhere else.
Job records live in $RSOV_HOME/server/jobs.sqlite: after a restart, jobs that were running
show 'interrupted', and their half-written files are gone.
"""


def _add_serve(commands) -> None:
    from backend.server.settings import DEFAULT_MAX_POLYGONS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT

    p = commands.add_parser("serve", help="serve the engine over HTTP (for the QGIS plugin and scripts)",
                            description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: a free one)")
    p.add_argument("--token", help="the bearer token clients must send (default: $RSOV_TOKEN or the token file; "
                                   "prefer those: other users can see a command line)")
    p.add_argument("--output-root", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder outputs may be written under (repeatable)")
    p.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                   help=f"largest upload taken by POST /v1/uploads (default {DEFAULT_MAX_UPLOAD_MB})")
    p.add_argument("--max-polygons", type=int, default=DEFAULT_MAX_POLYGONS, metavar="N",
                   help=f"most polygons sent inline with a result (default {DEFAULT_MAX_POLYGONS})")
    p.set_defaults(handler=_serve, flags=_flags(p))


def _serve(args: argparse.Namespace) -> int:
    from backend.server.serve import serve

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("rsov serve: %(message)s"))
    service_log = logging.getLogger("rsov.serve")
    service_log.addHandler(handler)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    return serve(args.host, args.port, args.token, args.output_root, args.max_upload_mb, args.max_polygons)


def _add_clip_options(p: argparse.ArgumentParser) -> None:
    """The reading, model and running options that classify and retrieve share."""
    read = p.add_argument_group("reading (as segment reads rasters)")
    read.add_argument("--bands", type=_bands, help="1-based bands as R,G,B (e.g. 4,3,2), or one band repeated "
                                                   "(default 1,2,3)")
    read.add_argument("--stretch", type=_numbers, help="MIN,MAX for all bands or per band (default: 2-98 "
                                                       "percentiles, except uint8)")
    model = p.add_argument_group("model")
    model.add_argument("--model", default="segearth-ov", help="model preset whose CLIP is used (default: "
                       "segearth-ov, OpenAI's ViT-B/16; the farslip* presets are remote-sensing CLIPs)")
    model.add_argument("--clip-weights", help="CLIP checkpoint file or registry name (default: the preset's)")
    model.add_argument("--activation", help="quickgelu or gelu (default: the preset's)")
    _add_running(p, (16, "images per model call (default 16)"))


def _add_classify(commands) -> None:
    p = commands.add_parser("classify", help="zero-shot scene classification of images, or of a raster's tiles",
                            description="Classify each image whole into the classes you name (CLIP's global "
                                        "embedding against the class prompts): the top-k classes with their "
                                        "probabilities, printed or written as CSV. With --tile, classify each tile "
                                        "of one raster into a grid of polygons.")
    p.add_argument("input", type=Path, metavar="IMAGE_OR_FOLDER",
                   help="an image, or a folder searched with its subfolders for every raster GDAL reads")
    classes = p.add_mutually_exclusive_group(required=True)
    classes.add_argument("--classes-file", type=Path, help="one class per line, comma-separated synonyms")
    classes.add_argument("--classes", help='classes separated by ";", synonyms by ",", e.g. "water; forest,trees"')
    p.add_argument("--top-k", type=int, default=3, metavar="K", help="classes kept per image or tile (default 3)")
    p.add_argument("--tile", type=int, metavar="PIXELS", help="classify tiles of this size (e.g. 256) of one "
                                                              "raster into a grid of polygons")
    p.add_argument("--gsd", type=float, metavar="METRES", help="the tiles' ground sampling distance (default: the "
                                                               "raster's)")
    p.add_argument("--out", type=Path, metavar="CSV_OR_GRID", help="CSV of the top-k rows per image (file, rank, "
                   "class, probability); with --tile the grid: .gpkg, .geojson or .fgb")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_clip_options(p)
    p.set_defaults(handler=_classify, flags=_flags(p))


class _CountBar:
    """A progress callback that draws a tqdm bar of items (images, tiles) for one stage of a job."""

    def __init__(self, quiet: bool, stage: str, unit: str) -> None:
        self.quiet, self.stage, self.unit = quiet, stage, unit
        self.bar = None

    def __call__(self, stage: str, done: float, total: float) -> None:
        from tqdm import tqdm

        if self.quiet or stage != self.stage or not total:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit=f" {self.unit}", desc=stage, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


BATCH_HELP = """\
Segment many scenes, one output set each, named after the scene: DIR/NAME.tif (classes),
DIR/NAME.gpkg (polygons; --vector-format) and with --probs DIR/NAME-probs.tif. INPUTS is
  - a folder: every raster in it and its subfolders;
  - a glob, quoted: 'tiles/**/*.tif';
  - a .txt list (one path or URL a line, # comments) or a .csv list (column path, url, href
    or source, else the first); https:// URLs are read through /vsicurl/, s3:// /vsis3/,
    gs:// /vsigs/; relative paths are relative to the list's folder;
  - a STAC ItemCollection .json: each item's --asset (default: visual, else its one GeoTIFF).
DIR/manifest.csv (--manifest-format parquet) has a row per scene: status (done or failed),
seconds, the classes found, polygons, outputs, and for a failed scene the error in one
sentence. It is saved after each scene: running the same command again skips the scenes
done and retries those that failed; scenes done with other classes or options run again.
A scene that fails never stops the batch.
Scenes run one at a time in this process, on --workers processes of this machine, or on a
Ray cluster (--ray): the same outputs each way (docs/scale.md).
Exit status: 0 when every scene is done, 1 when some failed (see the manifest), 2 for a bad
command line.
"""


def _add_batch(commands) -> None:
    p = commands.add_parser("batch", help="segment many scenes (a folder, a list, a STAC search), resumably",
                            description=BATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", metavar="INPUTS", help="a folder, a quoted glob, a .txt or .csv list of paths or URLs, "
                                                    "or a STAC ItemCollection .json")
    classes = p.add_mutually_exclusive_group(required=True)
    classes.add_argument("--classes-file", type=Path, help="one class per line, comma-separated synonyms")
    classes.add_argument("--classes", help='classes separated by ";", synonyms by ",", e.g. "background; building,roof"')
    out = p.add_argument_group("outputs")
    out.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="the folder of every scene's "
                     "outputs and the manifest")
    out.add_argument("--probs", action="store_true", help="also NAME-probs.tif, the probability raster")
    out.add_argument("--no-polygons", action="store_true", help="the class raster only")
    out.add_argument("--vector-format", default="gpkg", choices=("gpkg", "shp", "fgb", "geojson"),
                     help="the polygons' format (default gpkg)")
    out.add_argument("--manifest-format", default="csv", choices=("csv", "parquet"),
                     help="DIR/manifest.csv (default) or DIR/manifest.parquet (needs pyarrow)")
    scenes = p.add_argument_group("scenes")
    scenes.add_argument("--asset", metavar="KEY", help="STAC: the asset to segment (default: visual, else each "
                                                       "item's one GeoTIFF)")
    scenes.add_argument("--workers", type=int, default=1, metavar="N",
                        help="scenes at once, each in its own process on this machine (default 1; a cluster: "
                             "--ray)")
    _add_scene_options(p)
    p.set_defaults(handler=_batch, flags=_flags(p))


class _SceneBar(_CountBar):
    """Scenes done: it starts at those an earlier run did, so its rate is this run's."""

    def __call__(self, stage: str, done: float, total: float) -> None:
        from tqdm import tqdm

        if self.bar is None and not self.quiet and stage == self.stage and total:
            self.bar = tqdm(total=total, initial=done, unit=f" {self.unit}", desc=stage, dynamic_ncols=True)
        super().__call__(stage, done, total)


def _job_with_classes(args: argparse.Namespace, kind: type):
    """The job of type ``kind`` from the command line, its classes from --classes or --classes-file."""
    from backend.prompts import parse_class_file, parse_inline_classes

    if args.classes_file:
        args.flags["classes"] = "--classes-file"  # sentences about the classes name the flag that was used
    values = {name: getattr(args, name) for name in kind.field_names() if hasattr(args, name)}
    values["classes"] = parse_class_file(args.classes_file) if args.classes_file else parse_inline_classes(args.classes)
    return kind(**values)


def _batch(args: argparse.Namespace) -> int:
    from backend.batch.job import BatchJob
    from backend.batch.runner import run_batch

    job = _job_with_classes(args, BatchJob)
    logging.getLogger("rsov").setLevel(logging.WARNING)  # each scene's reading notes: the manifest has the facts
    bar = _SceneBar(args.quiet, "segmenting", "scenes")
    try:
        result = run_batch(job, bar)
    except (Cancelled, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (Terminated)
        bar.close()
        print(f"rsov: stopped; the scenes finished are in {job.manifest_path}: run the same command again to "
              "go on.", file=sys.stderr)
        return 143 if _terminated.is_set() else 130
    finally:
        bar.close()
    if not args.quiet:
        speed = f"{result.scenes_per_second:.3g} scenes/s" if result.done + result.failed else "none run"
        print(f"{result.scenes} scenes: {result.done} done, {result.failed} failed, {result.skipped} skipped in "
              f"{result.seconds:.1f} s ({speed}; {result.where}); manifest: {result.manifest}")
        for row in result.rows:
            if row["status"] == "failed":
                print(f"  {row['scene']}: {row['error']}", file=sys.stderr)
    return 1 if result.failed else 0


def _classify(args: argparse.Namespace) -> int:
    from backend.engine import run
    from backend.jobs import ClassifyJob
    from backend.prompts import parse_class_file, parse_inline_classes

    if args.classes_file:
        args.flags["classes"] = "--classes-file"
    values = {name: getattr(args, name) for name in ClassifyJob.field_names() if hasattr(args, name)}
    values["classes"] = parse_class_file(args.classes_file) if args.classes_file else parse_inline_classes(args.classes)
    job = ClassifyJob(**values)
    bar = _CountBar(args.quiet, "classifying", "tiles" if job.tile else "images")
    try:
        result = run(job, bar)
    finally:
        bar.close()
    if job.out is None:  # the rows are the output
        by_file: dict[str, list[str]] = {}
        for row in result.rows:
            by_file.setdefault(row["file"], []).append(f"{row['class']} {row['probability']:.3f}")
        for file, classes in by_file.items():
            print(f"{file}: {', '.join(classes)}")
    if not args.quiet:
        cached = f", {result.cached} from the embedding cache" if result.cached else ""
        skipped = f"; {result.skipped} skipped" if result.skipped else ""
        print(f"{result.items} {result.unit} in {result.seconds:.1f} s ({result.device}{cached}){skipped}; "
              f"logit scale {result.logit_scale:.4g}")
        for name, count in zip(result.class_names, result.class_counts):
            if count:
                print(f"  {name}: {count} {result.unit}")
        if result.outputs:
            print("wrote " + ", ".join(str(p) for p in result.outputs))
    return 0


def _add_retrieve(commands) -> None:
    p = commands.add_parser("retrieve", help="rank a folder's images for a text, or texts for an image",
                            description="Rank the images of FOLDER for --text, or --texts for one --image, by "
                                        "CLIP similarity (cosine of the embeddings). Image embeddings are cached "
                                        "under $RSOV_HOME/cache/images, so a second query over a folder only "
                                        "encodes the images that are new or changed.")
    p.add_argument("folder", type=Path, nargs="?", metavar="FOLDER",
                   help="the folder whose images are ranked for --text (searched with its subfolders)")
    p.add_argument("--text", help='what to search for, e.g. "a harbour with ships"')
    p.add_argument("--image", type=Path, help="one image for which --texts are ranked")
    texts = p.add_mutually_exclusive_group()
    texts.add_argument("--texts", help='texts to rank for --image, separated by ";"')
    texts.add_argument("--texts-file", type=Path, help="texts to rank for --image, one per line")
    p.add_argument("--top", type=int, default=10, metavar="N", help="ranks printed and written (default 10)")
    p.add_argument("--out", type=Path, metavar="CSV", help="CSV of the top ranks (rank, file or text, score, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_clip_options(p)
    p.set_defaults(handler=_retrieve, flags=_flags(p))


def _retrieve(args: argparse.Namespace) -> int:
    from backend.engine import run
    from backend.jobs import RetrieveJob
    from backend.zeroshot.texts import read_texts_file

    values = {name: getattr(args, name) for name in RetrieveJob.field_names() if hasattr(args, name)}
    if args.texts_file:
        args.flags["texts"] = "--texts-file"
        values["texts"] = read_texts_file(args.texts_file)
    job = RetrieveJob(**values)
    bar = _CountBar(args.quiet, "encoding images", "images")
    try:
        result = run(job, bar)
    finally:
        bar.close()
    for row in result.rows:
        if result.mode == "images":
            print(f"{row['rank']:>4}  {row['score']:.4f}  {row['file']}")
        else:
            print(f"{row['rank']:>4}  {row['score']:.4f}  {row['probability']:.4f}  {row['text']}")
    if not args.quiet:
        skipped = f"; {result.skipped} skipped" if result.skipped else ""
        print(f"{result.ranked} {result.mode} ranked in {result.seconds:.1f} s ({result.device}; {result.cached} "
              f"image embeddings from the cache, {result.encoded} encoded){skipped}")
        if result.outputs:
            print("wrote " + ", ".join(str(p) for p in result.outputs))
    return 0


def _add_describe_options(p: argparse.ArgumentParser, outputs: str):
    """What refer and ask share: the raster, the sentence, the area, the GeoMag checkpoint, the device and how
    masks become polygons; returns the outputs group (``outputs`` its title) for each command's own files."""
    p.add_argument("raster", type=Path, metavar="RASTER", help="GeoTIFF, COG, VRT, JP2 or any raster GDAL reads")
    p.add_argument("--prompt", required=True, help="the sentence about the area")
    p.add_argument("--checkpoint", required=True, metavar="GEOMAG",
                   help="GeoMag checkpoint file (training/geomag writes one; its base models are named inside)")
    p.add_argument("--no-magcrop", action="store_true",
                   help="read the whole area at the model's input size: no task routing, no prompt-guided crops")
    read = p.add_argument_group("reading (as segment reads rasters)")
    read.add_argument("--aoi", help="XMIN,YMIN,XMAX,YMAX, WKT, or a vector file (default: the whole raster)")
    read.add_argument("--aoi-layer", help="layer of a multi-layer AOI file")
    read.add_argument("--aoi-crs", help="CRS of --aoi coordinates (default: the raster's)")
    read.add_argument("--bands", type=_bands, help="1-based bands as R,G,B (default 1,2,3)")
    read.add_argument("--stretch", type=_numbers, help="MIN,MAX for all bands or per band (default: 2-98 "
                                                       "percentiles, except uint8)")
    _add_running(p, None, precision_help="auto, fp32, fp16 or bf16 (auto: fp32 on CPU, bf16 or fp16 on GPU)",
                 offline_help="never download base models", quiet_help="print only the answer")
    out = p.add_argument_group(outputs)
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument("--mask-threshold", type=float, default=0.5, help="probability from which a pixel is in a "
                                                                        "mask (default 0.5)")
    out.add_argument("--simplify", type=float, default=0.0, metavar="PIXELS", help="simplify polygon edges")
    out.add_argument("--min-area", type=float, default=0.0, metavar="M2", help="drop smaller polygons")
    return out


def _add_refer(commands) -> None:
    p = commands.add_parser("refer", help="segment what a sentence describes (GeoMag)",
                            description="Referring segmentation with GeoMag: the area (--aoi, else the whole "
                                        "raster) is read at the model's input size; MagCrop reads the part the "
                                        "prompt is about again at full resolution. The mask comes back on the "
                                        "raster's grid; its polygons carry the prompt and a score.")
    out = _add_describe_options(p, "outputs (at least one)")
    out.add_argument("--out", type=Path, metavar="MASK.gpkg", help="polygons: .gpkg, .shp, .geojson or .fgb")
    out.add_argument("--out-raster", type=Path, metavar="MASK.tif",
                     help="GeoTIFF: band 1 mask (1 target, 0 not, 255 outside the area), band 2 probability in %%")
    p.set_defaults(handler=_refer, flags=_flags(p))


def _add_ask(commands) -> None:
    p = commands.add_parser("ask", help="answer a question about an area in text (GeoMag)",
                            description="Captions, questions and 'what is this' about an area, answered by "
                                        "GeoMag in text. Prints the answer, the task granularity MagCrop's "
                                        "classifier chose and the crop its attention search found.")
    out = _add_describe_options(p, "grounded masks")
    out.add_argument("--out", type=Path, metavar="GROUNDED.gpkg", help="polygons of the phrases the answer grounds "
                     "(grounded conversation: 'describe this image with masks'): prompt, phrase, score, area_m2")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest answer in tokens (default 256)")
    p.set_defaults(handler=_ask, flags=_flags(p))


def _describe_lines(result) -> list[str]:
    lines = []
    if result.granularity is not None:
        chances = ", ".join(f"{name} {p:.2f}" for name, p in result.granularity_probabilities.items())
        lines.append(f"task granularity: {result.granularity} ({chances})")
        where = f" ({result.crs})" if result.crs else " (pixels)"
        lines.append(f"focus box: {', '.join(f'{v:g}' for v in result.focus_bounds)}{where}")
    else:
        lines.append("MagCrop off: the whole area at the model's input size")
    return lines


def _refer(args: argparse.Namespace) -> int:
    from backend.engine import run
    from backend.jobs import ReferJob

    job = ReferJob(**{name: getattr(args, name) for name in ReferJob.field_names() if hasattr(args, name)})
    result = run(job)
    if not args.quiet:
        for line in _describe_lines(result):
            print(line)
        area = f", {result.area_m2:,.0f} m²" if result.area_m2 is not None else ""
        polygons = f", {result.polygon_count} polygon(s)" if result.polygon_count is not None else ""
        print(f"mask: {result.pixel_count} pixels{area}{polygons}; score {result.score:.3f}; "
              f"{result.seconds:.1f} s ({result.device})")
        print("wrote " + ", ".join(str(p) for p in result.outputs))
    return 0


def _ask(args: argparse.Namespace) -> int:
    from backend.engine import run
    from backend.jobs import AskJob

    job = AskJob(**{name: getattr(args, name) for name in AskJob.field_names() if hasattr(args, name)})
    result = run(job)
    print(result.answer)
    if not args.quiet:
        for line in _describe_lines(result):
            print(line)
        if result.phrases:
            print("grounded: " + "; ".join(phrase or "(no phrase)" for phrase in result.phrases))
        print(f"{result.seconds:.1f} s ({result.device})")
        if result.outputs:
            print(f"wrote {result.outputs[0]} ({result.polygon_count} polygon(s))")
    return 0


def _add_weights(commands) -> None:
    p = commands.add_parser("weights", help="list, download, verify or locate released weights")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the registry and what is in the cache")
    download = sub.add_parser("download", help="download a file into the cache")
    download.add_argument("name")
    download.add_argument("--force", action="store_true", help="download again even if cached")
    verify = sub.add_parser("verify", help="check cached files' sha256")
    verify.add_argument("name", nargs="?")
    path = sub.add_parser("path", help="print where a file is (or would be) cached")
    path.add_argument("name")
    p.set_defaults(handler=_weights)


def _weights(args: argparse.Namespace) -> int:
    from backend import weights

    if args.action == "list":
        for spec in weights.REGISTRY.values():
            state = "cached" if weights.cached_path(spec.name).exists() else "not cached"
            print(f"{spec.name:32s} {state:10s} {spec.description}")
            print(f"{'':32s} {spec.format}; license: {spec.license}; from {spec.source}")
        return 0
    if args.action == "download":
        from backend.engine import run
        from backend.jobs import DownloadWeightsJob

        print(run(DownloadWeightsJob(args.name, args.force)).path)
        return 0
    if args.action == "path":
        print(weights.cached_path(args.name))
        return 0
    names = [args.name] if args.name else [n for n in weights.REGISTRY if weights.cached_path(n).exists()]
    failed = 0
    for name in names:
        ok, message = weights.verify(name)
        failed += not ok
        print(f"{name}: {message}")
    if not names:
        print("no weights are cached yet; 'rsov weights download NAME' fetches one.")
    return 1 if failed else 0


EVAL_HELP = """\
Score a model on the public benchmarks in their released folder layouts, at the authors'
image-level protocol (resize, slide windows, their thresholds), and write the scores as JSON
and a Markdown table with the paper's number beside ours. One confusion matrix per split:
per-class IoU, mIoU, foreground IoU for single-class sets, pixel accuracy; label pixels of
the ignore index (255) are not scored. Partial results are kept under --out: running the
same command again continues where it stopped. Data sets, their folders and layouts:
docs/datasets.md ('rsov eval --list' names them).

  rsov eval --dataset loveda --root data/LoveDA --limit 50
  rsov eval --suite segearth-ov-table2 --root data --save-pred
  rsov eval --labels labels/ --images tiles/ --classes "background; building" --class-values 0,1
"""


def _add_eval(commands) -> None:
    p = commands.add_parser("eval", help="score a model on the papers' benchmarks, or on your own labelled rasters",
                            description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to score (one of)")
    what.add_argument("--dataset", help="a benchmark data set, e.g. openearthmap, loveda, whu-aerial")
    what.add_argument("--suite", help="a paper's table: segearth-ov-table2, segearth-ov-table3, segearth-ov-sar, "
                                      "farslip-ovss")
    what.add_argument("--labels", type=Path, metavar="DIR_OR_FILE", help="your own label raster(s), aligned with "
                      "--images (a folder: paired by file name)")
    what.add_argument("--list", action="store_true", help="list the data sets and suites, and exit")
    data = p.add_argument_group("benchmarks")
    data.add_argument("--root", type=Path, metavar="DIR", help="the data set's folder (with --suite: the folder "
                      "holding each data set's folder)")
    data.add_argument("--split", help="the split to score (default: the one the paper reports)")
    data.add_argument("--limit", type=int, metavar="N", help="score only the first N images (by name)")
    own = p.add_argument_group("your own labels")
    own.add_argument("--images", type=Path, metavar="DIR_OR_FILE", help="the image(s) the labels belong to")
    own.add_argument("--classes", help='the classes, separated by ";" (synonyms by ","), e.g. "background; building"')
    own.add_argument("--class-values", type=_whole_numbers, metavar="V,V,...",
                     help="the label value of each class, in order (default 0,1,2,...); other values are not scored")
    model = p.add_argument_group("model")
    model.add_argument("--model", help="model preset (default: the suite's, else segearth-ov)")
    model.add_argument("--clip-weights", help="CLIP checkpoint file or registry name (default: the preset's)")
    model.add_argument("--upsampler-weights", help="SimFeatUp checkpoint file or registry name")
    model.add_argument("--no-upsampler", action="store_true", help="bilinear logits instead of SimFeatUp")
    model.add_argument("--predictions", type=Path, metavar="DIR", help="score saved class maps (<image id>.png, as "
                       "--save-pred writes them) instead of running a model")
    out = p.add_argument_group("outputs")
    out.add_argument("--out", type=Path, default=Path("rsov-eval"), metavar="DIR",
                     help="results and partial results (default: rsov-eval)")
    out.add_argument("--save-pred", action="store_true", help="keep each image's predicted class map as a PNG")
    out.add_argument("--overwrite", action="store_true", help="discard partial results made with other settings")
    _add_running(p, (8, "windows per model call (default 8)"))
    p.set_defaults(handler=_eval, flags=_flags(p))


def _eval_list() -> int:
    from backend.eval.datasets import DATASETS
    from backend.eval.suites import SUITES

    print("data sets (--dataset NAME --root FOLDER; in a suite, FOLDER is ROOT/<folder>):")
    for spec in DATASETS.values():
        print(f"  {spec.name:20s} {spec.title} ({spec.modality}, {spec.split} split), folder {spec.folder}")
    print("suites (--suite NAME):")
    for suite in SUITES.values():
        print(f"  {suite.name:20s} {suite.title}, model {suite.model}: {', '.join(suite.datasets)}")
    return 0


class _EvalBar:
    """One tqdm bar of images per data set."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.stage = quiet, None, None

    def __call__(self, stage: str, done: float, total: float) -> None:
        from tqdm import tqdm

        if self.quiet:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, initial=done, unit=" images", desc=stage, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _eval(args: argparse.Namespace) -> int:
    from backend.eval.job import EvalJob
    from backend.eval.report import difference, percent
    from backend.eval.runner import evaluate

    if args.list:
        return _eval_list()
    job = EvalJob(**{name: getattr(args, name) for name in EvalJob.field_names() if hasattr(args, name)})
    bar = _EvalBar(args.quiet)
    try:
        report = evaluate(job, bar)
    finally:
        bar.close()
    if not args.quiet:
        for r in report.results:
            metric = "foreground IoU" if r.metric == "foreground_iou" else "mIoU"
            paper = f" (paper {percent(r.paper)}, {difference(r.value, r.paper)})" if r.paper is not None else ""
            print(f"{r.title} {r.split}, {r.images} images: {metric} {percent(r.value)}{paper}")
        for name, why in report.skipped.items():
            print(f"{name}: not run ({why})")
        print("wrote " + ", ".join(str(p) for p in report.outputs))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line, not the whole usage."""

    def error(self, message: str):
        print(f"rsov: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rsov", description="Open-vocabulary segmentation of remote-sensing rasters.")
    parser.add_argument("--version", action="version", version=f"rsov {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_segment(commands)
    _add_batch(commands)
    _add_serve(commands)
    _add_weights(commands)
    _add_classify(commands)
    _add_retrieve(commands)
    _add_refer(commands)
    _add_ask(commands)
    _add_eval(commands)
    return parser


class _MessageFormatter(logging.Formatter):
    """'rsov: MESSAGE' for what the engine tells (how the raster is read), 'rsov: warning: ...' for warnings."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = "rsov: warning: " if record.levelno >= logging.WARNING else "rsov: "
        return prefix + record.getMessage()


_terminated = threading.Event()  # SIGTERM came: Ray's waits turn any interrupt into a plain KeyboardInterrupt


def _terminate(signum, frame) -> None:
    _terminated.set()
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if not getattr(args, "quiet", False) else logging.WARNING)
    logging.getLogger().handlers[0].setFormatter(_MessageFormatter())
    if not sys.warnoptions:  # libraries' own warnings are not for the user; ours go through logging
        warnings.simplefilter("ignore")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # a service manager's stop cleans up like Ctrl-C
    flags = getattr(args, "flags", {})
    try:
        return args.handler(args)
    except UserInputError as error:
        print(f"rsov: error: {error.render(lambda name: flags.get(name, name))}", file=sys.stderr)
        return error.exit_code
    except Cancelled:
        print("rsov: cancelled; nothing was written.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (Terminated)
        if _terminated.is_set():
            print("rsov: terminated; nothing was written.", file=sys.stderr)
            return 143
        print("rsov: interrupted; nothing was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
