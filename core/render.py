"""Text and JSON renderings of outcomes for the CLI (plain text, no terminal tricks)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .model import ClaimLine, Encounter, Finding, Outcome

__all__ = ["compare_json", "compare_mapping", "line_text", "render_check", "render_compare", "render_explain"]


def line_text(line: ClaimLine) -> str:
    """``97140 x1 [59, GP]`` — the notation of the scenarios and case files."""
    return f"{line.code} x{line.units} [{', '.join(line.modifiers)}]"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: Sequence[str]) -> str:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)]
        return "  " + "  ".join(cells).rstrip()

    return [fmt(headers), "  " + "  ".join("-" * w for w in widths), *[fmt(r) for r in rows]]


def _finding_text(f: Finding, lines: Sequence[ClaimLine]) -> str:
    where = f"line {f.line + 1} ({lines[f.line].code})" if f.line is not None else "encounter"
    return f"  {f.severity:<15} {f.code:<36} {where}\n      {f.message}\n      rule {f.rule} [{f.plugin}]: {f.source}"


def _pointers(line: ClaimLine, diagnoses: Sequence[str]) -> str:
    return ", ".join(f"{p}:{diagnoses[p - 1]}" if 0 < p <= len(diagnoses) else str(p) for p in line.diagnosis_pointers)


def render_check(outcome: Outcome) -> str:
    """The claim lines and findings of one outcome, as a text table."""
    p = outcome.payer
    out = [
        f"{p.id} — {p.name} (policy {p.policy_version})"
        + (f" — encounter {outcome.encounter}" if outcome.encounter else ""),
        "",
    ]
    rows = [
        [
            str(i + 1),
            line.code,
            str(line.units),
            " ".join(line.modifiers) or "-",
            line.status,
            f"{line.origin}[{line.service}]",
            "" if line.minutes is None else str(line.minutes),
            _pointers(line, outcome.diagnoses),
        ]
        for i, line in enumerate(outcome.lines)
    ]
    out += _table(["#", "code", "units", "modifiers", "status", "from", "min", "diagnoses"], rows, right=(0, 2, 6))
    billable = sum(line.units for line in outcome.lines if line.status == "billable")
    out += ["", f"  billable units: {billable}; lines on the claim: {len(outcome.claim_lines)} of {len(outcome.lines)}"]
    if outcome.findings:
        out += ["", "findings"]
        out += [_finding_text(f, outcome.lines) for f in outcome.findings]
    return "\n".join(out)


def _cell(outcome: Outcome, origin: str, index: int) -> str:
    for line in outcome.lines:
        if line.origin == origin and line.service == index:
            if line.status == "billable":
                return line_text(line)
            why = next(
                (
                    f.code
                    for f in outcome.findings
                    if f.line is not None
                    and outcome.lines[f.line] is line
                    and f.severity in ("error", "expected_denial", "info", "warning")
                ),
                "",
            )
            tag = "DENIAL?" if line.status == "expected_denial" else "not billed"
            text = line_text(line) if line.status == "expected_denial" else f"{line.code} {tag}"
            return f"{text} ({tag}: {why})" if line.status == "expected_denial" else (f"{text}: {why}" if why else text)
    for trace in outcome.trace:
        if trace.field == "minutes" and f"{origin}[{index}]" in trace.reason and trace.line is not None:
            return f"(with line {outcome.lines[trace.line].code})"
    if origin == "services":
        why = next(
            (f.code for f in outcome.findings if f.line is None and f"services[{index}]" in f.message), "no line"
        )
        return f"— {why}"
    return "—"


def _entry_label(encounter: Encounter, origin: str, index: int) -> str:
    if origin == "procedures":
        p = encounter.procedures[index]
        regions = f" {'/'.join(p.regions)}" if p.regions else ""
        return f"procedures[{index}] {p.code}{regions}"
    s = encounter.services[index]
    what = s.code or s.technique or "?"
    minutes = f" {s.minutes}m" if s.minutes is not None else ""
    regions = f" {'/'.join(s.regions)}" if s.regions else ""
    return f"services[{index}] {what}{minutes}{regions}"


def render_compare(encounter: Encounter, outcomes: Mapping[str, Outcome]) -> str:
    """Render a grid: one row per procedure or service, one column per payer.

    ``*`` marks a cell that differs from the first payer's.
    """
    payers = list(outcomes)
    entries = [("procedures", i) for i in range(len(encounter.procedures))] + [
        ("services", i) for i in range(len(encounter.services))
    ]
    rows = []
    for origin, index in entries:
        cells = [_cell(outcomes[p], origin, index) for p in payers]
        first = cells[0]
        rows.append(
            [_entry_label(encounter, origin, index)]
            + [c if i == 0 or c == first else f"*{c}" for i, c in enumerate(cells)]
        )
    units = [str(sum(line.units for line in outcomes[p].lines if line.status == "billable")) for p in payers]
    rows.append(["billable units"] + [u if i == 0 or u == units[0] else f"*{u}" for i, u in enumerate(units)])
    title = f"encounter {encounter.id or '(no id)'} — date of service {encounter.date_of_service} — provider {encounter.provider.type}"
    out = [title, ""]
    out += _table(["entry", *payers], rows)
    out += ["", f"  * differs from {payers[0]}"]
    for p in payers:
        o = outcomes[p]
        if not o.findings:
            continue
        out += ["", f"findings — {p}"]
        for f in o.findings:
            where = f"line {o.lines[f.line].code}" if f.line is not None else "encounter"
            out.append(f"  {f.severity:<15} {f.code:<36} {where:<12} [{f.rule}] {f.message}")
    return "\n".join(out)


def render_explain(encounter: Encounter, outcome: Outcome) -> str:
    """Why each line has its code, units, modifiers and status: the trace, rule by rule."""
    out = [render_check(outcome), "", "why"]
    for i, line in enumerate(outcome.lines):
        out.append(f"  line {i + 1}: {line_text(line)} {line.status} — from {line.origin}[{line.service}]")
        for t in outcome.trace:
            if t.line != i:
                continue
            before = _show(t.before)
            after = _show(t.after)
            out.append(
                f"    {t.field}: {before} -> {after}   {t.rule} [{t.plugin}]" + (f" — {t.reason}" if t.reason else "")
            )
            if t.source:
                out.append(f"        source: {t.source}")
        for f in outcome.findings:
            if f.line == i:
                out.append(f"    finding {f.code} ({f.severity}): {f.message}")
    others = [t for t in outcome.trace if t.line is None]
    if others:
        out.append("  claim:")
        for t in others:
            out.append(f"    {t.field}: {_show(t.before)} -> {_show(t.after)}   {t.rule} [{t.plugin}] {t.reason}")
    return "\n".join(out)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def compare_mapping(encounter: Encounter, outcomes: Mapping[str, Outcome]) -> dict[str, Any]:
    """The data of ``compare --format json`` (and of the HTTP service's ``POST /v1/compare``)."""
    return {
        "encounter": encounter.id,
        "payers": list(outcomes),
        "outcomes": [o.to_mapping() for o in outcomes.values()],
    }


def compare_json(encounter: Encounter, outcomes: Mapping[str, Outcome]) -> str:
    """``compare --format json``: the outcomes in format v1, one per payer, in column order."""
    return json.dumps(compare_mapping(encounter, outcomes), indent=2, ensure_ascii=False)
