"""X12 837P (005010X222A1) in: every claim of an interchange as an encounter, checked as billed.

:func:`read_837p` reads a file with many claims (several ``ISA``/``GS``/``ST``; 2000A billing
provider, 2000B subscriber with ``SBR`` and the 2010BB payer, optional 2000C patient, 2300 ``CLM`` +
``HI``, 2310B rendering provider, 2400 ``LX`` + ``SV1`` + ``DTP*472``) and gives, claim by claim,
a :class:`ClaimRecord` (the claim as an encounter mapping of format v1, each line with what was
billed, and the payer it is for) or a :class:`ClaimError` (one line naming the segment and the
element). The payer comes from a user-editable :class:`PayerMap` (``policies/x12_payers.toml``).
:func:`rewrite_lines` changes the modifiers and diagnosis pointers of some ``SV1`` segments and
leaves every other byte of the file as it was.

Problems of the envelope (no ``ISA``, a bad ``ISA``, a missing segment terminator, a version other
than 005010X222A1, a byte that is not an X12 character, wrong ``SE``/``GE``/``IEA`` counts or
control numbers, a broken ``HL`` tree) raise :class:`X12Error` before any claim is given; problems
inside one claim give a :class:`ClaimError` for that claim and the next claims still read.
``docs/x12.md`` ("837P in") documents the mapping. No third-party library is needed: the
delimiters come from the ``ISA`` and the byte offsets of each segment are kept, which
:func:`rewrite_lines` needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ..evaluation import vocab
from ..evaluation.errors import EncounterError, PayerPolicyError, one_line
from ..evaluation.model import Encounter
from .taxonomy import TAXONOMY_PROVIDER_TYPES, provider_type_for_taxonomy
from .x12 import Envelope

#: The member id the 837P writer (:class:`~payerpolicy.x12.Envelope`) writes when it has none: no patient key.
PLACEHOLDER_MEMBER_ID = Envelope().subscriber_member_id

__all__ = [
    "IMPLEMENTATION",
    "PLACEHOLDER_MEMBER_ID",
    "TAXONOMY_PROVIDER_TYPES",
    "ClaimError",
    "ClaimRecord",
    "LineChange",
    "LineRef",
    "PayerMap",
    "PayerRule",
    "X12Error",
    "load_payer_map",
    "patient_key",
    "payer_map_from_mapping",
    "provider_type_for_taxonomy",
    "read_837p",
    "read_837p_file",
    "rewrite_lines",
    "to_encounter",
]

#: The only implementation guide read: 837 Health Care Claim: Professional, 5010 with addenda (GS08, ST03).
IMPLEMENTATION = "005010X222A1"

_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")
_NPI = re.compile(r"^\d{10}$")
_PAYER_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_LINE_BREAKS = "\r\n"
_MAX_UNITS = 9999


# --------------------------------------------------------------------------------------------
# Results and errors


class X12Error(PayerPolicyError):
    """An 837P whose envelope cannot be read: nothing of the file is checked.

    ``segment`` is the segment's number inside its transaction set (``ST`` is 1, as X12 validators
    count) or, for ``ISA``/``GS``/``GE``/``IEA`` and text outside any transaction set, its number in
    the file (``scope`` says which); ``segment_id`` and ``element`` (``ISA16``, ``SE01``) name the
    place when there is one. ``str()`` is one line that starts with the source.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        segment: int | None = None,
        segment_id: str | None = None,
        element: str | None = None,
        scope: str = "file",
    ) -> None:
        self.source = source
        self.message = message
        self.segment = segment
        self.segment_id = segment_id
        self.element = element
        self.scope = scope
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.segment is not None:
            what = f"{self.segment_id} " if self.segment_id else ""
            where.append(f"{what}segment {self.segment} of {self.scope}")
        elif self.segment_id:
            where.append(f"{self.segment_id} segment")
        if self.element:
            where.append(self.element)
        place = ", ".join(where)
        text = f"{self.source}: {place}: {self.message}" if place else f"{self.source}: {self.message}"
        return one_line(text)  # a segment id or value echoed from hostile bytes never breaks the line


@attrs.frozen
class ClaimError:
    """A claim that cannot be read as an encounter; the other claims of the file still are.

    ``position`` is the claim's 0-based index in the file, ``claim_id`` its ``CLM01`` (None when
    there is none), ``segment`` the offending segment's number inside its transaction set (``ST``
    is 1) and ``transaction`` that set's control number (``ST02``). ``element`` is the X12 element
    (``SV101-2``, ``PRV03``) or None when the problem is a missing segment. ``message`` is one line.
    """

    position: int
    claim_id: str | None
    segment: int
    segment_id: str
    element: str | None
    message: str
    transaction: str = ""

    def __str__(self) -> str:
        claim = f"claim {self.position + 1}" + (f" ({self.claim_id})" if self.claim_id else "")
        element = f", {self.element}" if self.element else ""
        return one_line(
            f"{claim}: {self.segment_id} segment {self.segment} of transaction set {self.transaction}{element}: {self.message}"
        )


@attrs.frozen
class LineRef:
    """Where one claim line (one ``LX`` loop) went in the encounter and where its ``SV1`` is.

    ``line`` is the 0-based index of the line in the claim (the key :func:`rewrite_lines` takes),
    ``origin`` and ``entry`` the encounter list (``services`` or ``procedures``) and the index in
    it, ``segment`` the ``SV1`` segment's number inside the transaction set and ``lx`` the ``LX01``
    line number as written.
    """

    line: int
    origin: str
    entry: int
    segment: int
    lx: str


@attrs.frozen
class ClaimRecord:
    """One claim read from an 837P: the encounter it describes and the payer it is for.

    ``encounter`` is a mapping in encounter format v1 (``docs/encounter-format.md``) whose services
    and procedures each carry ``billed`` (units, modifiers in claim order, charge) and whose
    ``patient`` and ``episode`` keys come from the subscriber's member id and the property and
    casualty claim number (:func:`patient_key`). ``payer`` is the
    payer id the :class:`PayerMap` gives, or None when no rule matches (check the claim against every
    payer). ``payer_name`` (NM103) and ``payer_identifier`` (NM109) are the 2010BB payer's,
    ``filing_indicator`` is ``SBR09``. ``segment`` is the ``CLM`` segment's number inside transaction
    set ``transaction`` and ``lines`` says where each claim line went.
    """

    position: int
    claim_id: str
    segment: int
    encounter: Mapping[str, Any]
    payer: str | None
    payer_name: str | None
    payer_identifier: str | None
    filing_indicator: str | None
    lines: tuple[LineRef, ...]
    transaction: str = ""


@attrs.frozen
class LineChange:
    """New modifiers (``SV101-3`` to ``SV101-6``) and/or diagnosis pointers (``SV107``) for one line; None keeps what is there."""

    modifiers: tuple[str, ...] | None = None
    diagnosis_pointers: tuple[int, ...] | None = None


# --------------------------------------------------------------------------------------------
# Payer mapping


@attrs.frozen
class PayerRule:
    """One rule of a :class:`PayerMap`: every condition that is given must hold (an empty one is not checked).

    ``payer_ids`` are 2010BB ``NM109`` values (exact, case-insensitive); ``names`` regular
    expressions searched in the 2010BB ``NM103`` payer name (case-insensitive, spaces collapsed);
    ``filing_indicators`` ``SBR09`` codes; ``states`` the two-letter state of the service facility
    (2310C ``N402``), else of the billing provider (2010AA ``N402``).
    """

    payer: str
    payer_ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    filing_indicators: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    note: str = ""

    def matches(self, payer_identifier: str | None, payer_name: str | None, filing_indicator: str | None, state: str | None) -> bool:
        """Whether this rule holds for a claim with these 837P values."""
        if self.payer_ids and (payer_identifier or "").upper() not in self.payer_ids:
            return False
        if self.names:
            name = " ".join((payer_name or "").upper().split())
            if not any(re.search(p, name, re.IGNORECASE) for p in self.names):
                return False
        if self.filing_indicators and (filing_indicator or "").upper() not in self.filing_indicators:
            return False
        return not (self.states and (state or "").upper() not in self.states)


@attrs.frozen
class PayerMap:
    """The payer of an 837P claim: the first :class:`PayerRule` that holds gives it (``docs/x12.md``)."""

    rules: tuple[PayerRule, ...] = ()
    source: str = "<payer map>"

    def resolve(
        self, payer_identifier: str | None, payer_name: str | None, filing_indicator: str | None, state: str | None = None
    ) -> str | None:
        """The payer id of the first rule that holds, or None when none does."""
        for rule in self.rules:
            if rule.matches(payer_identifier, payer_name, filing_indicator, state):
                return rule.payer
        return None


_RULE_KEYS = ("payer", "payer_ids", "names", "filing_indicators", "states", "note")


def _map_problem(file: str, where: str, expected: str, found: Any) -> PayerPolicyError:
    shown = repr(found) if isinstance(found, str | int | float | bool) else type(found).__name__
    return PayerPolicyError(f"{file}: {where}: expected {expected}, found {shown}")


def _strings(file: str, where: str, raw: Any, pattern: str | None, expected: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise _map_problem(file, where, f"a non-empty list of {expected}", raw)
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or (pattern is not None and not re.match(pattern, item)):
            raise _map_problem(file, f"{where}[{i}]", expected, item)
        out.append(item)
    return tuple(out)


def payer_map_from_mapping(data: Any, *, file: str = "<payer map>") -> PayerMap:
    """Build a :class:`PayerMap` from the parsed TOML: a list of ``[[rule]]`` tables (``docs/x12.md``)."""
    if not isinstance(data, Mapping):
        raise _map_problem(file, "(top level)", "a table", data)
    for key in data:
        if key != "rule":
            raise _map_problem(file, str(key), "only [[rule]] tables", str(key))
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise _map_problem(file, "rule", "a list of [[rule]] tables", raw_rules)
    rules = []
    for n, raw in enumerate(raw_rules):
        where = f"rule[{n}]"
        if not isinstance(raw, Mapping):
            raise _map_problem(file, where, "a table", raw)
        for key in raw:
            if key not in _RULE_KEYS:
                raise _map_problem(file, f"{where}.{key}", "one of the keys " + ", ".join(_RULE_KEYS), str(key))
        payer = raw.get("payer")
        if not isinstance(payer, str) or not _PAYER_ID.match(payer):
            raise _map_problem(file, f"{where}.payer", "a payer id such as \"medicare\" (lower-case letters, digits, _)", payer)
        fields: dict[str, Any] = {"payer": payer}
        if "payer_ids" in raw:
            ids = _strings(file, f"{where}.payer_ids", raw["payer_ids"], r"^[A-Za-z0-9 .\-]{1,80}$", "a payer identifier (NM109) of 1 to 80 letters or digits")
            fields["payer_ids"] = tuple(i.upper() for i in ids)
        if "names" in raw:
            names = _strings(file, f"{where}.names", raw["names"], None, "a regular expression")
            for i, pattern in enumerate(names):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise _map_problem(file, f"{where}.names[{i}]", f"a regular expression ({exc})", pattern) from None
            fields["names"] = names
        if "filing_indicators" in raw:
            codes = _strings(file, f"{where}.filing_indicators", raw["filing_indicators"], r"^[0-9A-Za-z]{2}$", "a 2-character claim filing indicator (SBR09) such as \"MB\"")
            fields["filing_indicators"] = tuple(c.upper() for c in codes)
        if "states" in raw:
            states = _strings(file, f"{where}.states", raw["states"], r"^[A-Za-z]{2}$", "a 2-letter state code such as \"CA\"")
            fields["states"] = tuple(s.upper() for s in states)
        if "note" in raw:
            if not isinstance(raw["note"], str):
                raise _map_problem(file, f"{where}.note", "a string", raw["note"])
            fields["note"] = raw["note"]
        if not any(k in fields for k in ("payer_ids", "names", "filing_indicators", "states")):
            raise _map_problem(file, where, "at least one of payer_ids, names, filing_indicators, states", "none")
        rules.append(PayerRule(**fields))
    return PayerMap(tuple(rules), file)


def load_payer_map(path: str | Path | None = None) -> PayerMap:
    """Read a payer map from a TOML file; None reads the shipped ``policies/x12_payers.toml``.

    Raises :class:`~payerpolicy.errors.PayerPolicyError` naming the file, the rule and key, what was
    expected and what was found.
    """
    if path is None:
        text = resources.files("payerpolicy.policies").joinpath("x12_payers.toml").read_text("utf-8")
        return payer_map_from_mapping(tomllib.loads(text), file="payerpolicy/policies/x12_payers.toml")
    name = str(path)
    try:
        text = Path(path).read_text("utf-8-sig")
    except FileNotFoundError:
        raise PayerPolicyError(f"{name}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PayerPolicyError(f"{name}: cannot read the file ({type(exc).__name__})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PayerPolicyError(f"{name}: invalid TOML: {exc}") from None
    return payer_map_from_mapping(data, file=name)


# --------------------------------------------------------------------------------------------
# Tokens: segments with their place in the file


@attrs.frozen
class _Delimiters:
    element: str
    component: str
    repetition: str
    terminator: str


@attrs.frozen
class _Segment:
    id: str
    elements: tuple[str, ...]  # elements[0] is the segment id
    start: int  # offset of the segment id in the file
    end: int  # offset of the terminator
    number: int  # inside the transaction set (ST = 1), else in the file
    file_number: int
    delimiters: _Delimiters

    def get(self, n: int) -> str:
        """Element ``n`` (1-based), or "" when absent."""
        return self.elements[n] if n < len(self.elements) else ""

    def component(self, n: int, m: int) -> str:
        """Component ``m`` (1-based) of element ``n``, or ""."""
        parts = self.get(n).split(self.delimiters.component)
        return parts[m - 1] if m <= len(parts) else ""

    def components(self, n: int) -> list[str]:
        """The components of element ``n`` (``[""]`` when absent)."""
        return self.get(n).split(self.delimiters.component)


@attrs.define
class _Context:
    """What a claim inherits from the HL loops above it."""

    kind: str  # "20", "22", "23"
    segment: _Segment
    parent: _Context | None = None
    # 2000A / 2010AA
    taxonomy: tuple[str, _Segment] | None = None
    npi: tuple[str, _Segment] | None = None
    state: str | None = None
    # 2000B / 2010BB
    sbr: _Segment | None = None
    payer_name: str | None = None
    payer_identifier: str | None = None
    member_id: str | None = None  # 2010BA NM109 (NM108 MI)
    # 2010BA or 2010CA REF*Y4: the property and casualty (workers' comp, auto) claim number of the injury
    casualty_claim: str | None = None
    # 2000C / 2010CA: the patient's name and birth date, hashed into the patient key (never kept in clear)
    patient_identity: list[str] = attrs.field(factory=list)

    def billing(self) -> _Context | None:
        ctx: _Context | None = self
        while ctx is not None and ctx.kind != "20":
            ctx = ctx.parent
        return ctx

    def subscriber(self) -> _Context | None:
        ctx: _Context | None = self
        while ctx is not None and ctx.kind != "22":
            ctx = ctx.parent
        return ctx


@attrs.frozen
class _Claim:
    position: int
    transaction: str
    segments: tuple[_Segment, ...]  # CLM up to the next HL, CLM or SE
    context: _Context


def _place(segments: Sequence[_Segment], k: int) -> tuple[int, str]:
    """Segment ``k``'s number and what it counts in: its transaction set (ST = 1) when it is in one, else the file."""
    for j in range(k, -1, -1):
        seg = segments[j]
        if seg.id == "ST":
            return k - j + 1, f"transaction set {seg.get(2)}"
        if seg.id in ("SE", "GS", "GE", "ISA", "IEA") and j < k:
            break
    return segments[k].file_number, "the file"


class _Scanner:
    """Splits the file into interchanges and segments and checks the envelope."""

    def __init__(self, data: bytes, source: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("read_837p takes bytes")
        self.text = bytes(data).decode("latin-1")
        self.source = source
        self.file_number = 0
        self.claims: list[_Claim] = []

    def fail(self, message: str, seg: _Segment | None = None, element: str | None = None, *, in_transaction: str | None = None,
             segment_id: str | None = None, number: int | None = None) -> X12Error:
        if seg is not None:
            number = seg.number if in_transaction else seg.file_number
            segment_id = seg.id
        scope = f"transaction set {in_transaction}" if in_transaction else "the file"
        return X12Error(self.source, message, segment=number, segment_id=segment_id, element=element, scope=scope)

    # ---------------------------------------------------------------- segments

    def _isa(self, pos: int) -> _Delimiters:
        text = self.text
        number = self.file_number + 1
        if not text.startswith("ISA", pos):
            found = text[pos : pos + 3]
            if text.startswith("\xef\xbb\xbf", pos):
                found = "a UTF-8 byte order mark (bytes EF BB BF); an 837P holds only X12 characters"
            elif re.search(r"[^\x20-\x7e]", found):
                found = "bytes " + " ".join(f"{ord(c):02X}" for c in found) + "; an 837P holds only X12 characters"
            else:
                found = repr(found)
            raise X12Error(self.source, f"expected an interchange starting with ISA, found {found}", segment=number, scope="the file")
        if len(text) - pos < 106:
            raise X12Error(self.source, f"expected the ISA segment's 106 characters, found {len(text) - pos}", segment=number, segment_id="ISA", scope="the file")
        element = text[pos + 3]
        if element.isalnum() or element in " \r\n":
            raise X12Error(self.source, f"expected an element separator (such as '*') after ISA, found {element!r}",
                           segment=number, segment_id="ISA", scope="the file")
        # The ISA's elements have fixed widths: the 16 separators are at fixed offsets.
        widths = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)
        offset = pos + 3
        for n, width in enumerate(widths, 1):
            if text[offset] != element:
                raise X12Error(self.source, f"expected the element separator {element!r} before ISA{n:02d} at character {offset - pos + 1}, found {text[offset]!r} (the ISA has fixed-width elements; its length must be 106)",
                               segment=number, segment_id="ISA", element=f"ISA{n:02d}", scope="the file")
            field = text[offset + 1 : offset + 1 + width]
            if element in field:
                raise X12Error(self.source, f"expected {width} characters in ISA{n:02d}, found {len(field.split(element)[0])} (the ISA has fixed-width elements; its length must be 106)",
                               segment=number, segment_id="ISA", element=f"ISA{n:02d}", scope="the file")
            offset += 1 + width
        if text[offset] != element:
            raise X12Error(self.source, f"expected the element separator before ISA16, found {text[offset]!r} (the ISA's length must be 106)",
                           segment=number, segment_id="ISA", element="ISA16", scope="the file")
        component, terminator = text[offset + 1], text[offset + 2]
        repetition = text[pos + 82]
        if component.isalnum() or component in (" ", element):
            raise X12Error(self.source, f"expected a component separator (such as ':') in ISA16, found {component!r}",
                           segment=number, segment_id="ISA", element="ISA16", scope="the file")
        if terminator.isalnum() or terminator in (" ", element, component):
            raise X12Error(self.source, f"missing segment terminator after ISA16: expected a terminator (such as '~'), found {terminator!r}",
                           segment=number, segment_id="ISA", element="ISA16", scope="the file")
        if text[pos + 84 : pos + 89] != "00501":
            raise X12Error(self.source, f"expected interchange version 00501 (5010), found {text[pos + 84 : pos + 89]!r}",
                           segment=number, segment_id="ISA", element="ISA12", scope="the file")
        if repetition.isalnum() or repetition in (" ", element, component, terminator):
            raise X12Error(self.source, f"expected a repetition separator (such as '^') in ISA11, found {repetition!r}",
                           segment=number, segment_id="ISA", element="ISA11", scope="the file")
        return _Delimiters(element, component, repetition, terminator)

    def _check_characters(self, start: int, stop: int, delims: _Delimiters, segments: Sequence[_Segment]) -> None:
        allowed = re.escape(delims.element + delims.component + delims.repetition + delims.terminator + _LINE_BREAKS)
        bad = re.compile(f"[^\\x20-\\x7e{allowed}]")
        found = bad.search(self.text, start, stop)
        if found is None:
            return
        where = found.start()
        char = found.group()
        what = f"byte 0x{ord(char):02X}" + (" (not ASCII)" if ord(char) > 0x7E else " (a control character)")
        for k, seg in enumerate(segments):
            if seg.start <= where <= seg.end:
                index = self.text.count(delims.element, seg.start, where)
                element = f"{seg.id}{index:02d}" if index else None
                number, scope = _place(segments, k)
                raise X12Error(self.source, f"{what} at offset {where}: an 837P holds only X12 characters (ASCII letters, digits, spaces and punctuation)",
                               segment=number, segment_id=seg.id, element=element, scope=scope)
        raise X12Error(self.source, f"{what} at offset {where}: an 837P holds only X12 characters (ASCII letters, digits, spaces and punctuation)")

    def scan(self) -> list[_Claim]:
        text = self.text
        pos = 0
        n = len(text)
        interchanges = 0
        while True:
            while pos < n and text[pos] in " \t\r\n":
                pos += 1
            if pos >= n:
                break
            delims = self._isa(pos)
            segments, pos = self._segments(pos, delims)
            self._interchange(segments)
            interchanges += 1
        if interchanges == 0:
            raise X12Error(self.source, "expected an X12 interchange starting with ISA, found an empty file")
        return self.claims

    def _segments(self, pos: int, delims: _Delimiters) -> tuple[list[_Segment], int]:
        """The segments from the ISA at ``pos`` up to and including its IEA; the offset after the IEA."""
        text = self.text
        segments: list[_Segment] = []
        start = pos
        n = len(text)
        term = delims.terminator
        first = pos
        while True:
            while start < n and text[start] in _LINE_BREAKS and text[start] != term:
                start += 1
            if start >= n:
                last = segments[-1] if segments else None
                self._check_characters(first, n, delims, segments)
                raise X12Error(self.source, "expected IEA at the end of the interchange, found the end of the file",
                               segment=last.file_number if last else None, segment_id=last.id if last else None, scope="the file")
            end = text.find(term, start)
            self.file_number += 1
            if end < 0:
                raw = text[start:]
                seg_id = raw.split(delims.element, 1)[0][:3]
                self._check_characters(first, n, delims, segments)
                raise X12Error(self.source, f"missing segment terminator {term!r} at the end of the file",
                               segment=self.file_number, segment_id=seg_id, scope="the file")
            raw = text[start:end]
            if term == "\n" and raw.endswith("\r"):
                raw = raw[:-1]
            elements = tuple(raw.split(delims.element))
            seg = _Segment(elements[0], elements, start, end, self.file_number, self.file_number, delims)
            segments.append(seg)
            if any(c in raw for c in _LINE_BREAKS if c != term):
                self._check_characters(first, end, delims, segments)
                line_break = min(raw.find(c) for c in _LINE_BREAKS if c in raw)
                following = raw[line_break:].strip().split(delims.element, 1)[0][:3]
                number, scope = _place(segments, len(segments) - 1)
                raise X12Error(self.source, f"missing segment terminator {term!r}: the segment runs on past a line break into {following!r}",
                               segment=number, segment_id=seg.id, scope=scope)
            if not _SEGMENT_ID.match(seg.id):
                self._check_characters(first, end, delims, segments)
                number, scope = _place(segments, len(segments) - 1)
                raise X12Error(self.source, f"expected a segment id (2 or 3 capital letters or digits), found {seg.id[:20]!r}"
                               + (" (is a segment terminator missing?)" if len(seg.id) > 3 else ""),
                               segment=number, segment_id=None, scope=scope)
            start = end + 1
            if seg.id == "IEA":
                self._check_characters(first, end + 1, delims, segments)
                return segments, start

    # ---------------------------------------------------------------- envelope

    def _interchange(self, segments: list[_Segment]) -> None:
        isa = segments[0]
        i = 1
        groups = 0
        while i < len(segments) and segments[i].id == "GS":
            i = self._group(segments, i)
            groups += 1
        if i >= len(segments) or segments[i].id != "IEA":
            seg = segments[min(i, len(segments) - 1)]
            raise self.fail(f"expected GS or IEA, found {seg.id}", seg)
        iea = segments[i]
        if iea.get(1) != str(groups):
            raise self.fail(f"expected {groups} (the functional groups in the interchange), found {iea.get(1)!r}", iea, "IEA01")
        if iea.get(2) != isa.get(13):
            raise self.fail(f"expected the interchange control number {isa.get(13)!r} of ISA13, found {iea.get(2)!r}", iea, "IEA02")
        if groups == 0:
            raise self.fail("expected at least one functional group (GS) in the interchange", iea)

    def _group(self, segments: list[_Segment], i: int) -> int:
        gs = segments[i]
        if gs.get(1) != "HC":
            raise self.fail(f"expected HC (health care claim) in GS01, found {gs.get(1)!r}", gs, "GS01")
        if gs.get(8) != IMPLEMENTATION:
            raise self.fail(self._version_message(gs.get(8)), gs, "GS08")
        i += 1
        sets = 0
        while i < len(segments) and segments[i].id == "ST":
            i = self._transaction(segments, i, gs)
            sets += 1
        if i >= len(segments) or segments[i].id != "GE":
            seg = segments[min(i, len(segments) - 1)]
            raise self.fail(f"expected ST or GE, found {seg.id}", seg)
        ge = segments[i]
        if ge.get(1) != str(sets):
            raise self.fail(f"expected {sets} (the transaction sets in the group), found {ge.get(1)!r}", ge, "GE01")
        if ge.get(2) != gs.get(6):
            raise self.fail(f"expected the group control number {gs.get(6)!r} of GS06, found {ge.get(2)!r}", ge, "GE02")
        return i + 1

    @staticmethod
    def _version_message(found: str) -> str:
        known = {"005010X223A2": " (an 837I, institutional claim)", "005010X224A2": " (an 837D, dental claim)",
                 "005010X222": " (the 837P without its addenda A1)", "004010X098A1": " (the 4010 837P, retired in 2012)"}
        return f"expected version {IMPLEMENTATION} (837P, professional claim), found {found!r}{known.get(found, '')}"

    def _transaction(self, segments: list[_Segment], i: int, gs: _Segment) -> int:
        st = segments[i]
        control = st.get(2)
        if st.get(1) != "837":
            raise self.fail(f"expected 837 (health care claim) in ST01, found {st.get(1)!r}", st, "ST01")
        # number the segments inside the set
        j = i
        body: list[_Segment] = []
        while j < len(segments) and segments[j].id not in ("SE", "GE", "IEA", "GS", "ISA") and not (j > i and segments[j].id == "ST"):
            body.append(attrs.evolve(segments[j], number=j - i + 1))
            j += 1
        if j >= len(segments) or segments[j].id != "SE":
            seg = segments[min(j, len(segments) - 1)]
            raise self.fail(f"expected SE closing transaction set {control!r}, found {seg.id}", seg)
        se = attrs.evolve(segments[j], number=j - i + 1)
        body.append(se)
        if st.get(3) != IMPLEMENTATION:
            raise self.fail(self._version_message(st.get(3)), body[0], "ST03", in_transaction=control)
        if se.get(1) != str(len(body)):
            hint = " (is a segment terminator missing?)" if se.get(1).isdigit() and int(se.get(1)) > len(body) else ""
            raise self.fail(f"expected {len(body)} (the segments from ST to SE), found {se.get(1)!r}{hint}", se, "SE01", in_transaction=control)
        if se.get(2) != control:
            raise self.fail(f"expected the transaction set control number {control!r} of ST02, found {se.get(2)!r}", se, "SE02", in_transaction=control)
        self._claims(body, control)
        return j + 1

    # ---------------------------------------------------------------- HL tree and claims

    def _claims(self, body: list[_Segment], control: str) -> None:
        hls: dict[str, _Context] = {}
        ctx: _Context | None = None
        loop = ""  # the NM1 entity code of the current 2010 loop, "" before any
        claim: list[_Segment] | None = None

        def close() -> None:
            nonlocal claim
            if claim is not None:
                assert ctx is not None
                self.claims.append(_Claim(len(self.claims), control, tuple(claim), ctx))
                claim = None

        for seg in body[1:-1]:
            if seg.id == "HL":
                close()
                hl_id, parent_id, level = seg.get(1), seg.get(2), seg.get(3)
                if not hl_id or hl_id in hls:
                    raise self.fail(f"expected a new hierarchical id, found {hl_id!r}" + (" (used before)" if hl_id else ""), seg, "HL01", in_transaction=control)
                parent = None
                if level == "20":
                    if parent_id:
                        raise self.fail(f"expected no parent for a billing provider level (HL03 20), found {parent_id!r}", seg, "HL02", in_transaction=control)
                elif level in ("22", "23"):
                    parent = hls.get(parent_id)
                    want = "20" if level == "22" else "22"
                    if parent is None or parent.kind != want:
                        what = "billing provider" if want == "20" else "subscriber"
                        raise self.fail(f"expected the HL01 of an earlier {what} level (HL03 {want}), found {parent_id!r}", seg, "HL02", in_transaction=control)
                else:
                    raise self.fail(f"expected a hierarchical level code 20 (billing provider), 22 (subscriber) or 23 (patient), found {level!r}", seg, "HL03", in_transaction=control)
                ctx = _Context(level, seg, parent)
                hls[hl_id] = ctx
                loop = ""
                continue
            if claim is not None:
                if seg.id == "CLM":
                    close()
                    claim = [seg]
                else:
                    claim.append(seg)
                continue
            if seg.id == "CLM":
                if ctx is None or ctx.kind == "20":
                    raise self.fail("expected a subscriber (HL03 22) or patient (HL03 23) level before the claim", seg, in_transaction=control)
                claim = [seg]
                continue
            if ctx is None:
                continue  # BHT, 1000A submitter, 1000B receiver
            if seg.id == "NM1":
                loop = seg.get(1)
                if ctx.kind == "20" and loop == "85":
                    ctx.npi = (seg.get(9), seg) if seg.get(8) == "XX" else None
                elif ctx.kind == "22" and loop == "PR":
                    ctx.payer_name = seg.get(3) or None
                    ctx.payer_identifier = seg.get(9) or None
                elif ctx.kind == "22" and loop == "IL":
                    ctx.member_id = (seg.get(9).strip() or None) if seg.get(8) == "MI" else None
                elif ctx.kind == "23" and loop == "QC":
                    ctx.patient_identity[:0] = [seg.get(3), seg.get(4)]  # last and first name
            elif seg.id == "REF" and seg.get(1) == "Y4" and (ctx.kind, loop) in (("22", "IL"), ("23", "QC")):
                number = seg.get(2).strip()
                ctx.casualty_claim = number if number and number.upper() != "UNKNOWN" else None
            elif seg.id == "DMG" and ctx.kind == "23" and loop == "QC":
                ctx.patient_identity.append(seg.get(2))  # birth date
            elif seg.id == "PRV" and ctx.kind == "20" and (loop == "" or seg.get(1) == "BI"):
                ctx.taxonomy = (seg.get(3), seg)  # 2000A: before 2010AA (tolerated after it)
            elif seg.id == "N4" and ctx.kind == "20" and loop == "85":
                ctx.state = seg.get(2) or None
            elif seg.id == "SBR" and ctx.kind == "22":
                ctx.sbr = seg
        close()


# --------------------------------------------------------------------------------------------
# One claim -> an encounter mapping


class _ClaimProblem(Exception):
    def __init__(self, seg: _Segment, element: str | None, message: str) -> None:
        self.seg = seg
        self.element = element
        self.message = message
        super().__init__(message)


@attrs.define
class _Line:
    lx: _Segment
    sv1: _Segment | None = None
    dates: list[_Segment] = attrs.field(factory=list)
    rendering: _Segment | None = None
    taxonomy: _Segment | None = None


def _shown(value: str) -> str:
    return repr(value) if value else "nothing"


def _date(seg: _Segment) -> dt.date:
    qualifier, value = seg.get(2), seg.get(3)
    if qualifier == "RD8" and "-" in value:
        first, _, last = value.partition("-")
        if first != last:
            raise _ClaimProblem(seg, "DTP03", f"expected one date of service per line, found the range {value!r}; payerpolicy checks one date per claim")
        value = first
    elif qualifier != "D8":
        raise _ClaimProblem(seg, "DTP02", f"expected the date format D8 (or RD8 with one date), found {_shown(qualifier)}")
    try:
        if not re.match(r"^\d{8}$", value):
            raise ValueError
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise _ClaimProblem(seg, "DTP03", f"expected a date CCYYMMDD, found {_shown(value)}") from None


def _diagnoses(hi_segments: Sequence[_Segment]) -> list[str]:
    out: list[str] = []
    for seg in hi_segments:
        for n in range(1, len(seg.elements)):
            if not seg.get(n):
                continue
            qualifier, code = seg.component(n, 1), seg.component(n, 2)
            if qualifier in ("BK", "BF"):
                raise _ClaimProblem(seg, f"HI{n:02d}-1", f"expected an ICD-10-CM diagnosis (ABK, ABF), found the ICD-9 qualifier {qualifier!r}")
            if qualifier not in ("ABK", "ABF"):
                continue  # other health care information (condition codes, anesthesia, ...)
            if qualifier == "ABK" and out:
                raise _ClaimProblem(seg, f"HI{n:02d}-1", "expected one principal diagnosis (ABK), first; found another ABK")
            if qualifier == "ABF" and not out:
                raise _ClaimProblem(seg, f"HI{n:02d}-1", "expected the principal diagnosis (ABK) first, found ABF")
            bare = code.upper().replace(".", "")
            if not _ICD10.match(bare):
                raise _ClaimProblem(seg, f"HI{n:02d}-2", f"expected an ICD-10-CM code such as M5450, found {_shown(code)}")
            out.append(bare if len(bare) <= 3 else f"{bare[:3]}.{bare[3:]}")
    return out


def _taxonomy_type(seg: _Segment, qualifier: str) -> str:
    if seg.get(1) != qualifier:
        raise _ClaimProblem(seg, "PRV01", f"expected the provider code {qualifier!r}, found {_shown(seg.get(1))}")
    if seg.get(2) != "PXC":
        raise _ClaimProblem(seg, "PRV02", f"expected PXC (a NUCC taxonomy code follows), found {_shown(seg.get(2))}")
    code = seg.get(3)
    if not _TAXONOMY.match(code):
        raise _ClaimProblem(seg, "PRV03", f"expected a 10-character provider taxonomy code such as 111N00000X, found {_shown(code)}")
    ptype = provider_type_for_taxonomy(code)
    if ptype is None:
        raise _ClaimProblem(
            seg, "PRV03",
            f"taxonomy {code} is not one payerpolicy maps to a provider type (chiropractor, physical or occupational therapist or assistant, massage therapist, athletic trainer, physician; docs/x12.md)",
        )
    return ptype


def _npi(seg: _Segment) -> str | None:
    if seg.get(8) != "XX":
        return None
    value = seg.get(9)
    if not _NPI.match(value):
        raise _ClaimProblem(seg, "NM109", f"expected a 10-digit NPI, found {_shown(value)}")
    return value


def _charge(seg: _Segment) -> str:
    raw = seg.get(2)
    try:
        amount = Decimal(raw)
        if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise InvalidOperation
    except InvalidOperation:
        raise _ClaimProblem(seg, "SV102", f"expected the line charge in dollars such as 120.00, found {_shown(raw)}") from None
    return f"{amount:.2f}"


def _units(seg: _Segment) -> int:
    if seg.get(3) != "UN":
        raise _ClaimProblem(seg, "SV103", f"expected UN (units), found {_shown(seg.get(3))}" + (" (minutes are for anesthesia)" if seg.get(3) == "MJ" else ""))
    raw = seg.get(4)
    try:
        value = Decimal(raw)
        if not value.is_finite() or value != value.to_integral_value():
            raise InvalidOperation
    except InvalidOperation:
        raise _ClaimProblem(seg, "SV104", f"expected whole units from 1 to {_MAX_UNITS}, found {_shown(raw)}") from None
    if not 1 <= value <= _MAX_UNITS:
        raise _ClaimProblem(seg, "SV104", f"expected whole units from 1 to {_MAX_UNITS}, found {raw!r}")
    return int(value)


def _procedure(seg: _Segment, catalogue: vocab.CodeCatalogue) -> tuple[vocab.CodeInfo, list[str]]:
    parts = seg.components(1)
    if parts[0] != "HC":
        raise _ClaimProblem(seg, "SV101-1", f"expected HC (a CPT or HCPCS code), found {_shown(parts[0])}")
    code = parts[1].upper() if len(parts) > 1 else ""
    if not code:
        raise _ClaimProblem(seg, "SV101-2", "expected a procedure code after HC, found nothing")
    if not vocab.CODE_PATTERN.match(code):
        raise _ClaimProblem(seg, "SV101-2", f"expected a 5-character CPT or HCPCS code, found {code!r}")
    info = catalogue.get(code)
    if info is None:
        raise _ClaimProblem(seg, "SV101-2", f"code {code} is not in payerpolicy's code catalogue (policies/codes.toml)")
    modifiers = [m.upper() for m in parts[2:6]]
    while modifiers and not modifiers[-1]:
        modifiers.pop()
    for m, modifier in enumerate(modifiers, 3):
        if not _MODIFIER.match(modifier):
            raise _ClaimProblem(seg, f"SV101-{m}", f"expected a 2-character modifier, found {_shown(modifier)}")
    return info, modifiers


def _pointers(seg: _Segment, n_dx: int) -> list[int]:
    parts = seg.components(7)
    if parts == [""]:
        raise _ClaimProblem(seg, "SV107-1", "expected a diagnosis pointer (a position in HI, 1 to 12), found nothing")
    out = []
    for m, raw in enumerate(parts, 1):
        if not re.match(r"^\d{1,2}$", raw) or not 1 <= int(raw) <= 12:
            raise _ClaimProblem(seg, f"SV107-{m}", f"expected a diagnosis pointer from 1 to 12, found {_shown(raw)}")
        if int(raw) > n_dx:
            raise _ClaimProblem(seg, f"SV107-{m}", f"points to diagnosis {raw} but the claim's HI lists {n_dx}")
        out.append(int(raw))
    if len(out) > 4:
        raise _ClaimProblem(seg, "SV107-5", f"expected at most 4 diagnosis pointers, found {len(out)}")
    return out


def patient_key(member_id: str | None, dependant: Sequence[str] | None = None) -> str | None:
    """The encounter's ``patient`` key of an 837P claim, for claim history (``docs/x12.md``).

    The subscriber's member id (2010BA ``NM109``, ``NM108`` ``MI``) when the subscriber is the
    patient. Under a 2000C patient loop (a dependant, who has no identifier of their own in 5010),
    the member id, ``/`` and the first 16 hex digits of the SHA-256 of the dependant's last name,
    first name and birth date (2010CA ``NM103``, ``NM104``, ``DMG02``; upper case, runs of spaces
    made one): dependants of one subscriber get keys of their own, and no name is kept in clear.
    None without a member id, and for ``PLACEHOLDER0001``, the placeholder the 837P writer puts
    there when it has no member id (so its test files do not make every claim one patient).
    """
    if not member_id or not member_id.strip() or member_id.strip() == PLACEHOLDER_MEMBER_ID:
        return None
    if dependant is None:
        return member_id.strip()
    identity = "\x1f".join(" ".join(part.upper().split()) for part in dependant)
    return f"{member_id.strip()}/{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:16]}"


#: 2300 DTP qualifiers read into care fields: 454 initial treatment, 455 last X-ray.
_CARE_DATES = {"454": "episode_start", "455": "last_xray"}


class _ClaimReader:
    def __init__(self, claim: _Claim, payer_map: PayerMap, catalogue: vocab.CodeCatalogue) -> None:
        self.claim = claim
        self.payer_map = payer_map
        self.catalogue = catalogue

    def read(self) -> ClaimRecord | ClaimError:
        claim = self.claim
        clm = claim.segments[0]
        claim_id = clm.get(1) or None
        try:
            return self._read(claim_id)
        except _ClaimProblem as p:
            return ClaimError(claim.position, claim_id, p.seg.number, p.seg.id, p.element, p.message, claim.transaction)

    def _read(self, claim_id: str | None) -> ClaimRecord:
        claim = self.claim
        clm = claim.segments[0]
        if claim_id is None:
            raise _ClaimProblem(clm, "CLM01", "expected the claim id (patient control number), found nothing")
        hi: list[_Segment] = []
        lines: list[_Line] = []
        rendering: _Segment | None = None
        rendering_prv: _Segment | None = None
        facility_state: str | None = None
        care: dict[str, str] = {}
        loop = ""  # 2310x entity code, "2320" after an SBR, "2400" in lines
        for seg in claim.segments[1:]:
            if seg.id == "LX":
                lines.append(_Line(seg))
                loop = "2400"
                continue
            if lines:
                line = lines[-1]
                if seg.id == "SV1":
                    if line.sv1 is not None:
                        raise _ClaimProblem(seg, None, f"expected one SV1 per line (LX {line.lx.get(1)}), found a second one")
                    line.sv1 = seg
                elif seg.id == "DTP" and seg.get(1) == "472":
                    line.dates.append(seg)
                elif seg.id == "NM1":
                    loop = "2420" + seg.get(1)
                    if seg.get(1) == "82":
                        line.rendering = seg
                elif seg.id == "PRV" and loop == "242082":
                    line.taxonomy = seg
                continue
            if seg.id == "HI":
                hi.append(seg)
            elif seg.id == "DTP" and loop == "" and seg.get(1) in _CARE_DATES:
                care[_CARE_DATES[seg.get(1)]] = _date(seg).isoformat()
            elif seg.id == "SBR":
                loop = "2320"
            elif seg.id == "NM1" and loop != "2320":
                loop = seg.get(1)
                if loop == "82":
                    rendering = seg
            elif seg.id == "PRV" and loop == "82":
                rendering_prv = seg
            elif seg.id == "N4" and loop == "77":
                facility_state = seg.get(2) or None
        if not lines:
            raise _ClaimProblem(clm, None, "the claim has no service lines (2400 LX with SV1)")
        if not hi:
            raise _ClaimProblem(clm, None, "the claim has no HI segment; an 837P needs the principal diagnosis (HI01 ABK)")
        diagnoses = _diagnoses(hi)
        if not diagnoses:
            raise _ClaimProblem(hi[0], "HI01-1", "expected the principal diagnosis (ABK), found none")

        ctx = claim.context
        billing = ctx.billing()
        subscriber = ctx.subscriber()
        assert billing is not None and subscriber is not None
        # provider: 2310B rendering (taxonomy from its PRV, else the billing provider's), else 2000A/2010AA
        taxonomy_seg = rendering_prv or (billing.taxonomy[1] if billing.taxonomy else None)
        if taxonomy_seg is None:
            where = rendering or clm
            raise _ClaimProblem(where, None, "no provider taxonomy: expected PRV*PE*PXC in 2310B (rendering provider) or PRV*BI*PXC in 2000A (billing provider)")
        ptype = _taxonomy_type(taxonomy_seg, "PE" if taxonomy_seg is rendering_prv else "BI")
        npi = _npi(rendering) if rendering is not None else (_npi(billing.npi[1]) if billing.npi else None)

        dos: dt.date | None = None
        services: list[dict[str, Any]] = []
        procedures: list[dict[str, Any]] = []
        refs: list[LineRef] = []
        for index, line in enumerate(lines):
            if line.sv1 is None:
                raise _ClaimProblem(line.lx, None, f"line {line.lx.get(1) or index + 1} has no SV1 segment (professional service)")
            sv1 = line.sv1
            if not line.dates:
                raise _ClaimProblem(sv1, None, f"line {line.lx.get(1) or index + 1} has no date of service (DTP*472)")
            day = _date(line.dates[0])
            if dos is None:
                dos = day
            elif day != dos:
                raise _ClaimProblem(
                    line.dates[0], "DTP03",
                    f"expected the claim's one date of service {dos:%Y%m%d}, found {day:%Y%m%d}; payerpolicy checks one visit per claim (send each date as its own claim)",
                )
            if line.rendering is not None:
                line_type = _taxonomy_type(line.taxonomy, "PE") if line.taxonomy is not None else ptype
                line_npi = _npi(line.rendering)
                if (line_type, line_npi) != (ptype, npi):
                    raise _ClaimProblem(
                        line.rendering, "NM109" if line_type == ptype else None,
                        f"line {line.lx.get(1) or index + 1} names another rendering provider (2420A: {line_type} {line_npi}) than the claim ({ptype} {npi}); payerpolicy checks one provider per claim",
                    )
            info, modifiers = _procedure(sv1, self.catalogue)
            billed = {"units": _units(sv1), "modifiers": modifiers, "charge": _charge(sv1)}
            entry: dict[str, Any] = {"code": info.code, "billed": billed, "diagnosis_pointers": _pointers(sv1, len(diagnoses))}
            if info.category in vocab.PROCEDURE_CATEGORIES:
                if info.is_em and "25" in modifiers:
                    entry["separately_identifiable"] = True
                refs.append(LineRef(index, "procedures", len(procedures), sv1.number, line.lx.get(1)))
                procedures.append(entry)
            else:
                refs.append(LineRef(index, "services", len(services), sv1.number, line.lx.get(1)))
                services.append(entry)
        assert dos is not None

        provider: dict[str, Any] = {"type": ptype}
        if npi is not None:
            provider["npi"] = npi
        encounter: dict[str, Any] = {"id": claim_id, "date_of_service": dos.isoformat(), "provider": provider, "diagnoses": diagnoses}
        patient = patient_key(subscriber.member_id, ctx.patient_identity if ctx.kind == "23" else None)
        if patient is not None:
            encounter["patient"] = patient
            # the injury's property and casualty claim number: the patient loop's, else the subscriber's
            episode = (ctx.casualty_claim if ctx.kind == "23" else None) or subscriber.casualty_claim
            if episode is not None:
                encounter["episode"] = episode
        if care:
            encounter["care"] = care
        if services:
            encounter["services"] = services
        if procedures:
            encounter["procedures"] = procedures
        filing = (subscriber.sbr.get(9) or None) if subscriber.sbr is not None else None
        state = facility_state or billing.state
        payer = self.payer_map.resolve(subscriber.payer_identifier, subscriber.payer_name, filing, state)
        return ClaimRecord(
            position=claim.position,
            claim_id=claim_id,
            segment=clm.number,
            encounter=encounter,
            payer=payer,
            payer_name=subscriber.payer_name,
            payer_identifier=subscriber.payer_identifier,
            filing_indicator=filing,
            lines=tuple(refs),
            transaction=claim.transaction,
        )


def read_837p(
    data: bytes,
    *,
    source: str,
    payer_map: PayerMap | None = None,
    catalogue: vocab.CodeCatalogue | None = None,
) -> Iterator[ClaimRecord | ClaimError]:
    """Read every claim of an 837P (005010X222A1) interchange, in file order.

    The envelope is read and checked when this is called: a problem there raises :class:`X12Error`
    (one line naming ``source``, the segment and the element) before any claim is given. Then each
    claim gives a :class:`ClaimRecord` or, when it cannot be read, a :class:`ClaimError`; the claims
    after a bad one still read. ``payer_map`` defaults to the shipped ``policies/x12_payers.toml``
    (pass ``PayerMap()`` for none: every payer is then None).
    """
    claims = _Scanner(data, source).scan()
    payers = payer_map if payer_map is not None else load_payer_map()
    codes = catalogue or vocab.default_catalogue()
    return (_ClaimReader(claim, payers, codes).read() for claim in claims)


def read_837p_file(
    path: str, *, payer_map: PayerMap | None = None, catalogue: vocab.CodeCatalogue | None = None
) -> Iterator[ClaimRecord | ClaimError]:
    """:func:`read_837p` on a file (``-``: standard input); a missing or unreadable file is a PayerPolicyError naming it."""
    if path == "-":
        return read_837p(sys.stdin.buffer.read(), source="<stdin>", payer_map=payer_map, catalogue=catalogue)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PayerPolicyError(f"{path}: no such file") from None
    except OSError as exc:
        raise PayerPolicyError(f"{path}: cannot read the file ({type(exc).__name__})") from None
    return read_837p(data, source=path, payer_map=payer_map, catalogue=catalogue)


def to_encounter(record: ClaimRecord, *, catalogue: vocab.CodeCatalogue | None = None) -> Encounter | ClaimError:
    """The record's :class:`~payerpolicy.Encounter`, or a :class:`ClaimError` when the encounter format refuses it.

    The error names the ``SV1`` segment of the entry the encounter field belongs to (``CLM`` for a
    claim-level field) and keeps the field path in its message.
    """
    try:
        return Encounter.from_mapping(record.encounter, catalogue=catalogue)
    except EncounterError as exc:
        segment, segment_id = record.segment, "CLM"
        entry = re.match(r"^(services|procedures)\[(\d+)\]", exc.field)
        if entry is not None:
            for ref in record.lines:
                if (ref.origin, ref.entry) == (entry[1], int(entry[2])):
                    segment, segment_id = ref.segment, "SV1"
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return ClaimError(record.position, record.claim_id, segment, segment_id, None, f"the encounter format refuses {message}", record.transaction)


# --------------------------------------------------------------------------------------------
# Rewriting SV1 segments in place


def _check_change(change: LineChange, where: str) -> None:
    if change.modifiers is not None:
        if len(change.modifiers) > 4:
            raise PayerPolicyError(f"cannot rewrite {where}: SV101 takes at most 4 modifiers, found {len(change.modifiers)}")
        for m in change.modifiers:
            if not _MODIFIER.match(m):
                raise PayerPolicyError(f"cannot rewrite {where}: expected 2-character modifiers, found {m!r}")
    if change.diagnosis_pointers is not None:
        if not 1 <= len(change.diagnosis_pointers) <= 4:
            raise PayerPolicyError(f"cannot rewrite {where}: SV107 takes 1 to 4 diagnosis pointers, found {len(change.diagnosis_pointers)}")
        for p in change.diagnosis_pointers:
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 12:
                raise PayerPolicyError(f"cannot rewrite {where}: expected diagnosis pointers from 1 to 12, found {p!r}")


def _rewritten(seg: _Segment, change: LineChange) -> str:
    d = seg.delimiters
    elements = list(seg.elements)
    if change.modifiers is not None:
        parts = elements[1].split(d.component)
        description = parts[6:]  # SV101-7, kept as it is
        head = parts[:2]
        if description:
            new = [*head, *change.modifiers, *([""] * (4 - len(change.modifiers))), *description]
        else:
            new = [*head, *change.modifiers]
        elements[1] = d.component.join(new)
    if change.diagnosis_pointers is not None:
        while len(elements) < 8:
            elements.append("")
        elements[7] = d.component.join(str(p) for p in change.diagnosis_pointers)
    return d.element.join(elements)


def rewrite_lines(data: bytes, changes: Mapping[tuple[int, int], LineChange]) -> bytes:
    """The 837P with the modifiers and/or diagnosis pointers of some lines replaced; every other byte unchanged.

    A key is ``(claim position, line index)``, both 0-based as :class:`ClaimRecord` and
    :class:`LineRef` give them. Only ``SV101-3`` … ``SV101-6`` and ``SV107`` of those lines' ``SV1``
    segments change; no segment is added or removed, so the ``SE`` counts stay right. Raises
    :class:`X12Error` when the envelope cannot be read and
    :class:`~payerpolicy.errors.PayerPolicyError` for a key that names no line or a change that
    cannot be written.
    """
    scanner = _Scanner(data, "<837P>")
    claims = scanner.scan()
    text = scanner.text
    edits: list[tuple[int, int, str]] = []
    for (position, index), change in sorted(changes.items()):
        where = f"claim {position}, line {index}"
        if not 0 <= position < len(claims):
            raise PayerPolicyError(f"cannot rewrite {where}: the file has {len(claims)} claims")
        sv1s = _line_sv1s(claims[position])
        if not 0 <= index < len(sv1s) or sv1s[index] is None:
            raise PayerPolicyError(f"cannot rewrite {where}: the claim has no SV1 for that line ({len(sv1s)} lines)")
        _check_change(change, where)
        n_dx = _diagnosis_count(claims[position])
        if change.diagnosis_pointers is not None and max(change.diagnosis_pointers) > n_dx:
            raise PayerPolicyError(f"cannot rewrite {where}: a diagnosis pointer points past the claim's {n_dx} diagnoses")
        seg = sv1s[index]
        assert seg is not None
        if change.diagnosis_pointers is not None and len(seg.elements) < 2:
            raise PayerPolicyError(f"cannot rewrite {where}: SV1 has no SV101")
        raw_end = seg.end - 1 if seg.delimiters.terminator == "\n" and text[seg.end - 1 : seg.end] == "\r" else seg.end
        edits.append((seg.start, raw_end, _rewritten(seg, change)))
    out = []
    last = 0
    for start, end, new in sorted(edits):
        out.append(text[last:start])
        out.append(new)
        last = end
    out.append(text[last:])
    return "".join(out).encode("latin-1")


def _diagnosis_count(claim: _Claim) -> int:
    count = 0
    for seg in claim.segments[1:]:
        if seg.id == "LX":
            break
        if seg.id == "HI":
            count += sum(1 for n in range(1, len(seg.elements)) if seg.component(n, 1) in ("ABK", "ABF"))
    return count


def _line_sv1s(claim: _Claim) -> list[_Segment | None]:
    lines: list[_Segment | None] = []
    for seg in claim.segments[1:]:
        if seg.id == "LX":
            lines.append(None)
        elif seg.id == "SV1" and lines and lines[-1] is None:
            lines[-1] = seg
    return lines
