"""Fixtures for the HTTP service tests (helpers in _live.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _live import DC_VISIT, LiveServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("serve") / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dc_visit() -> dict[str, Any]:
    return json.loads(DC_VISIT.read_text())
