"""The `rsov serve` HTTP API as Python calls, and one job followed from submission to result.

The standard library's urllib (no third-party package in QGIS's Python), so it runs in a
QgsTask thread and in a Processing algorithm alike. Every failure is a ``BackendError`` whose message is one sentence
for the message bar; ``detail`` keeps what goes to the log.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rs_openvocab.translation import tr

FINAL_STATES = ("done", "failed", "cancelled", "interrupted")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# share of the task bar each stage ends at (segmenting fills the span before it by megapixels)
STAGE_ENDS = {"queued": 0.0, "downloading": 0.0, "loading model": 3.0, "encoding classes": 6.0,
              "segmenting": 90.0, "vectorizing": 96.0, "writing": 99.0}


class BackendError(Exception):
    """A sentence for the user; ``fields`` names request fields it is about, ``status`` the HTTP code."""

    def __init__(self, sentence: str, fields: list[str] | None = None, status: int | None = None,
                 detail: str = "") -> None:
        super().__init__(sentence)
        self.fields = fields or []
        self.status = status
        self.detail = detail


class BackendUnreachable(BackendError):
    """Nothing answers at the URL (refused, reset, timed out): the backend is down or was killed."""


class JobCancelled(BackendError):
    pass


@dataclass
class BackendClient:
    url: str
    token: str
    timeout_s: float = 30.0

    @property
    def is_local(self) -> bool:
        """The service runs on this machine, so it can read our files and we can read its outputs."""
        return urllib.parse.urlsplit(self.url).hostname in LOOPBACK_HOSTS

    # -- routes --------------------------------------------------------------------------------
    def health(self) -> dict:
        return self._call("GET", "/v1/health")

    def models(self) -> list[dict]:
        return self._call("GET", "/v1/models")

    def dataset_presets(self) -> list[dict]:
        return self._call("GET", "/v1/dataset-presets")

    def submit(self, body: dict) -> str:
        return self._call("POST", "/v1/jobs", body)["id"]

    def status(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> None:
        try:
            self._call("DELETE", f"/v1/jobs/{job_id}")
        except BackendError as error:
            if error.status != 409:  # 409: it already finished
                raise

    def result(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}/result")

    def upload(self, path: Path) -> dict:
        """Send a GeoTIFF to the service's machine; its ``path`` there goes in a job's ``raster``."""
        query = urllib.parse.urlencode({"filename": Path(path).name})
        with open(path, "rb") as handle:
            return self._call("POST", f"/v1/uploads?{query}", handle, size=Path(path).stat().st_size)

    def remove_upload(self, upload_id: str) -> None:
        self._call("DELETE", f"/v1/uploads/{upload_id}")

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, method: str, route: str, body=None, size: int | None = None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if isinstance(body, dict):
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif body is not None:
            data = body
            headers.update({"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        request = urllib.request.Request(self.url.rstrip("/") + route, data=data, method=method, headers=headers)
        try:
            with self._opener().open(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise self._refusal(error) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise BackendUnreachable(
                tr("The rs-openvocab backend at {0} does not answer ({1}); start it, or check the URL in the "
                   "plugin's backend settings.").format(self.url, reason), detail=repr(error)) from None
        try:
            return json.loads(payload) if payload else None
        except ValueError:
            raise BackendError(tr("{0} answered {1} with something that is not JSON; is this URL an rs-openvocab "
                                  "backend?").format(self.url, route),
                               detail=payload[:500].decode("utf-8", "replace")) from None

    def _opener(self) -> urllib.request.OpenerDirector:
        """No proxy for a service on this machine (a proxy would see the token, and cannot reach loopback)."""
        return urllib.request.build_opener(urllib.request.ProxyHandler({})) if self.is_local \
            else urllib.request.build_opener()

    def _refusal(self, error: urllib.error.HTTPError) -> BackendError:
        try:
            text = error.read().decode("utf-8", "replace")
        except OSError:  # the connection broke while the body was read
            text = ""
        try:
            body = json.loads(text)
            sentence, fields = body["error"], body.get("fields", [])
        except (ValueError, KeyError, TypeError):
            sentence, fields = tr("The backend refused the request (HTTP {0}).").format(error.code), []
        if error.code == 401:
            sentence = tr("The backend refused the token; copy the token from the backend's token file into the "
                          "settings.")
        return BackendError(sentence, fields, error.code, detail=text[:2000])


@dataclass
class JobOutcome:
    status: dict
    result: dict | None = None


def progress_percent(status: dict) -> float:
    """0-100 for the task bar, from the stage and the megapixels segmented."""
    progress = status.get("progress") or {}
    stage = progress.get("stage", "queued")
    end = STAGE_ENDS.get(stage, 0.0)
    if stage == "segmenting" and progress.get("total_mp"):
        start = STAGE_ENDS["encoding classes"]
        return start + (end - start) * min(1.0, progress.get("done_mp", 0.0) / progress["total_mp"])
    order = list(STAGE_ENDS)
    index = order.index(stage) if stage in order else 0
    return STAGE_ENDS[order[index - 1]] if index > 0 else 0.0


def follow_job(client: BackendClient, body: dict, on_progress: Callable[[float, dict], None],
               is_cancelled: Callable[[], bool], poll_s: float = 0.25) -> JobOutcome:
    """Submit ``body``, report progress until the job ends, and return its status and result.

    Cancelling asks the service to stop the job and waits for it to say so, so that no output
    is left half written. Raises ``JobCancelled`` or ``BackendError`` with the job's own sentence.
    """
    job_id = client.submit(body)
    cancel_sent = False
    while True:
        status = client.status(job_id)
        on_progress(progress_percent(status), status)
        if status["state"] in FINAL_STATES:
            break
        if is_cancelled() and not cancel_sent:
            client.cancel(job_id)
            cancel_sent = True
        time.sleep(poll_s)
    state = status["state"]
    if state == "done":
        return JobOutcome(status, client.result(job_id))
    if state == "cancelled":
        raise JobCancelled(tr("The run was cancelled; nothing was written."))
    if state == "interrupted":
        raise BackendError(tr("The backend stopped during the run ({0}); nothing was written, run it again.").format(
            status.get("error") or "interrupted"))
    raise BackendError(status.get("error") or tr("The run failed on the backend."), status.get("error_fields"))
