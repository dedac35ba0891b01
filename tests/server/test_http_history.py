"""`payerpolicy serve --history FILE`: counters from claim history, and "record" per request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
pytest.importorskip("uvicorn", reason="needs payerpolicy[server]")
httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")

from _live import LiveServer, threaded  # noqa: E402
from payerpolicy.history import SQLiteHistory  # noqa: E402
from payerpolicy.service.server import create_app  # noqa: E402


def _visit(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"W-{n}", "patient": "pseudo-81", "episode": "claim-5", "date_of_service": f"2025-03-{n:02d}",
        "provider": {"type": "PT"}, "care": {"injury_date": "2025-02-01"},
        "services": [{"code": "97110", "minutes": 30}], **extra,
    }  # fmt: skip


def _visit_number(outcome: dict[str, Any]) -> Any:
    return next(t["after"] for t in outcome["trace"] if t["field"] == "care.visit_number")


def test_record_writes_and_a_what_if_does_not(tmp_path: Path) -> None:
    store = SQLiteHistory(tmp_path / "h.db")
    with threaded(create_app(history=store)) as url:
        for n in range(1, 25):
            response = httpx.post(url + "/v1/check", json={"encounter": _visit(n), "payer": "ca_wc", "record": True})
            assert response.status_code == 200
        assert store.count() == 24
        what_if = httpx.post(url + "/v1/check", json={"encounter": _visit(25), "payer": "ca_wc"}).json()
        assert _visit_number(what_if) == 25
        assert {f["code"] for f in what_if["findings"]} >= {"CA_VISIT_CAP_EXCEEDED"}
        assert httpx.post(url + "/v1/check", json={"encounter": _visit(26), "payer": "ca_wc", "record": False}).status_code == 200
        assert store.count() == 24  # what-ifs never write
        compared = httpx.post(url + "/v1/compare", json={"encounter": _visit(25), "payers": ["ca_wc", "commercial"]}).json()
        assert [_visit_number(o) for o in compared["outcomes"]] == [25, 25]
        assert store.count() == 24
        # recording the same visit again replaces it
        again = httpx.post(url + "/v1/check", json={"encounter": _visit(24), "payer": "ca_wc", "record": True}).json()
        assert _visit_number(again) == 24 and store.count() == 24
        bad = httpx.post(url + "/v1/check", json={"encounter": {k: v for k, v in _visit(27).items() if k != "id"}, "payer": "ca_wc", "record": True})
        assert (bad.status_code, bad.json()["field"], bad.json()["message"]) == (
            422, "encounter.id", "required to record the visit in claim history",
        )  # fmt: skip
        wrong = httpx.post(url + "/v1/check", json={"encounter": _visit(27), "payer": "ca_wc", "record": "yes"})
        assert (wrong.status_code, wrong.json()["field"]) == (422, "record")
    store.close()


def test_record_without_history_is_refused() -> None:
    with threaded(create_app()) as url:
        response = httpx.post(url + "/v1/check", json={"encounter": _visit(1), "payer": "ca_wc", "record": True})
        assert response.status_code == 422
        assert (response.json()["field"], response.json()["message"]) == (
            "record", "this service keeps no claim history (start it with --history FILE)",
        )  # fmt: skip
        plain = httpx.post(url + "/v1/check", json={"encounter": _visit(1), "payer": "ca_wc"}).json()
        assert not any(t["rule"] == "HISTORY" for t in plain["trace"])


def test_serve_history_records_and_never_logs_the_patient(tmp_path: Path) -> None:
    db = tmp_path / "served.db"
    live = LiveServer(tmp_path / "server.log", "--history", str(db), "--log-level", "debug")
    try:
        response = httpx.post(live.url + "/v1/check", json={"encounter": _visit(3), "payer": "ca_wc", "record": True})
        assert response.status_code == 200
    finally:
        log = live.stop()
    assert "pseudo-81" not in log and "claim-5" not in log and "W-3" not in log
    with SQLiteHistory(db) as store:
        assert [v.encounter for v in store.visits("pseudo-81")] == ["W-3"]


def test_the_openapi_document_describes_record() -> None:
    with threaded(create_app()) as url:
        doc = httpx.get(url + "/openapi.json").json()
    record = doc["components"]["schemas"]["CheckRequest"]["properties"]["record"]
    assert record["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
    assert "never writes" in record["description"]
    encounter = doc["components"]["schemas"]["Encounter"]
    assert {"patient", "episode"} <= set(encounter["properties"]) and encounter["dependentRequired"] == {"episode": ["patient"]}
    json.dumps(doc)


def _same_day(ident: str, code: str) -> dict[str, Any]:
    return {
        "id": ident, "patient": "pseudo-90", "date_of_service": "2025-03-03", "provider": {"type": "PT"},
        "diagnoses": ["M54.50"], "services": [{"code": code, "minutes": 15, "regions": ["lumbar"], "diagnosis_pointers": [1]}],
    }  # fmt: skip


def test_check_and_compare_see_the_patients_earlier_claim_of_the_same_day(tmp_path: Path) -> None:
    store = SQLiteHistory(tmp_path / "h.db")
    with threaded(create_app(history=store)) as url:
        for payer in ("medicare", "bcbsnc"):  # claim A-1 went out to both payers
            recorded = httpx.post(url + "/v1/check", json={"encounter": _same_day("A-1", "97140"), "payer": payer, "record": True})
            assert recorded.status_code == 200
        checked = httpx.post(url + "/v1/check", json={"encounter": _same_day("B-1", "97124"), "payer": "bcbsnc"}).json()
        assert [(x["code"], x["status"]) for x in checked["lines"]] == [("97124", "not_billable")]
        compared = httpx.post(url + "/v1/compare", json={"encounter": _same_day("B-1", "97124"), "payers": ["medicare", "bcbsnc", "aetna"]}).json()
        outcomes = {o["payer"]["id"]: o for o in compared["outcomes"]}
        for payer in ("medicare", "bcbsnc"):
            denial = [f for f in outcomes[payer]["findings"] if f["code"] == "NCCI_PTP_DENIAL"]
            assert [x["status"] for x in outcomes[payer]["lines"]] == ["not_billable"]
            assert len(denial) == 1 and "with 97140 billed on claim A-1" in denial[0]["message"]
        # A-1 was never recorded for aetna: named in the trace, not counted
        aetna = outcomes["aetna"]
        assert [t["after"] for t in aetna["trace"] if t["field"] == "same_day_lines"] == [None]
        assert store.count() == 1
    store.close()
