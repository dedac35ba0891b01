"""Text, Markdown, CSV and JSON renderings of outcomes for the CLI (plain text, no terminal tricks).

The HTML page of ``compare --format html`` is in :mod:`payerpolicy.pages`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..evaluation.model import ClaimLine, Encounter, Finding, Outcome

if TYPE_CHECKING:  # the grid is imported only by the commands that draw one (cold start of `check`)
    from .grid import Grid, WhatIf

__all__ = [
    "compare_csv",
    "compare_json",
    "compare_mapping",
    "compare_markdown",
    "compare_table",
    "line_text",
    "render_check",
    "render_compare",
    "render_explain",
]


def line_text(line: ClaimLine) -> str:
    """``97140 x1 [59, GP]`` — the notation of the scenarios and case files."""
    from .grid import line_text as notation

    return notation(line.code, line.units, line.modifiers)


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
    headers = ["#", "code", "units", "modifiers", "status", "from", "min", "diagnoses"]
    priced = outcome.expected_total is not None or any(line.charge is not None for line in outcome.lines)
    if priced:
        headers += ["charge", "allowed"]
        for row, line in zip(rows, outcome.lines, strict=True):
            row += [_money(line.charge) if line.charge is not None else "", _money(line.allowed)]
    out += _table(headers, rows, right=(0, 2, 6, 8, 9))
    billable = sum(line.units for line in outcome.lines if line.status == "billable")
    out += ["", f"  billable units: {billable}; lines on the claim: {len(outcome.claim_lines)} of {len(outcome.lines)}"]
    if priced:
        out.append(_money_summary(outcome))
    if outcome.findings:
        out += ["", "findings"]
        out += [_finding_text(f, outcome.lines) for f in outcome.findings]
    return "\n".join(out)


def _money_summary(outcome: Outcome) -> str:
    """``expected total $148.00 (charges $180.00); lost to findings: NCCI_PTP_DENIAL $32.00``."""
    text = f"  expected total: {_money(outcome.expected_total)}"
    if outcome.charge_total is not None:
        text += f" (charges {_money(outcome.charge_total)})"
    if outcome.unpriced_lines:
        text += f"; no amount for line(s) {', '.join(str(i + 1) for i in outcome.unpriced_lines)}"
    if outcome.cost_by_finding:
        lost = ", ".join(f"{code} {_money(v)}" for code, v in sorted(outcome.cost_by_finding.items(), key=lambda kv: -kv[1]))
        text += f"; lost to findings: {lost}"
    return text


def _marked(grid: Grid, text: str, differs: bool, before: str | None) -> str:
    """A text-table cell: ``*`` when it differs from the first payer, or ``!before → after`` in a what-if."""
    if grid.what_if:
        return f"!{before} → {text}" if before is not None else text
    return f"*{text}" if differs else text


def compare_table(grid: Grid) -> str:
    """``compare --format table``: the grid as plain text, findings below."""
    rows = []
    for row in grid.rows:
        label = row.label if row.label_before is None else f"{row.label_before} → {row.label}"
        rows.append([f"{row.key} {label}".rstrip()] + [_marked(grid, c.text, c.differs, c.before) for c in row.cells])
    units = []
    for i, u in enumerate(grid.units):
        before = str(grid.units_before[i]) if grid.units_changed(i) and grid.units_before is not None else None
        units.append(_marked(grid, str(u), grid.units_differ(i), before))
    rows.append(["billable units", *units])
    if grid.priced:
        totals = []
        for i in range(len(grid.payers)):
            before = grid.total_text(i, before=True) if grid.totals_changed(i) else None
            totals.append(_marked(grid, grid.total_text(i), grid.totals_differ(i), before))
        rows.append(["expected total", *totals])
        rows.append(["lost to findings", *[_money(v) for v in grid.lost]])
        if grid.what_if:
            rows.append(["what-if change", *[_signed(grid.total_change(i)) for i in range(len(grid.payers))]])
    out = [grid.title]
    if grid.what_if:
        out.append("what-if: " + " ".join(f"--set {a}" for a in grid.assignments))
    out.append("")
    out += _table(["entry", *grid.payers], rows)
    legend = "! changed by the what-if (before → after)" if grid.what_if else f"* differs from {grid.payers[0]}"
    out += ["", f"  {legend}"]
    unpriced = [p for p, t in zip(grid.payers, grid.totals, strict=True) if t is None]
    if grid.priced and unpriced:
        out.append(
            f"  — no amounts for {', '.join(unpriced)}: no fee for its codes (Medicare: import CMS's RVU and GPCI files"
            " with `payerpolicy fees import` and give --fees-dir, or add rows for the payer to the fee file)"
        )
    for p in grid.payers:
        findings = [f for f in grid.findings if f.payer == p]
        if not findings:
            continue
        out += ["", f"findings — {p}"]
        for f in findings:
            mark = {"added": "+", "removed": "-"}.get(f.change, " ")
            out.append(f"{mark} {f.severity:<15} {f.code:<36} {f.where:<12} [{f.rule}] {f.message}")
    return "\n".join(out)


def _money(value: Decimal | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _signed(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"


def render_compare(encounter: Encounter, outcomes: Mapping[str, Outcome], what_if: WhatIf | None = None) -> str:
    """Render a grid: one row per procedure or service, one column per payer.

    ``*`` marks a cell that differs from the first payer's; in a what-if, ``!`` marks a changed cell.
    """
    from .grid import build_grid

    return compare_table(build_grid(encounter, outcomes, what_if))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def _md(text: str) -> str:
    """Escape Markdown punctuation so text from data never turns into markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_code(text: str) -> str:
    if not text:
        return ""
    return f"`{text}`" if "`" not in text and "|" not in text else _md(text)


def _md_cell(grid: Grid, text: str, differs: bool, before: str | None, *, code: bool = True) -> str:
    show = _md_code if code else _md
    if grid.what_if and before is not None:
        after = f"**{show(text)}**" if text else "(none)"
        return f"~~{show(before)}~~ → {after}" if before else after
    if not grid.what_if and differs:
        return f"**{show(text)}** \\*"
    return show(text)


def compare_markdown(grid: Grid) -> str:
    """``compare --format markdown``: a GitHub-flavoured Markdown table, findings as lists below."""
    out = [f"### {_md(grid.title[0].upper() + grid.title[1:])}", ""]
    if grid.what_if:
        out += ["What-if: " + ", ".join(_md_code(f"--set {a}") for a in grid.assignments), ""]
    out.append("| entry | " + " | ".join(_md(p) for p in grid.payers) + " |")
    out.append("|---" * (len(grid.payers) + 1) + "|")
    for row in grid.rows:
        label = f"{_md_code(row.key)} {_md(row.label)}"
        if row.label_before is not None:
            label = f"{_md_code(row.key)} ~~{_md(row.label_before)}~~ → {_md(row.label)}"
        cells = [_md_cell(grid, c.text, c.differs, c.before) for c in row.cells]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    units = []
    for i, u in enumerate(grid.units):
        before = str(grid.units_before[i]) if grid.units_changed(i) and grid.units_before is not None else None
        units.append(_md_cell(grid, str(u), grid.units_differ(i), before, code=False))
    out.append("| **billable units** | " + " | ".join(units) + " |")
    if grid.priced:
        totals = []
        for i in range(len(grid.payers)):
            before = grid.total_text(i, before=True) if grid.totals_changed(i) else None
            totals.append(_md_cell(grid, grid.total_text(i), grid.totals_differ(i), before, code=False))
        out.append("| **expected total** | " + " | ".join(totals) + " |")
        out.append("| **lost to findings** | " + " | ".join(_md(_money(v)) for v in grid.lost) + " |")
    out += [
        "",
        "~~before~~ → **after**: changed by the what-if."
        if grid.what_if
        else f"**bold** \\*: differs from {_md(grid.payers[0])}.",
    ]
    for p in grid.payers:
        findings = [f for f in grid.findings if f.payer == p]
        if not findings:
            continue
        out += ["", f"#### Findings — {_md(p)}", ""]
        for f in findings:
            change = {"added": " **(added)**", "removed": " **(removed)**"}.get(f.change, "")
            out.append(
                f"- {f.severity} {_md_code(f.code)} {_md(f.where)} \\[{_md(f.rule)}\\]{change}: {_md(f.message)}"
            )
    return "\n".join(out) + "\n"


def compare_csv(grid: Grid) -> str:
    """``compare --format csv``: the grid, an empty row, then the findings, one per row.

    Grid columns: ``entry``, ``label``, one column per payer, and ``marked`` (the payers whose cell
    differs from the first payer's, or in a what-if was changed).
    """
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["entry", "label", *grid.payers, "marked"])

    def value(text: str, before: str | None) -> str:
        return f"{before} → {text}" if grid.what_if and before is not None else text

    for row in grid.rows:
        label = row.label if row.label_before is None else f"{row.label_before} → {row.label}"
        marked = [p for p, c in zip(grid.payers, row.cells, strict=True) if (c.changed if grid.what_if else c.differs)]
        w.writerow([row.key, label, *[value(c.text, c.before) for c in row.cells], " ".join(marked)])
    units, marked = [], []
    for i, u in enumerate(grid.units):
        before = str(grid.units_before[i]) if grid.units_changed(i) and grid.units_before is not None else None
        units.append(value(str(u), before))
        if grid.units_changed(i) if grid.what_if else grid.units_differ(i):
            marked.append(grid.payers[i])
    w.writerow(["billable units", "", *units, " ".join(marked)])
    if grid.priced:
        totals, marked = [], []
        for i in range(len(grid.payers)):
            total = "" if grid.totals[i] is None else f"{grid.totals[i]:.2f}"
            old = grid.totals_before[i] if grid.totals_before is not None else None
            before = ("" if old is None else f"{old:.2f}") if grid.totals_changed(i) else None
            totals.append(value(total, before))
            if grid.totals_changed(i) if grid.what_if else grid.totals_differ(i):
                marked.append(grid.payers[i])
        w.writerow(["expected total", "", *totals, " ".join(marked)])
        w.writerow(["lost to findings", "", *["" if v is None else f"{v:.2f}" for v in grid.lost], ""])
    w.writerow([])
    w.writerow(["payer", "severity", "code", "where", "rule", "message", "change"])
    for f in grid.findings:
        w.writerow([f.payer, f.severity, f.code, f.where, f.rule, f.message, f.change])
    return buf.getvalue()


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
    if outcome.expected_total is not None:
        out += ["", "money", _money_summary(outcome)]
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


def compare_json(encounter: Encounter, outcomes: Mapping[str, Outcome], what_if: WhatIf | None = None) -> str:
    """``compare --format json``: the outcomes in format v1, one per payer, in column order.

    With a what-if, ``outcomes`` are the outcomes after the change and ``what_if`` holds the
    assignments, the outcomes before, and what changed (cells, billable units, findings).
    """
    data = compare_mapping(encounter, outcomes)
    if what_if is not None:
        from .grid import build_grid

        grid = build_grid(encounter, outcomes, what_if)
        cells = [
            {"payer": p, "entry": row.key, "before": c.before, "after": c.text}
            for row in grid.rows
            for p, c in zip(grid.payers, row.cells, strict=True)
            if c.changed
        ]
        units = [
            {"payer": p, "before": (grid.units_before or grid.units)[i], "after": grid.units[i]}
            for i, p in enumerate(grid.payers)
            if grid.units_changed(i)
        ]
        findings = [
            {"payer": f.payer, "code": f.code, "where": f.where, "change": f.change} for f in grid.findings if f.change
        ]
        totals = [
            {
                "payer": p,
                "before": None if (grid.totals_before or grid.totals)[i] is None else f"{(grid.totals_before or grid.totals)[i]:.2f}",
                "after": None if grid.totals[i] is None else f"{grid.totals[i]:.2f}",
                "change": f"{grid.total_change(i):.2f}",
            }
            for i, p in enumerate(grid.payers)
            if grid.totals_changed(i) and grid.total_change(i) is not None
        ]
        data["what_if"] = {
            "set": list(what_if.assignments),
            "outcomes_before": [what_if.outcomes[p].to_mapping() for p in outcomes if p in what_if.outcomes],
            "changes": {"cells": cells, "billable_units": units, "findings": findings, "expected_total": totals},
        }
    return json.dumps(data, indent=2, ensure_ascii=False)
