"""The service's request and response bodies: the OpenAPI contract with the plugin and scripts.

A job request is ``{"kind": ..., fields}``; the fields of a kind are its job's fields (the
CLI's long options in snake_case). A new kind of job is a new request model in
``JOB_REQUESTS``, not a new route.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from backend.batch.job import SCENE_FIELDS
from backend.engine import STAGES
from backend.zeroshot.classify import STAGES as CLASSIFY_STAGES
from backend.zeroshot.retrieval import STAGES as RETRIEVE_STAGES
from backend.raster.tiling import DEFAULT_STRIP_WIDTH
from backend.server.store import STATES

State = Literal[STATES]  # type: ignore[valid-type]


class SegmentRequest(BaseModel):
    """``rsov segment``'s options as JSON: the same names, values and checks."""

    model_config = ConfigDict(extra="forbid", strict=True, title="SegmentJob")  # "yes" is no boolean

    kind: Literal["segment"] = Field(description="the job kind")
    raster: str = Field(description="absolute path of the raster on the service's machine (GeoTIFF, COG, VRT, "
                                    "JP2, ...), or a path returned by POST /v1/uploads")
    classes: Union[str, list[str]] = Field(
        description='classes in order (class raster values 0, 1, ...): "background; building,roof,house; road" '
                    '(";" between classes, "," between synonyms) or a list ["background", "building,roof,house"]')
    out_raster: str | None = Field(None, description="class raster to write (COG, uint8, nodata 255)")
    out: str | None = Field(None, description="polygons to write: .gpkg, .shp, .geojson or .fgb")
    out_probs: str | None = Field(None, description="probability raster to write (COG, float32, band i = class i)")
    preview: str | None = Field(None, description="PNG preview of the classes beside the image")
    overwrite: bool = Field(False, description="replace existing outputs")
    bands: Union[list[int], str, None] = Field(None, description="1-based bands as R,G,B, e.g. [4, 3, 2]; SAR: "
                                                                 "[co-pol] or [co-pol, cross-pol]")
    stretch: Union[list[float], str, None] = Field(None, description="[MIN, MAX] for all bands or per band, in dB "
                                                                     "for SAR (default: 2-98 percentiles, except "
                                                                     "uint8)")
    aoi: str | None = Field(None, description="area of interest: 'XMIN,YMIN,XMAX,YMAX', a WKT geometry, or the "
                                              "absolute path of a vector file")
    aoi_layer: str | None = Field(None, description="layer of the aoi file (default: the first)")
    aoi_crs: str | None = Field(None, description="CRS of aoi, e.g. EPSG:4326 or WKT (default: the file's own, "
                                                  "else the raster's)")
    gsd: float | None = Field(None, description="resample on read to this ground sampling distance, metres")
    resize_long_side: int | None = Field(None, description="resample on read so the area's long side has this "
                                                           "many pixels")
    keep_gsd: bool = Field(False, description="write rasters at the resampled grid, not the input's")
    modality: str = Field("auto", description="optical, sar, or auto: from the raster's metadata, band count and "
                                              "data type (the result's notes say what was chosen)")
    sar_scale: str = Field("auto", description="what SAR values are: power, amplitude, db, or auto")
    speckle: str = Field("none", description="SAR speckle filter before the dB conversion: none, lee or refined-lee")
    speckle_window: int = Field(7, description="speckle filter window in pixels, odd")
    speckle_looks: float | None = Field(None, description="equivalent number of looks (default: estimated from the "
                                                          "raster)")
    simplify: float = Field(0.0, description="simplify polygons by this tolerance in pixels, keeping shared edges")
    min_area: float = Field(0.0, description="drop polygons smaller than this, m²")
    fill_holes: float = Field(0.0, description="fill holes smaller than this, m²")
    out_crs: str | None = Field(None, description="CRS of the polygons (default: the raster's)")
    model: str = Field("segearth-ov", description="model preset (GET /v1/models)")
    dataset_preset: str | None = Field(None, description="threshold/background preset of a benchmark dataset")
    clip_weights: str | None = Field(None, description="CLIP checkpoint: absolute file path or registry name")
    upsampler_weights: str | None = Field(None, description="SimFeatUp checkpoint: absolute file path or registry "
                                                            "name")
    no_upsampler: bool = Field(False, description="bilinear logits instead of SimFeatUp")
    attention: str | None = Field(None, description="dense attention: segearth, sclip, clearclip or vanilla")
    attention_blocks: int | None = Field(None, description="how many last blocks use dense attention")
    activation: str | None = Field(None, description="quickgelu or gelu (default: the preset's)")
    gba_lambda: float | None = Field(None, description="global bias alleviation weight (default -0.3)")
    prob_threshold: float | None = Field(None, description="pixels below this probability (0-1) become background")
    background_index: int | None = Field(None, description="class index given to low-probability pixels")
    window: int | None = Field(None, description="slide window size in pixels (default 224)")
    stride: int | None = Field(None, description="slide stride in pixels (default 112)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: str = Field("auto", description="auto, fp32, fp16 or bf16 (auto: fp32 on CPU, fp16 on GPU)")
    batch_size: int = Field(8, description="windows per model call (halved by itself if the GPU runs out of "
                                           "memory)")
    strip_width: int = Field(DEFAULT_STRIP_WIDTH, description="process wider rasters in column strips of this "
                                                              "width (bounds memory)")
    offline: bool = Field(False, description="never download weights")
    ray: str | None = Field(None, description="run the column strips on a Ray cluster: auto (the cluster of the "
                                              "service's machine, else a local one) or HOST:6379 / "
                                              "ray://HOST:10001 (needs rs-openvocab[cluster])")
    ray_workers: int | None = Field(None, description="model workers on the cluster (default: one per GPU, else "
                                                      "one per two CPUs)")


class _BatchFields(BaseModel):
    """``rsov batch``'s own options; its classes and each scene's options are SegmentRequest's (``BatchRequest``)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="BatchJob")

    kind: Literal["batch"] = Field(description="the job kind")
    inputs: str = Field(description="absolute path of a folder (every raster in it and its subfolders), a glob "
                                    "('/data/tiles/*.tif'), a .txt or .csv list of paths or URLs (https:// is read "
                                    "through /vsicurl/, s3:// /vsis3/), or a STAC ItemCollection .json")
    out_dir: str = Field(description="the folder of every scene's outputs (NAME.tif, NAME.gpkg, NAME-probs.tif) "
                                     "and of the manifest; a job run again with it skips the scenes done")
    asset: str | None = Field(None, description="STAC: the asset to segment (default: visual, else each item's one "
                                                "GeoTIFF)")
    manifest_format: Literal["csv", "parquet"] = Field("csv", description="out_dir/manifest.csv or .parquet: a row "
                                                       "per scene (status, seconds, classes found, error)")
    vector_format: Literal["gpkg", "shp", "fgb", "geojson"] = Field("gpkg", description="the polygons' format")
    probs: bool = Field(False, description="also NAME-probs.tif, the probability raster")
    no_polygons: bool = Field(False, description="the class raster only")
    workers: int = Field(1, description="scenes at once, each in its own process on the service's machine")
    ray: str | None = Field(None, description="run the scenes on a Ray cluster: auto or HOST:6379 / "
                                              "ray://HOST:10001 (needs rs-openvocab[cluster]); out_dir on storage "
                                              "every node mounts")


BatchRequest = create_model(  # SegmentRequest's classes, options for each scene and ray_workers: the same names,
    "BatchRequest", __base__=_BatchFields,  # defaults and descriptions
    **{name: (info.annotation, info) for name, info in SegmentRequest.model_fields.items()
       if name in ("classes", *SCENE_FIELDS, "ray_workers")})


class DownloadWeightsRequest(BaseModel):
    """``rsov weights download NAME``: a registry's file into the service's weights cache, verified."""

    model_config = ConfigDict(extra="forbid", strict=True, title="DownloadWeightsJob")

    kind: Literal["download_weights"] = Field(description="the job kind")
    name: str = Field(description="a weights name from GET /v1/models (e.g. openai-vit-b-16)")
    force: bool = Field(False, description="download again even if cached")


class _ClipRequest(BaseModel):
    """What classify and retrieve requests share (``jobs.ClipJob``'s fields)."""

    out: str | None = Field(None, description="classify: .csv of the top-k rows per image (file, rank, class, "
                                              "probability), or with tile the grid of tile polygons: .gpkg, "
                                              ".geojson or .fgb; retrieve: .csv of the top ranks")
    overwrite: bool = Field(False, description="replace an existing output")
    bands: Union[list[int], str, None] = Field(None, description="1-based bands as R,G,B, e.g. [4, 3, 2]")
    stretch: Union[list[float], str, None] = Field(None, description="[MIN, MAX] for all bands or per band "
                                                                     "(default: 2-98 percentiles, except uint8)")
    model: str = Field("segearth-ov", description="model preset whose CLIP is used (GET /v1/models; the farslip* "
                                                  "presets are remote-sensing CLIPs)")
    clip_weights: str | None = Field(None, description="CLIP checkpoint: absolute file path or registry name")
    activation: str | None = Field(None, description="quickgelu or gelu (default: the preset's)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: str = Field("auto", description="auto, fp32, fp16 or bf16 (auto: fp32 on CPU, fp16 on GPU)")
    batch_size: int = Field(16, description="images per model call")
    offline: bool = Field(False, description="never download weights")


class ClassifyRequest(_ClipRequest):
    """``rsov classify``'s options as JSON: zero-shot scene classification of images, or of a raster's tiles."""

    model_config = ConfigDict(extra="forbid", strict=True, title="ClassifyJob")

    kind: Literal["classify"] = Field(description="the job kind")
    input: str = Field(description="absolute path of an image, or of a folder searched with its subfolders for "
                                   "every raster GDAL reads")
    classes: Union[str, list[str]] = Field(description='classes: "water; forest,trees; road" (";" between classes, '
                                                       '"," between synonyms) or a list ["water", "forest,trees"]')
    top_k: int = Field(3, description="classes kept per image or tile")
    tile: int | None = Field(None, description="classify tiles of this many pixels of one raster into a grid of "
                                               "polygons (columns row, col, class, probability, top_k, "
                                               "valid_fraction)")
    gsd: float | None = Field(None, description="the tiles' ground sampling distance, metres (default: the "
                                                "raster's)")


class RetrieveRequest(_ClipRequest):
    """``rsov retrieve``'s options as JSON: a folder's images ranked for a text, or texts ranked for an image."""

    model_config = ConfigDict(extra="forbid", strict=True, title="RetrieveJob")

    kind: Literal["retrieve"] = Field(description="the job kind")
    folder: str | None = Field(None, description="absolute path of a folder whose images (with its subfolders') "
                                                 "are ranked for text")
    text: str | None = Field(None, description="what to search the folder for, e.g. 'a harbour with ships'")
    image: str | None = Field(None, description="absolute path of one image for which texts are ranked")
    texts: Union[str, list[str], None] = Field(None, description='texts to rank for image: "a; b; c" or a list')
    top: int = Field(10, description="how many ranks to keep")


class _DescribeRequest(BaseModel):
    """What refer and ask requests share (``jobs.DescribeJob``'s fields)."""

    raster: str = Field(description="absolute path of the raster on the service's machine, or a path returned by "
                                    "POST /v1/uploads")
    prompt: str = Field(description="the sentence about the area, e.g. 'the small boat beside the second pier'")
    checkpoint: str = Field(description="absolute path of a GeoMag checkpoint file (training/geomag writes one)")
    no_magcrop: bool = Field(False, description="read the whole area at the model's input size: no task routing, "
                                                "no prompt-guided crops")
    bands: Union[list[int], str, None] = Field(None, description="1-based bands as R,G,B, e.g. [4, 3, 2]")
    stretch: Union[list[float], str, None] = Field(None, description="[MIN, MAX] for all bands or per band")
    aoi: str | None = Field(None, description="XMIN,YMIN,XMAX,YMAX, WKT, or an absolute path of a vector file "
                                              "(default: the whole raster)")
    aoi_layer: str | None = Field(None, description="layer of a multi-layer AOI file")
    aoi_crs: str | None = Field(None, description="CRS of the AOI coordinates (default: the raster's)")
    overwrite: bool = Field(False, description="replace existing outputs")
    mask_threshold: float = Field(0.5, description="probability from which a pixel is in a mask")
    simplify: float = Field(0.0, description="simplify polygon edges by this many pixels")
    min_area: float = Field(0.0, description="drop polygons smaller than this, m²")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: str = Field("auto", description="auto, fp32, fp16 or bf16 (auto: fp32 on CPU, bf16/fp16 on GPU)")
    offline: bool = Field(False, description="never download base models")


class ReferRequest(_DescribeRequest):
    """``rsov refer``'s options as JSON: the mask of what the prompt describes (GeoMag)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="ReferJob")

    kind: Literal["refer"] = Field(description="the job kind")
    out: str | None = Field(None, description="polygons to write (prompt, score, area_m2): .gpkg, .shp, .geojson "
                                              "or .fgb")
    out_raster: str | None = Field(None, description="GeoTIFF to write: band 1 mask (1 target, 0 not, 255 outside "
                                                     "the area), band 2 probability in percent")


class AskRequest(_DescribeRequest):
    """``rsov ask``'s options as JSON: an answer in text about the area (GeoMag)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="AskJob")

    kind: Literal["ask"] = Field(description="the job kind")
    max_new_tokens: int = Field(256, description="longest answer in tokens")
    out: str | None = Field(None, description="polygons of the phrases the answer grounds (prompt, phrase, score, "
                                              "area_m2): .gpkg, .shp, .geojson or .fgb")


JOB_REQUESTS = {"segment": SegmentRequest, "download_weights": DownloadWeightsRequest, "classify": ClassifyRequest,
                "retrieve": RetrieveRequest, "refer": ReferRequest, "ask": AskRequest, "batch": BatchRequest}
JobRequest = Annotated[Union[tuple(JOB_REQUESTS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]


class ErrorBody(BaseModel):
    error: str = Field(description="one sentence naming the input and the fix")
    fields: list[str] = Field(default_factory=list, description="the request fields the sentence is about")


class Submitted(BaseModel):
    id: str
    state: State
    url: str = Field(description="the job's status")


class Progress(BaseModel):
    stage: str = Field(description=f"queued, then {', '.join(STAGES)} (a segment job), downloading, "
                                   f"{', '.join(CLASSIFY_STAGES)} (classify), {', '.join(RETRIEVE_STAGES)} "
                                   "(retrieve), loading model, segmenting, writing (refer), loading model, "
                                   "answering (ask) or segmenting (batch, in scenes)")
    done_mp: float = Field(description="megapixels segmented (classify and retrieve: images or tiles done, see unit)")
    total_mp: float | None = Field(description="megapixels to segment (known once the job runs), or images or tiles")
    mp_per_s: float | None = Field(description="segmenting rate (classify and retrieve: images or tiles per second)")
    eta_s: float | None = Field(description="seconds of segmenting (classifying, encoding images) left (unknown "
                                            "before and after that stage)")
    unit: Literal["MP", "images", "tiles", "queries", "scenes"] = Field(
        "MP", description="what done_mp, total_mp and mp_per_s count (queries: refer and ask; scenes: batch)")


class JobStatus(BaseModel):
    id: str
    kind: str
    state: State
    submitted: datetime
    started: datetime | None
    finished: datetime | None
    progress: Progress | None
    cancel_requested: bool
    error: str | None = Field(description="why the job failed, was cancelled or was interrupted")
    error_fields: list[str] = Field(description="the request fields the error is about")
    request: dict = Field(description="the request as submitted")


class OutputFile(BaseModel):
    role: str = Field(description="the request field that named it: out_raster, out_probs, out or preview")
    path: str
    bytes: int | None = Field(description="its size when the job finished")


class ClassResult(BaseModel):
    index: int = Field(description="its value in the class raster")
    name: str
    synonyms: list[str]
    pixels: int = Field(description="pixels of the working grid given this class")
    area_m2: float | None = Field(description="their area (None without a CRS on the ground)")


class JobResult(BaseModel):
    id: str
    kind: Literal["segment"]
    files: list[OutputFile]
    classes: list[ClassResult]
    megapixels: float
    seconds: float
    mp_per_s: float
    windows: int
    device: str
    polygon_count: int | None = Field(description="polygons written to out (None when out was not asked for)")
    notes: list[str] = Field([], description="how the raster was read (the modality chosen and the conversion to "
                                             "the model's pixels), then any warnings")
    polygons: dict | None = Field(description="the polygons as a GeoJSON FeatureCollection in longitude/latitude "
                                              "(pixel coordinates for a raster without CRS), when there are at "
                                              "most max_polygons of them")
    polygons_omitted: bool = Field(description="true when there were more than max_polygons: read the file instead")


class ClassCount(BaseModel):
    name: str
    synonyms: list[str]
    count: int = Field(description="images or tiles whose best class it is")


class _TableResult(BaseModel):
    """What classify and retrieve results share: a table of rows, from images the model encoded or the cache."""

    id: str
    files: list[OutputFile]
    skipped: int = Field(description="images that could not be read, or tiles without any valid pixel")
    encoded: int = Field(description="images encoded by the model; the others came from the embedding cache")
    cached: int
    seconds: float
    device: str
    logit_scale: float = Field(description="the softmax temperature: the model's own, at most 100")
    notes: list[str] = Field([], description="how the raster was read, images skipped, warnings")


class ClassifyJobResult(_TableResult):
    kind: Literal["classify"]
    unit: Literal["images", "tiles"]
    classes: list[ClassCount]
    items: int = Field(description="images or tiles classified")
    crs: str | None = Field(description="CRS of the tiles' bounds (None for images, or without a CRS)")
    rows: list[dict] = Field(description="the first rows of out, up to max_rows: images: file, rank, class, "
                                         "probability (top_k rows per image); tiles: row, col, class, probability, "
                                         "top_k, valid_fraction, bounds [xmin, ymin, xmax, ymax]")
    row_count: int = Field(description="rows in all")
    rows_omitted: bool = Field(description="true when rows holds fewer than row_count: read the file instead")


class RetrieveJobResult(_TableResult):
    kind: Literal["retrieve"]
    mode: Literal["images", "texts"] = Field(description="images: the folder's images ranked for text; texts: the "
                                                         "texts ranked for image")
    query: str = Field(description="the text, or the image")
    ranked: int = Field(description="images or texts ranked")
    rows: list[dict] = Field(description="the top ranks, best first: rank, file, score (images); rank, text, score, "
                                         "probability (texts); score is the cosine similarity, probability "
                                         "softmax(logit_scale x score) over the texts")


class _DescribeResult(BaseModel):
    """What refer and ask results share: MagCrop's decisions."""

    id: str
    prompt: str
    granularity: Literal["image", "region", "pixel"] | None = Field(
        description="the task granularity MagCrop's classifier chose (None without MagCrop)")
    granularity_probabilities: dict[str, float] | None
    focus_bounds: list[float] = Field(description="the innermost crop [xmin, ymin, xmax, ymax] in crs")
    crops: list[list[float]] = Field(description="every crop MagCrop made, outermost first")
    crs: str | None = Field(description="CRS of the bounds (None: pixel coordinates of a raster without CRS)")
    seconds: float
    device: str
    notes: list[str] = Field([], description="how the raster was read and what MagCrop chose")


class ReferJobResult(_DescribeResult):
    kind: Literal["refer"]
    files: list[OutputFile]
    score: float = Field(description="the model's confidence in its mask, 0-1")
    pixel_count: int = Field(description="mask pixels on the area's grid")
    area_m2: float | None = Field(description="the mask's area (None without a CRS on the ground or without out)")
    polygon_count: int | None
    polygons: dict | None = Field(description="the polygons as GeoJSON in longitude/latitude, up to max_polygons")
    polygons_omitted: bool


class AskJobResult(_DescribeResult):
    kind: Literal["ask"]
    answer: str
    phrases: list[str] = Field([], description="the phrases the answer grounds with [SEG], one mask each")
    files: list[OutputFile] = Field([], description="out, when it was asked for")
    polygon_count: int | None = Field(None, description="polygons written to out (None without out)")


class BatchJobResult(BaseModel):
    id: str
    kind: Literal["batch"]
    files: list[OutputFile] = Field(description="the manifest (role manifest); the scenes' files are in its rows")
    scenes: int = Field(description="scenes the inputs name")
    done: int = Field(description="scenes segmented by this job")
    failed: int = Field(description="scenes that failed (their rows say why); the job itself is done")
    skipped: int = Field(description="scenes an earlier job with this out_dir had done")
    seconds: float
    scenes_per_s: float | None = Field(description="scenes done or failed per second (None when none ran)")
    where: str = Field(description="how the scenes ran: in the service, in N processes, or on Ray workers")
    rows: list[dict] = Field(description="the manifest's rows of the inputs' scenes, up to max_rows: scene, source, "
                                         "status (done or failed), seconds, classes (found, '; '-joined), polygons, "
                                         "outputs, error, finished, settings (a hash of the classes and "
                                         "options the scene was done with)")
    row_count: int
    rows_omitted: bool = Field(description="true when rows holds fewer than row_count: read the manifest instead")


class DownloadWeightsResult(BaseModel):
    id: str
    kind: Literal["download_weights"]
    name: str
    path: str = Field(description="where the cache keeps the file")
    bytes: int
    seconds: float


class Upload(BaseModel):
    id: str = Field(description="DELETE /v1/uploads/ID removes it")
    path: str = Field(description="where the file is on the service's machine: give it as a job's raster")
    bytes: int


class DeviceInfo(BaseModel):
    name: str = Field(description="cpu or cuda:N")
    kind: str
    description: str
    total_bytes: int | None
    free_bytes: int | None = Field(description="free memory; not asked of a GPU jobs do not run on")


class Health(BaseModel):
    version: str
    device: str = Field(description="the device jobs with device 'auto' run on")
    devices: list[DeviceInfo]
    loaded_models: list[dict] = Field(description="models resident in memory, least recently used first")
    queued_jobs: int
    running_job: str | None
    worker_alive: bool = Field(description="the thread that runs jobs is up (false: restart the service)")


class WeightsInfo(BaseModel):
    name: str
    present: bool = Field(description="in the local weights cache")
    bytes: int | None = Field(description="size of the local file")
    path: str = Field(description="where the cache keeps it")


class DatasetPresetInfo(BaseModel):
    name: str
    modality: Literal["optical", "sar"]
    classes: list[str] = Field(description="the dataset's class lines as the authors prompt them (synonyms by "
                                           "commas), in class-index order")
    prob_threshold: float
    background_index: int
    source: str = Field(description="the authors' class-name file")


class ModelInfo(BaseModel):
    name: str
    description: str
    modality: Literal["optical", "sar"]
    weights: list[WeightsInfo]
    ready: bool = Field(description="every weights file is present: runs offline")
