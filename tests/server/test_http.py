"""The HTTP service on a real server: the CLI's outcomes, the CLI's error texts, limits, logs."""

from __future__ import annotations

import copy
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
pytest.importorskip("uvicorn", reason="needs payerpolicy[server]")
httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")

import payerpolicy  # noqa: E402
from _live import DC_VISIT, LiveServer, threaded  # noqa: E402
from payerpolicy import Engine, Outcome, default_engine  # noqa: E402
from payerpolicy.cli import main  # noqa: E402
from payerpolicy.service.server import create_app  # noqa: E402

PAYERS = ["aetna", "bcbsnc", "ca_wc", "commercial", "medicare"]
SMALL = {
    "id": "small-1",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "services": [{"code": "97110", "minutes": 15}],
}


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line


# ---- the same outcomes as the CLI


@pytest.mark.parametrize("payer", PAYERS)
def test_check_answers_the_cli_outcome(live: LiveServer, dc_visit, capsys, payer):
    expected = _cli_json(capsys, "check", str(DC_VISIT), "--payer", payer, "--format", "json")
    response = httpx.post(live.url + "/v1/check", json={"encounter": dc_visit, "payer": payer})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert response.json()["payer"]["id"] == payer


def test_check_outcome_is_outcome_to_mapping(live: LiveServer, dc_visit):
    response = httpx.post(live.url + "/v1/check", json={"encounter": dc_visit, "payer": "medicare"})
    assert response.json() == payerpolicy.check(dc_visit, "medicare").to_mapping()
    lines = [(line["code"], line["units"], line["modifiers"], line["status"]) for line in response.json()["lines"]]
    assert lines == [
        ("98940", 1, ["AT"], "billable"),
        ("97140", 1, ["GP", "GY"], "expected_denial"),
        ("97124", 0, [], "not_billable"),
        ("97110", 1, ["GP", "GY"], "expected_denial"),
    ]


def test_compare_answers_the_cli_json(live: LiveServer, dc_visit, capsys):
    expected = _cli_json(capsys, "compare", str(DC_VISIT), "--format", "json")
    response = httpx.post(live.url + "/v1/compare", json={"encounter": dc_visit})
    assert response.status_code == 200
    assert response.json() == expected
    assert response.json()["payers"] == ["commercial", "aetna", "bcbsnc", "ca_wc", "medicare"]


def test_compare_with_payers_keeps_their_order(live: LiveServer, dc_visit, capsys):
    expected = _cli_json(capsys, "compare", str(DC_VISIT), "--payers", "medicare,commercial", "--format", "json")
    response = httpx.post(live.url + "/v1/compare", json={"encounter": dc_visit, "payers": ["medicare", "commercial"]})
    assert response.json() == expected
    assert [o["payer"]["id"] for o in response.json()["outcomes"]] == ["medicare", "commercial"]


def test_payers_lists_ids_names_plugins_and_policy_versions(live: LiveServer):
    response = httpx.get(live.url + "/v1/payers")
    assert response.status_code == 200
    payers = response.json()["payers"]
    assert [p["id"] for p in payers] == PAYERS
    medicare = next(p for p in payers if p["id"] == "medicare")
    assert medicare["name"] == "Medicare Part B (CMS)"
    assert medicare["plugin"] == "medicare"
    assert medicare["policy_version"] == default_engine().host.policy("medicare").policy_version == "2025.11"


def test_healthz(live: LiveServer):
    response = httpx.get(live.url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": payerpolicy.__version__, "payers": 5}


def test_openapi_document_is_served(live: LiveServer):
    document = httpx.get(live.url + "/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/v1/check", "/v1/compare", "/v1/scrub", "/v1/payers", "/healthz"}
    assert document["components"]["schemas"]["CheckRequest"]["properties"]["payer"]["enum"] == PAYERS
    assert "1048576 bytes" in document["paths"]["/v1/check"]["post"]["responses"]["413"]["description"]


# ---- bad input: 422 with the CLI's words


def _bad(change: Any) -> dict[str, Any]:
    data = json.loads(DC_VISIT.read_text())
    change(data)
    return data


BAD_ENCOUNTERS = {
    "minutes over 480": (lambda d: d["services"][0].update(minutes=481), "services[0].minutes"),
    "unknown field": (lambda d: d["services"][1].update(colour="blue"), "services[1].colour"),
    "missing provider": (lambda d: d.pop("provider"), "provider.type"),
    "bad date": (lambda d: d.update(date_of_service="12/03/2025"), "date_of_service"),
    "pointer past the diagnoses": (
        lambda d: d["procedures"][0].update(diagnosis_pointers=[1, 9]),
        "procedures[0].diagnosis_pointers[1]",
    ),
    "unknown technique": (lambda d: d["services"][0].update(technique="reiki"), "services[0].technique"),
    "unknown code": (lambda d: d["procedures"][0].update(code="99999"), "procedures[0].code"),
    "float charges": (lambda d: d["care"].update(ytd_therapy_charges=2450.5), "care.ytd_therapy_charges"),
}


@pytest.mark.parametrize("name", list(BAD_ENCOUNTERS))
def test_bad_encounter_is_422_with_the_cli_message(live: LiveServer, tmp_path: Path, capsys, name):
    change, field = BAD_ENCOUNTERS[name]
    encounter = _bad(change)
    file = tmp_path / "visit.json"
    file.write_text(json.dumps(encounter))
    cli_line = _cli_error(capsys, "check", str(file), "--payer", "commercial")

    response = httpx.post(live.url + "/v1/check", json={"encounter": encounter, "payer": "commercial"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_encounter"
    assert body["field"] == field
    assert cli_line == f"payerpolicy: error: {file}: {body['detail']}"
    assert body["detail"] == f"{field}: {body['message']}"

    compared = httpx.post(live.url + "/v1/compare", json={"encounter": encounter})
    assert compared.status_code == 422
    assert compared.json() == body


def test_encounter_that_is_not_an_object(live: LiveServer):
    response = httpx.post(live.url + "/v1/check", json={"encounter": [1, 2], "payer": "commercial"})
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_encounter",
        "field": "encounter",
        "message": "expected an object, found an array",
        "detail": "encounter: expected an object, found an array",
    }


def test_unknown_payer_is_422_with_the_cli_message(live: LiveServer, dc_visit, capsys):
    cli_line = _cli_error(capsys, "check", str(DC_VISIT), "--payer", "nobody")
    response = httpx.post(live.url + "/v1/check", json={"encounter": dc_visit, "payer": "nobody"})
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"]) == ("unknown_payer", "payer")
    assert cli_line == f"payerpolicy: error: {body['message']}"
    assert body["message"] == "unknown payer 'nobody'; installed payers: aetna, bcbsnc, ca_wc, commercial, medicare"

    response = httpx.post(live.url + "/v1/compare", json={"encounter": dc_visit, "payers": ["medicare", "nobody"]})
    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("unknown_payer", "payers[1]")


@pytest.mark.parametrize(
    ("path", "body", "error", "field", "message"),
    [
        ("/v1/check", b'{"encounter": ', "invalid_json", None, "invalid JSON at line 1 column 15: Expecting value"),
        ("/v1/check", b"[]", "invalid_request", "body", "expected a JSON object with the fields encounter, payer, record"),
        ("/v1/check", b'{"encounter": {}}', "invalid_request", "payer", "required field is missing"),
        ("/v1/check", b'{"payer": "commercial"}', "invalid_request", "encounter", "required field is missing"),
        (
            "/v1/check",
            b'{"encounter": {}, "payer": 7}',
            "invalid_request",
            "payer",
            "expected a payer id (a non-empty string), found 7",
        ),
        (
            "/v1/check",
            b'{"encounter": {}, "payer": "x", "payers": []}',
            "invalid_request",
            "payers",
            "unknown field; expected one of: encounter, payer, record",
        ),
        (
            "/v1/compare",
            b'{"encounter": {}, "payers": []}',
            "invalid_request",
            "payers",
            "expected a non-empty array of payer ids, or null for every payer",
        ),
        (
            "/v1/compare",
            b'{"encounter": {}, "payers": ["a", ""]}',
            "invalid_request",
            "payers[1]",
            'expected a payer id (a non-empty string), found ""',
        ),
        ("/v1/compare", b"\xff\xfe\x00", "invalid_json", None, "invalid JSON: the body is not UTF-8 text"),
    ],
)
def test_bad_request_bodies(live: LiveServer, path, body, error, field, message):
    response = httpx.post(live.url + path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == {
        "error": error,
        "field": field,
        "message": message,
        "detail": f"{field}: {message}" if field else message,
    }


def test_unknown_path_and_wrong_method_are_json(live: LiveServer):
    response = httpx.get(live.url + "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    response = httpx.get(live.url + "/v1/check")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"


# ---- limits


def _raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send a request by hand (so the body can be shorter than Content-Length); return status and JSON."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    header, payload = data.split(b"\r\n\r\n", 1)
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(payload)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def test_body_over_one_megabyte_is_413_before_it_is_read(live: LiveServer):
    head = "POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1048577\r\n"
    status, body = _raw_request(live.url, head, b'{"encounter": ')
    assert status == 413
    assert body == {
        "error": "request_too_large",
        "field": None,
        "message": "the request body is larger than the limit of 1048576 bytes",
        "detail": "the request body is larger than the limit of 1048576 bytes",
    }


def test_body_of_exactly_one_megabyte_is_read(live: LiveServer):
    text = json.dumps({"encounter": SMALL, "payer": "commercial"})
    body = text.encode() + b" " * (1024 * 1024 - len(text))
    assert len(body) == 1024 * 1024
    response = httpx.post(live.url + "/v1/check", content=body)
    assert response.status_code == 200
    assert [(line["code"], line["units"]) for line in response.json()["lines"]] == [("97110", 1)]


def test_limit_is_configurable_and_applies_to_chunked_bodies():
    app = create_app(max_body=1000)
    text = json.dumps({"encounter": SMALL, "payer": "commercial"}).encode()
    with threaded(app) as url:
        exact = text + b" " * (1000 - len(text))
        assert httpx.post(url + "/v1/check", content=exact).status_code == 200
        over = exact + b" "
        assert httpx.post(url + "/v1/check", content=over).status_code == 413

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield over[:600]
            yield over[600:]

        response = httpx.post(url + "/v1/check", content=chunks())
        assert response.status_code == 413
        assert response.json()["message"] == "the request body is larger than the limit of 1000 bytes"


class _GatedEngine(Engine):
    """An engine whose evaluations wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(default_engine().host, default_engine().catalogue)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def check(self, encounter, payer) -> Outcome:
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return super().check(encounter, payer)


def test_slow_evaluation_does_not_block_healthz():
    engine = _GatedEngine()
    with threaded(create_app(engine, timeout=60)) as url:
        result: dict[str, Any] = {}

        def slow() -> None:
            result["response"] = httpx.post(
                url + "/v1/check", json={"encounter": SMALL, "payer": "commercial"}, timeout=60
            )

        thread = threading.Thread(target=slow)
        thread.start()
        try:
            assert engine.entered.wait(30)
            health = httpx.get(url + "/healthz", timeout=10)
            assert health.status_code == 200
            assert "response" not in result  # the evaluation is still waiting
        finally:
            engine.gate.set()
            thread.join(30)
        assert result["response"].status_code == 200


def test_evaluation_over_the_time_limit_is_503():
    engine = _GatedEngine()
    with threaded(create_app(engine, timeout=0.2)) as url:
        try:
            response = httpx.post(url + "/v1/check", json={"encounter": SMALL, "payer": "commercial"}, timeout=30)
        finally:
            engine.gate.set()
        assert response.status_code == 503
        assert response.json()["error"] == "timeout"
        assert response.json()["message"] == "the evaluation took longer than the limit of 0.2 s"
        assert httpx.get(url + "/healthz").status_code == 200


# ---- logs


def test_logs_never_show_patient_data(tmp_path: Path):
    marker = "QZX-PATIENT-8841-Wombat"
    server = LiveServer(tmp_path / "server.log")
    try:
        encounter = copy.deepcopy(SMALL)
        encounter["id"] = marker
        ok = httpx.post(
            server.url + "/v1/check?patient=" + marker, json={"encounter": encounter, "payer": "commercial"}
        )
        assert ok.status_code == 200 and ok.json()["encounter"] == marker
        bad = {**encounter, "provider": {"type": "PT", "npi": marker}}
        rejected = httpx.post(server.url + "/v1/check", json={"encounter": bad, "payer": "commercial"})
        assert rejected.status_code == 422 and marker in rejected.json()["message"]
        assert (
            httpx.post(server.url + "/v1/compare", json={"encounter": encounter, "payers": [marker]}).status_code == 422
        )
        assert httpx.post(server.url + "/v1/check", content=marker.encode()).status_code == 422
        assert httpx.get(server.url + "/v1/patients/" + marker).status_code == 404
    finally:
        log = server.stop()
    assert marker not in log
    assert "POST /v1/check 200" in log
    assert "POST /v1/check 422" in log
    assert "POST /v1/compare 422" in log
    assert "GET - 404" in log
