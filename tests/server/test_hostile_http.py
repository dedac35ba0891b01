"""Hostile text over HTTP: a lone surrogate, a key given twice, a body that is not UTF-8 are 422 naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
pytest.importorskip("uvicorn", reason="needs payerpolicy[server]")
httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")

from _live import threaded  # noqa: E402
from payerpolicy.service.server import create_app  # noqa: E402

GOOD: dict[str, Any] = {
    "id": "text-1",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "diagnoses": ["M54.50"],
    "services": [{"code": "97110", "minutes": 20, "regions": ["lumbar"], "diagnosis_pointers": [1]}],
}
GOOD_TEXT = json.dumps(GOOD)
SURROGATE_ID = GOOD_TEXT.replace('"text-1"', '"\\ud800"')
TWICE = GOOD_TEXT.replace('"minutes": 20', '"minutes": 15, "minutes": 45')


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with threaded(create_app()) as base:
        yield base


def _post(url: str, body: bytes) -> Any:
    return httpx.post(url + "/v1/check", content=body, headers={"content-type": "application/json"}, timeout=30)


def test_http_a_lone_surrogate_is_422_naming_the_field(url: str) -> None:
    response = _post(url, ('{"payer": "commercial", "encounter": ' + SURROGATE_ID + "}").encode())
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_encounter", "id")  # the path inside the encounter, as the CLI says
    assert body["message"] == 'not valid Unicode text: a lone surrogate U+D800 at character 1 of "\\ud800"'


def test_http_a_key_given_twice_is_422_naming_the_field(url: str) -> None:
    response = _post(url, ('{"payer": "commercial", "encounter": ' + TWICE + "}").encode())
    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("invalid_encounter", "services[0].minutes")
    response = _post(url, ('{"payer": "commercial", "payer": "medicare", "encounter": ' + GOOD_TEXT + "}").encode())
    assert response.status_code == 422
    assert response.json()["field"] == "payer"


def test_http_a_body_that_is_not_utf8_is_422(url: str) -> None:
    response = _post(url, b'{"payer": "commercial", "encounter": {"id": "\xff"}}')
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_json",
        "field": None,
        "message": "invalid JSON: the body is not UTF-8 text",
        "detail": "invalid JSON: the body is not UTF-8 text",
    }
