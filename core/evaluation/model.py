"""Value types: the encounter a user gives, and the outcome the engine returns.

Everything here is immutable (``attrs.frozen``); sequences are tuples, dates are ``datetime.date``,
money is ``Decimal``. These are the types hook implementations receive and return, so they are
public API: fields are added, never renamed or removed.

The JSON shapes are documented in ``docs/encounter-format.md`` and ``docs/outcome-format.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import attrs

from . import vocab
from .errors import EncounterError
from .text import check_text, excerpt

__all__ = [
    "ADJUSTMENT_GROUPS",
    "OUTCOME_VERSION",
    "SEVERITIES",
    "STATUSES",
    "Adjustment",
    "Billed",
    "Care",
    "ClaimLine",
    "Difference",
    "Encounter",
    "Finding",
    "Outcome",
    "Payer",
    "Procedure",
    "Provider",
    "Service",
    "TraceEntry",
]

OUTCOME_VERSION = 1
STATUSES = ("billable", "expected_denial", "not_billable")
SEVERITIES = ("error", "expected_denial", "warning", "info")
Status = Literal["billable", "expected_denial", "not_billable"]
Severity = Literal["error", "expected_denial", "warning", "info"]

#: Direct one-on-one minutes above this for one service are taken to be a typing error.
MAX_SERVICE_MINUTES = 480

#: Units of service a billed line may carry (X12 SV104 holds at most this many whole units here).
MAX_BILLED_UNITS = 9999

_NPI = re.compile(r"^\d{10}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _tuple(value: Iterable[Any] | None) -> tuple[Any, ...]:
    return tuple(value) if value is not None else ()


# --------------------------------------------------------------------------------------------
# Reading mappings with messages that name the field


class _Reader:
    """Reads one JSON/TOML object, raising EncounterError that names the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise EncounterError(path or "encounter", f"expected an object, found {_kind(data)}")
        self.data = data
        self.path = path

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def check_keys(self, known: Sequence[str]) -> None:
        for key in self.data:
            if key not in known:
                raise EncounterError(
                    self.sub(str(key)),
                    f"unknown field; expected one of: {', '.join(known)}",
                )

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def text(self, key: str, *, required: bool = False) -> str | None:
        if not self.has(key):
            if required:
                raise EncounterError(self.sub(key), "required field is missing")
            return None
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise EncounterError(self.sub(key), f"expected a non-empty string, found {_show(value)}")
        return value.strip()

    def flag(self, key: str) -> bool | None:
        if not self.has(key):
            return None
        value = self.data[key]
        if not isinstance(value, bool):
            raise EncounterError(self.sub(key), f"expected true or false, found {_show(value)}")
        return value

    def whole(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
        if not self.has(key):
            return None
        value = self.data[key]
        limits = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncounterError(self.sub(key), f"expected a whole number {limits}, found {_show(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            raise EncounterError(self.sub(key), f"expected a whole number {limits}, found {value}")
        return value

    def date(self, key: str, *, required: bool = False) -> dt.date | None:
        if not self.has(key):
            if required:
                raise EncounterError(self.sub(key), "required field is missing (an ISO date, e.g. 2025-03-12)")
            return None
        value = self.data[key]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise EncounterError(self.sub(key), f"expected an ISO date like 2025-03-12, found {_show(value)}")

    def time(self, key: str) -> dt.time | None:
        if not self.has(key):
            return None
        value = self.data[key]
        if isinstance(value, dt.time) and value.second == 0 and value.microsecond == 0 and value.tzinfo is None:
            return value
        if isinstance(value, str):
            match = _HHMM.match(value)
            if match:
                return dt.time(int(match[1]), int(match[2]))
        raise EncounterError(self.sub(key), f"expected a clock time HH:MM (24-hour), found {_show(value)}")

    def choice(self, key: str, known: Sequence[str], *, what: str, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        if value not in known:
            raise EncounterError(self.sub(key), f"unknown {what} {_show(value)}; known: {', '.join(known)}")
        return value

    def array(self, key: str) -> list[Any]:
        if not self.has(key):
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise EncounterError(self.sub(key), f"expected an array, found {_show(value)}")
        return value

    def names(self, key: str, known: Sequence[str], *, what: str) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.array(key)):
            if not isinstance(item, str) or item not in known:
                raise EncounterError(
                    f"{self.sub(key)}[{i}]", f"unknown {what} {_show(item)}; known: {', '.join(known)}"
                )
            if item not in out:
                out.append(item)
        return tuple(out)

    def ints(self, key: str, *, minimum: int, maximum: int | None = None) -> tuple[int, ...]:
        out = []
        for i, item in enumerate(self.array(key)):
            ok = isinstance(item, int) and not isinstance(item, bool) and item >= minimum
            if ok and maximum is not None and item > maximum:
                ok = False
            if not ok:
                bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
                raise EncounterError(f"{self.sub(key)}[{i}]", f"expected a whole number {bound}, found {_show(item)}")
            out.append(item)
        return tuple(out)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        return excerpt(value)
    if isinstance(value, int | float | bool) or value is None:
        shown = json.dumps(value)
        return shown if len(shown) <= 40 else f"{shown[:40]}… ({len(shown)} digits)"
    return _kind(value)


def _code(reader: _Reader, key: str, catalogue: vocab.CodeCatalogue, *, required: bool) -> str | None:
    code = reader.text(key, required=required)
    if code is None:
        return None
    code = code.upper()
    if not vocab.CODE_PATTERN.match(code):
        shown = repr(code) if len(code) <= 40 else excerpt(code)
        raise EncounterError(reader.sub(key), f'expected a 5-character CPT/HCPCS code like "97140", found {shown}')
    if code not in catalogue:
        known = ", ".join(sorted(catalogue.codes))
        raise EncounterError(reader.sub(key), f"unknown code {code!r}; known codes: {known}")
    return code


# --------------------------------------------------------------------------------------------
# Encounter


@attrs.frozen
class Provider:
    """Who furnished the services: a provider type (DC, PT, LMT, ...) and an optional NPI."""

    type: str
    npi: str | None = None


@attrs.frozen
class Care:
    """Episode and coverage facts that rules depend on (phase, visit number, ABN, plan flags)."""

    phase: str | None = None
    visit_number: int | None = None
    episode_start: dt.date | None = None
    injury_date: dt.date | None = None
    prior_massage_visits: int | None = None
    improvement_documented: bool | None = None
    treatment_modified: bool | None = None
    plan_of_care: bool | None = None
    written_authorization: bool | None = None
    post_surgical: bool | None = None
    abn: str | None = None
    ytd_therapy_charges: Decimal | None = None
    bill_noncovered: bool = False
    zelis: bool = False
    last_xray: dt.date | None = None


@attrs.frozen
class Billed:
    """What a claim line as billed says: units, modifiers in claim order, and the line charge.

    An encounter entry carries one when it comes from a claim someone already coded (JSON,
    FHIR ``Claim.item`` quantity and modifier, X12 837P ``SV1``). ``units`` None means the claim
    did not say; ``modifiers`` keep the billed order, repeats included.
    """

    units: int | None = None
    modifiers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    charge: Decimal | None = None

    def to_mapping(self) -> dict[str, Any]:
        """Return the billed facts as in encounter format v1 (absent fields omitted)."""
        out: dict[str, Any] = {}
        if self.units is not None:
            out["units"] = self.units
        out["modifiers"] = list(self.modifiers)
        if self.charge is not None:
            out["charge"] = str(self.charge)
        return out


_BILLED_KEYS = ("units", "modifiers", "charge")


def _decimal(reader: _Reader, key: str, example: str) -> Decimal | None:
    if not reader.has(key):
        return None
    raw = reader.data[key]
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise InvalidOperation
        value = Decimal(str(raw).strip())
        if not value.is_finite() or value < 0 or len(str(raw)) > 20:
            raise InvalidOperation
    except InvalidOperation:
        raise EncounterError(
            reader.sub(key), f'expected a non-negative decimal amount as a string like "{example}", found {_show(raw)}'
        ) from None
    return value


def _billed(parent: _Reader) -> Billed | None:
    if not parent.has("billed"):
        return None
    br = _Reader(parent.data["billed"], parent.sub("billed"))
    br.check_keys(_BILLED_KEYS)
    modifiers = []
    for i, raw in enumerate(br.array("modifiers")):
        mod = raw.strip().upper() if isinstance(raw, str) else None
        if mod is None or not _MODIFIER.match(mod):
            raise EncounterError(
                f"{br.sub('modifiers')}[{i}]", f'expected a 2-character modifier like "GP", found {_show(raw)}'
            )
        modifiers.append(mod)
    billed = Billed(
        units=br.whole("units", minimum=1, maximum=MAX_BILLED_UNITS),
        modifiers=tuple(modifiers),
        charge=_decimal(br, "charge", "120.00"),
    )
    if billed.units is None and not billed.modifiers and billed.charge is None:
        raise EncounterError(parent.sub("billed"), "expected at least one of units, modifiers, charge; found none")
    return billed


@attrs.frozen
class Service:
    """A soft-tissue or therapy service: what was done, for how long, where and why.

    ``code`` or ``technique`` is given; ``minutes`` are direct one-on-one minutes. ``start`` and
    ``end`` place the service in the visit's timeline (used for same-time conflicts).
    ``assistant_minutes`` are the minutes of it a therapy assistant (PTA, OTA) furnished apart from
    the therapist (Medicare's CQ/CO de minimis rule); None when no assistant took part.
    """

    code: str | None = None
    technique: str | None = None
    intent: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    minutes: int | None = None
    start: dt.time | None = None
    end: dt.time | None = None
    regions: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    necessity: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    diagnosis_pointers: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    assistant_minutes: int | None = None
    billed: Billed | None = None
    #: The practice's charge for one unit of the code the service is billed under (its price list);
    #: the line's charge is this times the line's units. For a claim as billed, ``billed.charge``
    #: (the line total) is used instead. Added in 0.2.0.
    unit_charge: Decimal | None = None


@attrs.frozen
class Procedure:
    """An untimed same-day service with a code: CMT, E/M, evaluation."""

    code: str
    regions: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    diagnosis_pointers: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    separately_identifiable: bool | None = None
    billed: Billed | None = None
    #: The practice's charge for one unit of the procedure's code (see :attr:`Service.unit_charge`).
    unit_charge: Decimal | None = None


_ENCOUNTER_KEYS = (
    "id",
    "date_of_service",
    "provider",
    "care",
    "diagnoses",
    "services",
    "procedures",
    "documentation",
    "patient",
    "episode",
    "charges",
)
_PROVIDER_KEYS = ("type", "npi")
_CARE_KEYS = tuple(f.name for f in attrs.fields(Care))
_SERVICE_KEYS = (
    "code",
    "technique",
    "intent",
    "minutes",
    "start",
    "end",
    "regions",
    "necessity",
    "diagnosis_pointers",
    "assistant_minutes",
    "billed",
    "unit_charge",
)
_PROCEDURE_KEYS = ("code", "regions", "diagnosis_pointers", "separately_identifiable", "billed", "unit_charge")


@attrs.frozen
class Encounter:
    """One visit: date of service, provider, care facts, diagnoses, services and procedures.

    Build one from JSON-like data with :meth:`from_mapping`; write it back with :meth:`to_mapping`.
    ``documentation`` is None when the caller did not say what the note contains (documentation
    checks are then skipped), or the tuple of elements present in the note.

    ``patient`` and ``episode`` are opaque keys (a pseudonymous patient id, never a name; an
    episode or injury id) that claim history (:mod:`payerpolicy.history`) counts visits by; no rule
    reads them and payerpolicy never logs them.
    """

    date_of_service: dt.date
    provider: Provider
    id: str | None = None
    care: Care = Care()
    diagnoses: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    services: tuple[Service, ...] = attrs.field(default=(), converter=_tuple)
    procedures: tuple[Procedure, ...] = attrs.field(default=(), converter=_tuple)
    documentation: tuple[str, ...] | None = None
    patient: str | None = None
    episode: str | None = None
    #: The practice's charge per unit of each code (its charge master), in dollars; added in 0.2.0.
    #: A line charge is this (for the line's final code) times the units when the entry has no
    #: ``billed.charge`` and no ``unit_charge``.
    charges: tuple[tuple[str, Decimal], ...] = attrs.field(default=(), converter=_tuple)

    def charge_for(self, code: str) -> Decimal | None:
        """The per-unit charge :attr:`charges` gives ``code``, or None when it gives none."""
        for known, amount in self.charges:
            if known == code:
                return amount
        return None

    @property
    def as_billed(self) -> bool:
        """Whether the encounter is a claim as billed: some service or procedure says what was billed."""
        return any(s.billed is not None for s in self.services) or any(p.billed is not None for p in self.procedures)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, catalogue: vocab.CodeCatalogue | None = None) -> Encounter:
        """Validate an encounter in format v1 and build it.

        Raises :class:`~payerpolicy.errors.EncounterError` naming the first field that is wrong
        and what was expected.
        """
        catalogue = catalogue or vocab.default_catalogue()
        check_text(data)  # every string valid Unicode, no key given twice
        r = _Reader(data, "")
        r.check_keys(_ENCOUNTER_KEYS)
        enc_id = r.text("id")
        patient = r.text("patient")
        episode = r.text("episode")
        if episode is not None and patient is None:
            raise EncounterError("patient", "required when episode is given (an episode belongs to a patient)")
        dos = r.date("date_of_service", required=True)
        assert dos is not None

        if not r.has("provider"):
            raise EncounterError(
                "provider.type", "required field is missing; known: " + ", ".join(vocab.PROVIDER_TYPES)
            )
        pr = _Reader(r.data["provider"], "provider")
        pr.check_keys(_PROVIDER_KEYS)
        if not pr.has("type"):
            raise EncounterError(
                "provider.type", "required field is missing; known: " + ", ".join(vocab.PROVIDER_TYPES)
            )
        ptype = pr.choice("type", vocab.PROVIDER_TYPES, what="provider type", required=True)
        assert ptype is not None
        npi = pr.text("npi")
        if npi is not None and not _NPI.match(npi):
            raise EncounterError("provider.npi", f"expected 10 digits, found {npi!r}")

        care = Care()
        if r.has("care"):
            cr = _Reader(r.data["care"], "care")
            cr.check_keys(_CARE_KEYS)
            ytd = None
            if cr.has("ytd_therapy_charges"):
                raw = cr.data["ytd_therapy_charges"]
                try:
                    if isinstance(raw, bool) or not isinstance(raw, str | int):
                        raise InvalidOperation
                    ytd = Decimal(str(raw))
                    if not ytd.is_finite() or ytd < 0:
                        raise InvalidOperation
                except InvalidOperation:
                    raise EncounterError(
                        "care.ytd_therapy_charges",
                        f'expected a non-negative decimal amount as a string like "2450.00", found {_show(raw)}',
                    ) from None
            care = Care(
                phase=cr.choice("phase", vocab.PHASES, what="phase"),
                visit_number=cr.whole("visit_number", minimum=1, maximum=10000),
                episode_start=cr.date("episode_start"),
                injury_date=cr.date("injury_date"),
                prior_massage_visits=cr.whole("prior_massage_visits", minimum=0, maximum=10000),
                improvement_documented=cr.flag("improvement_documented"),
                treatment_modified=cr.flag("treatment_modified"),
                plan_of_care=cr.flag("plan_of_care"),
                written_authorization=cr.flag("written_authorization"),
                post_surgical=cr.flag("post_surgical"),
                abn=cr.choice("abn", vocab.ABN_KINDS, what="ABN state"),
                ytd_therapy_charges=ytd,
                bill_noncovered=bool(cr.flag("bill_noncovered")),
                zelis=bool(cr.flag("zelis")),
                last_xray=cr.date("last_xray"),
            )

        diagnoses = []
        for i, dx in enumerate(r.array("diagnoses")):
            if not isinstance(dx, str) or not re.match(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$", dx.strip().upper()):
                raise EncounterError(f"diagnoses[{i}]", f'expected an ICD-10-CM code like "M54.50", found {_show(dx)}')
            diagnoses.append(dx.strip().upper())
        n_dx = len(diagnoses)

        def pointers(reader: _Reader) -> tuple[int, ...]:
            ptrs = reader.ints("diagnosis_pointers", minimum=1)
            for i, p in enumerate(ptrs):
                if p > n_dx:
                    raise EncounterError(
                        f"{reader.sub('diagnosis_pointers')}[{i}]",
                        f"points to diagnosis {p} but the encounter lists {n_dx} diagnos{'is' if n_dx == 1 else 'es'}",
                    )
            return ptrs

        services = []
        for i, raw in enumerate(r.array("services")):
            sr = _Reader(raw, f"services[{i}]")
            sr.check_keys(_SERVICE_KEYS)
            code = _code(sr, "code", catalogue, required=False)
            technique = sr.choice("technique", vocab.TECHNIQUES, what="technique")
            if code is None and technique is None:
                raise EncounterError(f"services[{i}]", 'expected "code" or "technique"; found neither')
            minutes = sr.whole("minutes", minimum=0, maximum=MAX_SERVICE_MINUTES)
            start, end = sr.time("start"), sr.time("end")
            if (start is None) != (end is None):
                raise EncounterError(
                    f"services[{i}].{'end' if end is None else 'start'}",
                    "expected start and end together, found only " + ("start" if end is None else "end"),
                )
            if start is not None and end is not None:
                if end <= start:
                    raise EncounterError(
                        f"services[{i}].end", f"expected a time after start {start:%H:%M}, found {end:%H:%M}"
                    )
                span = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
                if minutes is not None and minutes > span:
                    raise EncounterError(
                        f"services[{i}].minutes",
                        f"expected at most the {span} minutes from {start:%H:%M} to {end:%H:%M}, found {minutes}",
                    )
            assistant = sr.whole("assistant_minutes", minimum=0, maximum=MAX_SERVICE_MINUTES)
            if assistant is not None and minutes is not None and assistant > minutes:
                raise EncounterError(
                    f"services[{i}].assistant_minutes",
                    f"expected at most the service's {minutes} minutes, found {assistant}",
                )
            services.append(
                Service(
                    code=code,
                    technique=technique,
                    intent=sr.names("intent", vocab.INTENTS, what="intent"),
                    minutes=minutes,
                    start=start,
                    end=end,
                    regions=sr.names("regions", vocab.REGIONS, what="region"),
                    necessity=sr.names("necessity", vocab.NECESSITY_CONDITIONS, what="necessity condition"),
                    diagnosis_pointers=pointers(sr),
                    billed=_billed(sr),
                    assistant_minutes=assistant,
                    unit_charge=_decimal(sr, "unit_charge", "45.00"),
                )
            )

        procedures = []
        for i, raw in enumerate(r.array("procedures")):
            pr2 = _Reader(raw, f"procedures[{i}]")
            pr2.check_keys(_PROCEDURE_KEYS)
            code = _code(pr2, "code", catalogue, required=True)
            assert code is not None
            procedures.append(
                Procedure(
                    code=code,
                    regions=pr2.names("regions", vocab.REGIONS, what="region"),
                    diagnosis_pointers=pointers(pr2),
                    separately_identifiable=pr2.flag("separately_identifiable"),
                    billed=_billed(pr2),
                    unit_charge=_decimal(pr2, "unit_charge", "65.00"),
                )
            )

        if not services and not procedures:
            raise EncounterError("services", 'expected at least one entry in "services" or "procedures"')

        documentation = None
        if r.has("documentation"):
            documentation = r.names("documentation", vocab.DOCUMENTATION_ELEMENTS, what="documentation element")

        charges: list[tuple[str, Decimal]] = []
        if r.has("charges"):
            raw_charges = r.data["charges"]
            if not isinstance(raw_charges, Mapping):
                raise EncounterError(
                    "charges",
                    f'expected an object of code: amount, like {{"97110": "40.00"}}, found {_show(raw_charges)}',
                )
            ch = _Reader(raw_charges, "charges")
            for key in raw_charges:
                code = str(key).strip().upper()
                if not vocab.CODE_PATTERN.match(code):
                    raise EncounterError(
                        ch.sub(str(key)),
                        f"expected a procedure code (5 characters, e.g. 97110) as the key, found {_show(key)}",
                    )
                amount = _decimal(ch, str(key), "40.00")
                assert amount is not None
                if amount.as_tuple().exponent < -2:  # type: ignore[operator]
                    raise EncounterError(
                        ch.sub(str(key)), f"expected dollars and at most 2 decimals, found {_show(raw_charges[key])}"
                    )
                charges.append((code, amount))

        return cls(
            id=enc_id,
            date_of_service=dos,
            provider=Provider(type=ptype, npi=npi),
            care=care,
            diagnoses=tuple(diagnoses),
            services=tuple(services),
            procedures=tuple(procedures),
            documentation=documentation,
            patient=patient,
            episode=episode,
            charges=tuple(charges),
        )

    def to_mapping(self) -> dict[str, Any]:
        """Return the encounter in format v1 as plain JSON-ready data (absent fields omitted)."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        if self.patient is not None:
            out["patient"] = self.patient
        if self.episode is not None:
            out["episode"] = self.episode
        out["date_of_service"] = self.date_of_service.isoformat()
        out["provider"] = _drop_none({"type": self.provider.type, "npi": self.provider.npi})
        care = {}
        for f in attrs.fields(Care):
            value = getattr(self.care, f.name)
            if value is None or (f.name in ("bill_noncovered", "zelis") and value is False):
                continue
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif isinstance(value, Decimal):
                value = str(value)
            care[f.name] = value
        if care:
            out["care"] = care
        if self.diagnoses:
            out["diagnoses"] = list(self.diagnoses)
        if self.services:
            out["services"] = [
                _drop_none(
                    {
                        "code": s.code,
                        "technique": s.technique,
                        "intent": list(s.intent) or None,
                        "minutes": s.minutes,
                        "start": s.start.strftime("%H:%M") if s.start else None,
                        "end": s.end.strftime("%H:%M") if s.end else None,
                        "regions": list(s.regions) or None,
                        "necessity": list(s.necessity) or None,
                        "diagnosis_pointers": list(s.diagnosis_pointers) or None,
                        "billed": s.billed.to_mapping() if s.billed else None,
                        "assistant_minutes": s.assistant_minutes,
                        "unit_charge": str(s.unit_charge) if s.unit_charge is not None else None,
                    }
                )
                for s in self.services
            ]
        if self.procedures:
            out["procedures"] = [
                _drop_none(
                    {
                        "code": p.code,
                        "regions": list(p.regions) or None,
                        "diagnosis_pointers": list(p.diagnosis_pointers) or None,
                        "separately_identifiable": p.separately_identifiable,
                        "billed": p.billed.to_mapping() if p.billed else None,
                        "unit_charge": str(p.unit_charge) if p.unit_charge is not None else None,
                    }
                )
                for p in self.procedures
            ]
        if self.documentation is not None:
            out["documentation"] = list(self.documentation)
        if self.charges:
            out["charges"] = {code: str(amount) for code, amount in self.charges}
        return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Payer and outcome


@attrs.frozen
class Payer:
    """A payer a plugin serves: its id, display name and policy file.

    ``policy`` is either a path to a TOML file or a ``(package, resource name)`` pair read with
    :mod:`importlib.resources` (how plugins ship policies inside their wheel).
    ``plugin`` is filled in by the host with the name of the plugin that registered the payer.
    """

    id: str
    name: str
    policy: str | tuple[str, str]
    description: str = ""
    plugin: str = ""


@attrs.frozen
class ClaimLine:
    """One line of the claim: code, units, modifiers in claim order, and its status.

    ``service`` is the index of the encounter entry the line comes from, in ``services`` or
    ``procedures`` as ``origin`` says. Lines that are not billable stay in the outcome so a user
    sees why.
    """

    code: str
    units: int
    modifiers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    status: Status = "billable"
    minutes: int | None = None
    regions: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    diagnosis_pointers: tuple[int, ...] = attrs.field(default=(), converter=_tuple)
    service: int = 0
    origin: Literal["services", "procedures"] = "services"
    billed: Billed | None = None
    #: The line's charge (as billed, or the entry's unit charge times the units); None when not known.
    charge: Decimal | None = None
    #: The expected allowed amount under the payer's fee schedule; None when no fee is known.
    allowed: Decimal | None = None

    @property
    def on_claim(self) -> bool:
        """Whether the line goes on the claim (billable or expected to be denied)."""
        return self.status != "not_billable"

    def to_mapping(self) -> dict[str, Any]:
        """Return the line in outcome format v1."""
        return {
            "code": self.code,
            "units": self.units,
            "modifiers": list(self.modifiers),
            "status": self.status,
            "minutes": self.minutes,
            "regions": list(self.regions),
            "diagnosis_pointers": list(self.diagnosis_pointers),
            "service": self.service,
            "origin": self.origin,
            "billed": self.billed.to_mapping() if self.billed is not None else None,
            "charge": _money(self.charge),
            "allowed": _money(self.allowed),
        }


def _money(value: Decimal | None) -> str | None:
    """An amount as a decimal string with two places (cents, half up)."""
    if value is None:
        return None
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"
#: Claim adjustment group codes (X12): contractual obligation, patient responsibility, other, payer initiated.
ADJUSTMENT_GROUPS = ("CO", "PR", "OA", "PI")


@attrs.frozen
class Adjustment:
    """The denial in remittance (835) terms: group code, CARC, RARCs and the public source of the pairing.

    Added in 0.2.0 (outcome format v1, additive): a finding that says the payer denies or reduces its
    line carries one, from the policy data ``policies/adjustments.toml``.
    """

    group: str
    carc: str
    rarc: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    source: str = ""

    def to_mapping(self) -> dict[str, Any]:
        """Return the adjustment as in outcome format v1."""
        return {"group": self.group, "carc": self.carc, "rarc": list(self.rarc), "source": self.source}


@attrs.frozen
class Finding:
    """A message about the outcome: a denial, a warning, missing documentation, a note.

    ``rule`` is the rule id (``CORE-SAME-01``) and ``source`` the document behind it; ``line`` is
    the index of the line the finding is about, or None for the whole encounter. A rule or hook
    may leave ``rule``, ``source`` and ``plugin`` empty: the engine fills them in from the
    :class:`~payerpolicy.kinds.Change` that carries the finding.
    """

    code: str
    severity: Severity
    message: str
    rule: str = ""
    source: str = ""
    line: int | None = None
    plugin: str = ""
    adjustment: Adjustment | None = None

    def to_mapping(self) -> dict[str, Any]:
        """Return the finding in outcome format v1."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "rule": self.rule,
            "source": self.source,
            "line": self.line,
            "plugin": self.plugin,
            "adjustment": self.adjustment.to_mapping() if self.adjustment is not None else None,
        }


DIFFERENCE_KINDS = ("repair", "edit")


@attrs.frozen
class Difference:
    """One way a claim as billed differs from what the payer's policy expects.

    ``kind`` is ``repair`` (an administrative change that never touches clinical content, which a
    tool may apply: a missing GP, 59 → XS, modifier order, pointer order) or ``edit`` (a change a
    person must decide: units, code, a line that will not be paid). ``line`` indexes the outcome's
    lines; ``billed`` and ``expected`` are the field's values (JSON-ready) on the claim and in the
    policy's lines. Nothing is ever applied silently: the outcome lists every difference.
    """

    kind: Literal["repair", "edit"]
    code: str
    field: str
    line: int | None
    billed: Any
    expected: Any
    message: str
    rule: str = ""
    source: str = ""

    def to_mapping(self) -> dict[str, Any]:
        """Return the difference in outcome format v1."""
        return {
            "kind": self.kind,
            "code": self.code,
            "field": self.field,
            "line": self.line,
            "billed": _jsonable(self.billed),
            "expected": _jsonable(self.expected),
            "message": self.message,
            "rule": self.rule,
            "source": self.source,
        }


@attrs.frozen
class TraceEntry:
    """One change a rule made to a line: which rule, which plugin, which field, before → after."""

    rule: str
    plugin: str
    line: int | None
    field: str
    before: Any
    after: Any
    source: str = ""
    reason: str = ""

    def to_mapping(self) -> dict[str, Any]:
        """Return the entry in outcome format v1."""
        return {
            "rule": self.rule,
            "plugin": self.plugin,
            "line": self.line,
            "field": self.field,
            "before": _jsonable(self.before),
            "after": _jsonable(self.after),
            "source": self.source,
            "reason": self.reason,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


@attrs.frozen
class PayerRef:
    """The payer an outcome is for, with the version of the policy applied."""

    id: str
    name: str
    policy_version: str


@attrs.frozen
class Outcome:
    """What one payer's policy makes of one encounter: lines, findings and the trace of changes.

    ``diagnoses`` is the claim's diagnosis list; line pointers index into it. It holds at most 12
    when the policy's claim-form rule (CORE-CLAIM-01) applies and the claim can be built.
    """

    encounter: str | None
    payer: PayerRef
    lines: tuple[ClaimLine, ...] = attrs.field(converter=_tuple)
    findings: tuple[Finding, ...] = attrs.field(converter=_tuple)
    trace: tuple[TraceEntry, ...] = attrs.field(converter=_tuple)
    diagnoses: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    differences: tuple[Difference, ...] = attrs.field(default=(), converter=_tuple)
    as_billed: bool = False
    #: The sum of the lines' expected allowed amounts; None when no line could be priced.
    expected_total: Decimal | None = None
    #: The sum of the lines' charges; None when no line has a charge.
    charge_total: Decimal | None = None
    #: Dollars the findings took off the lines (denied or cut units at full fee, payment reductions), by finding code.
    cost_by_finding: Mapping[str, Decimal] = attrs.field(factory=dict, hash=False)
    #: Indexes of claim lines whose amount is not known (their allowed is None).
    unpriced_lines: tuple[int, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def repairs(self) -> tuple[Difference, ...]:
        """The differences a tool may apply to the claim as billed."""
        return tuple(d for d in self.differences if d.kind == "repair")

    @property
    def edits(self) -> tuple[Difference, ...]:
        """The differences a person must decide."""
        return tuple(d for d in self.differences if d.kind == "edit")

    @property
    def claim_lines(self) -> tuple[ClaimLine, ...]:
        """The lines that go on the claim (billable or expected denial)."""
        return tuple(line for line in self.lines if line.on_claim)

    def to_mapping(self, *, trace: bool = True) -> dict[str, Any]:
        """Return the outcome in format v1 as plain JSON-ready data.

        ``trace=False`` leaves the ``trace`` key out (batch output without ``--trace``): the trace
        is most of an outcome's size, and is then never turned into data.
        """
        data = {
            "outcome_version": OUTCOME_VERSION,
            "encounter": self.encounter,
            "payer": {"id": self.payer.id, "name": self.payer.name, "policy_version": self.payer.policy_version},
            "diagnoses": list(self.diagnoses),
            "lines": [line.to_mapping() for line in self.lines],
            "findings": [f.to_mapping() for f in self.findings],
            "trace": [t.to_mapping() for t in self.trace] if trace else None,
            "as_billed": self.as_billed,
            "differences": [d.to_mapping() for d in self.differences],
            "expected_total": _money(self.expected_total),
            "charge_total": _money(self.charge_total),
            "cost_by_finding": {k: _money(v) for k, v in sorted(self.cost_by_finding.items())},
            "unpriced_lines": list(self.unpriced_lines),
        }
        if not trace:
            del data["trace"]
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return the outcome as JSON text (outcome format v1)."""
        return json.dumps(self.to_mapping(), indent=indent, ensure_ascii=False)
