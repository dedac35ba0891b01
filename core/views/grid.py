"""The comparison grid behind every ``payerpolicy compare`` format and the batch report.

One :class:`Grid` row per procedure or service of the encounter, one column per payer; each
:class:`Cell` says what that payer bills for that entry (code, units, modifiers) or why it bills
nothing. The text, Markdown, CSV and HTML renderings only lay the grid out: what a cell says, and
whether it differs from the first payer's or was changed by a what-if, is decided here, once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..evaluation.model import Billed, Encounter, Outcome

__all__ = [
    "Cell",
    "Grid",
    "GridFinding",
    "Row",
    "WhatIf",
    "billable_units",
    "build_grid",
    "cell_for",
    "entry_label",
    "line_reason",
    "money",
]


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen
class Cell:
    """What one payer makes of one encounter entry.

    ``status`` is a line status (``billable``, ``expected_denial``, ``not_billable``), ``merged``
    (the service was added to an earlier line of the same code, shown in ``text``), ``no_line``
    (no line was built; ``reason`` says why) or ``absent`` (the entry does not exist on this side
    of a what-if). ``text`` is the cell as the text table prints it. ``before`` is the cell's text
    before a what-if change, only when it differs from ``text``.
    """

    text: str
    status: str
    code: str | None = None
    units: int = 0
    modifiers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    reason: str = ""
    differs: bool = False
    before: str | None = None
    #: The line's expected allowed amount (in ``text`` too, after the line); None when not priced.
    amount: Decimal | None = None

    @property
    def changed(self) -> bool:
        """Whether a what-if changed this cell."""
        return self.before is not None


@attrs.frozen
class Row:
    """One procedure or service: ``key`` (``services[1]``), a short ``label`` and a cell per payer."""

    key: str
    label: str
    cells: tuple[Cell, ...] = attrs.field(converter=_tuple)
    label_before: str | None = None


@attrs.frozen
class GridFinding:
    """A finding as listed under the grid; ``change`` is ``added`` or ``removed`` in a what-if, else empty."""

    payer: str
    severity: str
    code: str
    where: str
    rule: str
    message: str
    source: str = ""
    change: str = ""


@attrs.frozen
class WhatIf:
    """The encounter and outcomes before ``--set`` changes, and the changes as typed (``care.phase=maintenance``)."""

    assignments: tuple[str, ...] = attrs.field(converter=_tuple)
    encounter: Encounter
    outcomes: Mapping[str, Outcome]


@attrs.frozen
class Grid:
    """The whole comparison: rows, billable units per payer, findings, and what-if data when there is a what-if."""

    encounter: str | None
    date_of_service: str
    provider: str
    payers: tuple[str, ...] = attrs.field(converter=_tuple)
    payer_names: tuple[str, ...] = attrs.field(converter=_tuple)
    rows: tuple[Row, ...] = attrs.field(converter=_tuple)
    units: tuple[int, ...] = attrs.field(converter=_tuple)
    findings: tuple[GridFinding, ...] = attrs.field(converter=_tuple)
    units_before: tuple[int, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(_tuple))
    assignments: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Each payer's expected total (None: not priced); ``totals_before`` the same before a what-if.
    totals: tuple[Decimal | None, ...] = attrs.field(default=(), converter=_tuple)
    totals_before: tuple[Decimal | None, ...] | None = attrs.field(
        default=None, converter=attrs.converters.optional(_tuple)
    )
    #: Each payer's dollars lost to findings (sum of ``cost_by_finding``).
    lost: tuple[Decimal | None, ...] = attrs.field(default=(), converter=_tuple)

    @property
    def priced(self) -> bool:
        """Whether any payer's outcome carries amounts (a fee file or CMS data was given)."""
        return any(t is not None for t in self.totals)

    def total_text(self, column: int, *, before: bool = False) -> str:
        """``$148.00``, or ``—`` when the payer's lines could not be priced."""
        totals = self.totals_before if before and self.totals_before is not None else self.totals
        return money(totals[column]) if column < len(totals) else "—"

    def totals_differ(self, column: int) -> bool:
        """Whether a payer's expected total differs from the first payer's."""
        return column > 0 and self.totals[column] != self.totals[0]

    def totals_changed(self, column: int) -> bool:
        """Whether a what-if changed a payer's expected total."""
        return self.totals_before is not None and self.totals_before[column] != self.totals[column]

    def total_change(self, column: int) -> Decimal | None:
        """The dollar change a what-if made to a payer's expected total (None: not priced before and after)."""
        if self.totals_before is None:
            return None
        before, after = self.totals_before[column], self.totals[column]
        if before is None and after is None:
            return None
        return (after or Decimal("0.00")) - (before or Decimal("0.00"))

    @property
    def what_if(self) -> bool:
        """Whether the grid shows a before/after change."""
        return self.units_before is not None

    @property
    def title(self) -> str:
        """``encounter ID — date of service DATE — provider TYPE``."""
        return f"encounter {self.encounter or '(no id)'} — date of service {self.date_of_service} — provider {self.provider}"

    def units_differ(self, column: int) -> bool:
        """Whether a payer's billable units differ from the first payer's."""
        return column > 0 and self.units[column] != self.units[0]

    def units_changed(self, column: int) -> bool:
        """Whether a what-if changed a payer's billable units."""
        return self.units_before is not None and self.units_before[column] != self.units[column]


def line_text(code: str, units: int, modifiers: Sequence[str]) -> str:
    """``97140 x1 [59, GP]`` — the notation of the scenarios and case files."""
    return f"{code} x{units} [{', '.join(modifiers)}]"


def money(value: Decimal | None) -> str:
    """``$1,234.50``; ``—`` for an amount not known."""
    return "—" if value is None else f"${value:,.2f}"


def _lost(outcome: Outcome) -> Decimal | None:
    if outcome.expected_total is None:
        return None
    return sum(outcome.cost_by_finding.values(), Decimal("0.00"))


def billable_units(outcome: Outcome) -> int:
    """Units on ``billable`` lines (expected denials are not counted)."""
    return sum(line.units for line in outcome.lines if line.status == "billable")


def line_reason(outcome: Outcome, index: int) -> str:
    """The finding code that says why line ``index`` is not billed or is expected to be denied.

    The finding of the rule that last changed the line's status (from the trace): on this line,
    or for an expected denial anywhere in the outcome (one finding can explain a denial of several
    lines, e.g. Aetna CPB 0107); else the first finding about the line; else, for an expected denial,
    the first ``expected_denial`` finding of the outcome (batch output keeps no trace by default);
    else "".
    """
    on_line = [f for f in outcome.findings if f.line == index]
    rules = [t.rule for t in outcome.trace if t.line == index and t.field == "status"]
    denied = outcome.lines[index].status == "expected_denial"
    if rules:
        elsewhere = outcome.findings if denied else ()
        for f in (*on_line, *elsewhere):
            if f.rule == rules[-1]:
                return f.code
    if on_line:
        return on_line[0].code
    if denied:
        return next((f.code for f in outcome.findings if f.severity == "expected_denial"), "")
    return ""


def cell_for(outcome: Outcome, origin: str, index: int) -> Cell:
    """The cell of entry ``origin[index]`` (``services``/``procedures``) in one payer's outcome."""
    for i, line in enumerate(outcome.lines):
        if line.origin != origin or line.service != index:
            continue
        billed = line_text(line.code, line.units, line.modifiers)
        why = "" if line.status == "billable" else line_reason(outcome, i)
        if line.status == "billable":
            text = billed
        elif line.status == "expected_denial":
            text = f"{billed} (DENIAL?{': ' + why if why else ''})"
        else:
            text = f"{line.code} not billed{': ' + why if why else ''}"
        if line.allowed is not None:
            text += f" {money(line.allowed)}"
        return Cell(text, line.status, line.code, line.units, line.modifiers, why, amount=line.allowed)
    for trace in outcome.trace:
        if trace.field == "minutes" and f"{origin}[{index}]" in trace.reason and trace.line is not None:
            into = outcome.lines[trace.line]
            return Cell(f"(with line {into.code})", "merged", code=into.code)
    if origin == "services":
        why = next(
            (f.code for f in outcome.findings if f.line is None and f"services[{index}]" in f.message), "no line"
        )
        return Cell(f"— {why}", "no_line", reason=why)
    return Cell("—", "no_line")


def entry_label(encounter: Encounter, origin: str, index: int) -> str:
    """A short label for an entry: ``98940 cervical/thoracic`` or ``petrissage 12m lumbar``."""
    if origin == "procedures":
        p = encounter.procedures[index]
        regions = f" {'/'.join(p.regions)}" if p.regions else ""
        return f"{p.code}{regions}{_billed_label(p.billed)}"
    s = encounter.services[index]
    what = s.code or s.technique or "?"
    minutes = f" {s.minutes}m" if s.minutes is not None else ""
    regions = f" {'/'.join(s.regions)}" if s.regions else ""
    return f"{what}{minutes}{regions}{_billed_label(s.billed)}"


def _billed_label(billed: Billed | None) -> str:
    """`` billed x2 [GP, 59]`` for an entry of a claim as billed, else nothing."""
    if billed is None:
        return ""
    units = "" if billed.units is None else f" x{billed.units}"
    return f" billed{units} [{', '.join(billed.modifiers)}]"


def _entries(*encounters: Encounter) -> list[tuple[str, int]]:
    procedures = max(len(e.procedures) for e in encounters)
    services = max(len(e.services) for e in encounters)
    return [("procedures", i) for i in range(procedures)] + [("services", i) for i in range(services)]


def _has(encounter: Encounter, origin: str, index: int) -> bool:
    return index < len(encounter.procedures if origin == "procedures" else encounter.services)


def _findings(payer: str, outcome: Outcome) -> list[GridFinding]:
    out = []
    for f in outcome.findings:
        where = f"line {outcome.lines[f.line].code}" if f.line is not None else "encounter"
        out.append(GridFinding(payer, f.severity, f.code, where, f.rule, f.message, f.source))
    # A claim as billed: each repair and edit is listed too, its kind in place of a severity.
    for d in outcome.differences:
        where = f"line {outcome.lines[d.line].code}" if d.line is not None else "claim"
        out.append(GridFinding(payer, d.kind, d.code, where, d.rule, d.message, d.source))
    return out


def _finding_changes(payer: str, after: Outcome, before: Outcome) -> list[GridFinding]:
    """After-findings, marked ``added`` when new, then the before-findings that are gone, marked ``removed``."""
    unmatched = Counter((f.code, f.where) for f in _findings(payer, before))
    out = []
    for f in _findings(payer, after):
        if unmatched[(f.code, f.where)] > 0:
            unmatched[(f.code, f.where)] -= 1
            out.append(f)
        else:
            out.append(attrs.evolve(f, change="added"))
    for f in _findings(payer, before):
        if unmatched[(f.code, f.where)] > 0:
            unmatched[(f.code, f.where)] -= 1
            out.append(attrs.evolve(f, change="removed"))
    return out


def build_grid(encounter: Encounter, outcomes: Mapping[str, Outcome], what_if: WhatIf | None = None) -> Grid:
    """Lay the outcomes out as a grid; with ``what_if``, mark what the change did to each cell."""
    payers = list(outcomes)
    encounters = [encounter] if what_if is None else [encounter, what_if.encounter]
    rows = []
    for origin, index in _entries(*encounters):
        cells = [
            cell_for(outcomes[p], origin, index) if _has(encounter, origin, index) else Cell("", "absent")
            for p in payers
        ]
        cells = [attrs.evolve(c, differs=i > 0 and c.text != cells[0].text) for i, c in enumerate(cells)]
        label = entry_label(encounter, origin, index) if _has(encounter, origin, index) else ""
        label_before = None
        if what_if is not None:
            old = what_if.encounter
            present = _has(old, origin, index)
            before_cells = [
                cell_for(what_if.outcomes[p], origin, index)
                if present and p in what_if.outcomes
                else Cell("", "absent")
                for p in payers
            ]
            cells = [
                c if b.text == c.text else attrs.evolve(c, before=b.text)
                for c, b in zip(cells, before_cells, strict=True)
            ]
            old_label = entry_label(old, origin, index) if present else ""
            label_before = old_label if old_label != label else None
        rows.append(Row(f"{origin}[{index}]", label, cells, label_before))
    findings: list[GridFinding] = []
    for p in payers:
        if what_if is not None and p in what_if.outcomes:
            findings += _finding_changes(p, outcomes[p], what_if.outcomes[p])
        else:
            findings += _findings(p, outcomes[p])
    return Grid(
        encounter=encounter.id,
        date_of_service=str(encounter.date_of_service),
        provider=encounter.provider.type,
        payers=payers,
        payer_names=[outcomes[p].payer.name for p in payers],
        rows=rows,
        units=[billable_units(outcomes[p]) for p in payers],
        findings=findings,
        units_before=None
        if what_if is None
        else [billable_units(what_if.outcomes[p]) if p in what_if.outcomes else 0 for p in payers],
        assignments=() if what_if is None else what_if.assignments,
        totals=[outcomes[p].expected_total for p in payers],
        totals_before=None
        if what_if is None
        else [what_if.outcomes[p].expected_total if p in what_if.outcomes else None for p in payers],
        lost=[_lost(outcomes[p]) for p in payers],
    )
