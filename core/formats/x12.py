"""X12 837P (005010X222A1): the service-line part of a professional claim for one payer's outcome.

:func:`service_line_segments` writes the part an outcome decides — ``HI`` (the claim's diagnoses,
``ABK`` principal then ``ABF``) and one ``LX``/``SV1``/``DTP*472`` loop per line on the claim —
and :func:`interchange` wraps it in a complete interchange (ISA/GS/ST/BHT, submitter, receiver,
billing provider, subscriber, payer, ``CLM``, SE/GE/IEA with their counts and control numbers).

What an encounter does not carry (submitter, receiver, billing provider address and tax id,
subscriber, payer ids, charges) comes from an :class:`Envelope`, read from a small TOML or JSON
settings file with :func:`load_envelope`. Every default is a clearly marked placeholder and the
usage indicator defaults to ``T`` (test data). ``docs/x12.md`` documents the settings and the
mapping. This module needs no third-party library.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ..evaluation.errors import EncounterError, PayerPolicyError
from ..evaluation.model import ClaimLine, Encounter, Outcome
from ..evaluation.text import check_text, loads_json
from .taxonomy import taxonomy_for_provider_type

__all__ = [
    "FILING_INDICATORS",
    "PLACEHOLDER_BILLING_NPI",
    "PLACEHOLDER_RENDERING_NPI",
    "RELATIONSHIPS",
    "ClaimInput",
    "Envelope",
    "PayerSettings",
    "RenderingSettings",
    "envelope_from_mapping",
    "interchange",
    "interchange_of_claims",
    "line_charge",
    "load_envelope",
    "member_id",
    "production_problems",
    "service_line_segments",
    "sv1_segment",
]

ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
TERMINATOR = "~"
IMPLEMENTATION = "005010X222A1"

#: Default claim filing indicator (SBR09) of each builtin payer: MB Medicare Part B, BL Blue Cross
#: Blue Shield, WC workers' compensation, CI commercial insurance (the default for any other payer).
FILING_INDICATORS = {"medicare": "MB", "bcbsnc": "BL", "ca_wc": "WC", "aetna": "CI", "commercial": "CI"}

_PLACEHOLDER = "PLACEHOLDER"
_SEPARATORS = re.compile(r"[*:~^\r\n]")


@attrs.frozen
class PayerSettings:
    """The 2010BB payer loop and SBR09 for one payer id: name, payer id, claim filing indicator."""

    name: str | None = None
    id: str = "PLACEHOLDERPAYER"
    filing_indicator: str | None = None


@attrs.frozen
class RenderingSettings:
    """The 2310B rendering provider's name (and taxonomy override) for one NPI: ``[rendering_providers.<npi>]``."""

    last_name: str = "PLACEHOLDER"
    first_name: str = "RENDERING"
    taxonomy: str | None = None


#: The NPI of the placeholder billing provider (a valid check digit, and clearly not a real one).
PLACEHOLDER_BILLING_NPI = "1999999992"
#: The NPI of the placeholder rendering provider, used when the encounter has none.
PLACEHOLDER_RENDERING_NPI = "1234567893"

#: Patient relationship to the subscriber (2000C ``PAT01``): spouse, child, employee, unknown,
#: organ donor, cadaver donor, life partner, other relationship.
RELATIONSHIPS = ("01", "19", "20", "21", "39", "40", "53", "G8")


@attrs.frozen
class Envelope:
    """Everything an 837P needs that an encounter does not carry. Defaults are placeholders.

    Field names are the keys of the settings file (``docs/x12.md``), flattened by table:
    ``[interchange] sender_id`` is ``sender_id``, ``[billing_provider] npi`` is ``billing_npi``.
    """

    # [interchange]
    sender_id: str = "PAYERPOLICY"
    receiver_id: str = "RECEIVER"
    usage: str = "T"
    control_number: int = 1
    created: dt.datetime | None = None
    # [submitter] (loop 1000A)
    submitter_name: str = "PLACEHOLDER SUBMITTER"
    submitter_id: str = "PLACEHOLDERSUB"
    submitter_contact: str = "PLACEHOLDER CONTACT"
    submitter_phone: str = "5555550100"
    # [receiver] (loop 1000B)
    receiver_name: str = "PLACEHOLDER RECEIVER"
    receiver_etin: str = "PLACEHOLDERRCV"
    # [billing_provider] (loop 2010AA)
    billing_name: str = "PLACEHOLDER BILLING PROVIDER"
    billing_npi: str = PLACEHOLDER_BILLING_NPI
    billing_tax_id: str = "000000000"
    billing_address: str = "PLACEHOLDER ADDRESS"
    billing_city: str = "PLACEHOLDER"
    billing_state: str = "NC"
    billing_zip: str = "000000000"
    billing_taxonomy: str | None = None
    # [subscriber] (loop 2010BA; the subscriber is the patient unless [patient] is given)
    subscriber_last_name: str = "PLACEHOLDER"
    subscriber_first_name: str = "PATIENT"
    subscriber_member_id: str = "PLACEHOLDER0001"
    subscriber_birth_date: dt.date = dt.date(1970, 1, 1)
    subscriber_gender: str = "U"
    subscriber_address: str = "PLACEHOLDER ADDRESS"
    subscriber_city: str = "PLACEHOLDER"
    subscriber_state: str = "NC"
    subscriber_zip: str = "00000"
    # [patient] (loop 2000C/2010CA), only when the patient is not the subscriber
    patient_relationship: str | None = None
    patient_last_name: str = "PLACEHOLDER"
    patient_first_name: str = "DEPENDANT"
    patient_birth_date: dt.date = dt.date(2010, 1, 1)
    patient_gender: str = "U"
    patient_address: str = "PLACEHOLDER ADDRESS"
    patient_city: str = "PLACEHOLDER"
    patient_state: str = "NC"
    patient_zip: str = "00000"
    # [claim] (loop 2300); claim_id defaults to the encounter id
    claim_id: str | None = None
    place_of_service: str = "11"
    # [payers.<id>] and [charges]
    payers: Mapping[str, PayerSettings] = attrs.field(factory=dict)
    charges: Mapping[str, Decimal] = attrs.field(factory=dict)
    # [rendering_providers.<npi>] (loop 2310B names)
    rendering_providers: Mapping[str, RenderingSettings] = attrs.field(factory=dict)


# --------------------------------------------------------------------------------------------
# Settings file

_TABLES: dict[str, dict[str, tuple[str, str]]] = {
    # table -> key -> (Envelope field, kind)
    "interchange": {
        "sender_id": ("sender_id", "id15"),
        "receiver_id": ("receiver_id", "id15"),
        "usage": ("usage", "usage"),
        "control_number": ("control_number", "control"),
        "created": ("created", "datetime"),
    },
    "submitter": {
        "name": ("submitter_name", "text60"),
        "id": ("submitter_id", "id80"),
        "contact": ("submitter_contact", "text60"),
        "phone": ("submitter_phone", "phone"),
    },
    "receiver": {"name": ("receiver_name", "text60"), "id": ("receiver_etin", "id80")},
    "billing_provider": {
        "name": ("billing_name", "text60"),
        "npi": ("billing_npi", "npi"),
        "tax_id": ("billing_tax_id", "ein"),
        "address": ("billing_address", "text55"),
        "city": ("billing_city", "text30"),
        "state": ("billing_state", "state"),
        "zip": ("billing_zip", "zip9"),
        "taxonomy": ("billing_taxonomy", "taxonomy"),
    },
    "subscriber": {
        "last_name": ("subscriber_last_name", "text60"),
        "first_name": ("subscriber_first_name", "text35"),
        "member_id": ("subscriber_member_id", "id80"),
        "birth_date": ("subscriber_birth_date", "date"),
        "gender": ("subscriber_gender", "gender"),
        "address": ("subscriber_address", "text55"),
        "city": ("subscriber_city", "text30"),
        "state": ("subscriber_state", "state"),
        "zip": ("subscriber_zip", "zip"),
    },
    "patient": {
        "relationship": ("patient_relationship", "relationship"),
        "last_name": ("patient_last_name", "text60"),
        "first_name": ("patient_first_name", "text35"),
        "birth_date": ("patient_birth_date", "date"),
        "gender": ("patient_gender", "gender"),
        "address": ("patient_address", "text55"),
        "city": ("patient_city", "text30"),
        "state": ("patient_state", "state"),
        "zip": ("patient_zip", "zip"),
    },
    "claim": {"id": ("claim_id", "id38"), "place_of_service": ("place_of_service", "pos")},
}
_RENDERING_KEYS = {"last_name": "text60", "first_name": "text35", "taxonomy": "taxonomy"}
_PAYER_KEYS = {"name": "text60", "id": "id80", "filing_indicator": "filing"}
_KIND_CHECK: dict[str, tuple[str, str]] = {
    # kind -> (regex, what is expected)
    "id15": (r"^[A-Za-z0-9 .\-]{1,15}$", "1 to 15 letters, digits, spaces, dots or hyphens"),
    "id38": (r"^[A-Za-z0-9.\-]{1,38}$", "1 to 38 letters, digits, dots or hyphens"),
    "id80": (r"^[A-Za-z0-9 .\-]{2,80}$", "2 to 80 letters, digits, spaces, dots or hyphens"),
    "text60": (r"^[A-Za-z0-9 .,'&\-]{1,60}$", "1 to 60 letters, digits, spaces or .,'&-"),
    "text55": (r"^[A-Za-z0-9 .,'&#/\-]{1,55}$", "1 to 55 letters, digits, spaces or .,'&#/-"),
    "text35": (r"^[A-Za-z0-9 .,'&\-]{1,35}$", "1 to 35 letters, digits, spaces or .,'&-"),
    "text30": (r"^[A-Za-z0-9 .,'&\-]{2,30}$", "2 to 30 letters, digits, spaces or .,'&-"),
    "usage": (r"^[TP]$", '"T" (test) or "P" (production)'),
    "phone": (r"^\d{10}$", "10 digits"),
    "npi": (r"^\d{10}$", "10 digits"),
    "ein": (r"^\d{9}$", "9 digits (the employer identification number, no hyphen)"),
    "state": (r"^[A-Z]{2}$", "a 2-letter state code"),
    "zip9": (r"^\d{9}$", "9 digits (ZIP+4; the 837P requires it for the billing provider)"),
    "zip": (r"^(\d{5}|\d{9})$", "5 or 9 digits"),
    "taxonomy": (r"^[0-9A-Z]{9}X$", "a 10-character provider taxonomy code such as 111N00000X"),
    "gender": (r"^[MFU]$", '"M", "F" or "U"'),
    "pos": (r"^\d{2}$", 'a 2-digit place of service code such as "11"'),
    "filing": (r"^[0-9A-Z]{2}$", 'a 2-character claim filing indicator such as "CI", "MB", "BL", "WC"'),
    "relationship": (
        r"^(01|19|20|21|39|40|53|G8)$",
        'a patient relationship code (PAT01): "01" spouse, "19" child, "20" employee, "21" unknown, '
        '"39" organ donor, "40" cadaver donor, "53" life partner, "G8" other',
    ),
}


def _problem(file: str, where: str, expected: str, found: Any) -> PayerPolicyError:
    shown = json.dumps(found) if isinstance(found, str | int | float | bool) else type(found).__name__
    return PayerPolicyError(f"{file}: {where}: expected {expected}, found {shown}")


def _value(file: str, where: str, kind: str, raw: Any) -> Any:
    if kind == "control":
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 999_999_999:
            raise _problem(file, where, "a whole number from 1 to 999999999", raw)
        return raw
    if kind == "datetime":
        if isinstance(raw, dt.datetime):
            return raw.replace(tzinfo=None)
        if isinstance(raw, str):
            try:
                return dt.datetime.fromisoformat(raw).replace(tzinfo=None)
            except ValueError:
                pass
        raise _problem(file, where, "a date and time such as 2025-03-13T09:30:00", raw)
    if kind == "date":
        if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
            return raw
        if isinstance(raw, str):
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                pass
        raise _problem(file, where, "a date such as 1970-01-01", raw)
    pattern, expected = _KIND_CHECK[kind]
    if not isinstance(raw, str) or not re.match(pattern, raw):
        raise _problem(file, where, expected, raw)
    return raw


def load_envelope(path: str) -> Envelope:
    """Read envelope settings from a TOML or JSON file (``docs/x12.md``).

    Raises :class:`~payerpolicy.errors.PayerPolicyError` naming the file, the table and key, what
    was expected and what was found. Absent keys keep their placeholder defaults.
    """
    p = Path(path)
    try:
        text = p.read_text("utf-8-sig")
    except FileNotFoundError:
        raise PayerPolicyError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PayerPolicyError(f"{path}: cannot read the file ({type(exc).__name__})") from None
    try:
        data = loads_json(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, RecursionError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise PayerPolicyError(f"{path}: invalid {kind}: {exc}") from None
    try:
        check_text(data)  # valid Unicode, no key given twice: the interchange never carries raw surrogates
    except EncounterError as exc:
        raise exc.with_file(path) from None
    return envelope_from_mapping(data, file=path)


def envelope_from_mapping(data: Any, *, file: str = "<envelope>") -> Envelope:
    """Build an :class:`Envelope` from settings data (the parsed TOML/JSON file)."""
    if not isinstance(data, Mapping):
        raise _problem(file, "(top level)", "a table", data)
    fields: dict[str, Any] = {}
    known = (*_TABLES, "payers", "charges", "rendering_providers")
    for table, content in data.items():
        if table not in known:
            raise _problem(file, table, f"one of the tables {', '.join(known)}", table)
        if not isinstance(content, Mapping):
            raise _problem(file, table, "a table", content)
        if table == "payers":
            payers = {}
            for payer_id, settings in content.items():
                if not isinstance(settings, Mapping):
                    raise _problem(file, f"payers.{payer_id}", "a table", settings)
                values = {}
                for key, raw in settings.items():
                    if key not in _PAYER_KEYS:
                        raise _problem(
                            file, f"payers.{payer_id}.{key}", f"one of the keys {', '.join(_PAYER_KEYS)}", key
                        )
                    values[key] = _value(file, f"payers.{payer_id}.{key}", _PAYER_KEYS[key], raw)
                payers[str(payer_id)] = PayerSettings(**values)
            fields["payers"] = payers
        elif table == "rendering_providers":
            rendering = {}
            for npi, settings in content.items():
                where = f"rendering_providers.{npi}"
                if not re.match(r"^\d{10}$", str(npi)):
                    raise _problem(file, where, "a 10-digit NPI as the table name", str(npi))
                if not isinstance(settings, Mapping):
                    raise _problem(file, where, "a table", settings)
                values = {}
                for key, raw in settings.items():
                    if key not in _RENDERING_KEYS:
                        raise _problem(file, f"{where}.{key}", f"one of the keys {', '.join(_RENDERING_KEYS)}", key)
                    values[key] = _value(file, f"{where}.{key}", _RENDERING_KEYS[key], raw)
                rendering[str(npi)] = RenderingSettings(**values)
            fields["rendering_providers"] = rendering
        elif table == "charges":
            charges = {}
            for code, raw in content.items():
                try:
                    if isinstance(raw, bool) or not isinstance(raw, str | int):
                        raise InvalidOperation
                    amount = Decimal(str(raw))
                    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
                        raise InvalidOperation
                except InvalidOperation:
                    raise _problem(
                        file, f"charges.{code}", 'an amount in dollars as a string like "45.00"', raw
                    ) from None
                charges[str(code).upper()] = amount
            fields["charges"] = charges
        else:
            for key, raw in content.items():
                if key not in _TABLES[table]:
                    raise _problem(file, f"{table}.{key}", f"one of the keys {', '.join(_TABLES[table])}", key)
                name, kind = _TABLES[table][key]
                fields[name] = _value(file, f"{table}.{key}", kind, raw)
    return Envelope(**fields)


# --------------------------------------------------------------------------------------------
# Segments


def _segment(*elements: str) -> str:
    # Trailing empty elements are dropped, as X12 requires.
    parts = list(elements)
    while parts and parts[-1] == "":
        parts.pop()
    return ELEMENT.join(parts)


def _amount(value: Decimal) -> str:
    # X12 decimal (R): no exponent, no trailing zeros after the point, no "+".
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _check_line(line: ClaimLine, n: int, outcome: Outcome) -> None:
    where = f"line {n} ({line.code}) of the {outcome.payer.id} outcome"
    if len(line.modifiers) > 4:
        raise PayerPolicyError(
            f"cannot write the 837P: {where} has {len(line.modifiers)} modifiers; SV101 takes at most 4"
        )
    if not line.diagnosis_pointers:
        raise PayerPolicyError(
            f"cannot write the 837P: {where} has no diagnosis pointer; SV107 needs one "
            f"(add diagnosis_pointers to {line.origin}[{line.service}] of the encounter)"
        )
    if len(line.diagnosis_pointers) > 4:
        raise PayerPolicyError(
            f"cannot write the 837P: {where} has {len(line.diagnosis_pointers)} diagnosis pointers; SV107 takes at most 4"
        )
    if any(p > len(outcome.diagnoses) for p in line.diagnosis_pointers):
        raise PayerPolicyError(
            f"cannot write the 837P: {where} points past the claim's {len(outcome.diagnoses)} diagnoses"
        )


def sv1_segment(line: ClaimLine, charge: Decimal = Decimal(0)) -> str:
    """The ``SV1`` segment of one claim line: ``HC:code:mod...``, charge, ``UN``, units, pointers.

    ``charge`` is the line charge in dollars (SV102): the outcome line's ``charge`` (as billed, or
    the entry's ``unit_charge`` × units) when it has one, else the envelope's ``[charges]`` per-unit
    charge for the code × units, else 0.
    """
    procedure = COMPONENT.join(("HC", line.code, *line.modifiers))
    pointers = COMPONENT.join(str(p) for p in line.diagnosis_pointers)
    return _segment("SV1", procedure, _amount(charge), "UN", str(line.units), "", "", pointers)


def _line_charge(line: ClaimLine, charges: Mapping[str, Decimal]) -> Decimal:
    if line.charge is not None:  # the outcome's own figure (issue 18): the same charge everywhere
        return line.charge
    return charges.get(line.code, Decimal(0)) * line.units


def _hi_segment(diagnoses: Sequence[str]) -> str:
    codes = [dx.replace(".", "") for dx in diagnoses]
    return _segment("HI", *(f"{'ABK' if n == 0 else 'ABF'}{COMPONENT}{code}" for n, code in enumerate(codes)))


def _check_outcome(outcome: Outcome) -> tuple[ClaimLine, ...]:
    lines = outcome.claim_lines
    if not lines:
        raise PayerPolicyError(f"cannot write the 837P: no line of the {outcome.payer.id} outcome goes on the claim")
    if not outcome.diagnoses:
        raise PayerPolicyError(
            "cannot write the 837P: the claim has no diagnosis; HI needs a principal diagnosis (ABK)"
        )
    if len(outcome.diagnoses) > 12:
        raise PayerPolicyError(
            f"cannot write the 837P: the claim has {len(outcome.diagnoses)} diagnoses; HI takes at most 12"
        )
    for n, line in enumerate(lines, 1):
        _check_line(line, n, outcome)
    return lines


def service_line_segments(
    outcome: Outcome,
    date_of_service: dt.date,
    *,
    charges: Mapping[str, Decimal] | None = None,
    encounter: Encounter | None = None,
) -> list[str]:
    """The outcome's ``HI`` segment and one ``LX``/``SV1``/``DTP*472`` group per line on the claim.

    Segments are returned without the terminator. Lines that are not billable are left out (they
    are not on the claim); expected denials are on it. With ``encounter``, each line charge is
    :func:`line_charge` (billed charge, the encounter's ``charges``, then ``charges``); without it,
    ``charges`` (per unit) × units, else 0. Raises :class:`~payerpolicy.errors.PayerPolicyError`
    when the outcome cannot be written as an 837P (no line on the claim, no diagnosis, more than 12
    diagnoses, a line without a pointer).
    """
    charges = charges or {}
    lines = _check_outcome(outcome)
    segments = [_hi_segment(outcome.diagnoses)]
    for n, line in enumerate(lines, 1):
        charge = (
            line_charge(line, encounter, Envelope(charges=charges))
            if encounter is not None
            else _line_charge(line, charges)
        )
        segments.append(_segment("LX", str(n)))
        segments.append(sv1_segment(line, charge))
        segments.append(_segment("DTP", "472", "D8", date_of_service.strftime("%Y%m%d")))
    return segments


def _clean(text: str, what: str) -> str:
    if _SEPARATORS.search(text):
        raise PayerPolicyError(f"cannot write the 837P: {what} {text!r} contains an X12 separator (* : ~ ^)")
    return text.upper()


def line_charge(line: ClaimLine, encounter: Encounter, envelope: Envelope | None = None) -> Decimal:
    """The line charge (SV102) of one claim line, in dollars: the one place a charge is decided.

    In order: the outcome line's ``charge`` (the engine's: the line as billed, else the entry's
    ``unit_charge`` or the encounter's ``charges`` for the code, times the units), else the same
    from the encounter for a line built without it, else the envelope's ``[charges]`` times the
    units, else 0. An expected (fee-schedule) amount is not a charge and is not used here.
    """
    if line.charge is not None:
        return line.charge
    if line.billed is not None and line.billed.charge is not None:
        return line.billed.charge
    per_unit = encounter.charge_for(line.code)
    if per_unit is None and envelope is not None:
        per_unit = envelope.charges.get(line.code)
    return (per_unit or Decimal(0)) * line.units


@attrs.frozen
class ClaimInput:
    """One claim of an interchange: a payer's outcome, its encounter, and the claim id (CLM01).

    ``claim_id`` None takes the envelope's ``[claim] id``, else the encounter id, else ``PLACEHOLDER``.
    """

    outcome: Outcome
    encounter: Encounter
    claim_id: str | None = None


def _claim_id(claim: ClaimInput, env: Envelope) -> str:
    if claim.claim_id is not None:
        return claim.claim_id
    return env.claim_id or re.sub(r"[^A-Za-z0-9.\-]", "", claim.encounter.id or "")[:38] or _PLACEHOLDER


def _is_chiropractic_manipulation(line: ClaimLine) -> bool:
    # CMT 98940-98942 (spinal): the codes of the Medicare initial-treatment-date edit.
    return line.code in ("98940", "98941", "98942")


@attrs.frozen
class _Rendering:
    npi: str
    last_name: str
    first_name: str
    taxonomy: str | None


def _rendering(encounter: Encounter, env: Envelope) -> _Rendering:
    npi = encounter.provider.npi or PLACEHOLDER_RENDERING_NPI
    settings = env.rendering_providers.get(npi, RenderingSettings())
    taxonomy = settings.taxonomy or taxonomy_for_provider_type(encounter.provider.type)
    return _Rendering(npi, settings.last_name, settings.first_name, taxonomy)


#: Envelope fields whose default is a placeholder, with the settings key that replaces it.
_PARTY_KEYS = {
    "sender_id": "interchange.sender_id",
    "receiver_id": "interchange.receiver_id",
    "submitter_name": "submitter.name",
    "submitter_id": "submitter.id",
    "submitter_contact": "submitter.contact",
    "submitter_phone": "submitter.phone",
    "receiver_name": "receiver.name",
    "receiver_etin": "receiver.id",
    "billing_name": "billing_provider.name",
    "billing_npi": "billing_provider.npi",
    "billing_tax_id": "billing_provider.tax_id",
    "billing_address": "billing_provider.address",
    "billing_city": "billing_provider.city",
    "billing_zip": "billing_provider.zip",
    "subscriber_last_name": "subscriber.last_name",
    "subscriber_first_name": "subscriber.first_name",
    "subscriber_member_id": "subscriber.member_id",
    "subscriber_birth_date": "subscriber.birth_date",
    "subscriber_address": "subscriber.address",
    "subscriber_city": "subscriber.city",
    "subscriber_zip": "subscriber.zip",
}
_PATIENT_KEYS = {
    "patient_last_name": "patient.last_name",
    "patient_first_name": "patient.first_name",
    "patient_birth_date": "patient.birth_date",
    "patient_address": "patient.address",
    "patient_city": "patient.city",
    "patient_zip": "patient.zip",
}


def production_problems(claims: Sequence[ClaimInput], envelope: Envelope) -> list[str]:
    """What keeps these claims out of a production interchange (ISA15 ``P``); empty when nothing does.

    A placeholder party (a setting left at its default, a placeholder NPI or payer id), a line
    whose charge is 0, and a Medicare Part B chiropractic claim (98940-98942, SBR09 ``MB``) without
    the initial treatment date (``care.episode_start``; clearinghouses reject it without DTP*454).
    """
    defaults = Envelope()
    keys = dict(_PARTY_KEYS)
    if envelope.patient_relationship is not None:
        keys.update(_PATIENT_KEYS)
    problems = [key for name, key in keys.items() if getattr(envelope, name) == getattr(defaults, name)]
    for claim in claims:
        outcome, encounter = claim.outcome, claim.encounter
        cid = _claim_id(claim, envelope)
        payer = envelope.payers.get(outcome.payer.id, PayerSettings())
        if payer.id == PayerSettings().id and f"payers.{outcome.payer.id}.id" not in problems:
            problems.append(f"payers.{outcome.payer.id}.id")
        rendering = _rendering(encounter, envelope)
        if rendering.npi != envelope.billing_npi:
            if rendering.npi == PLACEHOLDER_RENDERING_NPI:
                problems.append(f"claim {cid}: provider.npi (the encounter's rendering NPI)")
            if rendering.npi not in envelope.rendering_providers:
                problems.append(f"rendering_providers.{rendering.npi} (the rendering provider's name)")
        for n, line in enumerate(outcome.claim_lines, 1):
            if line_charge(line, encounter, envelope) <= 0:
                problems.append(
                    f"claim {cid} line {n} ({line.code}): charge 0 (give charges in the encounter or the envelope)"
                )
        filing = payer.filing_indicator or FILING_INDICATORS.get(outcome.payer.id, "CI")
        if (
            filing == "MB"
            and encounter.care.episode_start is None
            and any(_is_chiropractic_manipulation(line) for line in outcome.claim_lines)
        ):
            problems.append(
                f"claim {cid}: care.episode_start (DTP*454, initial treatment date of a Medicare chiropractic claim)"
            )
    return list(dict.fromkeys(problems))


def _check_production(claims: Sequence[ClaimInput], env: Envelope) -> None:
    if env.usage != "P":
        return
    problems = production_problems(claims, env)
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise PayerPolicyError(f"cannot write a production 837P (ISA15 = P): placeholder or missing values: {shown}")


def _claim_segments(claim: ClaimInput, env: Envelope, billing_npi: str) -> list[str]:
    """Loops 2300 (claim), 2310B (rendering provider) and 2400 (lines) of one claim."""
    outcome, encounter = claim.outcome, claim.encounter
    claim_id = _claim_id(claim, env)
    lines = _check_outcome(outcome)
    charges = [line_charge(line, encounter, env) for line in lines]
    total = sum(charges, Decimal(0))
    segments = [
        # CLM05 = place of service : B (professional) : 1 (original claim)
        _segment(
            "CLM",
            claim_id,
            _amount(total),
            "",
            "",
            COMPONENT.join((env.place_of_service, "B", "1")),
            "Y",
            "A",
            "Y",
            "Y",
        )
    ]
    care = encounter.care
    if any(_is_chiropractic_manipulation(line) for line in lines):
        if care.episode_start is not None:
            segments.append(_segment("DTP", "454", "D8", care.episode_start.strftime("%Y%m%d")))
        if care.last_xray is not None:
            segments.append(_segment("DTP", "455", "D8", care.last_xray.strftime("%Y%m%d")))
    segments.append(_hi_segment(outcome.diagnoses))
    rendering = _rendering(encounter, env)
    if rendering.npi != billing_npi:
        segments.append(
            _segment(
                "NM1",
                "82",
                "1",
                _clean(rendering.last_name, "the rendering provider last name"),
                _clean(rendering.first_name, "the rendering provider first name"),
                "",
                "",
                "",
                "XX",
                rendering.npi,
            )
        )
        if rendering.taxonomy:
            segments.append(_segment("PRV", "PE", "PXC", rendering.taxonomy))
    dos = encounter.date_of_service.strftime("%Y%m%d")
    for n, (line, charge) in enumerate(zip(lines, charges, strict=True), 1):
        segments.append(_segment("LX", str(n)))
        segments.append(sv1_segment(line, charge))
        segments.append(_segment("DTP", "472", "D8", dos))
        segments.append(_segment("REF", "6R", f"{claim_id}-{n}"[:50]))
    return segments


_MEMBER_ID = re.compile(_KIND_CHECK["id80"][0])


def member_id(encounter: Encounter, envelope: Envelope) -> str:
    """The subscriber's member id (2010BA ``NM109``) written for one claim.

    The envelope's ``[subscriber] member_id`` when it is set; else the encounter's ``patient`` key
    when it can be a member id (2 to 80 letters, digits, spaces, dots or hyphens: the key the 837P
    reader gives a claim whose subscriber is the patient); else the placeholder ``PLACEHOLDER0001``.
    A production interchange still needs ``[subscriber] member_id`` (:func:`production_problems`):
    a patient key may be a pseudonym, not the payer's member id.
    """
    default = Envelope().subscriber_member_id
    if envelope.subscriber_member_id != default:
        return envelope.subscriber_member_id
    if encounter.patient is not None and _MEMBER_ID.match(encounter.patient):
        return encounter.patient
    return default


def _subscriber_segments(
    env: Envelope, filing: str, payer_name: str, payer_id: str, hl: int, parent: int, member: str
) -> list[str]:
    dependant = env.patient_relationship is not None
    return [
        _segment("HL", str(hl), str(parent), "22", "1" if dependant else "0"),
        # SBR02 18 = the subscriber is the patient; empty when a 2000C patient loop follows.
        _segment("SBR", "P", "" if dependant else "18", "", "", "", "", "", "", filing),
        _segment(
            "NM1",
            "IL",
            "1",
            _clean(env.subscriber_last_name, "the subscriber last name"),
            _clean(env.subscriber_first_name, "the subscriber first name"),
            "",
            "",
            "",
            "MI",
            member,
        ),
        _segment("N3", _clean(env.subscriber_address, "the subscriber address")),
        _segment("N4", _clean(env.subscriber_city, "the subscriber city"), env.subscriber_state, env.subscriber_zip),
        _segment("DMG", "D8", env.subscriber_birth_date.strftime("%Y%m%d"), env.subscriber_gender),
        _segment("NM1", "PR", "2", payer_name, "", "", "", "", "PI", payer_id),
    ]


def _patient_segments(env: Envelope, hl: int, parent: int) -> list[str]:
    assert env.patient_relationship is not None
    return [
        _segment("HL", str(hl), str(parent), "23", "0"),
        _segment("PAT", env.patient_relationship),
        _segment(
            "NM1",
            "QC",
            "1",
            _clean(env.patient_last_name, "the patient last name"),
            _clean(env.patient_first_name, "the patient first name"),
        ),
        _segment("N3", _clean(env.patient_address, "the patient address")),
        _segment("N4", _clean(env.patient_city, "the patient city"), env.patient_state, env.patient_zip),
        _segment("DMG", "D8", env.patient_birth_date.strftime("%Y%m%d"), env.patient_gender),
    ]


def interchange(outcome: Outcome, encounter: Encounter, envelope: Envelope | None = None) -> str:
    """A complete 005010X222A1 interchange (one ISA/GS/ST, one claim) for the outcome, as text.

    The same as :func:`interchange_of_claims` with one claim. The claim id (CLM01) is the
    envelope's, else the encounter id, else ``PLACEHOLDER``.
    """
    return interchange_of_claims([ClaimInput(outcome, encounter)], envelope)


def interchange_of_claims(claims: Sequence[ClaimInput], envelope: Envelope | None = None) -> str:
    """One 005010X222A1 interchange (one ISA/GS/ST) holding every claim, all for one payer, as text.

    Segments end with ``~`` and a newline. The claims sit under the envelope's billing provider
    (2000A); each has its subscriber (2000B), the patient (2000C) when ``[patient]`` is given, the
    claim (2300, with ``DTP*454``/``DTP*455`` on chiropractic manipulation claims that have the
    dates), the rendering provider (2310B, when its NPI is not the billing provider's) and the lines
    (2400, each with ``REF*6R``). A production interchange (usage ``P``) with a placeholder party or
    a zero charge is refused (:func:`production_problems`). Raises
    :class:`~payerpolicy.errors.PayerPolicyError`.
    """
    env = envelope or Envelope()
    if not claims:
        raise PayerPolicyError("cannot write the 837P: no claim to write")
    payers = {c.outcome.payer.id for c in claims}
    if len(payers) > 1:
        raise PayerPolicyError(
            f"cannot write the 837P: one interchange is for one payer, found {', '.join(sorted(payers))}"
        )
    ids = [_claim_id(c, env) for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise PayerPolicyError(f"cannot write the 837P: claim id {repeated[0]} (CLM01) is used by two claims")
    _check_production(claims, env)
    first = claims[0].outcome
    created = env.created or dt.datetime.now().replace(second=0, microsecond=0)
    payer = env.payers.get(first.payer.id, PayerSettings())
    payer_name = _clean(payer.name or first.payer.name, "the payer name")[:60]
    filing = payer.filing_indicator or FILING_INDICATORS.get(first.payer.id, "CI")
    control = env.control_number
    st_control = f"{control % 10000:04d}"
    reference = ids[0] if len(claims) == 1 else f"PP{control:09d}"

    transaction = [
        _segment("ST", "837", st_control, IMPLEMENTATION),
        _segment("BHT", "0019", "00", reference, created.strftime("%Y%m%d"), created.strftime("%H%M"), "CH"),
        # 1000A submitter, 1000B receiver
        _segment(
            "NM1", "41", "2", _clean(env.submitter_name, "the submitter name"), "", "", "", "", "46", env.submitter_id
        ),
        _segment("PER", "IC", _clean(env.submitter_contact, "the submitter contact"), "TE", env.submitter_phone),
        _segment(
            "NM1", "40", "2", _clean(env.receiver_name, "the receiver name"), "", "", "", "", "46", env.receiver_etin
        ),
        # 2000A / 2010AA billing provider (an organisation)
        _segment("HL", "1", "", "20", "1"),
        *([_segment("PRV", "BI", "PXC", env.billing_taxonomy)] if env.billing_taxonomy else []),
        _segment(
            "NM1",
            "85",
            "2",
            _clean(env.billing_name, "the billing provider name"),
            "",
            "",
            "",
            "",
            "XX",
            env.billing_npi,
        ),
        _segment("N3", _clean(env.billing_address, "the billing provider address")),
        _segment("N4", _clean(env.billing_city, "the billing provider city"), env.billing_state, env.billing_zip),
        _segment("REF", "EI", env.billing_tax_id),
    ]
    hl = 1
    for claim in claims:
        subscriber_hl = hl + 1
        member = member_id(claim.encounter, env)
        transaction += _subscriber_segments(env, filing, payer_name, payer.id, subscriber_hl, 1, member)
        hl = subscriber_hl
        if env.patient_relationship is not None:
            hl += 1
            transaction += _patient_segments(env, hl, subscriber_hl)
        transaction += _claim_segments(claim, env, env.billing_npi)
    transaction.append(_segment("SE", str(len(transaction) + 1), st_control))
    isa = _segment(
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        env.sender_id.ljust(15),
        "ZZ",
        env.receiver_id.ljust(15),
        created.strftime("%y%m%d"),
        created.strftime("%H%M"),
        REPETITION,
        "00501",
        f"{control:09d}",
        "0",
        env.usage,
        COMPONENT,
    )
    segments = [
        isa,
        _segment(
            "GS",
            "HC",
            env.sender_id.strip(),
            env.receiver_id.strip(),
            created.strftime("%Y%m%d"),
            created.strftime("%H%M"),
            str(control),
            "X",
            IMPLEMENTATION,
        ),
        *transaction,
        _segment("GE", "1", str(control)),
        _segment("IEA", "1", f"{control:09d}"),
    ]
    return "".join(f"{s}{TERMINATOR}\n" for s in segments)
