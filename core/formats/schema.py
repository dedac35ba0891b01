"""JSON Schemas of the public formats, and the HTTP service's OpenAPI document.

The schemas describe the encounter format v1 (``docs/encounter-format.md``) and the outcome format
v1 (``docs/outcome-format.md``) in JSON Schema 2020-12, the dialect of OpenAPI 3.1. They are built
from the vocabularies in :mod:`payerpolicy.vocab` and the shipped code catalogue, so a name added
there appears here too. Plain data, no third-party import: the HTTP service, the docs and the tests
use the same objects.

* :func:`encounter_schema` and :func:`outcome_schema` are standalone schemas (``$defs`` inside).
* :func:`openapi_document` is the HTTP service's OpenAPI 3.1 document, with the same definitions
  under ``components/schemas``.

What a schema cannot say is still checked by :meth:`Encounter.from_mapping
<payerpolicy.Encounter.from_mapping>`, whose error names the field: a diagnosis pointer past the end
of ``diagnoses``, ``minutes`` longer than the ``start``–``end`` span, ``end`` after ``start``.
The reader is also a little more lenient than the schema: it trims strings, upper-cases codes and
diagnoses, and drops repeated names.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..evaluation import vocab
from ..evaluation.model import (
    ADJUSTMENT_GROUPS,
    DIFFERENCE_KINDS,
    MAX_BILLED_UNITS,
    MAX_SERVICE_MINUTES,
    SEVERITIES,
    STATUSES,
)

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "encounter_schema",
    "openapi_document",
    "outcome_schema",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]

_DATE: Schema = {
    "type": "string",
    "format": "date",
    "pattern": r"^\d{4}-\d{2}-\d{2}$",
    "description": "ISO date YYYY-MM-DD.",
}
_TIME: Schema = {
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "Clock time HH:MM, 24-hour.",
}
_ICD10 = "^[A-Z][0-9][0-9A-Z](\\.?[0-9A-Z]{1,4})?$"


def _nullable(schema: Schema) -> Schema:
    """``null`` is the same as leaving the field out (encounter-format.md, General rules)."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _names(known: Sequence[str], what: str) -> Schema:
    return {
        "type": "array",
        "items": {"type": "string", "enum": list(known)},
        "description": f"{what} (repeats are dropped).",
    }


def _whole(minimum: int, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _pointers() -> Schema:
    return {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "description": "1-based indexes into diagnoses; each at most the number of diagnoses.",
    }


def _object(properties: dict[str, Schema], required: Sequence[str] = (), description: str = "") -> Schema:
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def _encounter_defs(ref: str) -> dict[str, Schema]:
    """The encounter's definitions; ``ref`` is the prefix of references between them."""
    codes = sorted(vocab.default_catalogue().codes)
    code: Schema = {
        "type": "string",
        "enum": codes,
        "description": "A code in the shipped catalogue (policies/codes.toml); read case-insensitively.",
    }
    provider = _object(
        {
            "type": {"type": "string", "enum": list(vocab.PROVIDER_TYPES)},
            "npi": _nullable({"type": "string", "pattern": "^[0-9]{10}$"}),
        },
        required=["type"],
        description="Who furnished the services.",
    )
    care = _object(
        {
            "phase": _nullable({"type": "string", "enum": list(vocab.PHASES)}),
            "visit_number": _nullable(_whole(1, 10000)),
            "episode_start": _nullable(_DATE),
            "injury_date": _nullable(_DATE),
            "prior_massage_visits": _nullable(_whole(0, 10000)),
            "improvement_documented": _nullable({"type": "boolean"}),
            "treatment_modified": _nullable({"type": "boolean"}),
            "plan_of_care": _nullable({"type": "boolean"}),
            "written_authorization": _nullable({"type": "boolean"}),
            "post_surgical": _nullable({"type": "boolean"}),
            "abn": _nullable({"type": "string", "enum": list(vocab.ABN_KINDS)}),
            "ytd_therapy_charges": {
                "anyOf": [
                    {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
                    {"type": "integer", "minimum": 0},
                    {"type": "null"},
                ],
                "description": 'A non-negative decimal amount as a string ("2450.00") or an integer; never a float.',
            },
            "bill_noncovered": _nullable({"type": "boolean"}),
            "zelis": _nullable({"type": "boolean"}),
            "last_xray": _nullable(
                {**_DATE, "description": "Date of the last X-ray (837P DTP*455; Medicare chiropractic). Added in 0.2.0."}
            ),
        },
        description="Episode and coverage facts (all optional).",
    )
    billed = _object(
        {
            "units": _nullable({**_whole(1, MAX_BILLED_UNITS), "description": "Units of service as billed (SV104)."}),
            "modifiers": _nullable(
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[A-Za-z0-9]{2}$"},
                    "description": "Modifiers as billed, in claim order (SV101-3 to SV101-6).",
                }
            ),
            "charge": {
                "anyOf": [
                    {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*$"},
                    {"type": "integer", "minimum": 0},
                    {"type": "null"},
                ],
                "description": 'The line charge as billed (SV102): a decimal string ("120.00") or an integer; never a float.',
            },
        },
        description="What the claim as billed says for this entry (encounter format v1, added in 0.2.0): units, modifiers, charge.",
    )
    unit_charge = {
        "anyOf": [
            {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*$"},
            {"type": "integer", "minimum": 0},
        ],
        "description": "The practice's charge for one unit of the code (added in 0.2.0): a decimal string"
        ' ("45.00") or an integer; never a float. The line charge is this times the units.',
    }
    service = _object(
        {
            "code": _nullable(code),
            "technique": _nullable({"type": "string", "enum": list(vocab.TECHNIQUES)}),
            "intent": _nullable(_names(vocab.INTENTS, "Intents")),
            "minutes": _nullable(
                {
                    **_whole(0, MAX_SERVICE_MINUTES),
                    "description": "Direct one-on-one minutes; at most the start-end span.",
                }
            ),
            "start": _nullable(_TIME),
            "end": _nullable({**_TIME, "description": "Clock time HH:MM, strictly after start."}),
            "regions": _nullable(_names(vocab.REGIONS, "Body regions")),
            "necessity": _nullable(_names(vocab.NECESSITY_CONDITIONS, "Medical-necessity conditions")),
            "diagnosis_pointers": _nullable(_pointers()),
            "assistant_minutes": _nullable(
                {
                    **_whole(0, MAX_SERVICE_MINUTES),
                    "description": "Minutes of the service a therapy assistant (PTA, OTA) furnished apart from the"
                    " therapist; at most minutes. Decides Medicare's CQ/CO (more than 10% of the service).",
                }
            ),
            "billed": _nullable({"$ref": ref + "Billed"}),
            "unit_charge": _nullable(unit_charge),
        },
        description="A soft-tissue or therapy service; code or technique (or both) is given.",
    )
    service["anyOf"] = [
        {"required": ["code"], "properties": {"code": {"type": "string"}}},
        {"required": ["technique"], "properties": {"technique": {"type": "string"}}},
    ]
    service["dependentRequired"] = {"start": ["end"], "end": ["start"]}
    procedure = _object(
        {
            "code": code,
            "regions": _nullable(_names(vocab.REGIONS, "Body regions")),
            "diagnosis_pointers": _nullable(_pointers()),
            "separately_identifiable": _nullable({"type": "boolean"}),
            "billed": _nullable({"$ref": ref + "Billed"}),
            "unit_charge": _nullable(unit_charge),
        },
        required=["code"],
        description="An untimed same-day service with a code: CMT, E/M, evaluation.",
    )
    encounter = _object(
        {
            "id": _nullable({"type": "string", "minLength": 1, "pattern": "\\S"}),
            "date_of_service": _DATE,
            "provider": {"$ref": ref + "Provider"},
            "care": _nullable({"$ref": ref + "Care"}),
            "diagnoses": _nullable(
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": _ICD10},
                    "description": "ICD-10-CM codes in claim order.",
                }
            ),
            "services": _nullable({"type": "array", "items": {"$ref": ref + "Service"}}),
            "procedures": _nullable({"type": "array", "items": {"$ref": ref + "Procedure"}}),
            "documentation": _nullable(_names(vocab.DOCUMENTATION_ELEMENTS, "Elements the clinical note contains")),
            "patient": _nullable(
                {
                    "type": "string",
                    "minLength": 1,
                    "pattern": "\\S",
                    "description": "Opaque patient key for claim history: a pseudonymous id, never a name.",
                }
            ),
            "episode": _nullable(
                {
                    "type": "string",
                    "minLength": 1,
                    "pattern": "\\S",
                    "description": "Opaque key of the episode of care or injury within the patient; needs patient.",
                }
            ),
            "charges": _nullable(
                {
                    "type": "object",
                    "propertyNames": {"pattern": "^(?:[0-9]{5}|[A-Za-z][0-9]{4}|[0-9]{4}[A-Za-z])$"},
                    "additionalProperties": {
                        "anyOf": [
                            {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$"},
                            {"type": "integer", "minimum": 0},
                        ]
                    },
                    "description": "The practice's charge per unit of each code, in dollars (its charge master): "
                    "a line charge is this times the units unless the entry has billed.charge or unit_charge. Added in 0.2.0.",
                }
            ),
        },
        required=["date_of_service", "provider"],
        description="Encounter format v1 (docs/encounter-format.md): one visit. At least one service or procedure.",
    )
    encounter["dependentRequired"] = {"episode": ["patient"]}
    encounter["anyOf"] = [
        {"required": ["services"], "properties": {"services": {"type": "array", "minItems": 1}}},
        {"required": ["procedures"], "properties": {"procedures": {"type": "array", "minItems": 1}}},
    ]
    # The reader (Encounter.from_mapping) and this schema list the same fields: tests/server/test_schema.py.
    return {
        "Encounter": encounter,
        "Provider": provider,
        "Care": care,
        "Service": service,
        "Procedure": procedure,
        "Billed": billed,
    }


def _outcome_defs(ref: str) -> dict[str, Schema]:
    """The outcome's definitions (every field always present, as ``Outcome.to_mapping`` writes it)."""

    def exact(properties: dict[str, Schema], description: str) -> Schema:
        return _object(properties, required=list(properties), description=description)

    text: Schema = {"type": "string"}
    amount: Schema = {
        "anyOf": [{"type": "string", "pattern": "^-?[0-9]+\\.[0-9]{2}$"}, {"type": "null"}],
        "description": "Dollars as a decimal string with two places (never a float); null when not known.",
    }
    line_index: Schema = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
    payer = exact(
        {"id": text, "name": text, "policy_version": text},
        "The payer, and the version of its policy that was applied.",
    )
    line = exact(
        {
            "code": text,
            "units": {"type": "integer", "minimum": 0},
            "modifiers": {"type": "array", "items": text},
            "status": {"type": "string", "enum": list(STATUSES)},
            "minutes": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
            "regions": {"type": "array", "items": {"type": "string", "enum": list(vocab.REGIONS)}},
            "diagnosis_pointers": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "service": {"type": "integer", "minimum": 0},
            "origin": {"type": "string", "enum": ["services", "procedures"]},
            "billed": {"anyOf": [{"$ref": ref + "LineBilled"}, {"type": "null"}]},
        },
        "One claim line, in claim order; not_billable lines stay so the user sees why.",
    )
    line["properties"]["charge"] = {**amount, "description": "The line's charge (added in 0.2.0); null when not known."}
    line["properties"]["allowed"] = {
        **amount,
        "description": "The expected allowed amount under the payer's fee schedule (added in 0.2.0); 0.00 for a line not"
        " billed or expected to be denied; null when no fee is known.",
    }
    line_billed = _object(
        {
            "units": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "modifiers": {"type": "array", "items": text},
            "charge": {"type": "string"},
        },
        required=["modifiers"],
        description="The line as billed (null when the encounter did not say what was billed).",
    )
    difference = exact(
        {
            "kind": {"type": "string", "enum": list(DIFFERENCE_KINDS)},
            "code": text,
            "field": {"type": "string", "enum": ["code", "units", "modifiers", "status", "diagnosis_pointers", "line"]},
            "line": line_index,
            "billed": {"description": "The field's value as billed (string, integer, array or null)."},
            "expected": {
                "description": "The field's value in the payer's expected line (string, integer, array or null)."
            },
            "message": text,
            "rule": text,
            "source": text,
        },
        "How the claim as billed differs from the payer's line: a repair a tool may apply, or an edit a person decides.",
    )
    finding = exact(
        {
            "code": text,
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "message": text,
            "rule": text,
            "source": text,
            "line": line_index,
            "plugin": text,
            "adjustment": _nullable(
                exact(
                    {
                        "group": {"type": "string", "enum": list(ADJUSTMENT_GROUPS)},
                        "carc": {"type": "string", "pattern": "^[A-Z]?[0-9]{1,3}$"},
                        "rarc": {"type": "array", "items": {"type": "string", "pattern": "^(M|N|MA)[0-9]{1,3}$"}},
                        "source": text,
                    },
                    "The denial in remittance (835) terms: group code (CO, PR, OA, PI), claim adjustment reason "
                    "code, remittance advice remark codes, and the public source of the pairing. Null when the "
                    "finding does not deny or reduce a line. Added in 0.2.0.",
                )
            ),
        },
        "A denial, error, warning or note; line indexes lines, null for the whole encounter.",
    )
    json_value: Schema = {
        "anyOf": [
            {"type": "string"},
            {"type": "integer"},
            {"type": "array"},
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number"},
        ],
        "description": "The field's value: string, integer, array or null.",
    }
    trace = exact(
        {
            "rule": text,
            "plugin": text,
            "line": line_index,
            "field": text,
            "before": json_value,
            "after": json_value,
            "source": text,
            "reason": text,
        },
        "One change a rule or plugin made, in the order it was made.",
    )
    outcome = exact(
        {
            "outcome_version": {"type": "integer", "const": 1},
            "encounter": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "payer": {"$ref": ref + "PayerRef"},
            "diagnoses": {"type": "array", "items": text},
            "lines": {"type": "array", "items": {"$ref": ref + "ClaimLine"}},
            "findings": {"type": "array", "items": {"$ref": ref + "Finding"}},
            "trace": {"type": "array", "items": {"$ref": ref + "TraceEntry"}},
            "as_billed": {
                "type": "boolean",
                "description": "The encounter was a claim as billed (some entry has billed).",
            },
            "differences": {"type": "array", "items": {"$ref": ref + "Difference"}},
        },
        "Outcome format v1 (docs/outcome-format.md): what one payer's policy makes of one encounter.",
    )
    outcome["properties"].update(
        {
            "expected_total": {**amount, "description": "Sum of the lines' allowed amounts (added in 0.2.0); null: not priced."},
            "charge_total": {**amount, "description": "Sum of the lines' charges (added in 0.2.0); null: no charges."},
            "cost_by_finding": {
                "type": "object",
                "additionalProperties": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
                "description": "Dollars the findings took off the lines, by finding code (added in 0.2.0).",
            },
            "unpriced_lines": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "description": "Indexes of claim lines with no amount when others have one (added in 0.2.0).",
            },
        }
    )
    return {
        "Outcome": outcome,
        "PayerRef": payer,
        "ClaimLine": line,
        "Finding": finding,
        "TraceEntry": trace,
        "LineBilled": line_billed,
        "Difference": difference,
    }


def _standalone(defs: dict[str, Schema], root: str, title: str) -> Schema:
    top = copy.deepcopy(defs[root])
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": title,
        **top,
        "$defs": {name: copy.deepcopy(s) for name, s in defs.items() if name != root},
    }


def encounter_schema() -> Schema:
    """The encounter format v1 as a standalone JSON Schema (2020-12)."""
    return _standalone(_encounter_defs("#/$defs/"), "Encounter", "payerpolicy encounter format v1")


def outcome_schema() -> Schema:
    """The outcome format v1 as a standalone JSON Schema (2020-12)."""
    return _standalone(_outcome_defs("#/$defs/"), "Outcome", "payerpolicy outcome format v1")


# --------------------------------------------------------------------------------------------
# OpenAPI


def _api_defs(ref: str, payers: Sequence[str]) -> dict[str, Schema]:
    payer_id: Schema = {"type": "string", "minLength": 1}
    if payers:
        payer_id = {**payer_id, "enum": list(payers)}
    return {
        "CheckRequest": _object(
            {
                "encounter": {"$ref": ref + "Encounter"},
                "payer": {**payer_id, "description": "Payer id (GET /v1/payers)."},
                "record": {
                    "anyOf": [{"type": "boolean"}, {"type": "null"}],
                    "description": "Record this visit in the service's claim history (`serve --history FILE`); needs the"
                    " encounter's patient and id; recording the same id again replaces it. Absent, null or false: a"
                    " what-if that never writes history (counters are still derived from it).",
                },
            },
            required=["encounter", "payer"],
            description="One encounter and the payer to evaluate it for.",
        ),
        "CompareRequest": _object(
            {
                "encounter": {"$ref": ref + "Encounter"},
                "payers": {
                    "anyOf": [{"type": "array", "items": payer_id, "minItems": 1}, {"type": "null"}],
                    "description": "Payer ids in column order; absent or null: every installed payer, commercial first.",
                },
            },
            required=["encounter"],
            description="One encounter and the payers to compare.",
        ),
        "Comparison": _object(
            {
                "encounter": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "payers": {"type": "array", "items": {"type": "string"}},
                "outcomes": {"type": "array", "items": {"$ref": ref + "Outcome"}},
            },
            required=["encounter", "payers", "outcomes"],
            description="What `payerpolicy compare --format json` prints: one outcome per payer, in column order.",
        ),
        "ScrubRequest": _object(
            {
                "claim": {"$ref": ref + "Encounter"},
                "payers": {
                    "anyOf": [{"type": "array", "items": payer_id, "minItems": 1}, {"type": "null"}],
                    "description": "Payer ids; absent or null: every installed payer.",
                },
            },
            required=["claim"],
            description="One claim as billed: an encounter whose services or procedures carry 'billed'.",
        ),
        "ScrubDocument": _object(
            {
                "scrub_version": {"type": "integer", "const": 1},
                "claims": {
                    "type": "array",
                    "items": _object(
                        {
                            "position": {"type": "integer", "minimum": 0},
                            "claim": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                            "payer_source": {"type": "string", "enum": ["requested", "mapped", "all"]},
                            "facts": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "field": {"type": "string"},
                                        "value": {},
                                        "modifier": {"type": "string"},
                                        "entry": {"type": "string"},
                                    },
                                    required=["field", "value", "modifier", "entry"],
                                ),
                            },
                            "outcomes": {"type": "object", "additionalProperties": {"$ref": ref + "Outcome"}},
                            "repairs": {"type": "integer", "minimum": 0},
                            "edits": {"type": "integer", "minimum": 0},
                        },
                        required=["position", "claim", "payer_source", "facts", "outcomes", "repairs", "edits"],
                    ),
                },
                "errors": {
                    "type": "array",
                    "items": _object(
                        {
                            "position": {"type": "integer", "minimum": 0},
                            "claim": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                            "message": {"type": "string"},
                        },
                        required=["position", "claim", "message"],
                    ),
                },
            },
            required=["scrub_version", "claims", "errors"],
            description="What `payerpolicy scrub --format json` prints (docs/scrub.md).",
        ),
        "PayerInfo": _object(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "plugin": {"type": "string", "description": "The plugin that registers the payer."},
                "policy_version": {"type": "string"},
                "description": {"type": "string"},
            },
            required=["id", "name", "plugin", "policy_version", "description"],
        ),
        "PayerList": _object(
            {"payers": {"type": "array", "items": {"$ref": ref + "PayerInfo"}}},
            required=["payers"],
            description="The installed payers, sorted by id.",
        ),
        "Health": _object(
            {
                "status": {"type": "string", "const": "ok"},
                "version": {"type": "string"},
                "payers": {"type": "integer", "minimum": 0},
            },
            required=["status", "version", "payers"],
        ),
        "Error": _object(
            {
                "error": {
                    "type": "string",
                    "enum": [
                        "invalid_json",
                        "invalid_request",
                        "invalid_encounter",
                        "unknown_payer",
                        "request_too_large",
                        "timeout",
                        "not_found",
                        "method_not_allowed",
                        "plugin_error",
                        "internal_error",
                        "invalid_x12",
                    ],
                },
                "field": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "invalid_encounter: the field's path inside the encounter, as the CLI names it "
                    "(services[0].minutes); invalid_request and unknown_payer: the field of the request body "
                    "(payer, payers[1]); otherwise null.",
                },
                "message": {"type": "string", "description": "What was expected and what was found."},
                "detail": {
                    "type": "string",
                    "description": "One line, as the CLI prints it after `payerpolicy: error: FILE: `.",
                },
            },
            required=["error", "field", "message", "detail"],
            description="Every response other than 200.",
        ),
    }


def _json(ref: str, name: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref + name}}}}


def openapi_document(
    *, version: str, payers: Sequence[str] = (), max_body: int | None = None, timeout: float | None = None
) -> Schema:
    """The HTTP service's OpenAPI 3.1 document.

    ``payers`` (the installed payer ids) become the ``enum`` of the request's payer fields;
    ``max_body`` and ``timeout`` are stated in the descriptions of the 413 and 503 responses.
    """
    ref = "#/components/schemas/"
    schemas = {**_encounter_defs(ref), **_outcome_defs(ref), **_api_defs(ref, payers)}
    limit = f"{max_body} bytes" if max_body is not None else "the configured limit"
    seconds = f"{timeout:g} s" if timeout is not None else "the configured time limit"
    errors = {
        "413": _json(ref, "Error", f"The request body is larger than {limit} (request_too_large)."),
        "422": _json(
            ref,
            "Error",
            "Bad input (invalid_json, invalid_request, invalid_encounter) or a payer that is not installed "
            "(unknown_payer). The message names the field and what was expected, as the CLI does.",
        ),
        "500": _json(ref, "Error", "A plugin raised (plugin_error), or a bug (internal_error)."),
        "503": _json(ref, "Error", f"The evaluation took longer than {seconds} (timeout)."),
    }

    def post(summary: str, request: str, response: str, description: str) -> Schema:
        return {
            "post": {
                "summary": summary,
                "description": description,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": ref + request}}}},
                "responses": {"200": _json(ref, response, summary), **errors},
            }
        }

    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {
            "title": "payerpolicy",
            "version": version,
            "description": "Claim lines per payer for a therapy encounter, with the rule and source behind every "
            "decision. Formats: docs/encounter-format.md, docs/outcome-format.md; service: docs/http.md.",
        },
        "paths": {
            "/v1/check": post(
                "The outcome of one encounter for one payer",
                "CheckRequest",
                "Outcome",
                "The response is the outcome format v1, exactly what `payerpolicy check --format json` prints.",
            ),
            "/v1/compare": post(
                "The outcomes of one encounter for several payers",
                "CompareRequest",
                "Comparison",
                "The response is exactly what `payerpolicy compare --format json` prints.",
            ),
            "/v1/scrub": {
                "post": {
                    "summary": "A claim as billed, per payer: billed vs expected lines, repairs and edits",
                    "description": "A JSON ScrubRequest, or an X12 837P (005010X222A1) body with Content-Type "
                    "application/edi-x12 and an optional ?payers=id,id query. The response is exactly what "
                    "`payerpolicy scrub --format json` prints; an 837P claim that cannot be read is an entry of "
                    "`errors` and the other claims are still checked; an 837P envelope that cannot be read is a "
                    "422 invalid_x12.",
                    "parameters": [
                        {
                            "name": "payers",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "With an 837P body: comma-separated payer ids (default: each claim's mapped payer).",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": ref + "ScrubRequest"}},
                            "application/edi-x12": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": _json(ref, "ScrubDocument", "Every claim with its outcomes, every unreadable claim."),
                        **errors,
                    },
                }
            },
            "/v1/payers": {
                "get": {
                    "summary": "The installed payers",
                    "responses": {"200": _json(ref, "PayerList", "The installed payers, sorted by id.")},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: answers while evaluations run",
                    "responses": {"200": _json(ref, "Health", "The service is up.")},
                }
            },
        },
        "components": {"schemas": schemas},
    }
