"""The ca_wc payer: code set by date of service, the visit caps, notes and policy data."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from payerpolicy import Context, Encounter, Engine, Outcome
from payerpolicy.evaluation.policy import load_policy_text
from payerpolicy.plugins import ca_wc

BASE: dict[str, Any] = {
    "date_of_service": "2025-03-12",
    "provider": {"type": "DC"},
    "care": {"visit_number": 6, "injury_date": "2025-02-20"},
    "diagnoses": ["M99.03", "M25.611"],
    "procedures": [{"code": "98940", "regions": ["lumbar"], "diagnosis_pointers": [1]}],
    "services": [
        {"technique": "myofascial_release", "intent": ["range_of_motion"], "minutes": 20,
         "regions": ["upper_extremity"], "diagnosis_pointers": [2]},
    ],
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _enc(**changes: Any) -> Encounter:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if key in ("care", "service"):
            target = data["care"] if key == "care" else data["services"][0]
            target.update(value)
        else:
            data[key] = value
    return Encounter.from_mapping(data)


def _line(outcome: Outcome, code: str) -> int:
    return next(i for i, line in enumerate(outcome.lines) if line.code == code)


def test_payer_and_kinds_registered(engine: Engine) -> None:
    assert "ca_wc" in engine.payer_ids
    ours = [k for k in engine.host.kinds.values() if k.plugin == "ca_wc"]
    assert {k.name for k in ours} == {k.name for k in ca_wc.KINDS}
    assert all(k.name.startswith("ca_wc_") for k in ours)


def test_policy_settings_and_code_checks_are_dated(engine: Engine) -> None:
    policy = engine.host.policy("ca_wc")
    assert policy.settings.unit_method == "cms_total_time"
    basis = policy.settings.basis_of("unit_method")
    assert basis is not None and basis.rule == "CAWC-05"
    core_check = policy.rule("CORE-CODE-02")
    assert core_check is not None and core_check.effective_to == dt.date(2013, 12, 31)
    assert set(core_check.params["exempt"]) == {"97250", "97610"}
    current = policy.rule("CAWC-CODE-02")
    assert current is not None and current.effective_from == dt.date(2014, 1, 1) and not current.get("exempt")


def test_policy_round_trips(engine: Engine) -> None:
    policy = engine.host.policy("ca_wc")
    assert load_policy_text(policy.to_toml(), engine.host.kinds) == policy


def test_same_encounter_2012_and_2025_each_explained(engine: Engine) -> None:
    old = engine.check(_enc(date_of_service="2012-03-12", care={"injury_date": "2012-02-20"}), "ca_wc")
    new = engine.check(_enc(), "ca_wc")
    assert [(line.code, line.units) for line in old.lines] == [("98940", 1), ("97250", 1)]
    assert [(line.code, line.units, line.modifiers) for line in new.lines] == [("98940", 1, ()), ("97140", 1, ("59",))]

    old_code = next(t for t in old.trace if t.field == "code" and t.after == "97250")
    assert old_code.rule == "CAWC-03" and old_code.plugin == "ca_wc" and "Dynamic Chiropractic" in old_code.source
    assert "before" in old_code.reason or "2013-12-31" in old_code.reason
    warning = next(f for f in old.findings if f.code == "LEGACY_OMFS_LOW_CONFIDENCE")
    assert warning.severity == "warning" and "LOW" in warning.message

    new_code = next(t for t in new.trace if t.field == "code" and t.after == "97140")
    assert new_code.rule == "CORE-INT-01"
    assert not any(f.code.startswith("LEGACY") for f in new.findings)


@pytest.mark.parametrize(("intent", "expected"), [(["range_of_motion"], "97140"), (["spasm", "circulation"], "97124")])
def test_97610_after_2014_is_an_error_proposing_the_code_by_intent(engine: Engine, intent: list[str], expected: str) -> None:
    enc = _enc(procedures=[], service={"code": "97610", "technique": "soft_tissue_mobilization", "intent": intent,
                                       "necessity": ["tight_muscles_shortening_or_spasticity"]})
    outcome = engine.check(enc, "ca_wc")
    assert [line.code for line in outcome.lines] == [expected]
    error = next(f for f in outcome.findings if f.code == "INVALID_CODE_FOR_DOS")
    assert error.severity == "error" and error.rule == "CAWC-03-CURRENT" and error.line == 0
    assert "wound" in error.message and expected in error.message
    trace = next(t for t in outcome.trace if t.field == "code")
    assert (trace.before, trace.after, trace.rule) == ("97610", expected, "CAWC-03-CURRENT")


def test_97610_before_2014_is_accepted_and_not_flagged_by_the_core_code_check(engine: Engine) -> None:
    enc = _enc(date_of_service="2011-09-01", care={"injury_date": "2011-08-15"}, procedures=[],
               service={"technique": "soft_tissue_mobilization", "intent": []})
    outcome = engine.check(enc, "ca_wc")
    assert [(line.code, line.units, line.status) for line in outcome.lines] == [("97610", 1, "billable")]
    assert [f.code for f in outcome.findings] == ["LEGACY_OMFS_LOW_CONFIDENCE"]


def test_other_payers_still_flag_the_legacy_codes(engine: Engine) -> None:
    enc = _enc(date_of_service="2011-09-01", procedures=[], service={"code": "97610", "technique": None, "intent": []})
    outcome = engine.check(enc, "commercial")
    assert any(f.code == "INVALID_CODE_FOR_DOS" for f in outcome.findings)


def test_legacy_timed_units_are_not_computed(engine: Engine) -> None:
    enc = _enc(date_of_service="2012-03-12", care={"injury_date": "2012-02-20"}, service={"technique": "therapeutic_exercise"})
    outcome = engine.check(enc, "ca_wc")
    line = outcome.lines[_line(outcome, "97110")]
    assert (line.units, line.status) == (0, "not_billable")
    finding = next(f for f in outcome.findings if f.code == "LEGACY_UNITS_NOT_COMPUTED")
    assert "1999 OMFS" in finding.message and finding.rule == "CAWC-03-UNITS"


@pytest.mark.parametrize(
    ("provider", "rule"),
    [("DC", "CAWC-01-DC"), ("PT", "CAWC-01-PT"), ("PTA", "CAWC-01-PT"), ("OT", "CAWC-01-OT"), ("OTA", "CAWC-01-OT")],
)
def test_visit_25_is_denied_by_the_discipline_counter(engine: Engine, provider: str, rule: str) -> None:
    enc = _enc(provider={"type": provider}, procedures=[], care={"visit_number": 25})
    outcome = engine.check(enc, "ca_wc")
    assert all(line.status == "expected_denial" for line in outcome.lines)
    cap = [f for f in outcome.findings if f.code == "CA_VISIT_CAP_EXCEEDED"]
    assert len(cap) == len(outcome.lines) and {f.rule for f in cap} == {rule}
    assert "25" in cap[0].message and "24" in cap[0].message


@pytest.mark.parametrize("care", [{"visit_number": 24}, {"visit_number": 25, "written_authorization": True},
                                  {"visit_number": 25, "post_surgical": True}, {"visit_number": 25, "injury_date": "2003-12-31"}])
def test_visit_cap_edges_not_denied(engine: Engine, care: dict[str, Any]) -> None:
    outcome = engine.check(_enc(care=care), "ca_wc")
    assert all(line.status == "billable" for line in outcome.lines)
    assert not any(f.code.startswith("CA_VISIT_CAP") for f in outcome.findings)


def test_visit_cap_is_policy_data(engine: Engine) -> None:
    text = """
schema_version = 1
extends = "ca_wc"
[payer]
id = "ca_wc"
name = "x"
policy_version = "t"
[[rules]]
id = "CAWC-01-DC"
max_visits = 30
"""
    policy = load_policy_text(text, engine.host.kinds)
    other = Engine(engine.host.with_policy("ca_wc", policy), engine.catalogue)
    outcome = other.check(_enc(care={"visit_number": 25}), "ca_wc")
    assert all(line.status == "billable" for line in outcome.lines)


def test_notes_state_their_open_questions(engine: Engine) -> None:
    outcome = engine.check(_enc(), "ca_wc")
    by_code = {f.code: f for f in outcome.findings}
    assert by_code["MPPR_APPLIES"].severity == "info" and "payment only" in by_code["MPPR_APPLIES"].message
    assert "9789.15.4(b)" in by_code["MPPR_APPLIES"].message
    assert "open question" in by_code["NCCI_ADOPTION_UNVERIFIED"].message
    assert by_code["NCCI_ADOPTION_UNVERIFIED"].rule == "CAWC-04"


def test_hook_leaves_unmapped_services_to_the_core(engine: Engine) -> None:
    ctx_encounter = _enc(service={"technique": "therapeutic_exercise", "intent": []})
    ctx = Context(encounter=ctx_encounter, payer=engine.host.payer("ca_wc"), policy=engine.host.policy("ca_wc"),
                  catalogue=engine.catalogue)
    assert ca_wc.choose_code(ctx_encounter.services[0], 0, ctx) is None
