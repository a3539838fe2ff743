"""The FastAPI application: routes under /v1, bearer-token auth, errors as one sentence.

Every route translates and delegates: validation is ``SegmentJob``'s, running is the
worker's (``engine.run``), paths are checked by ``PathPolicy``.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Union

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import __version__
from backend.errors import UserInputError
from backend.models.cache import ModelCache
from backend.raster.files import remove_debris
from backend.server.paths import PathPolicy
from backend.server.schemas import (AskJobResult, BatchJobResult, ClassifyJobResult, DatasetPresetInfo,
                                    DownloadWeightsResult, ErrorBody, Health, JobRequest, JobResult, JobStatus,
                                    ModelInfo, ReferJobResult, RetrieveJobResult, Submitted, Upload)
from backend.server.settings import ServiceSettings
from backend.server.store import JobRecord, JobStore
from backend.server.uploads import receive_upload, remove_partial_uploads, upload_folder
from backend.server.worker import MAX_STORED_ROWS, STOPPED, LiveProgress, Worker

log = logging.getLogger("rsov.serve")
EVENT_INTERVAL_S = 0.25

_bearer = HTTPBearer(auto_error=False, description="the token printed at start and kept in RSOV_HOME/server/token")


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorBody} for code in codes}


class Service:
    """What the routes share: settings, job records, the worker and the path policy."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.store = JobStore(settings.database)
        self.paths = PathPolicy(settings.output_roots, settings.home)
        self.worker = Worker(self.store, ModelCache(settings.model_capacity), self.paths.admit)
        self._recover()

    def _recover(self) -> None:
        """Jobs a dead service left queued or running are interrupted; their scratch folders go."""
        for record in self.store.unfinished():
            self.store.update(record.id, state="interrupted", error=STOPPED, finished=time.time())
            for folder in record.output_folders:
                remove_debris(Path(folder))
            log.warning("job %s was %s when the service stopped: interrupted", record.id, record.state)
        remove_partial_uploads(self.settings.uploads)

    def status(self, record: JobRecord) -> JobStatus:
        live = None if record.final else self.worker.progress(record.id)
        if live is None and not record.final:  # it finished between the two reads
            record = self.store.get(record.id) or record
        return JobStatus(id=record.id, kind=record.kind, state=record.state, submitted=_time(record.submitted),
                         started=_time(record.started), finished=_time(record.finished),
                         progress=live or record.progress or LiveProgress().snapshot(),
                         cancel_requested=not record.final and self.worker.cancel_requested(record.id),
                         error=record.error, error_fields=record.error_fields, request=record.request)

    def record(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise HTTPException(404, f"no job {job_id!r} on this service; GET /v1/jobs lists the recent ones.")
        return record


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)


def create_app(settings: ServiceSettings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(service.worker.stop)

    app = FastAPI(title="rs-openvocab", version=__version__, lifespan=lifespan, openapi_url=None, docs_url=None,
                  redoc_url=None, description="Open-vocabulary segmentation of remote-sensing rasters, as jobs. "
                                              "Every request needs 'Authorization: Bearer <token>'.")
    app.state.service = service

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(),
                                                             settings.token.encode()):
            raise HTTPException(401, "a valid bearer token is required: send 'Authorization: Bearer <token>' "
                                     f"with the token in {settings.token_file} (or the one the service was "
                                     "started with).", headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/v1", dependencies=[Depends(authorised)], responses=_errors(401))
    _add_routes(api, service)
    app.include_router(api)

    @app.get("/v1/openapi.json", include_in_schema=False, dependencies=[Depends(authorised)])
    def openapi() -> dict:
        return app.openapi()

    _add_error_handlers(app)
    return app


def _add_routes(api: APIRouter, service: Service) -> None:
    settings = service.settings

    @api.get("/health", response_model=Health, summary="version, devices and loaded models")
    def health() -> Health:
        from backend.models.devices import describe_devices, resolve_device

        active = resolve_device("auto")
        return Health(version=__version__, device=str(active), devices=describe_devices(active),
                      loaded_models=service.worker.models.describe(), queued_jobs=service.worker.queued(),
                      running_job=service.worker.running, worker_alive=service.worker.alive())

    @api.get("/models", response_model=list[ModelInfo], summary="the model presets and their weights")
    def models() -> list[ModelInfo]:
        from backend.models.registry import MODEL_PRESETS
        from backend.weights import cached_path

        presets = []
        for preset in MODEL_PRESETS.values():
            weights = []
            for name in filter(None, (preset.clip_weights, preset.upsampler_weights)):
                path = cached_path(name)
                present = path.is_file()
                weights.append({"name": name, "present": present, "bytes": path.stat().st_size if present else None,
                                "path": str(path)})
            presets.append(ModelInfo(name=preset.name, description=preset.description, modality=preset.modality,
                                     weights=weights, ready=all(w["present"] for w in weights)))
        return presets

    @api.get("/dataset-presets", response_model=list[DatasetPresetInfo],
             summary="benchmark datasets: their class prompts and thresholds, for the dataset_preset field")
    def dataset_presets() -> list[DatasetPresetInfo]:
        from backend.models.registry import DATASET_PRESETS, dataset_classes

        return [DatasetPresetInfo(name=preset.name, modality=preset.modality, prob_threshold=preset.prob_threshold,
                                  background_index=preset.background_index, classes=dataset_classes()[preset.name]["classes"],
                                  source=dataset_classes()[preset.name]["source"])
                for preset in DATASET_PRESETS.values()]

    @api.post("/jobs", status_code=202, response_model=Submitted, responses=_errors(400, 422),
              summary="submit a job; it runs after those before it")
    def submit(request: JobRequest) -> Submitted:
        from backend.batch.job import BatchJob
        from backend.jobs import JOB_KINDS

        values = request.model_dump(exclude={"kind"})
        job = service.paths.admit({**JOB_KINDS, BatchJob.kind: BatchJob}[request.kind](**values))
        job.validate()
        record = JobRecord(id=uuid.uuid4().hex, kind=request.kind, request=request.model_dump(mode="json"),
                           output_folders=sorted({str(path.parent) for path in job.outputs}))
        service.worker.submit(record, job)
        return Submitted(id=record.id, state="queued", url=f"/v1/jobs/{record.id}")

    @api.get("/jobs", response_model=list[JobStatus], summary="recent jobs, newest first")
    async def jobs(limit: int = Query(50, ge=1, le=1000)) -> list[JobStatus]:  # quick reads: no thread hop
        return [service.status(record) for record in service.store.recent(limit)]

    @api.get("/jobs/{job_id}", response_model=JobStatus, responses=_errors(404), summary="a job's state and progress")
    async def job(job_id: str) -> JobStatus:
        return service.status(service.record(job_id))

    @api.delete("/jobs/{job_id}", status_code=202, response_model=JobStatus, responses=_errors(404, 409),
                summary="cancel a job: a running one stops within one batch of windows and writes nothing",
                description="A cancel that arrives once the outputs are being renamed into place is too late: "
                            "the job then ends done.")
    def cancel(job_id: str) -> JobStatus:
        record = service.record(job_id)
        if record.final or not service.worker.cancel(job_id):
            raise HTTPException(409, f"job {job_id} is {service.record(job_id).state}; only a queued or running "
                                     "job can be cancelled.")
        return service.status(service.record(job_id))

    @api.get("/jobs/{job_id}/events", summary="the job's status as server-sent events until it finishes",
             responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                              "description": "'status' events, each a JobStatus as JSON"}, **_errors(404)})
    async def events(job_id: str, request: Request):
        from sse_starlette.sse import EventSourceResponse

        service.record(job_id)

        async def stream():
            last = None
            while not await request.is_disconnected():
                status = service.status(await run_in_threadpool(service.record, job_id))
                progress = status.progress
                seen = (status.state, status.cancel_requested, progress and (progress.stage, progress.done_mp))
                if seen != last:  # a new stage, more megapixels done, or a new state: not a new rate alone
                    yield {"event": "status", "data": status.model_dump_json()}
                    last = seen
                if status.state not in ("queued", "running"):
                    return
                await asyncio.sleep(EVENT_INTERVAL_S)

        return EventSourceResponse(stream())

    @api.get("/jobs/{job_id}/result",
             response_model=Union[JobResult, DownloadWeightsResult, ClassifyJobResult, RetrieveJobResult,
                                  ReferJobResult, AskJobResult, BatchJobResult],
             responses=_errors(404, 409),
             summary="what a finished job wrote: files, per-class pixels and areas, polygons; or its rows")
    def result(job_id: str, max_polygons: int = Query(settings.max_polygons, ge=0, le=10**6,
                                                      description="send the polygons inline up to this many"),
               max_rows: int = Query(MAX_STORED_ROWS, ge=0, le=MAX_STORED_ROWS,
                                     description="classify and batch: send the file's first rows up to this many")
               ) -> Union[JobResult, DownloadWeightsResult, ClassifyJobResult, RetrieveJobResult, ReferJobResult,
                          AskJobResult, BatchJobResult]:
        record = service.record(job_id)
        if record.state != "done":
            raise HTTPException(409, f"job {job_id} is {record.state}; its result exists once its state is done.")
        stored = record.result
        if record.kind == "download_weights":
            return DownloadWeightsResult(id=record.id, kind=record.kind, **stored)
        if record.kind == "retrieve":
            return RetrieveJobResult(id=record.id, kind=record.kind, **stored)
        if record.kind == "ask":
            return AskJobResult(id=record.id, kind=record.kind, **stored)
        if record.kind == "batch":
            rows = stored.pop("rows")[:max_rows]
            return BatchJobResult(id=record.id, kind=record.kind, rows=rows,
                                  rows_omitted=len(rows) < stored["row_count"], **stored)
        if record.kind == "classify":
            rows = stored.pop("rows")[:max_rows]
            return ClassifyJobResult(id=record.id, kind=record.kind, rows=rows,
                                     rows_omitted=len(rows) < stored["row_count"], **stored)
        polygons, omitted = None, False
        polygon_file = next((f["path"] for f in stored["files"] if f["role"] == "out"), None)
        if polygon_file is not None:
            if stored["polygon_count"] > max_polygons:
                omitted = True
            elif Path(polygon_file).exists():
                polygons = _geojson(Path(polygon_file))
        model = ReferJobResult if record.kind == "refer" else JobResult
        return model(id=record.id, kind=record.kind, polygons=polygons, polygons_omitted=omitted, **stored)

    @api.post("/uploads", status_code=201, response_model=Upload, responses=_errors(413, 422, 507),
              summary="store a GeoTIFF sent as the request body on the service's disk",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(request: Request, filename: str = Query(description="the file's name, ending in .tif or .tiff",
                                                             max_length=200)) -> Upload:
        path, size = await receive_upload(request, settings.uploads, filename, settings.max_upload_bytes)
        return Upload(id=path.parent.name, path=str(path), bytes=size)

    @api.delete("/uploads/{upload_id}", status_code=204, response_class=Response, responses=_errors(404, 409),
                summary="remove an upload and anything jobs wrote beside it")
    def remove_upload(upload_id: str) -> Response:
        folder = upload_folder(settings.uploads, upload_id)
        if folder is None:
            raise HTTPException(404, f"no upload {upload_id!r} on this service.")
        folder = folder.resolve()
        users = [record.id for record in service.store.unfinished()
                 if any(_inside(Path(path), folder) for path in [record.request.get("raster") or "/",
                                                                 *record.output_folders])]
        if users:
            raise HTTPException(409, f"upload {upload_id} is used by job {users[0]}, which has not finished; "
                                     "cancel it or wait.")
        shutil.rmtree(folder)
        return Response(status_code=204)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError, ValueError):
        return False


def _geojson(path: Path) -> dict:
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    if frame.crs is not None:
        frame = frame.to_crs("OGC:CRS84")
    return json.loads(frame.to_json(drop_id=True))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserInputError)
    async def user_input(request: Request, error: UserInputError) -> JSONResponse:
        return JSONResponse({"error": error.render(), "fields": list(error.fields)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)  # also the router's own 404 and 405
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        sentence = str(error.detail)
        if error.status_code == 400:  # a body that is not even text
            sentence = "the request body cannot be read as JSON; send the job's fields as UTF-8 JSON."
        elif error.status_code == 404 and sentence == "Not Found":
            sentence = f"{request.url.path} is not a route of this service; the routes are under /v1."
        elif error.status_code == 405:
            sentence = f"{request.method} is not a method of {request.url.path}; see /v1/openapi.json."
        return JSONResponse({"error": sentence, "fields": []}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        return JSONResponse({"error": _sentence(problems[0]) if problems else "the request is not valid.",
                             "fields": sorted({_field(p) for p in problems if _field(p)})}, status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}); the service's log has the details.",
                             "fields": []}, status_code=500)


def _field(problem: dict) -> str:
    """The body field a pydantic problem is about (its location after 'body' and the job kind)."""
    from backend.server.schemas import JOB_REQUESTS

    if problem.get("type", "").startswith("union_tag"):
        return "kind"
    location = [part for part in problem.get("loc", ()) if part not in ("body", "query", "path")]
    if len(location) > 1 and location[0] in JOB_REQUESTS:
        location = location[1:]
    return str(location[0]) if location else ""


def _sentence(problem: dict) -> str:
    field, kind = _field(problem), problem.get("type", "")
    if kind == "extra_forbidden":
        return (f"{field} is not a field of this job; the fields are the CLI's long options in snake_case "
                "(see /v1/openapi.json).")
    if kind == "union_tag_invalid":
        from backend.server.schemas import JOB_REQUESTS

        return f"kind {problem.get('input', {}).get('kind')!r} is not a job kind; use {', '.join(JOB_REQUESTS)}."
    if kind == "union_tag_not_found":
        return "kind is missing; give the job kind, e.g. \"kind\": \"segment\"."
    if kind == "missing":
        return f"{field} is missing; give it."
    if kind in ("json_invalid", "model_attributes_type"):
        return ("the request body is not a JSON object; send the job's fields as JSON with "
                "'Content-Type: application/json'.")
    value = problem.get("input")
    shown = f" {value!r}" if isinstance(value, (str, int, float, bool)) else ""
    return f"{field or 'the request'}{shown}: {problem.get('msg', 'invalid').lower()}."


def openapi_schema() -> dict:
    """The service's OpenAPI schema, as a client sees it at /v1/openapi.json."""
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        app = create_app(ServiceSettings(home=Path(home), token="unused"))
        schema = app.openapi()
        app.state.service.store.close()
    return schema


if __name__ == "__main__":  # python -m backend.server.app > docs/openapi.json
    print(json.dumps(openapi_schema(), indent=1, ensure_ascii=False))
