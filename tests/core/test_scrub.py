"""Claims as billed: every case file's expected lines, sent back as the claim, scrub clean; one
deliberate mistake gives exactly that repair or edit."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.evaluation.scrub import ATTESTING_MODIFIERS, repaired_modifiers
from payerpolicy.kit.testing import Case, case_ids, difference_texts, load_cases, run_case

CASES = [c for c in load_cases(Path(__file__).parents[1] / "cases") if "billed" not in str(c.encounter)]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _as_billed(case: Case, engine: Engine) -> tuple[dict[str, Any], Any] | None:
    """The case's encounter with each expected line on the claim written back as billed."""
    outcome = run_case(case, engine)
    if not any(line.on_claim for line in outcome.lines):
        return None
    data = copy.deepcopy(dict(case.encounter))
    if list(outcome.diagnoses) != list(data.get("diagnoses", [])):
        return None  # the claim-form rule renumbered pointers: the claim as billed would have other diagnoses
    for line in outcome.lines:
        if not line.on_claim:
            continue
        entry = data[line.origin][line.service]
        entry["code"] = line.code
        entry["billed"] = {"units": line.units, "modifiers": list(line.modifiers)}
        if line.diagnosis_pointers:
            entry["diagnosis_pointers"] = list(line.diagnosis_pointers)
    return data, outcome


def _evaluate(case: Case, engine: Engine, data: dict[str, Any]) -> Any:
    return run_case(
        Case(case.id, case.file, case.payer, data, case.lines, case.pointers, case.findings, case.policy, fees=case.fees),
        engine,
    )


def _shape(outcome: Any) -> list[tuple[Any, ...]]:
    return [(x.code, x.units, x.modifiers, x.status, x.diagnosis_pointers) for x in outcome.lines]


# Which cases each test applies to, worked out once at collection (so no test is collected only to skip):
# a case with no line on the claim, or whose diagnoses the claim-form rule renumbers, has no claim as billed.
_ENGINE = Engine()
_BUILT = {c.id + c.payer + c.file: _as_billed(c, _ENGINE) for c in CASES}
ON_CLAIM = [c for c in CASES if _BUILT[c.id + c.payer + c.file] is not None]
WITH_MODIFIER = [
    c for c in ON_CLAIM if any(x.status == "billable" and x.modifiers for x in _BUILT[c.id + c.payer + c.file][1].lines)  # type: ignore[index]
]
TIMED = [c for c in ON_CLAIM if any(x.status == "billable" and x.minutes for x in _BUILT[c.id + c.payer + c.file][1].lines)]  # type: ignore[index]


def test_the_generated_cases_cover_enough_of_the_case_files():
    assert len(ON_CLAIM) >= 0.8 * len(CASES) and len(WITH_MODIFIER) >= 50 and len(TIMED) >= 100


@pytest.mark.parametrize("case", ON_CLAIM, ids=case_ids(ON_CLAIM))
def test_expected_lines_sent_as_billed_scrub_clean(case, engine):
    built = _as_billed(case, engine)
    assert built is not None
    data, expected = built
    outcome = _evaluate(case, engine, data)
    assert outcome.as_billed
    assert _shape(outcome) == _shape(expected)
    # A line the payer is expected to deny is the one thing a claim billed exactly as expected still
    # reports: an edit, unless the line is billed for its denial on purpose (GA, GX, GY, GZ).
    denials = [
        f"{x.code} EXPECTED_DENIAL billable -> expected_denial"
        for x in outcome.lines
        if x.status == "expected_denial" and not set(x.modifiers) & {"GA", "GX", "GY", "GZ"}
    ]
    # A billed code the documented technique or regions do not support stays an edit too.
    doubts = [
        f"{outcome.lines[f.line].code} {'CODE_BY_INTENT' if f.code == 'CODE_TECHNIQUE_MISMATCH' else 'CMT_LEVEL'}"
        for f in outcome.findings
        if f.code in ("CODE_TECHNIQUE_MISMATCH", "CMT_LEVEL_MISMATCH") and f.line is not None
    ]
    edits = difference_texts(outcome, "edit")
    assert [e for e in edits if "EXPECTED_DENIAL" in e] == sorted(denials)
    assert sorted(" ".join(e.split()[:2]) for e in edits if "EXPECTED_DENIAL" not in e) == sorted(doubts)
    assert difference_texts(outcome, "repair") == []
    for n, line in enumerate(outcome.lines):
        if line.billed is not None and line.on_claim:
            assert repaired_modifiers(outcome, n) == line.modifiers


@pytest.mark.parametrize("case", WITH_MODIFIER, ids=case_ids(WITH_MODIFIER))
def test_a_missing_modifier_is_exactly_one_difference(case, engine):
    built = _as_billed(case, engine)
    assert built is not None
    data, expected = built
    target = next((n for n, x in enumerate(expected.lines) if x.status == "billable" and x.modifiers), None)
    assert target is not None
    line = expected.lines[target]
    dropped = line.modifiers[-1]
    data[line.origin][line.service]["billed"]["modifiers"] = list(line.modifiers[:-1])
    outcome = _evaluate(case, engine, data)
    kind = "edit" if dropped in ATTESTING_MODIFIERS else "repair"
    other = "repair" if kind == "edit" else "edit"
    base = _evaluate(case, engine, _as_billed(case, engine)[0])  # type: ignore[index]
    assert difference_texts(outcome, kind) == sorted(
        [*difference_texts(base, kind), f"{line.code} MODIFIER_MISSING - -> {dropped}"]
    )
    assert difference_texts(outcome, other) == difference_texts(base, other)
    if kind == "repair":
        assert repaired_modifiers(outcome, target) == line.modifiers


@pytest.mark.parametrize("case", TIMED, ids=case_ids(TIMED))
def test_one_unit_too_many_is_exactly_one_edit(case, engine):
    built = _as_billed(case, engine)
    assert built is not None
    data, expected = built
    target = next((x for x in expected.lines if x.status == "billable" and x.minutes), None)
    assert target is not None
    base = _evaluate(case, engine, copy.deepcopy(data))
    data[target.origin][target.service]["billed"]["units"] = target.units + 1
    outcome = _evaluate(case, engine, data)
    assert _shape(outcome) == _shape(expected)
    extra = f"{target.code} UNITS_CHANGED {target.units + 1} -> {target.units}"
    assert difference_texts(outcome, "edit") == sorted([*difference_texts(base, "edit"), extra])
    assert difference_texts(outcome, "repair") == difference_texts(base, "repair")


def test_billed_round_trips_through_the_encounter_format():
    data = {
        "date_of_service": "2025-05-06",
        "provider": {"type": "PT"},
        "services": [{"code": "97140", "billed": {"units": 2, "modifiers": ["gp", "59"], "charge": "96.00"}}],
    }
    encounter = Encounter.from_mapping(data)
    assert encounter.services[0].billed.modifiers == ("GP", "59")
    again = Encounter.from_mapping(encounter.to_mapping())
    assert again == encounter
    assert encounter.to_mapping()["services"][0]["billed"] == {"units": 2, "modifiers": ["GP", "59"], "charge": "96.00"}


@pytest.mark.parametrize(
    ("billed", "field", "expected"),
    [
        ({"units": 0}, "services[0].billed.units", "expected a whole number from 1 to 9999, found 0"),
        ({"modifiers": ["G"]}, "services[0].billed.modifiers[0]", 'expected a 2-character modifier like "GP"'),
        ({"charge": 96.5}, "services[0].billed.charge", "expected a non-negative decimal amount"),
        ({"colour": 1}, "services[0].billed.colour", "unknown field"),
    ],
)
def test_bad_billed_fields_name_the_field(billed, field, expected):
    from payerpolicy import EncounterError

    data = {
        "date_of_service": "2025-05-06",
        "provider": {"type": "PT"},
        "services": [{"code": "97140", "billed": billed}],
    }
    with pytest.raises(EncounterError) as info:
        Encounter.from_mapping(data)
    assert info.value.field == field
    assert expected in info.value.message


def test_an_encounter_without_billed_has_no_differences(engine):
    data = {"date_of_service": "2025-05-06", "provider": {"type": "PT"}, "services": [{"code": "97140", "minutes": 30}]}
    outcome = engine.check(Encounter.from_mapping(data), "medicare")
    assert outcome.as_billed is False
    assert outcome.differences == ()
    assert outcome.to_mapping()["differences"] == []
    assert outcome.to_mapping()["lines"][0]["billed"] is None


def test_repairs_over_the_modifier_limit_drop_only_what_the_payer_does_not_want(engine):
    from payerpolicy.kit.testing import load_cases

    case = next(c for c in load_cases(Path(__file__).parents[1] / "cases" / "bcbsnc") if c.id.endswith("[five modifiers]"))
    outcome = run_case(case, engine)
    (line,) = [n for n, x in enumerate(outcome.lines) if x.code == "97124"]
    # GP, 59, KX, GA, RT billed; the plan wants 59, GP: RT goes (a claim line holds four), KX and GA
    # are for a person to decide, so they stay; the rest is put in the plan's order.
    assert repaired_modifiers(outcome, line) == ("59", "GP", "KX", "GA")
