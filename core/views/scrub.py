"""``payerpolicy scrub``: claims as billed beside each payer's expected lines, with repairs and edits.

A *scrub result* is one claim (its id and position in the input) and, per payer, the outcome of
that claim as billed; or, for a claim that could not be read, an error. This module renders
results as text (:func:`render_scrub`) and as the stable JSON document of
``scrub --format json`` (:func:`scrub_document`, docs/scrub.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..evaluation.model import ClaimLine, Outcome
from .render import _table

__all__ = ["SCRUB_VERSION", "ScrubError", "ScrubResult", "render_scrub", "scrub_document"]

#: Version of the ``scrub --format json`` document; fields are added, never renamed or removed.
SCRUB_VERSION = 1


@attrs.frozen
class ScrubResult:
    """One claim as billed and what each payer's policy makes of it."""

    position: int
    claim: str | None
    outcomes: Mapping[str, Outcome]
    payer_source: str = "requested"


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


def _outcome_text(outcome: Outcome) -> list[str]:
    p = outcome.payer
    out = [f"  {p.id} — {p.name} (policy {p.policy_version})"]
    rows = []
    for i, line in enumerate(outcome.lines):
        mark = "=" if not any(d.line == i for d in outcome.differences) else "≠"
        rows.append([str(i + 1), _billed_text(line), mark, _expected_text(line)])
    out += ["  " + r for r in _table(["#", "billed", "", "expected"], rows, right=(0,))]
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
        for outcome in result.outcomes.values():
            out += _outcome_text(outcome)
            repairs += len(outcome.repairs)
            edits += len(outcome.edits)
        out.append("")
    out.append(f"{claims} claim{'s' if claims != 1 else ''} checked, {repairs} repairs, {edits} edits, {errors} unreadable")
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
