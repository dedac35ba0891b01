"""The HTTP service: ``payerpolicy serve`` (optional extra ``payerpolicy[server]``).

Endpoints (docs/http.md): ``POST /v1/check``, ``POST /v1/compare``, ``GET /v1/payers``,
``GET /healthz``, ``GET /openapi.json``. Request and response bodies are the core's formats: the
encounter format v1 in, ``Outcome.to_mapping()`` out; schemas in :mod:`payerpolicy.schema`.

Built on Starlette and served by uvicorn. The encounter is validated by
:meth:`Encounter.from_mapping <payerpolicy.Encounter.from_mapping>` itself, so a bad field gets the
CLI's message, word for word, with status 422.

Promises an operator relies on:

* **No patient data in logs.** uvicorn's access log is off; this module's access log
  (logger ``payerpolicy.server.access``) writes the method, the endpoint path and the status, never a
  query string, a body, an encounter id or an error message. An unknown path is logged as ``-``.
  A bug is logged with its exception type and stack frames, never the exception's message.
* **Limits.** Request bodies over ``max_body`` bytes get 413 (from ``Content-Length`` before
  anything is read, or while reading a chunked body); an evaluation that takes longer than
  ``timeout`` seconds gets 503 (its worker thread is abandoned and finishes on its own, still
  counted in the pool of ``workers``: beyond it, 503 busy); an encounter over :class:`Limits` gets
  422 before any evaluation; a body slower than ``read_timeout`` gets 408.
* **One engine per process**, built when the app is created; evaluations run in worker threads, so
  a slow request never holds up ``/healthz``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import default_engine
from .._version import __version__
from ..evaluation.engine import Engine
from ..evaluation.errors import EncounterError, PayerPolicyError, PluginHookError, UnknownPayerError
from ..evaluation.model import Encounter
from ..evaluation.text import DuplicateKeyObject, check_text, decode_utf8, loads_json
from ..formats.schema import openapi_document
from ..history import HistoryStore, check_with_history, derive, same_day_claims, technique_rule, with_trace
from ..history import apply as apply_history
from ..views.render import compare_mapping
from ..views.scrub import scrub_document, scrub_encounter, scrub_x12

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_READ_TIMEOUT", "DEFAULT_TIMEOUT", "DEFAULT_WORKERS", "Limits", "create_app", "serve"]

#: Largest request body accepted, in bytes (1 MiB): an encounter is a few kilobytes.
DEFAULT_MAX_BODY = 1024 * 1024
#: Seconds an evaluation may take before the request is answered with 503.
DEFAULT_TIMEOUT = 10.0
#: Seconds a client has to send the whole request body, else 408.
DEFAULT_READ_TIMEOUT = 30.0
#: Evaluations running at once, counting those abandoned after a time-out; more get 503 busy.
DEFAULT_WORKERS = 8


@attrs.frozen
class Limits:
    """How large an encounter the service evaluates; a larger one gets 422 before any evaluation."""

    services: int = 200
    procedures: int = 50
    diagnoses: int = 50
    documentation: int = 100
    string: int = 256  # characters of any one string (an id, a code, a region, a key)

ACCESS_LOG = logging.getLogger("payerpolicy.server.access")
ERROR_LOG = logging.getLogger("payerpolicy.server.error")

_PATHS = ("/v1/check", "/v1/compare", "/v1/scrub", "/v1/payers", "/healthz", "/openapi.json")
_T = TypeVar("_T")


class _Problem(Exception):
    """A request the service answers with an error body (never logged)."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.field = field
        self.message = message
        self.detail = detail if detail is not None else (f"{field}: {message}" if field else message)

    def response(self) -> JSONResponse:
        body = {"error": self.error, "field": self.field, "message": self.message, "detail": self.detail}
        return JSONResponse(body, status_code=self.status)


def _encounter_problem(exc: EncounterError) -> _Problem:
    # The field is the path inside the encounter, exactly as the CLI names it; detail is the CLI's
    # line after "payerpolicy: error: FILE: ".
    return _Problem(422, "invalid_encounter", exc.message, exc.field or None, str(exc))


def _payer_problem(exc: UnknownPayerError, field: str) -> _Problem:
    return _Problem(422, "unknown_payer", str(exc), field, str(exc))


# --------------------------------------------------------------------------------------------
# Reading a request


async def _read_body(request: Request, limit: int, read_timeout: float = DEFAULT_READ_TIMEOUT) -> bytes:
    too_large = _Problem(413, "request_too_large", f"the request body is larger than the limit of {limit} bytes")
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(read_timeout):  # a slow client is closed, not waited for
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise _Problem(408, "request_timeout", f"the request body did not arrive within {read_timeout:g} s") from None
    return b"".join(chunks)


def _check_size(data: Any, limits: Limits) -> None:
    """422 for an encounter over the limits, before any evaluation (field paths as the CLI names them)."""
    if not isinstance(data, Mapping):
        return
    for key, most in (
        ("services", limits.services),
        ("procedures", limits.procedures),
        ("diagnoses", limits.diagnoses),
        ("documentation", limits.documentation),
    ):
        value = data.get(key)
        if isinstance(value, list) and len(value) > most:
            raise _Problem(
                422, "encounter_too_large", f"{len(value)} items; this service evaluates at most {most} per encounter", key
            )
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if len(value) > limits.string:
                raise _Problem(
                    422,
                    "encounter_too_large",
                    f"a string of {len(value)} characters; this service accepts at most {limits.string}",
                    where or "encounter",
                )
        elif isinstance(value, Mapping):
            for k, v in value.items():
                name = str(k)
                if len(name) > limits.string:
                    raise _Problem(
                        422, "encounter_too_large", f"a key of {len(name)} characters; at most {limits.string}", where or "encounter"
                    )
                stack.append((f"{where}.{name}" if where else name, v))
        elif isinstance(value, list):
            if len(value) > max(limits.services, limits.procedures, limits.diagnoses, limits.documentation):
                raise _Problem(422, "encounter_too_large", f"an array of {len(value)} items is too long", where)
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))


def _parse_json(body: bytes) -> Any:
    # The same wording as payerpolicy.io for an encounter file.
    try:
        text = decode_utf8(body, "")
    except EncounterError:
        raise _Problem(422, "invalid_json", "invalid JSON: the body is not UTF-8 text") from None
    try:
        data = loads_json(text)
    except json.JSONDecodeError as exc:
        raise _Problem(422, "invalid_json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise _Problem(422, "invalid_json", "invalid JSON: the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise _Problem(
            422, "invalid_json", f"invalid JSON: the body cannot be read ({type(exc).__name__}: nesting or numbers too large)"
        ) from None
    try:  # the envelope here; the encounter in Encounter.from_mapping, whose fields are named as the CLI does
        check_text({k: v for k, v in data.items() if k != "encounter"} if isinstance(data, dict) and not isinstance(data, DuplicateKeyObject) else data)
    except EncounterError as exc:
        raise _Problem(422, "invalid_request", exc.message, exc.field or "body") from None
    return data


def _envelope(data: Any, known: Sequence[str], required: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _Problem(422, "invalid_request", f"expected a JSON object with the fields {', '.join(known)}", "body")
    for key in data:
        if key not in known:
            raise _Problem(422, "invalid_request", f"unknown field; expected one of: {', '.join(known)}", str(key))
    for key in required:
        if data.get(key) is None:
            raise _Problem(422, "invalid_request", "required field is missing", key)
    return data


def _payer_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        found = json.dumps(value) if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
        raise _Problem(422, "invalid_request", f"expected a payer id (a non-empty string), found {found}", field)
    return value.strip()


def _encounter(engine: Engine, data: Any) -> Encounter:
    try:
        return Encounter.from_mapping(data, catalogue=engine.catalogue)
    except EncounterError as exc:
        raise _encounter_problem(exc) from None


# --------------------------------------------------------------------------------------------
# The app


def create_app(
    engine: Engine | None = None,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    timeout: float = DEFAULT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    limits: Limits = Limits(),
    history: HistoryStore | None = None,
) -> ASGIApp:
    """Build the ASGI app around one engine (by default :func:`payerpolicy.default_engine`).

    ``history``: claim history (docs/history.md). ``POST /v1/check`` and ``/v1/compare`` then derive
    the counters an encounter with a ``patient`` key leaves out; ``/v1/check`` with ``"record":
    true`` also records the visit. Without it, ``"record": true`` is a 422.

    ``limits`` bound the encounter (422 before evaluating); ``workers`` bounds the evaluations
    running at once, abandoned ones included (503 ``busy`` beyond); ``read_timeout`` closes a client
    that does not send its body in time (408).

    Every payer's policy is loaded here, and a small visit evaluated for every payer, so a broken
    policy stops the service at start-up instead of failing its first request, tables loaded on
    first use are loaded before the first time limit starts, and worker threads only read the engine.
    """
    engine = engine if engine is not None else default_engine()
    payer_ids = tuple(sorted(engine.payer_ids))
    policies = {pid: engine.host.policy(pid) for pid in payer_ids}
    _warm_up(engine, payer_ids)
    payers_body = {
        "payers": [
            {
                "id": pid,
                "name": engine.host.payer(pid).name,
                "plugin": engine.host.payer(pid).plugin,
                "policy_version": policies[pid].policy_version,
                "description": engine.host.payer(pid).description,
            }
            for pid in payer_ids
        ]
    }
    openapi = openapi_document(version=__version__, payers=payer_ids, max_body=max_body, timeout=timeout)

    running = threading.BoundedSemaphore(workers)  # held by the thread: an abandoned evaluation still counts
    limiter = anyio.CapacityLimiter(workers)

    async def evaluate(work: Callable[[Callable[[], bool]], _T]) -> _T:
        # Off the event loop; abandoned (not waited for) when the time limit passes, but it keeps its
        # place in the pool until it ends, so abandoned work can never pile up beyond ``workers``.
        if not running.acquire(blocking=False):
            raise _Problem(503, "busy", f"{workers} evaluations are running (the limit); try again shortly")

        stopped = threading.Event()  # set when the time is up: the engine stops at its next phase

        def guarded() -> _T:
            try:
                return work(stopped.is_set)
            finally:
                running.release()

        try:
            with anyio.fail_after(timeout):
                return await anyio.to_thread.run_sync(guarded, abandon_on_cancel=True, limiter=limiter)
        except TimeoutError:
            stopped.set()
            raise _Problem(503, "timeout", f"the evaluation took longer than the limit of {timeout:g} s") from None

    async def check(request: Request) -> Response:
        data = _envelope(
            _parse_json(await _read_body(request, max_body, read_timeout)), ("encounter", "payer", "record"), ("encounter", "payer")
        )
        payer = _payer_id(data["payer"], "payer")
        record = data.get("record")
        if record is not None and not isinstance(record, bool):
            raise _Problem(422, "invalid_request", "expected true or false", "record")
        if record and history is None:
            raise _Problem(422, "invalid_request", "this service keeps no claim history (start it with --history FILE)", "record")
        _check_size(data["encounter"], limits)

        def work(stop: Callable[[], bool]) -> dict[str, Any]:
            # Same order as the CLI: the encounter is read first, then the payer is looked up.
            encounter = _encounter(engine, data["encounter"])
            try:
                engine.host.payer(payer)
            except UnknownPayerError as exc:
                raise _payer_problem(exc, "payer") from None
            if history is None:
                return engine.check(encounter, payer).to_mapping()
            if record and (encounter.patient is None or encounter.id is None):
                field = "encounter.patient" if encounter.patient is None else "encounter.id"
                raise _Problem(422, "invalid_request", "required to record the visit in claim history", field)
            return check_with_history(engine, encounter, payer, history, record=bool(record), stop=stop).to_mapping()

        return JSONResponse(await evaluate(work))

    async def compare(request: Request) -> Response:
        data = _envelope(_parse_json(await _read_body(request, max_body, read_timeout)), ("encounter", "payers"), ("encounter",))
        _check_size(data["encounter"], limits)
        raw = data.get("payers")
        payers: list[str] | None = None
        if raw is not None:
            if not isinstance(raw, list) or not raw:
                raise _Problem(422, "invalid_request", "expected a non-empty array of payer ids, or null for every payer", "payers")
            payers = [_payer_id(p, f"payers[{i}]") for i, p in enumerate(raw)]

        def work(stop: Callable[[], bool]) -> dict[str, Any]:
            encounter = _encounter(engine, data["encounter"])
            for i, pid in enumerate(payers or ()):
                try:
                    engine.host.payer(pid)
                except UnknownPayerError as exc:
                    raise _payer_problem(exc, f"payers[{i}]") from None
            if history is None or encounter.patient is None:
                return compare_mapping(encounter, engine.compare(encounter, payers, stop=stop))
            derived = derive(
                encounter,
                history.visits(encounter.patient),
                rule=technique_rule(engine, encounter.date_of_service),
                catalogue=engine.catalogue,
            )
            evaluated = apply_history(encounter, derived)
            ids = list(payers) if payers else sorted(engine.payer_ids, key=lambda p: (p != "commercial", p))
            outcomes: dict[str, Any] = {}
            for pid in ids:  # each payer with the lines the patient's earlier same-day claims had for it
                same_day, extra = same_day_claims(derived, pid)
                options: dict[str, Any] = {"same_day": same_day} if same_day else {}
                outcomes[pid] = with_trace(engine.evaluate(evaluated, pid, stop=stop, **options), derived, extra)
            return compare_mapping(encounter, outcomes)

        return JSONResponse(await evaluate(work))

    def payer_list(raw: Any, field: str) -> list[str] | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw:
            raise _Problem(422, "invalid_request", "expected a non-empty array of payer ids, or null", field)
        ids = [_payer_id(p, f"{field}[{i}]") for i, p in enumerate(raw)]
        for i, pid in enumerate(ids):
            try:
                engine.host.payer(pid)
            except UnknownPayerError as exc:
                raise _payer_problem(exc, f"{field}[{i}]") from None
        return ids

    async def scrub(request: Request) -> Response:
        body = await _read_body(request, max_body, read_timeout)
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind == "application/edi-x12":
            query = request.query_params.get("payers")
            payers = payer_list([p for p in query.split(",")] if query is not None else None, "payers")

            def work_x12(stop: Callable[[], bool]) -> dict[str, Any]:
                try:
                    return scrub_document(scrub_x12(body, engine, name="body", payers=payers, stop=stop).results)
                except PayerPolicyError as exc:
                    raise _Problem(422, "invalid_x12", str(exc), "body") from None

            return JSONResponse(await evaluate(work_x12))
        data = _envelope(_parse_json(body), ("claim", "payers"), ("claim",))
        payers_json = payer_list(data.get("payers"), "payers")
        _check_size(data["claim"], limits)

        def work(stop: Callable[[], bool]) -> dict[str, Any]:
            encounter = _encounter(engine, data["claim"])
            if not encounter.as_billed:
                raise _Problem(
                    422,
                    "invalid_encounter",
                    "nothing in the claim says what was billed: give services/procedures a 'billed' entry",
                    "claim",
                )
            return scrub_document([scrub_encounter(encounter, engine, payers_json, stop=stop)])

        return JSONResponse(await evaluate(work))

    async def list_payers(request: Request) -> Response:
        return JSONResponse(payers_body)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "payers": len(payer_ids)})

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = exc.headers.get("Allow", "") if exc.headers else ""
            problem = _Problem(405, "method_not_allowed", f"method {request.method} not allowed; allowed: {allowed}")
            response = problem.response()
            if allowed:
                response.headers["Allow"] = allowed
            return response
        return _Problem(exc.status_code, "not_found", "no such endpoint; see /openapi.json").response()

    routes = [
        Route("/v1/check", _guarded(check), methods=["POST"]),
        Route("/v1/compare", _guarded(compare), methods=["POST"]),
        Route("/v1/scrub", _guarded(scrub), methods=["POST"]),
        Route("/v1/payers", _guarded(list_payers), methods=["GET"]),
        Route("/healthz", _guarded(healthz), methods=["GET"]),
        Route("/openapi.json", _guarded(openapi_json), methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return _AccessLog(app)


def _warm_up(engine: Engine, payer_ids: Sequence[str]) -> None:
    """Evaluate a small visit for every payer before the first request.

    Tables loaded on first use (the NCCI edits) are then loaded outside any request's time limit.
    """
    visit = Encounter.from_mapping(
        {
            "date_of_service": dt.date.today().isoformat(),
            "provider": {"type": "DC"},
            "diagnoses": ["M99.01"],
            "procedures": [{"code": "98940", "regions": ["cervical"], "diagnosis_pointers": [1]}],
            "services": [
                {"code": "97140", "minutes": 10, "regions": ["cervical"], "diagnosis_pointers": [1]},
                {"code": "97110", "minutes": 15, "regions": ["lumbar"], "diagnosis_pointers": [1]},
            ],
        },
        catalogue=engine.catalogue,
    )
    for pid in payer_ids:
        engine.evaluate(visit, pid)


def _guarded(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Answer problems with their error body; answer bugs with 500, logged without their message."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _Problem as problem:
            return problem.response()
        except ClientDisconnect:  # the client went away: nobody to answer, and not a bug
            return Response(status_code=400)
        except PluginHookError as exc:
            # The message may quote the request's data: it goes to the client, not to the log.
            ERROR_LOG.error("plugin %r failed in %s during %s %s", exc.plugin, exc.where, _method(request.method), request.url.path)
            return _Problem(500, "plugin_error", str(exc)).response()
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            ERROR_LOG.error(
                "internal error during %s %s: %s (message withheld)\n%s",
                _method(request.method),
                request.url.path,
                type(exc).__name__,
                frames,
            )
            return _Problem(500, "internal_error", f"internal error ({type(exc).__name__}); a bug, please report it").response()

    return run


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})


def _method(method: Any) -> str:
    """The request method for a log line: a known one, else ``-`` (a method is client-chosen text)."""
    return method if isinstance(method, str) and method in _METHODS else "-"


class _AccessLog:
    """ASGI middleware: one log line per request, ``METHOD PATH STATUS``, nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope.get("path", "")
            shown = path if path in _PATHS else "-"
            ACCESS_LOG.info("%s %s %d", _method(scope.get("method", "-")), shown, status)


def _log_config(level: str) -> dict[str, Any]:
    """Uvicorn's logging set-up without its access log, plus this module's loggers."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"].pop("uvicorn.access", None)
    config["handlers"].pop("access", None)
    config["formatters"].pop("access", None)
    config["loggers"]["payerpolicy.server"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    engine: Engine | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    timeout: float = DEFAULT_TIMEOUT,
    log_level: str = "info",
    workers: int = DEFAULT_WORKERS,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    history: HistoryStore | None = None,
) -> None:
    """Run the service with uvicorn until interrupted (what ``payerpolicy serve`` does)."""
    import uvicorn

    app = create_app(engine, max_body=max_body, timeout=timeout, workers=workers, read_timeout=read_timeout, history=history)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=_log_config(log_level),
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        limit_concurrency=max(64, 4 * workers),
    )
