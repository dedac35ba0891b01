"""Billing correctness, second pass (issue 14): behaviour the case files cannot show on their own.

The exact lines and findings are in ``tests/cases/*/i14_*.toml``; here: bad input for the new
encounter field, its schema and FHIR forms, and that ``explain`` names each new rule and its public
source.
"""

from __future__ import annotations

from typing import Any

import pytest
from payerpolicy import Encounter, EncounterError, Engine
from payerpolicy.formats.fhir import claim_from_encounter, encounter_from_claim
from payerpolicy.formats.schema import encounter_schema
from payerpolicy.views.render import render_explain


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _enc(provider: str = "PT", **service: Any) -> Encounter:
    svc = {"code": "97110", "minutes": 30, "diagnosis_pointers": [1], **service}
    return Encounter.from_mapping(
        {"date_of_service": "2025-04-01", "provider": {"type": provider}, "diagnoses": ["M54.50"], "services": [svc]}
    )


def test_assistant_minutes_above_the_service_minutes_is_bad_input() -> None:
    with pytest.raises(EncounterError) as err:
        _enc(assistant_minutes=31)
    assert str(err.value) == "services[0].assistant_minutes: expected at most the service's 30 minutes, found 31"


def test_assistant_minutes_must_be_a_whole_number() -> None:
    with pytest.raises(EncounterError) as err:
        _enc(assistant_minutes="10")
    assert err.value.field == "services[0].assistant_minutes"


def test_assistant_minutes_round_trip_through_mapping_schema_and_fhir() -> None:
    enc = _enc(assistant_minutes=12)
    assert enc.services[0].assistant_minutes == 12
    assert enc.to_mapping()["services"][0]["assistant_minutes"] == 12
    assert Encounter.from_mapping(enc.to_mapping()) == enc
    assert encounter_from_claim(claim_from_encounter(enc)) == enc
    service = encounter_schema()["$defs"]["Service"]["properties"]["assistant_minutes"]
    assert service["type"] == ["integer", "null"] and service["maximum"] == 480 and "CQ/CO" in service["description"]


def test_explain_names_the_eligibility_rule_and_its_public_source(engine: Engine) -> None:
    enc = _enc("LMT", code="97124", regions=["lumbar"], necessity=["tight_muscles_shortening_or_spasticity"])
    text = render_explain(enc, engine.check(enc, "medicare"))
    assert "CORE-PROV-03" in text
    assert "CMS Pub. 100-02 Medicare Benefit Policy Manual ch. 15 §220" in text
    assert "finding PROVIDER_NOT_ELIGIBLE (error)" in text


def test_explain_names_the_assistant_rule_and_its_public_source(engine: Engine) -> None:
    enc = _enc(assistant_minutes=20)
    outcome = engine.check(enc, "medicare")
    assert [(line.code, line.modifiers) for line in outcome.lines] == [("97110", ("GP", "CQ"))]
    text = render_explain(enc, outcome)
    assert "MCR-08" in text and "CMS Pub. 100-04 Medicare Claims Processing Manual ch. 5 §20.1" in text
    assert "20 of 30 minutes, more than 10 %" in text


def test_an_assistant_under_a_chiropractor_is_flagged_not_guessed(engine: Engine) -> None:
    enc = Encounter.from_mapping(
        {
            "date_of_service": "2025-04-01",
            "provider": {"type": "MD"},
            "diagnoses": ["M54.50"],
            "services": [{"code": "97110", "minutes": 30, "assistant_minutes": 20, "diagnosis_pointers": [1]}],
        }
    )
    outcome = engine.check(enc, "medicare")
    assert [(line.code, line.modifiers, line.status) for line in outcome.lines] == [("97110", ("GP",), "billable")]
    assert [(f.code, f.severity) for f in outcome.findings] == [("ASSISTANT_MODIFIER_UNKNOWN", "warning")]


def test_a_status_b_code_is_not_billable_and_never_suggests_an_appeal(engine: Engine) -> None:
    enc = Encounter.from_mapping(
        {"date_of_service": "2025-04-01", "provider": {"type": "PT"}, "services": [{"code": "97010", "minutes": 10}]}
    )
    outcome = engine.check(enc, "medicare")
    assert [(line.code, line.status) for line in outcome.lines] == [("97010", "not_billable")]
    (finding,) = outcome.findings
    assert finding.code == "BUNDLED_CODE_NOT_PAYABLE" and finding.rule == "MCR-11"
    assert "status indicator B" in finding.source and "status B" in finding.message
    text = finding.message.lower()
    assert "appeal" not in text.replace("nothing to appeal", "")
    assert "may not be charged" in text and "bill the patient" not in text


def test_an_expected_denial_is_not_counted_in_billable_units_and_shows_as_a_denial(engine: Engine) -> None:
    from payerpolicy.views.grid import billable_units, build_grid

    enc = Encounter.from_mapping(
        {
            "date_of_service": "2025-04-01",
            "provider": {"type": "DC"},
            "care": {"phase": "active", "bill_noncovered": True},
            "diagnoses": ["M99.03", "M54.50"],
            "procedures": [{"code": "98940", "regions": ["lumbar"], "diagnosis_pointers": [1, 2]}],
            "services": [{"code": "97140", "minutes": 20, "regions": ["upper_extremity"], "diagnosis_pointers": [2]}],
        }
    )
    outcome = engine.check(enc, "medicare")
    assert [line.status for line in outcome.lines] == ["billable", "expected_denial"]
    assert billable_units(outcome) == 1
    grid = build_grid(enc, {"medicare": outcome})
    texts = [cell.text for row in grid.rows for cell in row.cells]
    assert "97140 x1 [GP, GY] (DENIAL?: NONCOVERED_DC_SERVICE)" in texts
