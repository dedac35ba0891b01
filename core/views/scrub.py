"""``payerpolicy scrub``: claims as billed beside each payer's expected lines, with repairs and edits.

A *scrub result* is one claim (its id and position in the input) and, per payer, the outcome of
that claim as billed; or, for a claim that could not be read, an error. This module renders
results as text (:func:`render_scrub`) and as the stable JSON document of
``scrub --format json`` (:func:`scrub_document`, docs/scrub.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..evaluation.engine import Engine
from ..evaluation.errors import PayerPolicyError
from ..evaluation.model import ClaimLine, Encounter, Outcome
from ..formats.claim_facts import ClaimFact, claim_facts
from ..formats.io import read_encounter
from .render import _table

__all__ = [
    "SCRUB_VERSION",
    "ScrubError",
    "ScrubResult",
    "ScrubRun",
    "render_scrub",
    "scrub_document",
    "scrub_encounter",
    "scrub_file",
    "scrub_x12",
    "x12_repairs",
]

#: Version of the ``scrub --format json`` document; fields are added, never renamed or removed.
SCRUB_VERSION = 1


@attrs.frozen
class ScrubResult:
    """One claim as billed and what each payer's policy makes of it."""

    position: int
    claim: str | None
    outcomes: Mapping[str, Outcome]
    payer_source: str = "requested"
    facts: tuple[ClaimFact, ...] = ()


@attrs.frozen
class ScrubError:
    """A claim that could not be read or checked: where it is and one line saying why."""

    position: int
    claim: str | None
    message: str


def _billed_text(line: ClaimLine) -> str:
    b = line.billed
    if b is None:
        return "(not billed)"
    units = "?" if b.units is None else str(b.units)
    return f"{line.code} x{units} [{', '.join(b.modifiers)}]"


def _expected_text(line: ClaimLine) -> str:
    text = f"{line.code} x{line.units} [{', '.join(line.modifiers)}]"
    return text if line.status == "billable" else f"{text} {line.status}"


def denial_terms(outcome: Outcome, line: int) -> str:
    """The line's denial in remittance (835) terms, ``CO-97 M15``; empty when no finding denies or reduces it."""
    for finding in outcome.findings:
        adj = finding.adjustment
        if finding.line == line and adj is not None:
            return f"{adj.group}-{adj.carc}" + "".join(f" {r}" for r in adj.rarc)
    return ""


def _outcome_text(outcome: Outcome) -> list[str]:
    p = outcome.payer
    out = [f"  {p.id} — {p.name} (policy {p.policy_version})"]
    rows = []
    for i, line in enumerate(outcome.lines):
        mark = "=" if not any(d.line == i for d in outcome.differences) else "≠"
        rows.append([str(i + 1), _billed_text(line), mark, _expected_text(line), denial_terms(outcome, i)])
    out += ["  " + r.rstrip() for r in _table(["#", "billed", "", "expected", "835 denial"], rows, right=(0,))]
    repairs, edits = outcome.repairs, outcome.edits
    if not repairs and not edits:
        out.append("    billed as this payer expects: no repairs, no edits")
    for title, items in (("repairs (a tool may apply)", repairs), ("edits (a person decides)", edits)):
        if not items:
            continue
        out.append(f"    {title}:")
        for d in items:
            where = f"line {d.line + 1}" if d.line is not None else "claim"
            out.append(f"      {where}: {d.code}: {d.message} [{d.rule}; {d.source}]")
    return out


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_scrub(results: Iterable[ScrubResult | ScrubError]) -> str:
    """The scrub results as text: per claim, per payer, billed → expected with repairs and edits."""
    out: list[str] = []
    claims = repairs = edits = errors = 0
    for result in results:
        name = result.claim or f"#{result.position + 1}"
        if isinstance(result, ScrubError):
            errors += 1
            out += [f"claim {name} (position {result.position + 1}): error: {result.message}", ""]
            continue
        claims += 1
        out.append(f"claim {name} (position {result.position + 1})")
        if result.facts:
            out.append("  taken from the billed modifiers: " + "; ".join(f.text() for f in result.facts))
        for outcome in result.outcomes.values():
            out += _outcome_text(outcome)
            repairs += len(outcome.repairs)
            edits += len(outcome.edits)
        out.append("")
    out.append(
        f"{claims} claim{'s' if claims != 1 else ''} checked, {_n(repairs, 'repair')}, {_n(edits, 'edit')}, {errors} unreadable"
    )
    return "\n".join(out)


def scrub_document(results: Sequence[ScrubResult | ScrubError]) -> dict[str, Any]:
    """The ``scrub --format json`` document: every claim with its outcomes (format v1), every error."""
    claims: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, ScrubError):
            errors.append({"position": r.position, "claim": r.claim, "message": r.message})
            continue
        claims.append(
            {
                "position": r.position,
                "claim": r.claim,
                "payer_source": r.payer_source,
                "facts": [
                    {"field": f.field, "value": f.value, "modifier": f.modifier, "entry": f.entry} for f in r.facts
                ],
                "outcomes": {pid: o.to_mapping() for pid, o in r.outcomes.items()},
                "repairs": sum(len(o.repairs) for o in r.outcomes.values()),
                "edits": sum(len(o.edits) for o in r.outcomes.values()),
            }
        )
    return {"scrub_version": SCRUB_VERSION, "claims": claims, "errors": errors}


def _line_index(record: Any, line: ClaimLine) -> int | None:
    """The 837P line (``LineRef.line``) an outcome line comes from, or None."""
    for ref in record.lines:
        if ref.origin == line.origin and ref.entry == line.service:
            return int(ref.line)
    return None


def x12_repairs(record: Any, outcome: Outcome) -> dict[int, tuple[tuple[str, ...] | None, tuple[int, ...] | None]]:
    """Per 837P line of ``record``: the modifiers and pointers once the outcome's repairs are applied.

    Only lines with a repair are listed; ``None`` keeps that element as billed. Edits are never
    applied.
    """
    from ..evaluation.scrub import repaired_modifiers

    out: dict[int, tuple[tuple[str, ...] | None, tuple[int, ...] | None]] = {}
    for n, line in enumerate(outcome.lines):
        repairs = [d for d in outcome.repairs if d.line == n]
        if not repairs or line.billed is None:
            continue
        index = _line_index(record, line)
        if index is None:
            continue
        modifiers = repaired_modifiers(outcome, n) if any(d.field == "modifiers" for d in repairs) else None
        pointers = line.diagnosis_pointers if any(d.field == "diagnosis_pointers" for d in repairs) else None
        out[index] = (modifiers, pointers)
    return out


@attrs.frozen
class ScrubRun:
    """The claims of one input and their results; for an 837P, what it takes to write it back repaired."""

    name: str
    results: tuple[ScrubResult | ScrubError, ...]
    data: bytes = b""
    records: tuple[Any, ...] = ()

    def repaired(self) -> tuple[bytes, list[str]]:
        """The 837P with every claim's repairs applied (edits never), and one note per claim left as billed."""
        from ..formats.x12_in import LineChange, rewrite_lines

        if not self.data:
            raise PayerPolicyError(f"{self.name}: only an 837P can be written back as an 837P")
        changes: dict[tuple[int, int], Any] = {}
        notes: list[str] = []
        by_position = {r.position: r for r in self.records}
        for result in self.results:
            if isinstance(result, ScrubError):
                notes.append(f"claim {result.claim or result.position + 1}: not read, left as billed")
                continue
            if len(result.outcomes) != 1:
                notes.append(
                    f"claim {result.claim or result.position + 1}: checked for {len(result.outcomes)} payers"
                    " (its payer is not mapped), left as billed; give --payer to repair it"
                )
                continue
            (outcome,) = result.outcomes.values()
            for index, (modifiers, pointers) in x12_repairs(by_position[result.position], outcome).items():
                changes[(result.position, index)] = LineChange(modifiers=modifiers, diagnosis_pointers=pointers)
        repaired = sum(1 for _ in changes)
        notes.append(f"{repaired} line{'s' if repaired != 1 else ''} repaired; edits are reported, never applied")
        return rewrite_lines(self.data, changes), notes


def _read_bytes(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise PayerPolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None


def scrub_encounter(
    encounter: Encounter,
    engine: Engine,
    payers: Sequence[str] | None,
    *,
    position: int = 0,
    payer_source: str = "requested",
    stop: Callable[[], bool] | None = None,
) -> ScrubResult:
    """One claim as billed, checked for ``payers`` (every installed payer when None).

    The facts the billed modifiers state (AT, GA, GX, GY, GZ, 25) fill the encounter fields that
    are absent first (:func:`~payerpolicy.formats.claim_facts.claim_facts`), and are listed in the result.
    ``stop`` is asked between phases (see :meth:`~payerpolicy.engine.Engine.evaluate`).
    """
    data, facts = claim_facts(encounter.to_mapping(), engine.catalogue)
    if facts:
        encounter = Encounter.from_mapping(data, catalogue=engine.catalogue)
    outcomes = engine.compare(encounter, payers) if stop is None else engine.compare(encounter, payers, stop=stop)
    return ScrubResult(position, encounter.id, outcomes, payer_source, facts)


def scrub_file(
    path: str,
    engine: Engine,
    *,
    source: str = "encounter",
    payers: Sequence[str] | None = None,
    payer_map: str | None = None,
) -> ScrubRun:
    """Read the claim(s) of ``path`` and check each as billed.

    ``source`` is ``encounter`` (JSON/TOML with ``billed`` entries), ``fhir`` (a FHIR R4 Claim) or
    ``x12`` (an 837P with any number of claims). Bad input in a one-claim file raises
    :class:`~payerpolicy.errors.PayerPolicyError`; in an 837P, an envelope problem raises and a bad
    claim becomes a :class:`ScrubError` while the next claims are still checked. Unknown ``payers``
    raise before any work.
    """
    name = "<stdin>" if path == "-" else path
    for pid in payers or ():
        engine.host.payer(pid)
    if source != "x12":
        if source == "fhir":
            from ..formats.fhir import read_fhir_encounter

            encounter = read_fhir_encounter(path, catalogue=engine.catalogue)
        else:
            encounter = read_encounter(path, catalogue=engine.catalogue)
        if not encounter.as_billed:
            raise PayerPolicyError(
                f"{name}: nothing in it says what was billed: give services/procedures a 'billed' entry"
                " (units, modifiers; docs/encounter-format.md#billed), or use `payerpolicy check` to code the visit"
            )
        return ScrubRun(name, (scrub_encounter(encounter, engine, payers),))
    return scrub_x12(_read_bytes(path), engine, name=name, payers=payers, payer_map=payer_map)


def scrub_x12(
    data: bytes,
    engine: Engine,
    *,
    name: str = "<837P>",
    payers: Sequence[str] | None = None,
    payer_map: str | None = None,
    stop: Callable[[], bool] | None = None,
) -> ScrubRun:
    """Check every claim of an 837P as billed: a result per claim, or an error row for a claim that cannot be read.

    An envelope problem raises :class:`~payerpolicy.formats.x12_in.X12Error` (one line naming the
    segment). A claim is checked for ``payers`` when given, else for the payer the payer map gives
    it, else for every installed payer.
    """
    from ..formats.x12_in import ClaimError, load_payer_map, read_837p, to_encounter

    mapping = load_payer_map(payer_map) if payer_map else None
    results: list[ScrubResult | ScrubError] = []
    records: list[Any] = []
    for record in read_837p(data, source=name, payer_map=mapping, catalogue=engine.catalogue):
        if isinstance(record, ClaimError):
            results.append(ScrubError(record.position, record.claim_id, str(record)))
            continue
        records.append(record)
        where = f"claim {record.position + 1} ({record.claim_id})"
        encounter = to_encounter(record, catalogue=engine.catalogue)
        if isinstance(encounter, ClaimError):
            results.append(ScrubError(record.position, record.claim_id, str(encounter)))
            continue
        try:
            ids = list(payers) if payers else ([record.payer] if record.payer else None)
            how = "requested" if payers else ("mapped" if record.payer else "all")
            results.append(scrub_encounter(encounter, engine, ids, position=record.position, payer_source=how, stop=stop))
        except PayerPolicyError as exc:
            results.append(ScrubError(record.position, record.claim_id, f"{where}: {exc}"))
    return ScrubRun(name, tuple(results), data, tuple(records))
