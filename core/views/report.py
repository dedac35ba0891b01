"""``payerpolicy report``: a one-file HTML report, with charts, from the output of ``payerpolicy batch``.

The batch output is JSON Lines (``.jsonl``), one row per encounter and payer::

    {"record": 12, "source": "visits.jsonl:13", "encounter": "E-12", "payer": "medicare",
     "outcome": {...outcome format v1...}, "error": null}

or an error row (``outcome`` null, ``error`` an object with ``field``, ``message`` and ``text``).
A Parquet file (``.parquet``, read with pyarrow) has the same columns, with ``outcome`` and
``error`` as JSON strings.

The input is streamed: rows are added up as they are read, and only the top lists are kept, so a
file of a million rows needs little memory. Rows of one encounter (one ``record``) are expected
close together, as ``payerpolicy batch`` writes them; up to :data:`OPEN_RECORDS` encounters may be
interleaved.

**Units lost** to a finding: a line that is not billed, or is expected to be denied, is charged to
the finding that explains it (:func:`payerpolicy.grid.line_reason`), or to ``(rule ID)`` when the
rule that changed its status left no finding (e.g. CMS total time giving a line 0 units); those are
shown apart from the findings (:meth:`BatchSummary.unexplained`). An expected denial loses its
own units; a line that is not billed loses the units the most generous payer in the batch put on
the claim for the same procedure or service of the same encounter (0 when no payer bills it).
"""

from __future__ import annotations

import heapq
import json
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ..evaluation.errors import PayerPolicyError
from ..evaluation.model import ClaimLine, Finding, Outcome, PayerRef, TraceEntry
from ..evaluation.wording import plural
from .grid import billable_units, cell_for, line_reason

__all__ = [
    "OPEN_RECORDS",
    "BatchRow",
    "BatchSummary",
    "Disagreement",
    "FindingCost",
    "PayerTotals",
    "ReportBuilder",
    "read_batch",
    "render_report",
    "summarise",
    "write_report",
]

OPEN_RECORDS = 256
TOP_DISAGREEMENTS = 20
TOP_FINDINGS = 25
TOP_ERRORS = 20
NO_FINDING = "(no finding)"


@attrs.frozen
class BatchRow:
    """One row of batch output; ``outcome`` is None on an error row, ``error`` None otherwise."""

    record: int | None
    source: str
    encounter: str | None
    payer: str | None
    outcome: Outcome | None
    error: Mapping[str, Any] | None


@attrs.define
class PayerTotals:
    """What one payer's outcomes add up to over the batch."""

    payer: str
    encounters: int = 0
    billable_units: int = 0
    billable_lines: int = 0
    expected_denials: int = 0
    expected_denial_units: int = 0
    not_billable: int = 0
    error_rows: int = 0
    #: Encounters whose outcome carried amounts, their expected totals and the dollars lost to findings.
    priced: int = 0
    expected: Decimal = Decimal("0.00")
    lost: Decimal = Decimal("0.00")

    @property
    def average(self) -> Decimal | None:
        """The expected allowed amount per priced encounter (None when none was priced)."""
        return (self.expected / self.priced).quantize(Decimal("0.01")) if self.priced else None


@attrs.define
class FindingCost:
    """One finding code for one payer: how often it was reported, how many lines and units it cost."""

    payer: str
    code: str
    severity: str = ""
    occurrences: int = 0
    lines: int = 0
    units: int = 0
    #: Dollars the finding took off priced outcomes (``cost_by_finding``).
    dollars: Decimal = Decimal("0.00")


@attrs.frozen
class Disagreement:
    """An encounter whose billable units differ between payers; ``spread`` is the highest minus the lowest."""

    record: int | None
    source: str
    encounter: str | None
    units: Mapping[str, int]
    spread: int
    differing_entries: int


@attrs.frozen
class BatchSummary:
    """Everything the report shows, added up over the whole batch output."""

    source: str
    rows: int
    records: int
    outcome_rows: int
    error_rows: int
    payers: tuple[str, ...]
    totals: Mapping[str, PayerTotals]
    findings: tuple[FindingCost, ...]
    disagreements: tuple[Disagreement, ...]
    errors: tuple[tuple[str, str], ...]
    error_fields: Mapping[str, int]

    def top_findings(self, n: int = TOP_FINDINGS) -> list[FindingCost]:
        """The ``n`` (payer, finding) pairs that cost the most units, then lines, then occurrences.

        Only findings that were reported (occurrences > 0) and cost at least one unit: a finding on
        lines no payer billed costs nothing, and lines no finding names are :meth:`unexplained`.
        """
        return self._ranked((f for f in self.findings if f.occurrences and f.units), n)

    def unexplained(self, n: int = TOP_FINDINGS) -> list[FindingCost]:
        """Units lost on lines no finding names: ``code`` is ``(rule ID)`` (from the trace) or ``(no finding)``."""
        return self._ranked((f for f in self.findings if not f.occurrences and f.units), n)

    def _ranked(self, costs: Iterable[FindingCost], n: int) -> list[FindingCost]:
        order = {p: i for i, p in enumerate(self.payers)}
        ranked = sorted(costs, key=lambda f: (-f.units, -f.lines, -f.occurrences, order.get(f.payer, 0), f.code))
        return ranked[:n]

    @property
    def priced(self) -> bool:
        """Whether any outcome of the batch carried amounts."""
        return any(t.priced for t in self.totals.values())

    def dollars_lost(self, n: int = TOP_FINDINGS) -> list[FindingCost]:
        """The ``n`` (payer, finding) pairs that cost the most dollars."""
        order = {p: i for i, p in enumerate(self.payers)}
        ranked = sorted((f for f in self.findings if f.dollars > 0), key=lambda f: (-f.dollars, order.get(f.payer, 0), f.code))
        return ranked[:n]

    def pays_most_and_least(self) -> tuple[str, str] | None:
        """The payers with the highest and lowest expected amount per priced encounter (None: fewer than two priced)."""
        averages = [(t.average, p) for p, t in self.totals.items() if t.average is not None]
        if len(averages) < 2:
            return None
        most = max(averages, key=lambda a: (a[0], a[1]))
        least = min(averages, key=lambda a: (a[0], a[1]))
        return most[1], least[1]

    def occurrences_by_code(self, n: int = 15) -> list[tuple[str, int]]:
        """Finding codes by how often they were reported, over every payer (the ``n`` most frequent)."""
        counts: Counter[str] = Counter()
        for f in self.findings:
            if f.occurrences:
                counts[f.code] += f.occurrences
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


# ------------------------------------------------------------------------------------------
# reading


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"amount {str(value)[:20]!r}") from None
    if not amount.is_finite():
        raise ValueError(f"amount {str(value)[:20]!r}")
    return amount


def _outcome(data: Any) -> Outcome:
    """An Outcome from outcome format v1 data (the fields the report reads; unknown ones ignored)."""
    payer = data["payer"]
    costs = data.get("cost_by_finding") or {}
    return Outcome(
        encounter=data.get("encounter"),
        payer=PayerRef(str(payer["id"]), str(payer.get("name", "")), str(payer.get("policy_version", ""))),
        lines=[
            ClaimLine(
                code=str(ln["code"]),
                units=int(ln["units"]),
                modifiers=ln.get("modifiers") or (),
                status=ln["status"],
                minutes=ln.get("minutes"),
                regions=ln.get("regions") or (),
                diagnosis_pointers=ln.get("diagnosis_pointers") or (),
                service=int(ln.get("service", 0)),
                origin=ln.get("origin", "services"),
                charge=_amount(ln.get("charge")),
                allowed=_amount(ln.get("allowed")),
            )
            for ln in data["lines"]
        ],
        findings=[
            Finding(
                code=str(f["code"]),
                severity=f["severity"],
                message=str(f.get("message", "")),
                rule=str(f.get("rule", "")),
                source=str(f.get("source", "")),
                line=f.get("line"),
                plugin=str(f.get("plugin", "")),
            )
            for f in data.get("findings", [])
        ],
        trace=[
            TraceEntry(
                rule=str(t.get("rule", "")),
                plugin=str(t.get("plugin", "")),
                line=t.get("line"),
                field=str(t.get("field", "")),
                before=t.get("before"),
                after=t.get("after"),
                source=str(t.get("source", "")),
                reason=str(t.get("reason", "")),
            )
            for t in data.get("trace", [])
        ],
        diagnoses=data.get("diagnoses") or (),
        expected_total=_amount(data.get("expected_total")),
        charge_total=_amount(data.get("charge_total")),
        cost_by_finding={str(k): _amount(v) or Decimal(0) for k, v in costs.items()},
    )


def _row(data: Any, where: str) -> BatchRow:
    expected = "a batch output row: an object with record, source, encounter, payer, outcome and error"
    if not isinstance(data, dict) or "outcome" not in data or "error" not in data:
        found = type(data).__name__ if not isinstance(data, dict) else f"keys {', '.join(sorted(data)) or '(none)'}"
        raise PayerPolicyError(f"{where}: expected {expected}, found {found}")
    outcome, error = data["outcome"], data["error"]
    if isinstance(outcome, str):  # Parquet stores the objects as JSON text
        outcome = json.loads(outcome)
    if isinstance(error, str):
        error = json.loads(error)
    if (outcome is None) == (error is None):
        raise PayerPolicyError(
            f"{where}: expected exactly one of outcome and error, found {'both' if outcome else 'neither'}"
        )
    parsed = None
    if outcome is not None:
        try:
            parsed = _outcome(outcome)
        except (KeyError, TypeError, ValueError) as exc:
            raise PayerPolicyError(
                f"{where}: outcome: expected outcome format v1 (see docs/outcome-format.md), found a problem with {exc}"
            ) from None
    elif not isinstance(error, dict):
        raise PayerPolicyError(
            f"{where}: error: expected an object with field, message and text, found {type(error).__name__}"
        )
    record = data.get("record")
    return BatchRow(
        record=record if isinstance(record, int) else None,
        source=str(data.get("source") or where),
        encounter=data.get("encounter"),
        payer=data.get("payer") or (parsed.payer.id if parsed else None),
        outcome=parsed,
        error=error,
    )


def read_batch(path: str | Path) -> Iterator[BatchRow]:
    """Stream the rows of batch output: ``.parquet`` with pyarrow, anything else as JSON Lines."""
    from ..batch import iter_output

    return (_row(data, where) for where, data in iter_output(path))


# ------------------------------------------------------------------------------------------
# adding up


class ReportBuilder:
    """Adds batch rows up as they come (:meth:`add`), then :meth:`finish` returns the summary."""

    def __init__(self, source: str = "") -> None:
        self.source = source
        self.rows = 0
        self.records = 0
        self.outcome_rows = 0
        self.error_rows = 0
        self.payers: dict[str, None] = {}
        self.totals: dict[str, PayerTotals] = {}
        self.costs: dict[tuple[str, str], FindingCost] = {}
        self._open: OrderedDict[Any, list[BatchRow]] = OrderedDict()
        self._top: list[tuple[int, int, Disagreement]] = []
        self._seen = 0
        self.errors: list[tuple[str, str]] = []
        self.error_fields: Counter[str] = Counter()

    def _payer(self, payer: str) -> PayerTotals:
        if payer not in self.totals:
            self.payers[payer] = None
            self.totals[payer] = PayerTotals(payer)
        return self.totals[payer]

    def _cost(self, payer: str, code: str) -> FindingCost:
        key = (payer, code)
        if key not in self.costs:
            self.costs[key] = FindingCost(payer, code)
        return self.costs[key]

    def add(self, row: BatchRow) -> None:
        """Add one row."""
        self.rows += 1
        key = row.record if row.record is not None else row.source
        if row.outcome is None:
            self.error_rows += 1
            if row.payer:
                self._payer(row.payer).error_rows += 1
            error = row.error or {}
            self.error_fields[str(error.get("field") or "(none)")] += 1
            if len(self.errors) < TOP_ERRORS:
                self.errors.append((row.source, str(error.get("text") or error.get("message") or "")))
            if key not in self._open:
                self.records += 1
                self._open[key] = []
                self._close_old()
            return
        self.outcome_rows += 1
        self._payer(row.payer or row.outcome.payer.id)
        if key not in self._open:
            self.records += 1
            self._open[key] = []
            self._close_old()
        self._open[key].append(row)

    def _close_old(self) -> None:
        while len(self._open) > OPEN_RECORDS:
            _, rows = self._open.popitem(last=False)
            self._close(rows)

    def _close(self, rows: list[BatchRow]) -> None:
        outcomes: dict[str, Outcome] = {}
        for row in rows:
            assert row.outcome is not None
            outcomes[row.payer or row.outcome.payer.id] = row.outcome
        if not outcomes:
            return
        best: dict[tuple[str, int], int] = {}
        for o in outcomes.values():
            for line in o.lines:
                if line.on_claim:
                    entry = (line.origin, line.service)
                    best[entry] = max(best.get(entry, 0), line.units)
        for payer, o in outcomes.items():
            t = self.totals[payer]
            t.encounters += 1
            if o.expected_total is not None:
                t.priced += 1
                t.expected += o.expected_total
                for code, dollars in o.cost_by_finding.items():
                    self._cost(payer, code).dollars += dollars
                    t.lost += dollars
            for f in o.findings:
                cost = self._cost(payer, f.code)
                cost.occurrences += 1
                cost.severity = cost.severity or f.severity
            for i, line in enumerate(o.lines):
                if line.status == "billable":
                    t.billable_units += line.units
                    t.billable_lines += 1
                    continue
                cost = self._cost(payer, line_reason(o, i) or _status_rule(o, i))
                cost.lines += 1
                if line.status == "expected_denial":
                    t.expected_denials += 1
                    t.expected_denial_units += line.units
                    cost.units += line.units
                else:
                    t.not_billable += 1
                    cost.units += best.get((line.origin, line.service), 0)
        if len(outcomes) > 1:
            self._disagreement(rows[0], outcomes)

    def _disagreement(self, first: BatchRow, outcomes: Mapping[str, Outcome]) -> None:
        units = {p: billable_units(o) for p, o in outcomes.items()}
        spread = max(units.values()) - min(units.values())
        if spread == 0:
            return
        entries = sorted({(ln.origin, ln.service) for o in outcomes.values() for ln in o.lines})
        differing = sum(1 for origin, i in entries if len({cell_for(o, origin, i).text for o in outcomes.values()}) > 1)
        item = Disagreement(first.record, first.source, first.encounter, units, spread, differing)
        self._seen += 1
        # a min-heap of the largest spreads; on equal spreads the earlier record ranks higher
        entry = (spread, -self._seen, item)
        if len(self._top) < TOP_DISAGREEMENTS:
            heapq.heappush(self._top, entry)
        elif entry[:2] > self._top[0][:2]:
            heapq.heapreplace(self._top, entry)

    def finish(self) -> BatchSummary:
        """Close the encounters still open and return the summary."""
        while self._open:
            _, rows = self._open.popitem(last=False)
            self._close(rows)
        top = [d for _, _, d in sorted(self._top, key=lambda e: (-e[0], -e[1]))]
        return BatchSummary(
            source=self.source,
            rows=self.rows,
            records=self.records,
            outcome_rows=self.outcome_rows,
            error_rows=self.error_rows,
            payers=tuple(self.payers),
            totals=dict(self.totals),
            findings=tuple(self.costs.values()),
            disagreements=tuple(top),
            errors=tuple(self.errors),
            error_fields=dict(self.error_fields),
        )


def _status_rule(outcome: Outcome, index: int) -> str:
    """``(rule CORE-TIME-20)`` for a line whose status a rule changed without a finding, else ``(no finding)``."""
    rules = [t.rule for t in outcome.trace if t.line == index and t.field == "status"]
    return f"(rule {rules[-1]})" if rules else NO_FINDING


def summarise(rows: Iterable[BatchRow], source: str = "") -> BatchSummary:
    """Add up rows of batch output (an iterator is read once, never held in memory)."""
    builder = ReportBuilder(source)
    for row in rows:
        builder.add(row)
    return builder.finish()


# ------------------------------------------------------------------------------------------
# the page


def _charts(summary: BatchSummary) -> str:
    from .charts import bar_chart_svg

    payers = list(summary.payers)
    charts = []
    if payers:
        charts.append(
            bar_chart_svg(
                "units",
                "Billable units by payer",
                payers,
                [("billable units", [summary.totals[p].billable_units for p in payers])],
            )
        )
        charts.append(
            bar_chart_svg(
                "denials",
                "Lines expected to be denied or not billed, by payer",
                payers,
                [
                    ("expected denials", [summary.totals[p].expected_denials for p in payers]),
                    ("not billable", [summary.totals[p].not_billable for p in payers]),
                ],
            )
        )
    by_code = summary.occurrences_by_code()
    if by_code:
        charts.append(
            bar_chart_svg(
                "findings",
                "Findings by code (all payers)",
                [c for c, _ in by_code],
                [("findings", [n for _, n in by_code])],
                horizontal=True,
                width=7.5,
                height=0.28 * len(by_code) + 1.0,
            )
        )
    return "".join(f'<figure class="chart">{svg}</figure>' for svg in charts)


def render_report(summary: BatchSummary, title: str | None = None) -> str:
    """The report as one self-contained HTML page (charts inline as SVG, no scripts)."""
    from .pages import esc, page, table

    title = title or f"Batch report — {Path(summary.source).name or 'batch output'}"
    payers = list(summary.payers)
    parts = [f"<h1>{esc(title)}</h1>"]
    parts.append(
        f'<p class="meta" id="summary" data-records="{summary.records}" data-rows="{summary.rows}" '
        f'data-error-rows="{summary.error_rows}">{plural(summary.records, "encounter")}, {plural(summary.outcome_rows, "outcome")} '
        f"for {plural(len(payers), 'payer')}, {plural(summary.error_rows, 'error row')} — from {esc(Path(summary.source).name)}</p>"
    )
    parts.append("<h2>By payer</h2>")
    headers = ["payer", "encounters", "billable units", "billable lines", "expected denials (lines)",
               "expected denial units", "not billable (lines)", "error rows"]  # fmt: skip
    rows = []
    for p in payers:
        t = summary.totals[p]
        rows.append([p, t.encounters, t.billable_units, t.billable_lines, t.expected_denials,
                     t.expected_denial_units, t.not_billable, t.error_rows])  # fmt: skip
    parts.append(
        table(
            headers,
            rows,
            numeric=range(1, 8),
            table_id="payer-totals",
            row_attrs=[f' data-payer="{esc(p)}"' for p in payers],
        )
    )
    unassigned = summary.error_rows - sum(t.error_rows for t in summary.totals.values())
    if unassigned:
        names = "names" if unassigned == 1 else "name"
        parts.append(f'<p class="note">{plural(unassigned, "error row")} {names} no payer (the encounter itself is not valid input).</p>')
    if summary.priced:
        parts.append(_money_html(summary))
    parts.append(f'<h2>Charts</h2><div class="charts" id="charts">{_charts(summary)}</div>')

    parts.append("<h2>Findings that cost the most units</h2>")
    parts.append(
        '<p class="note">A line not billed is charged the units the most generous payer billed for the same '
        "service of the same encounter; an expected denial, its own units.</p>"
    )
    top = summary.top_findings()
    if top:
        parts.append(
            table(
                ["payer", "finding", "severity", "occurrences", "lines", "units lost"],
                [[f.payer, f.code, f.severity, f.occurrences, f.lines, f.units] for f in top],
                numeric=(3, 4, 5),
                table_id="finding-costs",
            )
        )
    else:
        parts.append('<p class="note">No line lost units to a finding.</p>')
    unexplained = summary.unexplained()
    if unexplained:
        parts.append("<h3>Units lost on lines no finding names</h3>")
        parts.append(
            '<p class="note">A rule changed these lines without a finding of its own. Without a trace in the batch '
            "output the rule is not known either: <code>payerpolicy batch --trace</code> keeps it.</p>"
        )
        parts.append(
            table(
                ["payer", "rule", "lines", "units lost"],
                [[f.payer, f.code, f.lines, f.units] for f in unexplained],
                numeric=(2, 3),
                table_id="unexplained-costs",
            )
        )

    parts.append(f"<h2>Encounters where payers disagree most (top {TOP_DISAGREEMENTS})</h2>")
    if summary.disagreements:
        headers = ["encounter", "source", *payers, "spread", "entries that differ"]
        rows = [
            [d.encounter or "(no id)", d.source, *[d.units.get(p, "—") for p in payers], d.spread, d.differing_entries]
            for d in summary.disagreements
        ]
        numeric = range(2, 4 + len(payers))
        parts.append(table(headers, rows, numeric=numeric, table_id="disagreements"))
    else:
        parts.append('<p class="note">Every payer bills the same units for every encounter.</p>')

    parts.append("<h2>Error rows</h2>")
    if summary.error_rows:
        fields = sorted(summary.error_fields.items(), key=lambda kv: (-kv[1], kv[0]))
        parts.append(table(["field", "error rows"], fields, numeric=(1,), table_id="error-fields"))
        parts.append(f"<h3>First {len(summary.errors)}</h3>")
        parts.append(table(["source", "error"], summary.errors, table_id="errors"))
    else:
        parts.append('<p class="note">None: every encounter was valid input.</p>')
    return page(title, "\n".join(parts))


def _money_html(summary: BatchSummary) -> str:
    from .pages import esc, table

    def dollars(value: Decimal | None) -> str:
        return "—" if value is None else f"${value:,.2f}"

    payers = list(summary.payers)
    parts = ["<h2>Dollars by payer</h2>"]
    parts.append(
        '<p class="note">Expected allowed amounts from the fee schedules the batch was run with (a fee file, CMS data);'
        " an estimate, not a remittance. Lost to findings: denied or cut lines at their full fee, and payment"
        " reductions (docs/fee-schedules.md).</p>"
    )
    rows = []
    for p in payers:
        t = summary.totals[p]
        rows.append([p, t.priced, dollars(t.expected if t.priced else None), dollars(t.average), dollars(t.lost if t.priced else None)])
    parts.append(
        table(
            ["payer", "priced encounters", "expected allowed", "per encounter", "lost to findings"],
            rows,
            numeric=range(1, 5),
            table_id="payer-dollars",
            row_attrs=[f' data-payer="{esc(p)}"' for p in payers],
        )
    )
    extremes = summary.pays_most_and_least()
    if extremes is not None:
        most, least = extremes
        parts.append(
            f'<p class="note" id="pays-most-least">Pays most per encounter: <strong>{esc(most)}</strong>'
            f" ({dollars(summary.totals[most].average)}); least: <strong>{esc(least)}</strong>"
            f" ({dollars(summary.totals[least].average)}).</p>"
        )
    lost = summary.dollars_lost()
    parts.append("<h2>Dollars lost by finding</h2>")
    if lost:
        parts.append(
            table(
                ["payer", "finding", "occurrences", "dollars lost"],
                [[f.payer, f.code, f.occurrences, dollars(f.dollars)] for f in lost],
                numeric=(2, 3),
                table_id="finding-dollars",
            )
        )
    else:
        parts.append('<p class="note">No finding cost any dollars.</p>')
    return "\n".join(parts)


def write_report(batch_output: str | Path, out: str | Path, *, title: str | None = None) -> BatchSummary:
    """Read batch output, write the HTML report to ``out``, and return the summary."""
    from .charts import require_matplotlib

    require_matplotlib()  # before reading a million rows, not after
    summary = summarise(read_batch(batch_output), str(batch_output))
    html = render_report(summary, title)
    try:
        Path(out).write_text(html, "utf-8")
    except OSError as exc:
        raise PayerPolicyError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return summary
