"""HTTP limits and faults: encounters over the limits are 422 before any evaluation, abandoned work
is capped (503 busy), slow clients get 408, a disconnect is not an internal error, and a method the
service does not know is never written to the log."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
pytest.importorskip("uvicorn", reason="needs payerpolicy[server]")
httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")

import payerpolicy  # noqa: E402
from _live import threaded  # noqa: E402
from payerpolicy import Engine, Outcome, PluginHost, default_engine, hookimpl  # noqa: E402
from payerpolicy.evaluation.engine import EvaluationStopped  # noqa: E402
from payerpolicy.service.server import create_app  # noqa: E402

SMALL: dict[str, Any] = {
    "id": "small-1",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "services": [{"code": "97110", "minutes": 15}],
}


class _CountingEngine(Engine):
    """Counts evaluations; optionally waits at a gate the test opens."""

    def __init__(self, gated: bool = False) -> None:
        super().__init__(default_engine().host, default_engine().catalogue)
        self.evaluations = 0
        self.gated = gated
        self.entered = threading.Event()
        self.gate = threading.Event()

    def evaluate(self, encounter: Any, payer_id: str) -> Outcome:
        self.evaluations += 1
        if self.gated:
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return super().evaluate(encounter, payer_id)


@pytest.fixture(scope="module")
def counted() -> tuple[_CountingEngine, Any]:
    engine = _CountingEngine()
    return engine, create_app(engine, read_timeout=0.3)


def _asgi(app: Any, method: str, path: str, body: bytes | None, *, disconnect: bool = False, stall: bool = False) -> tuple[int, bytes]:
    """Call the ASGI app directly; ``disconnect``: the client goes away; ``stall``: it never sends the body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if disconnect:
            return {"type": "http.disconnect"}
        if stall:
            await anyio.sleep(60)
        return {"type": "http.request", "body": body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
        "raw_path": path.encode(), "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "root_path": "",
    }  # fmt: skip
    run: Callable[[], Awaitable[None]] = lambda: app(scope, receive, send)  # noqa: E731
    anyio.run(run)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _body(encounter: Any) -> bytes:
    import json

    return json.dumps({"encounter": encounter, "payer": "commercial"}).encode()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda e: e.update(services=[{"code": "97110", "minutes": 1}] * 201), "services", "201 items; this service evaluates at most 200 per encounter"),
        (lambda e: e.update(diagnoses=["M54.50"] * 51), "diagnoses", "51 items; this service evaluates at most 50 per encounter"),
        (lambda e: e.update(procedures=[{"code": "98940"}] * 51), "procedures", "51 items; this service evaluates at most 50 per encounter"),
        (lambda e: e["services"][0].update(regions=["x" * 257]), "services[0].regions[0]", "a string of 257 characters; this service accepts at most 256"),
        (lambda e: e.update(id="i" * 10_000), "id", "a string of 10000 characters; this service accepts at most 256"),
    ],
)
def test_an_encounter_over_the_limits_is_422_before_any_evaluation(counted: Any, change: Any, field: str, message: str) -> None:
    import json

    engine, app = counted
    encounter = json.loads(json.dumps(SMALL))
    change(encounter)
    before = engine.evaluations
    status, body = _asgi(app, "POST", "/v1/check", _body(encounter))
    assert status == 422
    assert json.loads(body) == {"error": "encounter_too_large", "field": field, "message": message, "detail": f"{field}: {message}"}
    assert engine.evaluations == before


def test_a_client_that_never_sends_its_body_gets_408(counted: Any) -> None:
    import json

    _, app = counted
    status, body = _asgi(app, "POST", "/v1/check", None, stall=True)
    assert status == 408
    assert json.loads(body)["message"] == "the request body did not arrive within 0.3 s"


def test_a_client_that_disconnects_is_not_an_internal_error(counted: Any, caplog: pytest.LogCaptureFixture) -> None:
    _, app = counted
    with caplog.at_level(logging.INFO, logger="payerpolicy.server"):
        status, _ = _asgi(app, "POST", "/v1/check", None, disconnect=True)
    assert status == 400
    assert not [r for r in caplog.records if r.name == "payerpolicy.server.error"]


def test_an_unknown_method_is_logged_as_a_dash(counted: Any, caplog: pytest.LogCaptureFixture) -> None:
    _, app = counted
    with caplog.at_level(logging.INFO, logger="payerpolicy.server.access"):
        status, _ = _asgi(app, "X\x1b[31mEVIL", "/healthz", None)
    assert status == 405
    assert [r.getMessage() for r in caplog.records if r.name == "payerpolicy.server.access"] == ["- /healthz 405"]


def test_abandoned_evaluations_are_capped_by_the_worker_pool() -> None:
    engine = _CountingEngine()
    app = create_app(engine, timeout=0.2, workers=1)
    warm = engine.evaluations  # the start-up evaluation of every payer
    engine.gated = True
    with threaded(app) as url:
        try:
            first = httpx.post(url + "/v1/check", json={"encounter": SMALL, "payer": "commercial"}, timeout=30)
            assert first.status_code == 503 and first.json()["error"] == "timeout"
            assert engine.entered.is_set()  # its thread is still blocked at the gate
            second = httpx.post(url + "/v1/check", json={"encounter": SMALL, "payer": "commercial"}, timeout=30)
            assert second.status_code == 503
            assert second.json()["error"] == "busy"
            assert second.json()["message"] == "1 evaluations are running (the limit); try again shortly"
            assert engine.evaluations == warm + 1  # the second request never started an evaluation
        finally:
            engine.gate.set()
        engine.gated = False
        for _ in range(100):
            third = httpx.post(url + "/v1/check", json={"encounter": SMALL, "payer": "commercial"}, timeout=30)
            if third.status_code == 200:
                break
            anyio.run(anyio.sleep, 0.05)
        assert third.status_code == 200


class _SlowAdjuster:
    """A plugin (no payer of its own, so in scope for every payer) whose hook takes a while."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, context: Any) -> list[Any]:
        self.calls += 1
        time.sleep(0.4)
        return []


def test_a_compare_whose_time_is_up_stops_at_its_next_phase() -> None:
    plugin = _SlowAdjuster()
    app = create_app(Engine(PluginHost([plugin])), timeout=0.2, workers=1)
    plugin.calls = 0  # the start-up evaluations aside
    with threaded(app) as url:
        response = httpx.post(url + "/v1/compare", json={"encounter": SMALL}, timeout=30)
        assert response.status_code == 503 and response.json()["error"] == "timeout"
        for _ in range(200):  # wait until the abandoned evaluation has given its place back
            health = httpx.post(url + "/v1/check", json={"encounter": SMALL, "payer": "nosuch"}, timeout=30)
            if health.json()["error"] != "busy":
                break
            time.sleep(0.05)
        assert health.json()["error"] == "unknown_payer"
    assert plugin.calls == 1  # five payers, but the work stopped after the first hook call


def test_engine_compare_stops_when_asked() -> None:
    encounter = payerpolicy.Encounter.from_mapping(SMALL)
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    with pytest.raises(EvaluationStopped, match="stopped before the merge phase"):
        default_engine().compare(encounter, stop=stop)
