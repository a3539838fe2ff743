"""The service's OpenAPI contract, in process: job fields are the CLI's, and no request makes it fail."""
import dataclasses
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from backend.jobs import SegmentJob
from backend.server.app import create_app
from backend.server.schemas import SegmentRequest
from backend.server.settings import ServiceSettings

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


HOME = Path(tempfile.mkdtemp(prefix="rsov-fuzz-"))  # the schema is read when the module is collected
APP = create_app(ServiceSettings(home=HOME, token=TOKEN, max_upload_bytes=4096))
schema = schemathesis.openapi.from_asgi("/v1/openapi.json", APP, headers=AUTH)


@pytest.fixture(scope="module", autouse=True)
def _remove_home():
    yield
    APP.state.service.store.close()
    shutil.rmtree(HOME, ignore_errors=True)


def test_segment_request_fields_are_the_job_fields_with_the_same_defaults():
    request = SegmentRequest.model_fields
    assert set(request) - {"kind"} == set(SegmentJob.field_names())
    for field in dataclasses.fields(SegmentJob):
        if field.default is not dataclasses.MISSING:
            assert request[field.name].default == field.default, field.name


@pytest.mark.parametrize("kind", ["classify", "retrieve"])
def test_classify_and_retrieve_request_fields_are_their_job_fields_with_the_same_defaults(kind):
    from backend.jobs import JOB_KINDS
    from backend.server.schemas import JOB_REQUESTS

    request, job = JOB_REQUESTS[kind].model_fields, JOB_KINDS[kind]
    assert set(request) - {"kind"} == set(job.field_names())
    for field in dataclasses.fields(job):
        if field.default is not dataclasses.MISSING:
            assert request[field.name].default == field.default, field.name


def _no_server_error(ctx: CheckContext, response, case) -> bool:
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], response.text
    return True


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error_or_a_traceback(case):
    case.call_and_validate(headers=AUTH, checks=[_no_server_error, status_code_conformance,
                                                 content_type_conformance, response_schema_conformance])


def test_the_published_openapi_schema_is_the_services():
    import json

    from backend.server.app import openapi_schema

    published = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert published == openapi_schema(), "the API changed: .venv/bin/python -m backend.server.app > docs/openapi.json"
