"""FHIR R4 interchange: an encounter from a ``Claim``, each payer's outcome as a ``Claim`` and a ``ClaimResponse``.

The mapping is documented field by field in ``docs/fhir.md``. Encounter fields that FHIR has no
element for (minutes, regions, technique, intent, care facts, documentation, ...) travel in
extensions whose canonical URLs start with :data:`STRUCTURE_DEFINITION` — they are part of the
public contract, like the encounter format: added, never renamed.

Everything here needs the optional extra ``payerpolicy[fhir]`` (the ``fhir.resources`` library, its
R4B models: R4B's ``Claim``/``ClaimResponse``/``Bundle`` are R4's). It is imported lazily; without
it every function raises :class:`~payerpolicy.errors.PayerPolicyError` saying what to install.

Reading validates the resource against the FHIR model first, then maps it to encounter format v1
and validates that with :meth:`Encounter.from_mapping`. Every error is an
:class:`~payerpolicy.errors.EncounterError` whose ``field`` is the FHIR path of the offending
element (``Claim.item[1].productOrService.coding[0].system``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..evaluation import vocab
from ..evaluation.errors import EncounterError, PayerPolicyError
from ..evaluation.model import Billed, ClaimLine, Encounter, Finding, Outcome
from .io import parse_json, read_text
from .x12 import line_charge

__all__ = [
    "ADJUSTMENT_GROUP_SYSTEM",
    "CARC_SYSTEM",
    "CPT_SYSTEM",
    "EXTENSIONS",
    "HCPCS_SYSTEM",
    "ICD10CM_SYSTEM",
    "NAMESPACE",
    "PATIENT_SYSTEM",
    "RARC_SYSTEM",
    "STRUCTURE_DEFINITION",
    "claim_from_encounter",
    "claim_from_outcome",
    "claim_response_from_outcome",
    "encounter_from_claim",
    "outcome_bundle",
    "read_fhir_encounter",
]

#: Root of every canonical URL payerpolicy defines.
NAMESPACE = "https://payerpolicy.dev/fhir"
STRUCTURE_DEFINITION = f"{NAMESPACE}/StructureDefinition/"
_CODE_SYSTEM = f"{NAMESPACE}/CodeSystem/"
_NAMING_SYSTEM = f"{NAMESPACE}/NamingSystem/"

CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
UCUM_SYSTEM = "http://unitsofmeasure.org"
TECHNIQUE_SYSTEM = f"{_CODE_SYSTEM}technique"
FINDING_SYSTEM = f"{_CODE_SYSTEM}finding"
LINE_STATUS_SYSTEM = f"{_CODE_SYSTEM}line-status"
ENCOUNTER_ID_SYSTEM = f"{_NAMING_SYSTEM}encounter-id"
#: Identifier system of the encounter's ``patient`` key on ``Claim.patient`` (added in 0.2.0).
PATIENT_SYSTEM = f"{_NAMING_SYSTEM}patient"
#: X12 code systems, as HL7 terminology names them: claim adjustment reason codes (CARC), remittance
#: advice remark codes (RARC) and claim adjustment group codes (CO, PR, OA, PI).
CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC_SYSTEM = "https://x12.org/codes/remittance-advice-remark-codes"
ADJUSTMENT_GROUP_SYSTEM = "https://x12.org/codes/claim-adjustment-group-codes"
PAYER_ID_SYSTEM = f"{_NAMING_SYSTEM}payer"
_CLAIM_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/claim-type"
_PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/processpriority"

#: Extension names (the last part of the canonical URL) and where they go. docs/fhir.md lists them.
EXTENSIONS = {
    "provider-type": "Claim.provider: the provider type (valueCode: DC, PT, ...)",
    "care": "Claim: the care facts (complex; one sub-extension per care field, named as in the encounter format)",
    "documentation": "Claim: what the note contains (complex: listed=true and one element sub-extension per element)",
    "entry": "Claim.item: which encounter list the item belongs to (valueCode: service or procedure)",
    "technique": "Claim.item: the technique (valueCode)",
    "intent": "Claim.item: one intent (valueCode; repeat the extension)",
    "minutes": "Claim.item: direct one-on-one minutes (valueUnsignedInt)",
    "assistant-minutes": "Claim.item: minutes a therapy assistant furnished apart from the therapist (valueUnsignedInt)",
    "start": "Claim.item: start of the service (valueTime)",
    "end": "Claim.item: end of the service (valueTime)",
    "regions": "Claim.item: one body region (valueCode; repeat the extension)",
    "necessity": "Claim.item: one medical-necessity condition (valueCode; repeat the extension)",
    "separately-identifiable": "Claim.item (procedures): the E/M was separately identifiable (valueBoolean)",
    "line-status": "outcome Claim.item: billable or expected_denial (valueCode)",
    "encounter-entry": "outcome Claim.item and not-billed lines: the encounter entry the line comes from (valueString)",
    "finding": "ClaimResponse.processNote and .error: the finding (complex: code, severity, rule, source, plugin, line, group, carc, rarc)",
    "not-billed-line": "ClaimResponse: a line that is not on the claim (complex: code, units, modifier, encounter-entry, line, note, reason, group, rarc)",
    "payer-policy": "ClaimResponse: the payer id and policy version applied (complex: payer, version)",
    "charges": "Claim: the practice's charge per unit of each code (complex; one valueMoney sub-extension per code, url = the code)",
    "adjustment": "ClaimResponse.item.adjudication.reason: the group code and remark codes of the CARC (complex: group, rarc, source)",
    "episode": "Claim: the encounter's episode key for claim history (valueString; opaque, within the patient)",
}

_ITEM_EXTENSIONS = (
    "entry",
    "technique",
    "intent",
    "minutes",
    "assistant-minutes",
    "start",
    "end",
    "regions",
    "necessity",
    "separately-identifiable",
)
_SERVICE_ONLY = ("technique", "intent", "minutes", "assistant-minutes", "start", "end", "necessity")
_PROCEDURE_ONLY = ("separately-identifiable",)
_CLAIM_EXTENSIONS = ("care", "documentation", "charges", "episode")

# Care fields and the FHIR value type each travels in. injury_date is Claim.accident.date.
_CARE_VALUE = {
    "phase": "valueCode",
    "visit_number": "valuePositiveInt",
    "episode_start": "valueDate",
    "prior_massage_visits": "valueUnsignedInt",
    "improvement_documented": "valueBoolean",
    "treatment_modified": "valueBoolean",
    "plan_of_care": "valueBoolean",
    "written_authorization": "valueBoolean",
    "post_surgical": "valueBoolean",
    "abn": "valueCode",
    "ytd_therapy_charges": "valueMoney",
    "bill_noncovered": "valueBoolean",
    "zelis": "valueBoolean",
    "last_xray": "valueDate",
}

_PATIENT_PLACEHOLDER = {"display": "patient (not carried by a payerpolicy encounter)"}
_COVERAGE_PLACEHOLDER = {"display": "coverage (not carried by a payerpolicy encounter)"}
_BUNDLE_NAMESPACE = uuid.UUID("4f0c7a52-6f39-5d0e-9a53-70617965727a")


def _ext(name: str) -> str:
    return STRUCTURE_DEFINITION + name


# --------------------------------------------------------------------------------------------
# The optional library


def _models() -> Any:
    """Import the R4B models lazily; a missing extra is one clear error line."""
    try:
        from fhir.resources.R4B import bundle, claim, claimresponse
    except ImportError:
        raise PayerPolicyError("FHIR support needs the fhir.resources library: install payerpolicy[fhir]") from None
    return {"Claim": claim.Claim, "ClaimResponse": claimresponse.ClaimResponse, "Bundle": bundle.Bundle}


def _fhir_path(resource: str, loc: Iterable[Any]) -> str:
    path = resource
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part not in ("", "__root__"):
            path += f".{part}"
    return path


def _validate(resource: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` against the R4B model; return it normalised as FHIR JSON data.

    Raises EncounterError naming the FHIR path of the first problem.
    """
    from pydantic import ValidationError

    model = _models()[resource]
    try:
        parsed = model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        found = first.get("input")
        shown = f"; found {json.dumps(found)}" if isinstance(found, str | int | float | bool) else ""
        raise EncounterError(
            _fhir_path(resource, first.get("loc", ())),
            f"not valid FHIR R4 {resource}: {first.get('msg', 'invalid')}{shown}",
        ) from None
    normal: dict[str, Any] = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    return normal


def _exact_decimals(normal: Any, raw: Any) -> Any:
    """``normal`` (validated FHIR data) with each number the raw data holds as a Decimal taken from the raw data.

    The FHIR models give decimals back as floats; money read with ``parse_float=Decimal`` (or
    written by this module) keeps its exact digits this way. The two have the same shape.
    """
    if isinstance(raw, Decimal) and isinstance(normal, float | int) and not isinstance(normal, bool):
        return raw
    if isinstance(normal, dict) and isinstance(raw, Mapping):
        return {k: _exact_decimals(v, raw[k]) if k in raw else v for k, v in normal.items()}
    if isinstance(normal, list) and isinstance(raw, list) and len(normal) == len(raw):
        return [_exact_decimals(n, r) for n, r in zip(normal, raw, strict=True)]
    return normal


def _checked(resource: str, data: dict[str, Any]) -> dict[str, Any]:
    """Validate what we write (a failure is a bug in this module, not bad input) and return ``data``."""
    try:
        _validate(resource, data)
    except EncounterError as exc:  # pragma: no cover - would be a bug in the writer
        raise AssertionError(f"payerpolicy wrote an invalid FHIR {resource}: {exc}") from None
    return data


# --------------------------------------------------------------------------------------------
# Encounter -> Claim


def _code_system(code: str) -> str:
    # HCPCS Level II codes start with a letter (G0283); CPT codes (incl. Category III, 0001T) with a digit.
    return HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM


def _modifier_system(modifier: str) -> str:
    # CPT modifiers are two digits (25, 59); HCPCS Level II modifiers are alphanumeric (GP, KX, XS, AT).
    return CPT_SYSTEM if modifier.isdigit() else HCPCS_SYSTEM


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _time(value: dt.time) -> str:
    return value.strftime("%H:%M:00")


def _provider_reference(encounter: Encounter) -> dict[str, Any]:
    ref: dict[str, Any] = {"extension": [{"url": _ext("provider-type"), "valueCode": encounter.provider.type}]}
    if encounter.provider.npi:
        ref["identifier"] = {"system": NPI_SYSTEM, "value": encounter.provider.npi}
    return ref


def _patient_reference(encounter: Encounter) -> dict[str, Any]:
    """``Claim.patient``: the encounter's ``patient`` key as a logical reference, else the placeholder.

    An identifier (system :data:`PATIENT_SYSTEM`) holds any key; a literal ``Patient/<id>`` would
    hold only FHIR ids (64 letters, digits, ``-`` and ``.``).
    """
    if encounter.patient is None:
        return dict(_PATIENT_PLACEHOLDER)
    return {"identifier": {"system": PATIENT_SYSTEM, "value": encounter.patient}}


def _episode_extension(encounter: Encounter) -> dict[str, Any] | None:
    if encounter.episode is None:
        return None
    return {"url": _ext("episode"), "valueString": encounter.episode}


def _claim_frame(
    encounter: Encounter, created: dt.date | None, extensions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    claim: dict[str, Any] = {"resourceType": "Claim"}
    if extensions:
        claim["extension"] = extensions
    if encounter.id is not None:
        claim["identifier"] = [{"system": ENCOUNTER_ID_SYSTEM, "value": encounter.id}]
    claim.update(
        {
            "status": "active",
            "type": _coding(_CLAIM_TYPE_SYSTEM, "professional"),
            "use": "claim",
            "patient": _patient_reference(encounter),
            "billablePeriod": {
                "start": encounter.date_of_service.isoformat(),
                "end": encounter.date_of_service.isoformat(),
            },
            "created": (created or encounter.date_of_service).isoformat(),
            "provider": _provider_reference(encounter),
            "priority": _coding(_PRIORITY_SYSTEM, "normal"),
        }
    )
    return claim


def _diagnoses(codes: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"sequence": n, "diagnosisCodeableConcept": _coding(ICD10CM_SYSTEM, code)} for n, code in enumerate(codes, 1)
    ]


def money(amount: Decimal) -> dict[str, Any]:
    """A FHIR ``Money`` in USD whose value stays a :class:`~decimal.Decimal` (write it with :func:`dumps`)."""
    return {"value": amount, "currency": "USD"}


_DECIMAL_MARK = "\x00payerpolicy-decimal:"


def _mark_decimal(value: Any) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return f"{_DECIMAL_MARK}{value}\x00"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """JSON text of FHIR data from this module, with every Decimal written as the exact JSON number.

    ``json.dumps`` cannot write a Decimal; a float would lose digits (``38.50`` becomes ``38.5``,
    large amounts round). FHIR decimals keep their precision, so this writes ``38.50``.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=_mark_decimal)
    return re.sub(r'"\\u0000payerpolicy-decimal:([-+0-9.Ee]+)\\u0000"', r"\1", text)


def _charges_extension(encounter: Encounter) -> dict[str, Any] | None:
    if not encounter.charges:
        return None
    parts = [{"url": code, "valueMoney": money(amount)} for code, amount in encounter.charges]
    return {"url": _ext("charges"), "extension": parts}


def _care_extension(encounter: Encounter) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    for name, value_type in _CARE_VALUE.items():
        value = getattr(encounter.care, name)
        if value is None or (name in ("bill_noncovered", "zelis") and value is False):
            continue
        if isinstance(value, Decimal):
            written: Any = money(value)
        elif isinstance(value, dt.date):
            written = value.isoformat()
        else:
            written = value
        parts.append({"url": name, value_type: written})
    return {"url": _ext("care"), "extension": parts} if parts else None


def claim_from_encounter(encounter: Encounter, *, created: dt.date | None = None) -> dict[str, Any]:
    """Write an encounter as a FHIR R4 ``Claim`` (JSON-ready data; ``docs/fhir.md`` has the mapping).

    Reading the result with :func:`encounter_from_claim` gives an equal encounter. ``created``
    defaults to the date of service so the output is deterministic. ``Claim.patient`` is the
    encounter's ``patient`` key (an identifier in :data:`PATIENT_SYSTEM`) and its ``episode`` key
    the ``episode`` extension; without a patient key, and for the coverage (which an encounter does
    not carry), the reference is a placeholder with a ``display`` saying so.
    """
    _models()
    extensions = [
        ext
        for ext in (
            _care_extension(encounter),
            _documentation_extension(encounter),
            _charges_extension(encounter),
            _episode_extension(encounter),
        )
        if ext
    ]
    claim = _claim_frame(encounter, created, extensions)
    if encounter.diagnoses:
        claim["diagnosis"] = _diagnoses(encounter.diagnoses)
    claim["insurance"] = [{"sequence": 1, "focal": True, "coverage": dict(_COVERAGE_PLACEHOLDER)}]
    if encounter.care.injury_date is not None:
        claim["accident"] = {"date": encounter.care.injury_date.isoformat()}
    items: list[dict[str, Any]] = []
    for proc in encounter.procedures:
        ext: list[dict[str, Any]] = [{"url": _ext("entry"), "valueCode": "procedure"}]
        ext += [{"url": _ext("regions"), "valueCode": r} for r in proc.regions]
        if proc.separately_identifiable is not None:
            ext.append({"url": _ext("separately-identifiable"), "valueBoolean": proc.separately_identifiable})
        items.append(
            _item(
                len(items) + 1,
                ext,
                _coding(_code_system(proc.code), proc.code),
                proc.diagnosis_pointers,
                encounter,
                proc.billed,
                proc.unit_charge,
            )
        )
    for svc in encounter.services:
        ext = [{"url": _ext("entry"), "valueCode": "service"}]
        if svc.technique is not None:
            ext.append({"url": _ext("technique"), "valueCode": svc.technique})
        ext += [{"url": _ext("intent"), "valueCode": i} for i in svc.intent]
        if svc.minutes is not None:
            ext.append({"url": _ext("minutes"), "valueUnsignedInt": svc.minutes})
        if svc.assistant_minutes is not None:
            ext.append({"url": _ext("assistant-minutes"), "valueUnsignedInt": svc.assistant_minutes})
        if svc.start is not None and svc.end is not None:
            ext.append({"url": _ext("start"), "valueTime": _time(svc.start)})
            ext.append({"url": _ext("end"), "valueTime": _time(svc.end)})
        ext += [{"url": _ext("regions"), "valueCode": r} for r in svc.regions]
        ext += [{"url": _ext("necessity"), "valueCode": n} for n in svc.necessity]
        if svc.code is not None:
            product = _coding(_code_system(svc.code), svc.code)
        else:
            # No code yet: the payer's policy chooses it from the technique (CORE-INT-01).
            assert svc.technique is not None
            product = _coding(TECHNIQUE_SYSTEM, svc.technique)
        items.append(_item(len(items) + 1, ext, product, svc.diagnosis_pointers, encounter, svc.billed, svc.unit_charge))
    claim["item"] = items
    return _checked("Claim", claim)


def _documentation_extension(encounter: Encounter) -> dict[str, Any] | None:
    if encounter.documentation is None:
        return None
    # `listed` marks "the caller says what the note contains", so an empty list survives (it is not "unknown").
    parts: list[dict[str, Any]] = [{"url": "listed", "valueBoolean": True}]
    parts += [{"url": "element", "valueCode": e} for e in encounter.documentation]
    return {"url": _ext("documentation"), "extension": parts}


def _item(
    sequence: int,
    extensions: list[dict[str, Any]],
    product: dict[str, Any],
    pointers: Sequence[int],
    encounter: Encounter,
    billed: Billed | None = None,
    unit_charge: Decimal | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"extension": extensions, "sequence": sequence}
    if pointers:
        item["diagnosisSequence"] = list(pointers)
    item["productOrService"] = product
    if billed is not None and billed.modifiers:
        item["modifier"] = [_coding(_modifier_system(m), m) for m in billed.modifiers]
    item["servicedDate"] = encounter.date_of_service.isoformat()
    if billed is not None and billed.units is not None:
        item["quantity"] = {"value": billed.units}
    if billed is not None and billed.charge is not None:
        item["net"] = money(billed.charge)
    _write_unit_price(item, unit_charge)
    return item


def _write_unit_price(item: dict[str, Any], unit_charge: Decimal | None) -> None:
    """``Claim.item.unitPrice`` from an entry's ``unit_charge`` (an exact decimal, like ``net``)."""
    if unit_charge is not None:
        item["unitPrice"] = money(unit_charge)


def _read_unit_price(item: Mapping[str, Any], path: str) -> str | None:
    """An entry's ``unit_charge`` from ``Claim.item.unitPrice``, as a decimal string."""
    price = item.get("unitPrice")
    if price is None:
        return None
    value = price.get("value") if isinstance(price, Mapping) else None
    usd = isinstance(price, Mapping) and price.get("currency", "USD") == "USD"
    if not usd or isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise EncounterError(f"{path}.unitPrice", "expected a non-negative amount in USD")
    return str(Decimal(str(value)))


# --------------------------------------------------------------------------------------------
# Claim -> Encounter


_PARENT = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


class _Origins:
    """Where each encounter field came from in the Claim, to name FHIR paths in errors."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def note(self, field: str, path: str) -> None:
        self.paths.setdefault(field, path)

    def translate(self, exc: EncounterError) -> EncounterError:
        # The longest recorded prefix of the field: services[1].regions[0], services[1].regions, services[1], ...
        field = exc.field
        while field and field not in self.paths:
            field = _PARENT.sub("", field) if _PARENT.search(field) else ""
        return EncounterError(self.paths.get(field, "Claim"), exc.message)


def _one_value(ext: Mapping[str, Any], path: str, expected: str, what: str) -> Any:
    values = [k for k in ext if k.startswith("value")]
    if values != [expected]:
        found = values[0] if values else "no value"
        raise EncounterError(f"{path}", f"expected {expected} for {what}, found {found}")
    return ext[expected]


def _payerpolicy_extensions(
    element: Mapping[str, Any], path: str, known: Sequence[str]
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The payerpolicy extensions of an element as (name, path, extension); others are skipped.

    Extensions from other namespaces are ignored as FHIR allows; an unknown payerpolicy extension
    is an error (a misspelled one is never silently ignored), and so is any modifierExtension.
    """
    if element.get("modifierExtension"):
        raise EncounterError(
            f"{path}.modifierExtension[0]",
            "modifier extensions are not understood; payerpolicy cannot read this element safely",
        )
    out = []
    for n, ext in enumerate(element.get("extension", [])):
        url = ext.get("url", "")
        if not url.startswith(STRUCTURE_DEFINITION):
            continue
        name = url[len(STRUCTURE_DEFINITION) :]
        if name not in known:
            raise EncounterError(
                f"{path}.extension[{n}].url",
                f"unknown payerpolicy extension {url!r} here; known: {', '.join(known)}",
            )
        out.append((name, f"{path}.extension[{n}]", ext))
    return out


def encounter_from_claim(data: Any, *, catalogue: vocab.CodeCatalogue | None = None) -> Encounter:
    """Read an encounter from a FHIR R4 ``Claim`` (parsed JSON).

    Raises :class:`~payerpolicy.errors.EncounterError` whose ``field`` is the FHIR path of the
    first problem: not a Claim, not valid FHIR, no date of service, a code from an unknown code
    system, an unknown payerpolicy extension, or an encounter-format rule (a code not in the
    catalogue, an unknown region, ...).
    """
    _models()
    catalogue = catalogue or vocab.default_catalogue()
    if not isinstance(data, Mapping):
        raise EncounterError("", "expected a FHIR Claim resource (a JSON object)")
    kind = data.get("resourceType")
    if kind != "Claim":
        raise EncounterError("resourceType", f'expected a FHIR "Claim" resource, found {json.dumps(kind)}')
    claim = _exact_decimals(_validate("Claim", data), data)
    origins = _Origins()
    out: dict[str, Any] = {}

    for n, ident in enumerate(claim.get("identifier", [])):
        if ident.get("system") == ENCOUNTER_ID_SYSTEM and "value" in ident:
            out["id"] = ident["value"]
            origins.note("id", f"Claim.identifier[{n}].value")
            break
    else:
        if "id" in claim:
            out["id"] = claim["id"]
            origins.note("id", "Claim.id")

    patient = _patient_key(claim.get("patient", {}))
    if patient is not None:
        out["patient"] = patient[0]
        origins.note("patient", patient[1])

    provider: dict[str, Any] = {}
    prov = claim.get("provider", {})
    for _name, path, ext in _payerpolicy_extensions(prov, "Claim.provider", ("provider-type",)):
        provider["type"] = _one_value(ext, path, "valueCode", "the provider type")
        origins.note("provider.type", f"{path}.valueCode")
        origins.note("provider", "Claim.provider")
    if "type" not in provider:
        raise EncounterError(
            "Claim.provider.extension",
            f"required extension {_ext('provider-type')} is missing (valueCode, one of: {', '.join(vocab.PROVIDER_TYPES)})",
        )
    ident = prov.get("identifier")
    if ident is not None:
        if ident.get("system") != NPI_SYSTEM:
            raise EncounterError(
                "Claim.provider.identifier.system",
                f"expected the NPI system {NPI_SYSTEM}, found {json.dumps(ident.get('system'))}",
            )
        provider["npi"] = ident.get("value")
        origins.note("provider.npi", "Claim.provider.identifier.value")
    out["provider"] = provider

    care: dict[str, Any] = {}
    documentation: list[str] | None = None
    for name, path, ext in _payerpolicy_extensions(claim, "Claim", _CLAIM_EXTENSIONS):
        if name == "care":
            origins.note("care", path)
            for m, part in enumerate(ext.get("extension", [])):
                sub = f"{path}.extension[{m}]"
                field = part.get("url")
                if field not in _CARE_VALUE:
                    raise EncounterError(
                        f"{sub}.url", f"unknown care field {json.dumps(field)}; known: {', '.join(_CARE_VALUE)}"
                    )
                value = _one_value(part, sub, _CARE_VALUE[field], f"care field {field}")
                if field == "ytd_therapy_charges":
                    if value.get("currency", "USD") != "USD" or "value" not in value:
                        raise EncounterError(f"{sub}.valueMoney", "expected an amount in USD (value and currency USD)")
                    value = str(Decimal(str(value["value"])))
                care[field] = value
                origins.note(f"care.{field}", f"{sub}.{_CARE_VALUE[field]}")
        elif name == "charges":
            charges: dict[str, str] = {}
            for m, part in enumerate(ext.get("extension", [])):
                sub = f"{path}.extension[{m}]"
                value = _one_value(part, sub, "valueMoney", "a charge")
                if not isinstance(value, Mapping) or value.get("currency", "USD") != "USD" or "value" not in value:
                    raise EncounterError(f"{sub}.valueMoney", "expected an amount in USD (value and currency USD)")
                charges[str(part.get("url"))] = str(Decimal(str(value["value"])))
                origins.note(f"charges.{part.get('url')}", f"{sub}.valueMoney.value")
            out["charges"] = charges
        elif name == "episode":
            out["episode"] = _one_value(ext, path, "valueString", "the episode key")
            origins.note("episode", f"{path}.valueString")
            origins.note("patient", "Claim.patient")
        else:
            documentation = []
            listed = False
            for m, part in enumerate(ext.get("extension", [])):
                sub = f"{path}.extension[{m}]"
                if part.get("url") == "listed":
                    listed = _one_value(part, sub, "valueBoolean", "documentation listed") is True
                elif part.get("url") == "element":
                    origins.note(f"documentation[{len(documentation)}]", f"{sub}.valueCode")
                    documentation.append(_one_value(part, sub, "valueCode", "a documentation element"))
                else:
                    raise EncounterError(
                        f"{sub}.url",
                        f"unknown documentation part {json.dumps(part.get('url'))}; known: listed, element",
                    )
            if not listed:
                raise EncounterError(path, 'expected the sub-extension "listed" with valueBoolean true')
            origins.note("documentation", path)
    if "accident" in claim:
        care["injury_date"] = claim["accident"]["date"]
        origins.note("care.injury_date", "Claim.accident.date")
    if care:
        out["care"] = care

    # Diagnoses in sequence order; items point at sequence numbers, the encounter at 1-based positions.
    ordered = sorted(enumerate(claim.get("diagnosis", [])), key=lambda pair: pair[1]["sequence"])
    position: dict[int, int] = {}
    diagnoses: list[str] = []
    for n, dx in ordered:
        path = f"Claim.diagnosis[{n}]"
        if dx["sequence"] in position:
            raise EncounterError(f"{path}.sequence", f"sequence {dx['sequence']} is used by two diagnoses")
        concept = dx.get("diagnosisCodeableConcept")
        if concept is None:
            raise EncounterError(
                f"{path}.diagnosisCodeableConcept", "required: an ICD-10-CM code (diagnosisReference is not read)"
            )
        code = _single_code(concept, f"{path}.diagnosisCodeableConcept", (ICD10CM_SYSTEM,))[1]
        position[dx["sequence"]] = len(diagnoses) + 1
        origins.note(f"diagnoses[{len(diagnoses)}]", f"{path}.diagnosisCodeableConcept.coding[0].code")
        diagnoses.append(code)
    if diagnoses:
        out["diagnoses"] = diagnoses

    items = claim.get("item", [])
    if not items:
        raise EncounterError("Claim.item", "expected at least one item (a service or procedure)")
    origins.note("services", "Claim.item")
    origins.note("procedures", "Claim.item")
    date_of_service: str | None = None
    services: list[dict[str, Any]] = []
    procedures: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        path = f"Claim.item[{n}]"
        day = _item_date(item, path)
        if date_of_service is None:
            date_of_service = day
            origins.note("date_of_service", f"{path}.servicedDate")
        elif day != date_of_service:
            raise EncounterError(
                f"{path}.servicedDate",
                f"expected the date of service of Claim.item[0] ({date_of_service}); one encounter is one visit; found {day}",
            )
        entry = _read_item(item, path, position, catalogue)
        kind = entry.pop("_kind")
        target = procedures if kind == "procedure" else services
        key = f"{'procedures' if kind == 'procedure' else 'services'}[{len(target)}]"
        for field, fhir_path in entry.pop("_origins").items():
            origins.note(f"{key}.{field}" if field else key, fhir_path)
        target.append(entry)
    out["date_of_service"] = date_of_service
    if services:
        out["services"] = services
    if procedures:
        out["procedures"] = procedures
    if documentation is not None:
        out["documentation"] = documentation
    try:
        return Encounter.from_mapping(out, catalogue=catalogue)
    except EncounterError as exc:
        raise origins.translate(exc) from None


_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def _patient_key(reference: Mapping[str, Any]) -> tuple[str, str] | None:
    """The ``patient`` key of ``Claim.patient`` and the FHIR path it came from, or None.

    An identifier in :data:`PATIENT_SYSTEM` gives its value; else a literal reference to a Patient
    resource (``Patient/123``, or an absolute URL ending so, with or without ``/_history/n``) gives
    the resource's logical id. Anything else (the placeholder, a contained ``#p1``, another
    identifier system) gives no key.
    """
    ident = reference.get("identifier")
    if isinstance(ident, Mapping) and ident.get("system") == PATIENT_SYSTEM and ident.get("value"):
        return str(ident["value"]), "Claim.patient.identifier.value"
    literal = reference.get("reference")
    if isinstance(literal, str):
        found = _PATIENT_REFERENCE.search(literal)
        if found is not None:
            return found.group(1), "Claim.patient.reference"
    return None


def _item_date(item: Mapping[str, Any], path: str) -> str:
    if "servicedDate" in item:
        return str(item["servicedDate"])
    period = item.get("servicedPeriod")
    if period and period.get("start") and period.get("end") and period["start"][:10] == period["end"][:10]:
        return str(period["start"][:10])
    if period:
        raise EncounterError(
            f"{path}.servicedPeriod", "expected one day (start and end on the same date); an encounter is one visit"
        )
    raise EncounterError(f"{path}.servicedDate", "required: the date of service (an ISO date, e.g. 2025-03-12)")


def _single_code(concept: Mapping[str, Any], path: str, systems: Sequence[str]) -> tuple[str, str]:
    codings = concept.get("coding", [])
    if not codings:
        raise EncounterError(f"{path}.coding", f"required: a coding from {' or '.join(systems)}")
    found: tuple[str, str] | None = None
    for m, coding in enumerate(codings):
        system = coding.get("system")
        if system not in systems:
            raise EncounterError(
                f"{path}.coding[{m}].system",
                f"unknown code system {json.dumps(system)}; expected {' or '.join(systems)}",
            )
        if "code" not in coding:
            raise EncounterError(f"{path}.coding[{m}].code", "required field is missing")
        if found is not None:
            raise EncounterError(f"{path}.coding[{m}]", "expected one coding; found a second one")
        found = (system, coding["code"])
    assert found is not None
    return found


def _billed_of_item(item: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """What a Claim item says was billed: a count ``quantity`` (units), ``modifier`` codings, ``net``."""
    billed: dict[str, Any] = {}
    quantity = item.get("quantity")
    if quantity and not (quantity.get("system") == UCUM_SYSTEM and quantity.get("code") == "min"):
        unit = quantity.get("code")
        if quantity.get("system") not in (None, UCUM_SYSTEM) or unit not in (None, "1", "{unit}", "{units}", "UN"):
            raise EncounterError(
                f"{path}.quantity",
                "expected a count of units (no unit, or UCUM 1 / {unit}) or minutes (UCUM min), found"
                f" {json.dumps(quantity.get('system'))} {json.dumps(unit)}",
            )
        value = quantity.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise EncounterError(
                f"{path}.quantity.value", f"expected a whole number of units, found {json.dumps(value)}"
            )
        billed["units"] = int(value)
    modifiers = []
    for m, concept in enumerate(item.get("modifier", [])):
        _, code = _single_code(concept, f"{path}.modifier[{m}]", (CPT_SYSTEM, HCPCS_SYSTEM))
        modifiers.append(code)
    if modifiers:
        billed["modifiers"] = modifiers
    net = item.get("net")
    if net is not None:
        if (
            net.get("currency", "USD") != "USD"
            or isinstance(net.get("value"), bool)
            or not isinstance(net.get("value"), int | float | Decimal)
        ):
            raise EncounterError(f"{path}.net", "expected an amount in USD")
        billed["charge"] = str(Decimal(str(net["value"])).quantize(Decimal("0.01")))
    if not billed:
        return None
    billed.setdefault("modifiers", [])
    return billed


def _read_item(
    item: Mapping[str, Any], path: str, position: Mapping[int, int], catalogue: vocab.CodeCatalogue
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    origins: dict[str, str] = {"": path}
    system, code = _single_code(
        item["productOrService"], f"{path}.productOrService", (CPT_SYSTEM, HCPCS_SYSTEM, TECHNIQUE_SYSTEM)
    )
    if system == TECHNIQUE_SYSTEM:
        entry["technique"] = code
        origins["technique"] = f"{path}.productOrService.coding[0].code"
    else:
        entry["code"] = code
        origins["code"] = f"{path}.productOrService.coding[0].code"
    kind: str | None = None
    repeated: dict[str, list[str]] = {}
    for name, ext_path, ext in _payerpolicy_extensions(item, path, _ITEM_EXTENSIONS):
        if name == "entry":
            kind = _one_value(ext, ext_path, "valueCode", "the entry kind")
            if kind not in ("service", "procedure"):
                raise EncounterError(
                    f"{ext_path}.valueCode", f'expected "service" or "procedure", found {json.dumps(kind)}'
                )
            continue
        if name in ("intent", "regions", "necessity"):
            field = name
            origins[f"{field}[{len(repeated.get(field, []))}]"] = f"{ext_path}.valueCode"
            repeated.setdefault(field, []).append(_one_value(ext, ext_path, "valueCode", f"one of {name}"))
            continue
        value_type = {
            "technique": "valueCode",
            "minutes": "valueUnsignedInt",
            "assistant-minutes": "valueUnsignedInt",
            "start": "valueTime",
            "end": "valueTime",
            "separately-identifiable": "valueBoolean",
        }[name]
        value = _one_value(ext, ext_path, value_type, name)
        if value_type == "valueTime":
            if not str(value).endswith(":00") or len(str(value)) != 8:
                raise EncounterError(
                    f"{ext_path}.valueTime", f"expected a whole minute like 10:05:00, found {json.dumps(value)}"
                )
            value = str(value)[:5]
        field = name.replace("-", "_")
        if field == "technique" and "technique" in entry and entry["technique"] != value:
            raise EncounterError(
                f"{ext_path}.valueCode",
                f"technique {json.dumps(value)} differs from productOrService {json.dumps(entry['technique'])}",
            )
        entry[field] = value
        origins[field] = f"{ext_path}.{value_type}"
    entry.update(repeated)
    billed = _billed_of_item(item, path)
    if billed is not None:
        entry["billed"] = billed
        origins["billed"] = path
    unit_charge = _read_unit_price(item, path)
    if unit_charge is not None:
        entry["unit_charge"] = unit_charge
        origins["unit_charge"] = f"{path}.unitPrice"
    quantity = item.get("quantity")
    if quantity and quantity.get("system") == UCUM_SYSTEM and quantity.get("code") == "min":
        # Minutes may also be written as a UCUM quantity; a count of units is not read (units are computed).
        minutes = quantity.get("value")
        if "minutes" in entry and entry["minutes"] != minutes:
            raise EncounterError(f"{path}.quantity.value", f"differs from the minutes extension ({entry['minutes']})")
        if not isinstance(minutes, int | float) or minutes != int(minutes):
            raise EncounterError(f"{path}.quantity.value", f"expected whole minutes, found {json.dumps(minutes)}")
        entry["minutes"] = int(minutes)
        origins["minutes"] = f"{path}.quantity.value"
    if kind is None:
        info = catalogue.get(entry.get("code", "").upper())
        kind = "procedure" if info is not None and info.category in vocab.PROCEDURE_CATEGORIES else "service"
    if kind == "procedure":
        if "code" not in entry:
            raise EncounterError(f"{path}.productOrService", "a procedure needs a CPT or HCPCS code, not a technique")
        for field in _SERVICE_ONLY:
            key = field.replace("-", "_")
            if key in entry or (key + "[0]") in origins:
                raise EncounterError(
                    origins.get(key, origins.get(key + "[0]", path)),
                    f"{field} is for services, not procedures (entry: procedure)",
                )
    else:
        for field in _PROCEDURE_ONLY:
            key = field.replace("-", "_")
            if key in entry:
                raise EncounterError(origins[key], f"{field} is for procedures, not services (entry: service)")
    pointers = []
    for m, seq in enumerate(item.get("diagnosisSequence", [])):
        if seq not in position:
            raise EncounterError(f"{path}.diagnosisSequence[{m}]", f"no Claim.diagnosis has sequence {seq}")
        pointers.append(position[seq])
        origins[f"diagnosis_pointers[{m}]"] = f"{path}.diagnosisSequence[{m}]"
    if pointers:
        entry["diagnosis_pointers"] = pointers
    entry["_kind"] = kind
    entry["_origins"] = origins
    return entry


def read_fhir_encounter(path: str, *, catalogue: vocab.CodeCatalogue | None = None) -> Encounter:
    """Read an encounter from a FHIR R4 Claim in a JSON file (or ``-`` for standard input)."""
    name, text = read_text(path)
    data = parse_json(text, name, parse_float=Decimal)  # FHIR decimals (money) read exactly
    try:
        return encounter_from_claim(data, catalogue=catalogue)
    except EncounterError as exc:
        raise exc.with_file(name) from None


# --------------------------------------------------------------------------------------------
# Outcome -> Claim + ClaimResponse


def _entry_name(line: ClaimLine) -> str:
    return f"{line.origin}[{line.service}]"


def _payer_reference(outcome: Outcome) -> dict[str, Any]:
    return {"identifier": {"system": PAYER_ID_SYSTEM, "value": outcome.payer.id}, "display": outcome.payer.name}


def claim_from_outcome(outcome: Outcome, encounter: Encounter, *, created: dt.date | None = None) -> dict[str, Any]:
    """Write one payer's outcome as a FHIR R4 ``Claim``: the lines to bill, in claim order.

    Lines that go on the claim (``billable`` and ``expected_denial``) become items with their code,
    modifiers (CPT modifiers in the CPT system, HCPCS Level II modifiers in the HCPCS system), units
    as ``quantity``, diagnosis pointers as ``diagnosisSequence`` into the claim's diagnoses, and the
    line charge as ``net`` when the encounter gives one (the 837P's SV102, :func:`payerpolicy.x12.line_charge`).
    Lines that are not billed are in the ClaimResponse (:func:`claim_response_from_outcome`).
    """
    _models()
    episode = _episode_extension(encounter)
    claim = _claim_frame(encounter, created, [episode] if episode else None)
    claim["insurer"] = _payer_reference(outcome)
    if outcome.diagnoses:
        claim["diagnosis"] = _diagnoses(outcome.diagnoses)
    claim["insurance"] = [
        {"sequence": 1, "focal": True, "coverage": {"display": f"coverage with {outcome.payer.name}"}}
    ]
    items = []
    for sequence, line in enumerate(outcome.claim_lines, 1):
        ext: list[dict[str, Any]] = [
            {"url": _ext("line-status"), "valueCode": line.status},
            {"url": _ext("encounter-entry"), "valueString": _entry_name(line)},
        ]
        if line.minutes is not None:
            ext.append({"url": _ext("minutes"), "valueUnsignedInt": line.minutes})
        ext += [{"url": _ext("regions"), "valueCode": r} for r in line.regions]
        item: dict[str, Any] = {"extension": ext, "sequence": sequence}
        if line.diagnosis_pointers:
            item["diagnosisSequence"] = list(line.diagnosis_pointers)
        item["productOrService"] = _coding(_code_system(line.code), line.code)
        if line.modifiers:
            item["modifier"] = [_coding(_modifier_system(m), m) for m in line.modifiers]
        item["servicedDate"] = encounter.date_of_service.isoformat()
        item["quantity"] = {"value": line.units}
        charge = line_charge(line, encounter)
        if charge > 0:
            item["net"] = money(charge)
        items.append(item)
    if items:
        claim["item"] = items
    return _checked("Claim", claim)


def _finding_extension(finding: Finding, item_sequence: Mapping[int, int]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "code", "valueCode": finding.code},
        {"url": "severity", "valueCode": finding.severity},
    ]
    for name in ("rule", "source", "plugin"):
        value = getattr(finding, name)
        if value:
            parts.append({"url": name, "valueString": value})
    if finding.line is not None:
        parts.append({"url": "line", "valueUnsignedInt": finding.line})
        if finding.line in item_sequence:
            parts.append({"url": "item-sequence", "valuePositiveInt": item_sequence[finding.line]})
    if finding.adjustment is not None:
        adj = finding.adjustment
        parts.append({"url": "group", "valueCoding": {"system": ADJUSTMENT_GROUP_SYSTEM, "code": adj.group}})
        parts.append({"url": "carc", "valueCoding": {"system": CARC_SYSTEM, "code": adj.carc}})
        parts += [{"url": "rarc", "valueCoding": {"system": RARC_SYSTEM, "code": r}} for r in adj.rarc]
    return {"url": _ext("finding"), "extension": parts}


def _denial(findings: Sequence[Finding], index: int) -> Finding | None:
    """The finding that denies or reduces line ``index``: the first with an adjustment, else the first expected denial."""
    about = [f for f in findings if f.line == index]
    return next((f for f in about if f.adjustment is not None), None) or next(
        (f for f in about if f.severity == "expected_denial"), None
    )


def _reason(finding: Finding) -> dict[str, Any]:
    """The denial as a CodeableConcept: the CARC (when there is one) and the payerpolicy finding code.

    The ``adjustment`` extension carries the group code, the remark codes and the pairing's source.
    """
    codings = []
    extensions: list[dict[str, Any]] = []
    if finding.adjustment is not None:
        adj = finding.adjustment
        codings.append({"system": CARC_SYSTEM, "code": adj.carc})
        parts: list[dict[str, Any]] = [
            {"url": "group", "valueCoding": {"system": ADJUSTMENT_GROUP_SYSTEM, "code": adj.group}}
        ]
        parts += [{"url": "rarc", "valueCoding": {"system": RARC_SYSTEM, "code": r}} for r in adj.rarc]
        if adj.source:
            parts.append({"url": "source", "valueString": adj.source})
        extensions.append({"url": _ext("adjustment"), "extension": parts})
    codings.append({"system": FINDING_SYSTEM, "code": finding.code})
    concept: dict[str, Any] = {"coding": codings}
    if extensions:
        concept["extension"] = extensions
    if finding.adjustment is not None:
        concept["text"] = f"{finding.adjustment.group}-{finding.adjustment.carc}" + "".join(
            f" {r}" for r in finding.adjustment.rarc
        )
    return concept


def _note_text(finding: Finding) -> str:
    where = "; ".join(
        part
        for part in (
            f"rule {finding.rule}" if finding.rule else "",
            f"source: {finding.source}" if finding.source else "",
        )
        if part
    )
    adj = finding.adjustment
    terms = f" ({adj.group}-{adj.carc}{''.join(' ' + r for r in adj.rarc)})" if adj is not None else ""
    return f"{finding.severity} {finding.code}{terms}: {finding.message}" + (f" [{where}]" if where else "")


def claim_response_from_outcome(
    outcome: Outcome, encounter: Encounter, *, claim_reference: str | None = None, created: dt.date | None = None
) -> dict[str, Any]:
    """Write one payer's findings as a FHIR R4 ``ClaimResponse``-style result.

    * ``outcome`` is ``complete`` when every line is billable and no finding is an error or an
      expected denial, else ``partial``; ``disposition`` counts lines and findings.
    * every finding is a ``processNote`` (text: severity, code, message, rule and source) with a
      ``finding`` extension carrying code, severity, rule, source, plugin and line;
    * error findings are also ``error`` entries (code in the payerpolicy finding code system, and
      ``itemSequence`` when the line is on the claim);
    * each claim item has an ``adjudication`` whose category is the line status, its finding
      notes as ``noteNumber`` and, for an expected denial, the denial's finding code as reason;
    * lines that are not billed are ``not-billed-line`` extensions (code, units, modifiers, entry, notes).

    This is the payer-policy check's answer, not a payer's adjudication: no amounts are given.
    """
    _models()
    on_claim = [n for n, line in enumerate(outcome.lines) if line.on_claim]
    item_sequence = {index: seq for seq, index in enumerate(on_claim, 1)}
    notes: dict[int | None, list[int]] = {}
    process_notes = []
    errors = []
    for number, finding in enumerate(outcome.findings, 1):
        notes.setdefault(finding.line, []).append(number)
        process_notes.append(
            {
                "extension": [_finding_extension(finding, item_sequence)],
                "number": number,
                "type": "display",
                "text": _note_text(finding),
            }
        )
        if finding.severity == "error":
            error: dict[str, Any] = {"extension": [_finding_extension(finding, item_sequence)]}
            if finding.line in item_sequence:
                error["itemSequence"] = item_sequence[finding.line]
            error["code"] = {"coding": [{"system": FINDING_SYSTEM, "code": finding.code}], "text": finding.message}
            errors.append(error)

    items = []
    for index in on_claim:
        line = outcome.lines[index]
        adjudication: dict[str, Any] = {"category": _coding(LINE_STATUS_SYSTEM, line.status)}
        denial = _denial(outcome.findings, index)
        if denial is not None and (line.status == "expected_denial" or denial.adjustment is not None):
            adjudication["reason"] = _reason(denial)
        adjudication["value"] = line.units
        item: dict[str, Any] = {"itemSequence": item_sequence[index]}
        if notes.get(index):
            item["noteNumber"] = notes[index]
        item["adjudication"] = [adjudication]
        items.append(item)

    extensions: list[dict[str, Any]] = [
        {
            "url": _ext("payer-policy"),
            "extension": [
                {"url": "payer", "valueString": outcome.payer.id},
                {"url": "version", "valueString": outcome.payer.policy_version},
            ],
        }
    ]
    for index, line in enumerate(outcome.lines):
        if line.on_claim:
            continue
        parts: list[dict[str, Any]] = [
            {"url": "code", "valueCoding": {"system": _code_system(line.code), "code": line.code}},
            {"url": "units", "valueUnsignedInt": line.units},
        ]
        parts += [
            {"url": "modifier", "valueCoding": {"system": _modifier_system(m), "code": m}} for m in line.modifiers
        ]
        parts.append({"url": "encounter-entry", "valueString": _entry_name(line)})
        parts.append({"url": "line", "valueUnsignedInt": index})
        parts += [{"url": "note", "valuePositiveInt": n} for n in notes.get(index, [])]
        denial = _denial(outcome.findings, index)
        if denial is not None and denial.adjustment is not None:
            parts.append({"url": "reason", "valueCodeableConcept": _reason(denial)})
        extensions.append({"url": _ext("not-billed-line"), "extension": parts})

    all_billable = all(line.status == "billable" for line in outcome.lines)
    blocking = any(f.severity in ("error", "expected_denial") for f in outcome.findings)
    billed = len(on_claim)
    response: dict[str, Any] = {"resourceType": "ClaimResponse", "extension": extensions}
    if encounter.id is not None:
        response["identifier"] = [{"system": ENCOUNTER_ID_SYSTEM, "value": encounter.id}]
    response.update(
        {
            "status": "active",
            "type": _coding(_CLAIM_TYPE_SYSTEM, "professional"),
            "use": "claim",
            "patient": _patient_reference(encounter),
            "created": (created or encounter.date_of_service).isoformat(),
            "insurer": _payer_reference(outcome),
            "requestor": _provider_reference(encounter),
        }
    )
    if claim_reference:
        response["request"] = {"reference": claim_reference}
    response["outcome"] = "complete" if all_billable and not blocking else "partial"
    response["disposition"] = (
        f"{outcome.payer.id}: {billed} line{'s' if billed != 1 else ''} on the claim, "
        f"{len(outcome.lines) - billed} not billed, {len(outcome.findings)} finding{'s' if len(outcome.findings) != 1 else ''}"
    )
    if items:
        response["item"] = items
    if process_notes:
        response["processNote"] = process_notes
    if errors:
        response["error"] = errors
    return _checked("ClaimResponse", response)


def _full_url(encounter: Encounter, payer: str, what: str) -> str:
    key = f"{encounter.id or ''}|{encounter.date_of_service.isoformat()}|{payer}|{what}"
    return f"urn:uuid:{uuid.uuid5(_BUNDLE_NAMESPACE, key)}"


def outcome_bundle(
    encounter: Encounter, outcomes: Iterable[Outcome], *, created: dt.date | None = None
) -> dict[str, Any]:
    """A FHIR R4 ``Bundle`` (type ``collection``) with a Claim and a ClaimResponse per outcome.

    Each ClaimResponse's ``request`` points at its Claim's ``fullUrl``; the URNs are UUIDs derived
    from the encounter id, date and payer, so the same input gives the same bundle.
    """
    entries = []
    for outcome in outcomes:
        claim_url = _full_url(encounter, outcome.payer.id, "Claim")
        entries.append({"fullUrl": claim_url, "resource": claim_from_outcome(outcome, encounter, created=created)})
        entries.append(
            {
                "fullUrl": _full_url(encounter, outcome.payer.id, "ClaimResponse"),
                "resource": claim_response_from_outcome(outcome, encounter, claim_reference=claim_url, created=created),
            }
        )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return _checked("Bundle", bundle)
