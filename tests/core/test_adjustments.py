"""Denial terms: findings that deny or reduce a line carry the CARC, group code and RARCs a remittance gives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine, PayerPolicyError
from payerpolicy.cli import main
from payerpolicy.evaluation.adjustments import adjustment_rules, adjustment_rules_from_mapping, with_adjustments
from payerpolicy.evaluation.model import Adjustment, ClaimLine, Finding

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Engine()


def _terms(outcome) -> dict[tuple[str, int | None], str]:
    """(finding code, line) -> "CO-236 N362" for every finding with an adjustment."""
    return {
        (f.code, f.line): f"{f.adjustment.group}-{f.adjustment.carc}" + "".join(f" {r}" for r in f.adjustment.rarc)
        for f in outcome.findings
        if f.adjustment is not None
    }


def _visit(**changes) -> Encounter:
    data = json.loads((ROOT / "examples" / "dc_visit.json").read_text())
    data.update(changes)
    return Encounter.from_mapping(data)


def test_done_when_fhir_check_shows_carc_codes_on_the_denied_lines(capsys):
    assert main(["check", "examples/dc_visit.json", "--payer", "medicare", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    response = bundle["entry"][1]["resource"]
    carc = "https://x12.org/codes/claim-adjustment-reason-codes"
    items = {i["itemSequence"]: i["adjudication"][0].get("reason") for i in response["item"]}
    assert items[1] is None  # 98940 AT: paid
    assert [c for c in items[2]["coding"] if c["system"] == carc] == [{"system": carc, "code": "170"}]
    assert items[2]["text"] == items[3]["text"] == "PR-170 N95"  # a DC's therapy billed with GY
    [not_billed] = [e for e in response["extension"] if e["url"].endswith("/not-billed-line")]
    reason = next(p["valueCodeableConcept"] for p in not_billed["extension"] if p["url"] == "reason")
    assert reason["text"] == "CO-236" and reason["coding"][0] == {"system": carc, "code": "236"}  # 97124: NCCI pair


def test_dc_visit_denials_per_payer():
    encounter = _visit()
    assert _terms(ENGINE.check(encounter, "medicare")) == {
        ("NCCI_PTP_DENIAL", 2): "CO-236",
        ("NONCOVERED_DC_SERVICE", 1): "PR-170 N95",
        ("NONCOVERED_DC_SERVICE", 3): "PR-170 N95",
    }
    assert _terms(ENGINE.check(encounter, "bcbsnc")) == {("NCCI_PTP_DENIAL", 2): "CO-236"}
    assert _terms(ENGINE.check(encounter, "commercial")) == {}


def test_the_group_follows_the_modifier_that_shifts_liability():
    # Not billed as non-covered: no GY, the provider is liable (CO); with GY the patient is (PR).
    care = {"phase": "active", "episode_start": "2025-02-24"}
    assert _terms(ENGINE.check(_visit(care=care), "medicare"))[("NONCOVERED_DC_SERVICE", 1)] == "CO-170 N95"
    maintenance = {"phase": "maintenance", "episode_start": "2025-02-24"}
    signed = ENGINE.check(_visit(care={**maintenance, "abn": "signed"}, services=[]), "medicare")
    unsigned = ENGINE.check(_visit(care={**maintenance, "abn": "none"}, services=[]), "medicare")
    assert signed.lines[0].modifiers == ("GA",) and unsigned.lines[0].modifiers == ("GZ",)
    assert _terms(signed)[("MEDICARE_MAINTENANCE", 0)] == "PR-50 N115"
    assert _terms(unsigned)[("MEDICARE_MAINTENANCE", 0)] == "CO-50 N115"


def test_units_over_the_mue_and_a_missing_initial_treatment_date():
    mue = Encounter.from_mapping(
        {"date_of_service": "2025-04-01", "provider": {"type": "PT"},
         "services": [{"code": "97140", "minutes": 100, "regions": ["lumbar"]}]}
    )
    assert _terms(ENGINE.check(mue, "medicare")) == {("NCCI_MUE_EXCEEDED", 0): "CO-151 N362"}
    no_start = _visit(care={"phase": "active"})
    assert _terms(ENGINE.check(no_start, "medicare"))[("MEDICARE_INITIAL_TREATMENT_DATE_MISSING", 0)] == "CO-16 MA122"


def test_every_adjustment_in_the_outcome_json_has_its_source():
    data = ENGINE.check(_visit(), "medicare").to_mapping()
    ncci = next(f for f in data["findings"] if f["code"] == "NCCI_PTP_DENIAL")
    assert ncci["adjustment"]["group"] == "CO" and ncci["adjustment"]["carc"] == "236" and ncci["adjustment"]["rarc"] == []
    assert ncci["adjustment"]["source"].startswith("X12 Claim Adjustment Reason Code list (x12.org/codes/claim-adjustment-reason-codes), CARC 236")
    assert all(f["adjustment"] is None for f in data["findings"] if f["code"] == "MASSAGE_AUDIT_TRIGGER_VISITS")


def test_every_table_entry_names_a_finding_code_the_project_produces_and_a_source():
    produced = "\n".join(
        p.read_text("utf-8")
        for p in [*(ROOT / "core").rglob("*.py"), *(ROOT / "plugins").glob("*.py"), *(ROOT / "policies").glob("*.toml")]
        if p.name != "adjustments.toml"
    ) + (ROOT / "docs" / "outcome-format.md").read_text("utf-8").split("### adjustment")[0]
    for rule in adjustment_rules():
        assert re.search(rf"\b{rule.finding}\b", produced), rule.finding
        assert rule.source.strip() and "seed" not in rule.source.lower()
    assert len({r.finding for r in adjustment_rules()}) == len(adjustment_rules())


def test_a_plugins_own_adjustment_is_kept_and_payers_restrict_an_entry():
    own = Adjustment(group="OA", carc="23")
    finding = Finding("NCCI_PTP_DENIAL", "warning", "m", line=0, adjustment=own)
    line = ClaimLine(code="97124", units=1)
    assert with_adjustments([finding], [line], "medicare")[0].adjustment == own
    rules = adjustment_rules_from_mapping(
        {"schema_version": 1, "reasons": [{"finding": "X", "group": "CO", "carc": "45", "source": "s", "payers": ["aetna"]}]}
    )
    plain = Finding("X", "warning", "m", line=0)
    assert with_adjustments([plain], [line], "medicare", rules)[0].adjustment is None
    assert with_adjustments([plain], [line], "aetna", rules)[0].adjustment == Adjustment("CO", "45", (), "s")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"finding": "X", "group": "XX", "carc": "45", "source": "s"}, "t.toml: reasons[0].group: expected one of CO, PR, OA, PI, found 'XX'"),
        ({"finding": "X", "group": "CO", "carc": "abc", "source": "s"}, "t.toml: reasons[0].carc: expected a claim adjustment reason code such as 236, found 'abc'"),
        ({"finding": "X", "group": "CO", "carc": "45", "rarc": ["Q1"], "source": "s"}, "t.toml: reasons[0].rarc: expected a list of remark codes such as N362, M15, MA122, found ['Q1']"),
        ({"finding": "X", "group": "CO", "carc": "45"}, "t.toml: reasons[0].source: expected a non-empty string, found None"),
        ({"finding": "X", "group": "CO", "carc": "45", "source": "s", "grup": "CO"}, "t.toml: reasons[0].grup: expected one of the keys finding, group, carc, rarc, group_with_modifiers, payers, source, note, found 'grup'"),
    ],
)
def test_table_errors_name_the_file_the_entry_and_the_key(entry, message):
    with pytest.raises(PayerPolicyError) as info:
        adjustment_rules_from_mapping({"schema_version": 1, "reasons": [entry]}, file="t.toml")
    assert str(info.value) == message
