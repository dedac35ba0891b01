"""docs/http.md documents every endpoint, error code and `serve` option the service has."""

from __future__ import annotations

from pathlib import Path

import pytest
from payerpolicy.cli import _parser
from payerpolicy.formats.schema import openapi_document

DOC = (Path(__file__).resolve().parents[2] / "docs" / "http.md").read_text()
DOCUMENT = openapi_document(version="0")


@pytest.mark.parametrize("path", [*DOCUMENT["paths"], "/openapi.json"])
def test_every_endpoint_is_documented(path):
    methods = [m.upper() for m in DOCUMENT["paths"].get(path, {"get": None})]
    for method in methods:
        assert f"`{method} {path}`" in DOC


@pytest.mark.parametrize("code", DOCUMENT["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
def test_every_error_code_is_documented(code):
    assert f"| `{code}` |" in DOC


def test_every_serve_option_is_documented():
    serve = _parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    options = [a.option_strings[-1] for a in serve._actions if a.option_strings and a.dest != "help"]
    assert options
    for option in options:
        assert f"| `{option}" in DOC, option
