"""POST /v1/scrub on a real server: the CLI's scrub document for a JSON claim and for an 837P body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="needs payerpolicy[server]")
httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")

from _live import LiveServer  # noqa: E402
from payerpolicy.cli import main  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"
CLAIM = {
    "id": "CLM-1",
    "date_of_service": "2025-05-06",
    "provider": {"type": "DC"},
    "care": {"zelis": True},
    "diagnoses": ["M99.01", "M99.02", "M99.03", "M62.89"],
    "procedures": [
        {
            "code": "98941",
            "regions": ["cervical", "thoracic", "lumbar"],
            "diagnosis_pointers": [1, 2, 3],
            "billed": {"units": 1},
        }
    ],
    "services": [
        {
            "code": "97124",
            "minutes": 15,
            "regions": ["lower_extremity"],
            "necessity": ["tight_muscles_shortening_or_spasticity"],
            "diagnosis_pointers": [4],
            "billed": {"units": 2, "modifiers": ["GP", "59"]},
        }
    ],
}


def _cli(capsys, *argv: str) -> dict:
    main(list(argv))
    return json.loads(capsys.readouterr().out)


def test_a_json_claim_answers_the_cli_document(live: LiveServer, tmp_path, capsys):
    file = tmp_path / "claim.json"
    file.write_text(json.dumps(CLAIM))
    expected = _cli(capsys, "scrub", str(file), "--payer", "bcbsnc", "--format", "json")
    response = httpx.post(live.url + "/v1/scrub", json={"claim": CLAIM, "payers": ["bcbsnc"]})
    assert response.status_code == 200, response.text
    assert response.json() == expected
    codes = sorted(d["code"] for d in response.json()["claims"][0]["outcomes"]["bcbsnc"]["differences"])
    assert codes == ["MODIFIER_ORDER", "UNITS_CHANGED"]


def test_an_837p_body_answers_the_cli_document(live: LiveServer, capsys):
    file = FIXTURES / "multi_payer.x12"
    expected = _cli(capsys, "scrub", str(file), "--format", "json")
    response = httpx.post(
        live.url + "/v1/scrub", content=file.read_bytes(), headers={"content-type": "application/edi-x12"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == expected
    assert len(response.json()["claims"]) == 7


def test_an_837p_envelope_that_cannot_be_read_is_422(live: LiveServer):
    body = (FIXTURES / "medicare_dc.x12").read_bytes().replace(b"005010X222A1", b"005010X223A2")
    response = httpx.post(live.url + "/v1/scrub", content=body, headers={"content-type": "application/edi-x12"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_x12"


def test_a_claim_that_says_nothing_billed_is_422(live: LiveServer):
    claim = json.loads(json.dumps(CLAIM))
    for entry in (*claim["procedures"], *claim["services"]):
        del entry["billed"]
    response = httpx.post(live.url + "/v1/scrub", json={"claim": claim})
    assert response.status_code == 422 and response.json()["field"] == "claim"


def test_a_json_claim_needs_no_content_type(live: LiveServer):
    body = json.dumps({"claim": CLAIM, "payers": ["bcbsnc"]}).encode()
    response = httpx.post(
        live.url + "/v1/scrub", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200


def test_an_unknown_payer_in_the_query_is_422(live: LiveServer):
    body = (FIXTURES / "medicare_dc.x12").read_bytes()
    response = httpx.post(
        live.url + "/v1/scrub?payers=nosuch", content=body, headers={"content-type": "application/edi-x12"}
    )
    assert response.status_code == 422 and response.json()["error"] == "unknown_payer"
