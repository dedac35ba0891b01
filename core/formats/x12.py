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

__all__ = [
    "FILING_INDICATORS",
    "Envelope",
    "PayerSettings",
    "interchange",
    "load_envelope",
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
    # [billing_provider] (loop 2010AA); npi defaults to the encounter's provider NPI
    billing_name: str = "PLACEHOLDER BILLING PROVIDER"
    billing_npi: str | None = None
    billing_tax_id: str = "000000000"
    billing_address: str = "PLACEHOLDER ADDRESS"
    billing_city: str = "PLACEHOLDER"
    billing_state: str = "NC"
    billing_zip: str = "000000000"
    billing_taxonomy: str | None = None
    # [subscriber] (loop 2010BA; the subscriber is the patient)
    subscriber_last_name: str = "PLACEHOLDER"
    subscriber_first_name: str = "PATIENT"
    subscriber_member_id: str = "PLACEHOLDER0001"
    subscriber_birth_date: dt.date = dt.date(1970, 1, 1)
    subscriber_gender: str = "U"
    subscriber_address: str = "PLACEHOLDER ADDRESS"
    subscriber_city: str = "PLACEHOLDER"
    subscriber_state: str = "NC"
    subscriber_zip: str = "00000"
    # [claim] (loop 2300); claim_id defaults to the encounter id
    claim_id: str | None = None
    place_of_service: str = "11"
    # [payers.<id>] and [charges]
    payers: Mapping[str, PayerSettings] = attrs.field(factory=dict)
    charges: Mapping[str, Decimal] = attrs.field(factory=dict)


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
    "claim": {"id": ("claim_id", "id38"), "place_of_service": ("place_of_service", "pos")},
}
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
    known = (*_TABLES, "payers", "charges")
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
    outcome: Outcome, date_of_service: dt.date, *, charges: Mapping[str, Decimal] | None = None
) -> list[str]:
    """The outcome's ``HI`` segment and one ``LX``/``SV1``/``DTP*472`` group per line on the claim.

    Segments are returned without the terminator. Lines that are not billable are left out (they
    are not on the claim); expected denials are on it. Raises
    :class:`~payerpolicy.errors.PayerPolicyError` when the outcome cannot be written as an 837P
    (no line on the claim, no diagnosis, more than 12 diagnoses, a line without a pointer).
    """
    charges = charges or {}
    lines = _check_outcome(outcome)
    segments = [_hi_segment(outcome.diagnoses)]
    for n, line in enumerate(lines, 1):
        segments.append(_segment("LX", str(n)))
        segments.append(sv1_segment(line, _line_charge(line, charges)))
        segments.append(_segment("DTP", "472", "D8", date_of_service.strftime("%Y%m%d")))
    return segments


def _clean(text: str, what: str) -> str:
    if _SEPARATORS.search(text):
        raise PayerPolicyError(f"cannot write the 837P: {what} {text!r} contains an X12 separator (* : ~ ^)")
    return text.upper()


def interchange(outcome: Outcome, encounter: Encounter, envelope: Envelope | None = None) -> str:
    """A complete 005010X222A1 interchange (one ISA/GS/ST, one claim) for the outcome, as text.

    Segments end with ``~`` and a newline. The billing provider NPI is the envelope's, else the
    encounter's provider NPI, else a placeholder; the claim id (CLM01) is the envelope's, else the
    encounter id, else ``PLACEHOLDER``.
    """
    env = envelope or Envelope()
    created = env.created or dt.datetime.now().replace(second=0, microsecond=0)
    payer = env.payers.get(outcome.payer.id, PayerSettings())
    payer_name = _clean(payer.name or outcome.payer.name, "the payer name")[:60]
    filing = payer.filing_indicator or FILING_INDICATORS.get(outcome.payer.id, "CI")
    npi = env.billing_npi or encounter.provider.npi or "1234567893"
    claim_id = env.claim_id or re.sub(r"[^A-Za-z0-9.\-]", "", encounter.id or "")[:38] or _PLACEHOLDER
    control = env.control_number
    st_control = f"{control % 10000:04d}"

    body = service_line_segments(outcome, encounter.date_of_service, charges=env.charges)
    total = sum((_line_charge(line, env.charges) for line in outcome.claim_lines), Decimal(0))

    transaction = [
        _segment("ST", "837", st_control, IMPLEMENTATION),
        _segment("BHT", "0019", "00", claim_id, created.strftime("%Y%m%d"), created.strftime("%H%M"), "CH"),
        # 1000A submitter, 1000B receiver
        _segment(
            "NM1", "41", "2", _clean(env.submitter_name, "the submitter name"), "", "", "", "", "46", env.submitter_id
        ),
        _segment("PER", "IC", _clean(env.submitter_contact, "the submitter contact"), "TE", env.submitter_phone),
        _segment(
            "NM1", "40", "2", _clean(env.receiver_name, "the receiver name"), "", "", "", "", "46", env.receiver_etin
        ),
        # 2000A / 2010AA billing provider
        _segment("HL", "1", "", "20", "1"),
        *([_segment("PRV", "BI", "PXC", env.billing_taxonomy)] if env.billing_taxonomy else []),
        _segment("NM1", "85", "2", _clean(env.billing_name, "the billing provider name"), "", "", "", "", "XX", npi),
        _segment("N3", _clean(env.billing_address, "the billing provider address")),
        _segment("N4", _clean(env.billing_city, "the billing provider city"), env.billing_state, env.billing_zip),
        _segment("REF", "EI", env.billing_tax_id),
        # 2000B / 2010BA subscriber (the patient), 2010BB payer
        _segment("HL", "2", "1", "22", "0"),
        _segment("SBR", "P", "18", "", "", "", "", "", "", filing),
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
            env.subscriber_member_id,
        ),
        _segment("N3", _clean(env.subscriber_address, "the subscriber address")),
        _segment("N4", _clean(env.subscriber_city, "the subscriber city"), env.subscriber_state, env.subscriber_zip),
        _segment("DMG", "D8", env.subscriber_birth_date.strftime("%Y%m%d"), env.subscriber_gender),
        _segment("NM1", "PR", "2", payer_name, "", "", "", "", "PI", payer.id),
        # 2300 claim; CLM05 = place of service : B (professional) : 1 (original claim)
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
        ),
        *body,
    ]
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
