"""Property-based API test: schemathesis generates requests from the service's own OpenAPI document.

Positive cases (bodies the schema allows) and negative ones (bodies it forbids), a bounded number per
operation. Every response must be documented (status, content type, body schema) and none may be a
5xx. The encounters schemathesis writes reach the engine, so this also fuzzes the core.
"""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
schemathesis = pytest.importorskip("schemathesis", reason="needs payerpolicy[server-test]")

from hypothesis import HealthCheck, settings  # noqa: E402
from payerpolicy.service.server import create_app  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_openapi_document(case):
    case.call_and_validate(checks=CHECKS)
