"""837P files from a batch run: one interchange per payer, every claim of the run in it.

``payerpolicy batch VISITS --out claims.x12`` evaluates the run as usual, keeps the rows in
``claims.x12.jsonl`` and then calls :func:`write_837p_files`, which reads those rows back (the
outcomes) and the input (the encounters: dates, provider, care dates, charges) and writes
``claims.<payer>.x12`` for each payer: one interchange (one ISA/GS/ST) whose claims all sit under
the envelope's billing provider, with unique control numbers across the files. Only the lines that
go on a claim (``billable`` and ``expected_denial``) are written. ``docs/x12.md`` ("Many claims")
documents it. This module only reads batch output; it does not change the batch runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from ..evaluation.errors import EncounterError, PayerPolicyError
from ..evaluation.model import Adjustment, Billed, ClaimLine, Encounter, Finding, Outcome, PayerRef
from ..formats import x12

__all__ = ["BatchClaims", "claims_from_batch", "outcome_from_mapping", "write_837p_files"]


def outcome_from_mapping(data: Mapping[str, Any]) -> Outcome:
    """An :class:`Outcome` from outcome format v1 data (a batch row's ``outcome``), without its trace.

    Only what a claim needs is read: the payer, the diagnoses, the lines and the findings.
    """
    payer = data["payer"]
    lines = []
    for line in data["lines"]:
        billed = line.get("billed")
        lines.append(
            ClaimLine(
                code=line["code"],
                units=line["units"],
                modifiers=tuple(line.get("modifiers") or ()),
                status=line["status"],
                minutes=line.get("minutes"),
                regions=tuple(line.get("regions") or ()),
                diagnosis_pointers=tuple(line.get("diagnosis_pointers") or ()),
                service=line.get("service", 0),
                origin=line.get("origin", "services"),
                billed=Billed(
                    units=billed.get("units"),
                    modifiers=tuple(billed.get("modifiers") or ()),
                    charge=Decimal(billed["charge"]) if billed.get("charge") is not None else None,
                )
                if billed
                else None,
            )
        )
    findings = [
        Finding(
            code=f["code"],
            severity=f["severity"],
            message=f["message"],
            rule=f.get("rule", ""),
            source=f.get("source", ""),
            line=f.get("line"),
            plugin=f.get("plugin", ""),
            adjustment=Adjustment(
                group=f["adjustment"]["group"],
                carc=f["adjustment"]["carc"],
                rarc=tuple(f["adjustment"]["rarc"]),
                source=f["adjustment"]["source"],
            )
            if f.get("adjustment")
            else None,
        )
        for f in data.get("findings", ())
    ]
    return Outcome(
        encounter=data.get("encounter"),
        payer=PayerRef(id=payer["id"], name=payer["name"], policy_version=payer.get("policy_version", "")),
        lines=tuple(lines),
        findings=tuple(findings),
        trace=(),
        diagnoses=tuple(data.get("diagnoses") or ()),
        as_billed=bool(data.get("as_billed")),
    )


@attrs.frozen
class BatchClaims:
    """The claims of a batch run by payer, and the (source, payer, reason) of each one left out."""

    claims: Mapping[str, Sequence[x12.ClaimInput]]
    skipped: Sequence[tuple[str, str, str]]


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise PayerPolicyError(
            f"{path}: expected batch output as JSON Lines (.jsonl); write the run with --out *.jsonl"
        )
    try:
        with open(path, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                if text.strip():
                    try:
                        yield json.loads(text)
                    except ValueError:
                        raise PayerPolicyError(f"{path}:{n}: not a batch output row (invalid JSON)") from None
    except FileNotFoundError:
        raise PayerPolicyError(f"{path}: no such file") from None


def _encounters(input: Path, wanted: set[int]) -> dict[int, Encounter]:
    from .chunks import _decode
    from .records import iter_records

    out: dict[int, Encounter] = {}
    for record, source, kind, payload in iter_records(input):
        if record not in wanted:
            continue
        try:
            data, _ = _decode(source, kind, payload)
            out[record] = Encounter.from_mapping(data)
        except EncounterError:
            continue  # the run already has an error row for it
    return out


def _claim_id(encounter: Encounter, record: int) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]", "", encounter.id or "")[:30] or f"REC{record}"


def claims_from_batch(input: str | Path, rows: str | Path) -> BatchClaims:
    """Every claim of a batch run: the rows' outcomes with the input's encounters, by payer.

    Error rows and outcomes with no line on the claim are left out (listed in ``skipped``). A claim
    id (CLM01) is the encounter id, else ``REC<record>``; an id seen twice gets ``-<record>``.
    """
    rows_path, input_path = Path(rows), Path(input)
    kept: list[tuple[int, str, Outcome]] = []
    skipped: list[tuple[str, str, str]] = []
    for row in _rows(rows_path):
        if row.get("outcome") is None:
            continue
        outcome = outcome_from_mapping(row["outcome"])
        if not outcome.claim_lines:
            skipped.append((row.get("source", ""), outcome.payer.id, "no line goes on the claim"))
            continue
        kept.append((int(row["record"]), row.get("source", ""), outcome))
    encounters = _encounters(input_path, {record for record, _, _ in kept})
    by_payer: dict[str, list[x12.ClaimInput]] = {}
    seen: dict[str, set[str]] = {}
    for record, source, outcome in kept:
        encounter = encounters.get(record)
        if encounter is None:
            skipped.append((source, outcome.payer.id, "the encounter cannot be read from the input"))
            continue
        ids = seen.setdefault(outcome.payer.id, set())
        claim_id = _claim_id(encounter, record)
        if claim_id in ids:
            claim_id = f"{claim_id}-{record}"
        ids.add(claim_id)
        by_payer.setdefault(outcome.payer.id, []).append(x12.ClaimInput(outcome, encounter, claim_id))
    return BatchClaims(by_payer, skipped)


def write_837p_files(
    input: str | Path, rows: str | Path, out: str | Path, envelope: x12.Envelope | None = None
) -> list[tuple[Path, int]]:
    """Write one 837P interchange per payer for a batch run; return (file, claims) for each file.

    ``out`` ``claims.x12`` gives ``claims.medicare.x12``, ``claims.commercial.x12``, ... (payers in
    id order). The interchange control numbers are the envelope's ``control_number``, plus 1 for
    each following payer. A claim whose lines cannot be written (no diagnosis pointer, say) is a
    :class:`~payerpolicy.errors.PayerPolicyError` naming it; so is a production envelope with
    placeholders or zero charges.
    """
    env = envelope or x12.Envelope()
    batch = claims_from_batch(input, rows)
    target = Path(out)
    written: list[tuple[Path, int]] = []
    for n, payer in enumerate(sorted(batch.claims)):
        claims = batch.claims[payer]
        payer_env = attrs.evolve(env, control_number=(env.control_number + n - 1) % 999_999_999 + 1)
        try:
            text = x12.interchange_of_claims(claims, payer_env)
        except PayerPolicyError as exc:
            raise PayerPolicyError(f"{target}: payer {payer}: {exc}") from None
        path = target.with_name(f"{target.stem}.{payer}{target.suffix}")
        path.write_text(text, encoding="ascii")
        written.append((path, len(claims)))
    return written
