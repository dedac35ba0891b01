"""The JSON Schemas of the encounter and outcome formats agree with the reader and with real outcomes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import attrs
import pytest

jsonschema = pytest.importorskip("jsonschema", reason="needs payerpolicy[server-test]")

from payerpolicy import Care, Encounter, default_engine, vocab  # noqa: E402
from payerpolicy.evaluation.model import _ENCOUNTER_KEYS, _PROCEDURE_KEYS, _PROVIDER_KEYS, _SERVICE_KEYS  # noqa: E402
from payerpolicy.formats.schema import encounter_schema, openapi_document, outcome_schema  # noqa: E402
from payerpolicy.kit.testing import load_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASES = load_cases(ROOT / "tests" / "cases")
ENCOUNTER = jsonschema.Draft202012Validator(encounter_schema(), format_checker=jsonschema.FormatChecker())
OUTCOME = jsonschema.Draft202012Validator(outcome_schema(), format_checker=jsonschema.FormatChecker())


def _errors(validator: Any, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]


def test_schemas_are_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(encounter_schema())
    jsonschema.Draft202012Validator.check_schema(outcome_schema())
    for name, schema in openapi_document(version="0").get("components", {})["schemas"].items():
        assert name and jsonschema.Draft202012Validator.check_schema(schema) is None


def test_every_field_the_reader_accepts_is_in_the_schema_and_no_other():
    schema = encounter_schema()
    defs = schema["$defs"]
    assert tuple(schema["properties"]) == _ENCOUNTER_KEYS
    assert tuple(defs["Provider"]["properties"]) == _PROVIDER_KEYS
    assert tuple(defs["Care"]["properties"]) == tuple(f.name for f in attrs.fields(Care))
    assert tuple(defs["Service"]["properties"]) == _SERVICE_KEYS
    assert tuple(defs["Procedure"]["properties"]) == _PROCEDURE_KEYS
    for part in (schema, *defs.values()):
        assert part["additionalProperties"] is False  # unknown fields are rejected, as by the reader


def _enum(schema: dict[str, Any]) -> list[str]:
    values = schema["items"]["enum"] if "items" in schema else schema["enum"]
    return [v for v in values if v is not None]


def test_vocabularies_are_the_readers():
    schema = encounter_schema()
    defs = schema["$defs"]
    assert _enum(defs["Provider"]["properties"]["type"]) == list(vocab.PROVIDER_TYPES)
    assert _enum(defs["Care"]["properties"]["phase"]) == list(vocab.PHASES)
    assert _enum(defs["Care"]["properties"]["abn"]) == list(vocab.ABN_KINDS)
    assert _enum(defs["Service"]["properties"]["technique"]) == list(vocab.TECHNIQUES)
    assert _enum(defs["Service"]["properties"]["intent"]) == list(vocab.INTENTS)
    assert _enum(defs["Service"]["properties"]["regions"]) == list(vocab.REGIONS)
    assert _enum(defs["Service"]["properties"]["necessity"]) == list(vocab.NECESSITY_CONDITIONS)
    assert _enum(defs["Procedure"]["properties"]["regions"]) == list(vocab.REGIONS)
    assert _enum(schema["properties"]["documentation"]) == list(vocab.DOCUMENTATION_ELEMENTS)
    assert _enum(defs["Procedure"]["properties"]["code"]) == sorted(vocab.default_catalogue().codes)


def _as_json(data: Any) -> Any:
    """A case's TOML encounter as the JSON a client would send (dates and times as strings)."""

    def default(value: Any) -> str:
        if isinstance(value, dt.time):
            return value.strftime("%H:%M")
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(type(value))

    return json.loads(json.dumps(data, default=default))


def test_examples_and_case_encounters_validate():
    assert not _errors(ENCOUNTER, json.loads((ROOT / "examples" / "dc_visit.json").read_text()))
    checked = 0
    for case in CASES:
        data = _as_json(case.encounter)
        encounter = Encounter.from_mapping(data)
        assert not _errors(ENCOUNTER, data), case.id
        assert not _errors(ENCOUNTER, encounter.to_mapping()), case.id
        checked += 1
    assert checked > 90


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["services"][0].update(minutes=481), "services/0/minutes"),
        (lambda d: d["services"][0].update(colour="blue"), "services/0"),
        (lambda d: d.pop("provider"), ""),
        (lambda d: d.update(date_of_service="12/03/2025"), "date_of_service"),
        (lambda d: d["care"].update(ytd_therapy_charges=2450.5), "care/ytd_therapy_charges"),
        (lambda d: d["services"][2].update(start="9:05", end="09:20"), "services/2/start"),
        (lambda d: (d.pop("services"), d.pop("procedures")), ""),
    ],
)
def test_what_the_reader_rejects_the_schema_rejects(change, where):
    data = json.loads((ROOT / "examples" / "dc_visit.json").read_text())
    change(data)
    with pytest.raises(Exception, match=r"."):
        Encounter.from_mapping(data)
    errors = list(ENCOUNTER.iter_errors(data))
    assert errors
    paths = set()
    while errors:  # the error itself, and inside anyOf the error of each branch
        error = errors.pop()
        paths.add("/".join(map(str, error.absolute_path)))
        errors.extend(error.context or ())
    assert where in paths


def test_real_outcomes_validate():
    engine = default_engine()
    dc = Encounter.from_mapping(json.loads((ROOT / "examples" / "dc_visit.json").read_text()))
    for payer in engine.payer_ids:
        assert not _errors(OUTCOME, engine.check(dc, payer).to_mapping()), payer
    # Every public scenario: lines of every status, findings, trace entries with list and null values.
    statuses, severities = set(), set()
    for case in CASES:
        if case.policy:
            continue
        outcome = engine.check(Encounter.from_mapping(case.encounter), case.payer).to_mapping()
        assert not _errors(OUTCOME, outcome), case.id
        statuses |= {line["status"] for line in outcome["lines"]}
        severities |= {f["severity"] for f in outcome["findings"]}
    assert statuses == {"billable", "expected_denial", "not_billable"}
    assert severities == {"error", "expected_denial", "warning", "info"}


def test_outcome_schema_names_every_outcome_field():
    outcome = (
        default_engine()
        .check(Encounter.from_mapping(json.loads((ROOT / "examples" / "dc_visit.json").read_text())), "commercial")
        .to_mapping()
    )
    schema = outcome_schema()
    assert list(schema["properties"]) == list(outcome)
    assert list(schema["$defs"]["ClaimLine"]["properties"]) == list(outcome["lines"][0])
    assert list(schema["$defs"]["Finding"]["properties"]) == list(outcome["findings"][0])
    assert list(schema["$defs"]["TraceEntry"]["properties"]) == list(outcome["trace"][0])
    assert list(schema["$defs"]["PayerRef"]["properties"]) == list(outcome["payer"])
    broken = {**outcome, "lines": [{**outcome["lines"][0], "status": "paid"}]}
    assert _errors(OUTCOME, broken) == [
        "lines/0/status: 'paid' is not one of ['billable', 'expected_denial', 'not_billable']"
    ]
