"""Self-contained HTML pages: the comparison grid (``compare --format html``) and the page shell of the batch report.

Every page is one file: inline CSS, no scripts, no fonts or images fetched from anywhere (a
Content-Security-Policy says so to the browser), every piece of text escaped. It prints on A4 or
Letter in landscape: markers are symbols and borders as well as colours, so a black-and-white
print still shows which cells differ or changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from .._version import __version__
from .grid import Cell, Grid, GridFinding

__all__ = ["compare_html", "esc", "page", "table"]

CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d5d9de; --differs: #fff1c2; --changed: #d9ecff;
        --denied: #fde2e1; --dropped: #eef0f2; --accent: #1f5f99; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       color: var(--ink); margin: 24px auto; max-width: 1400px; padding: 0 16px; font-size: 14px; line-height: 1.4; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta, .legend, .note { color: var(--muted); margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0 4px; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f5f7; font-weight: 600; }
th[scope=row] { font-weight: normal; background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.key { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; color: var(--muted); font-size: 12px; }
.payer-name { display: block; font-weight: normal; color: var(--muted); font-size: 11px; }
.line { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: nowrap; }
.why { display: block; font-size: 12px; color: var(--muted); }
td.expected_denial, .swatch.expected_denial { background: var(--denied); }
td.not_billable, td.no_line, td.merged, .swatch.not_billable { background: var(--dropped); }
td.differs, .swatch.differs { background: var(--differs); }
td.changed, tr.total td.changed, .swatch.changed { background: var(--changed); outline: 2px solid var(--accent); outline-offset: -2px; }
.swatch { display: inline-block; width: 1.6em; height: 1em; border: 1px solid var(--line); vertical-align: -2px; margin: 0 4px 0 10px; }
.mark { font-weight: 700; color: var(--accent); margin-left: 4px; }
del { color: var(--muted); }
ins { text-decoration: none; font-weight: 600; }
tr.total th, tr.total td { font-weight: 700; border-top: 2px solid var(--ink); }
ul.findings { list-style: none; padding: 0; margin: 4px 0; }
ul.findings li { margin: 3px 0 6px; padding-left: 10px; border-left: 3px solid var(--line); }
ul.findings li.added { border-left-color: var(--accent); }
ul.findings li.removed { color: var(--muted); text-decoration: line-through; }
.sev { display: inline-block; min-width: 7.5em; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
.sev-error, .sev-expected_denial { color: #a4161a; }
.code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-weight: 600; }
.source { display: block; font-size: 12px; color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid var(--line); padding: 8px; margin: 0; break-inside: avoid; }
.chart svg { display: block; max-width: 100%; height: auto; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@page { size: landscape; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; }
  table { break-inside: auto; }
  tr, li, .chart { break-inside: avoid; }
  .chart { flex: 0 1 48%; }
  .chart svg { width: 100%; height: auto; }
  thead { display: table-header-group; }
  footer { display: none; }
}
"""

# No network, no script: a browser refuses anything else even if a piece of data tried.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def esc(text: object) -> str:
    """HTML-escape any value's text (quotes included, so it is safe in attributes too)."""
    return escape(str(text), quote=True)


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body`` (already HTML)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="payerpolicy {esc(__version__)}">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>payerpolicy {esc(__version__)} — not legal or coding advice. CPT® is a registered trademark of the "
        "American Medical Association.</footer>\n</body>\n</html>\n"
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Sequence[int] = (),
    table_id: str = "",
    row_attrs: Iterable[str] | None = None,
) -> str:
    """A plain data table; values are escaped, columns in ``numeric`` are right-aligned."""
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers)
    )
    attrs_iter = iter(row_attrs) if row_attrs is not None else None
    body = []
    for row in rows:
        extra = next(attrs_iter) if attrs_iter is not None else ""
        cells = "".join(f"<td{' class=num' if i in numeric else ''}>{esc(v)}</td>" for i, v in enumerate(row))
        body.append(f"<tr{extra}>{cells}</tr>")
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell_body(cell: Cell) -> str:
    if cell.status in ("billable", "expected_denial") and cell.code is not None:
        text = f"{cell.code} x{cell.units} [{', '.join(cell.modifiers)}]"
        why = ""
        if cell.status == "expected_denial":
            why = f'<span class="why">expected denial{": " + esc(cell.reason) if cell.reason else ""}</span>'
        return f'<span class="line">{esc(text)}</span>{why}'
    if cell.status == "not_billable":
        why = f": {esc(cell.reason)}" if cell.reason else ""
        return f'<span class="line">{esc(cell.code)}</span><span class="why">not billed{why}</span>'
    return f'<span class="why">{esc(cell.text)}</span>' if cell.text else ""


def _cell_html(grid: Grid, payer: str, cell: Cell) -> str:
    classes = [cell.status]
    marks = ""
    if cell.differs and not grid.what_if:
        classes.append("differs")
        marks = '<span class="mark" title="differs from the first payer">*</span>'
    body = _cell_body(cell)
    if cell.changed:
        classes.append("changed")
        marks = '<span class="mark" title="changed by the what-if">!</span>'
        body = f'<del class="before">{esc(cell.before)}</del><br><ins>{body}</ins>'
    data = (
        f' data-payer="{esc(payer)}" data-status="{esc(cell.status)}" data-code="{esc(cell.code or "")}"'
        f' data-units="{cell.units}" data-modifiers="{esc(" ".join(cell.modifiers))}" data-text="{esc(cell.text)}"'
    )
    return f'<td class="{" ".join(classes)}"{data}>{body}{marks}</td>'


def _units_html(grid: Grid, i: int) -> str:
    payer = grid.payers[i]
    units = grid.units[i]
    if grid.units_changed(i) and grid.units_before is not None:
        body = f"<del>{grid.units_before[i]}</del> → <ins>{units}</ins>"
        return f'<td class="num changed" data-payer="{esc(payer)}" data-units="{units}">{body}<span class="mark">!</span></td>'
    if grid.units_differ(i) and not grid.what_if:
        return f'<td class="num differs" data-payer="{esc(payer)}" data-units="{units}">{units}<span class="mark">*</span></td>'
    return f'<td class="num" data-payer="{esc(payer)}" data-units="{units}">{units}</td>'


def _total_html(grid: Grid, i: int) -> str:
    payer = grid.payers[i]
    text = grid.total_text(i)
    value = "" if grid.totals[i] is None else f"{grid.totals[i]:.2f}"
    data = f'data-payer="{esc(payer)}" data-amount="{value}"'
    if grid.totals_changed(i):
        body = f"<del>{esc(grid.total_text(i, before=True))}</del> → <ins>{esc(text)}</ins>"
        return f'<td class="num changed" {data}>{body}<span class="mark">!</span></td>'
    if grid.totals_differ(i) and not grid.what_if:
        return f'<td class="num differs" {data}>{esc(text)}<span class="mark">*</span></td>'
    return f'<td class="num" {data}>{esc(text)}</td>'


def _finding_html(f: GridFinding) -> str:
    change = f' class="{esc(f.change)}"' if f.change else ""
    tag = f" <strong>({esc(f.change)})</strong>" if f.change else ""
    source = f'<span class="source">source: {esc(f.source)}</span>' if f.source else ""
    return (
        f'<li{change} data-code="{esc(f.code)}"><span class="sev sev-{esc(f.severity)}">{esc(f.severity)}</span> '
        f'<span class="code">{esc(f.code)}</span> — {esc(f.where)} [{esc(f.rule)}]{tag}<br>{esc(f.message)}{source}</li>'
    )


#: The legend's entries: (CSS class shared by the cells and the swatch, what it means). The
#: swatches take their colour from the very CSS rules that colour the cells, so the two cannot drift.
_LEGEND_STATUS = (("expected_denial", "expected denial"), ("not_billable", "not billed, merged into another line, or no line"))


def _legend(grid: Grid) -> str:
    """The key to the grid's colours and marks, each colour shown as a swatch of the cells' own class."""
    if grid.what_if:
        marked = [
            (
                "changed",
                "changed by the what-if (<del>before</del> then after, marked <span class=mark>!</span>; in this "
                "colour whatever the line's status, which its text still gives)",
            )
        ]
    else:
        marked = [("differs", f"differs from {esc(grid.payers[0])} (marked <span class=mark>*</span>)")]
    entries = [*marked, *_LEGEND_STATUS]
    items = "".join(
        f'<span class="swatch {css}" data-legend="{css}" aria-hidden="true"></span>{text}' for css, text in entries
    )
    return f'<p class="legend" id="legend">{items}</p>'


def compare_html(grid: Grid) -> str:
    """``compare --format html``: the grid and its findings as one self-contained HTML page."""
    parts = [f"<h1>Encounter {esc(grid.encounter or '(no id)')}</h1>"]
    parts.append(f'<p class="meta">date of service {esc(grid.date_of_service)} — provider {esc(grid.provider)}</p>')
    if grid.what_if:
        sets = " ".join(f"<code>--set {esc(a)}</code>" for a in grid.assignments)
        parts.append(f'<p class="what-if">What-if: {sets}</p>')
    head = "".join(
        f'<th scope="col" data-payer="{esc(p)}">{esc(p)}<span class="payer-name">{esc(n)}</span></th>'
        for p, n in zip(grid.payers, grid.payer_names, strict=True)
    )
    rows = []
    for row in grid.rows:
        label = esc(row.label)
        if row.label_before is not None:
            label = f"<del>{esc(row.label_before)}</del> → <ins>{esc(row.label)}</ins>"
        cells = "".join(_cell_html(grid, p, c) for p, c in zip(grid.payers, row.cells, strict=True))
        rows.append(
            f'<tr data-entry="{esc(row.key)}"><th scope="row"><span class="key">{esc(row.key)}</span> {label}</th>{cells}</tr>'
        )
    units = "".join(_units_html(grid, i) for i in range(len(grid.payers)))
    rows.append(f'<tr class="total" data-entry="billable units"><th scope="row">billable units</th>{units}</tr>')
    if grid.priced:
        totals = "".join(_total_html(grid, i) for i in range(len(grid.payers)))
        rows.append(f'<tr class="total" data-entry="expected total"><th scope="row">expected total</th>{totals}</tr>')
        lost = "".join(
            f'<td class="num" data-payer="{esc(p)}">{esc("—" if v is None else f"${v:,.2f}")}</td>'
            for p, v in zip(grid.payers, grid.lost, strict=True)
        )
        rows.append(f'<tr class="total" data-entry="lost to findings"><th scope="row">lost to findings</th>{lost}</tr>')
    parts.append(
        f'<table class="grid" id="grid"><thead><tr><th scope="col">entry</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    parts.append(_legend(grid))
    parts.append('<section id="findings"><h2>Findings</h2>')
    for p in grid.payers:
        found = [f for f in grid.findings if f.payer == p]
        if not found:
            parts.append(f'<h3 data-payer="{esc(p)}">{esc(p)}</h3><p class="note">no findings</p>')
            continue
        items = "".join(_finding_html(f) for f in found)
        parts.append(f'<h3 data-payer="{esc(p)}">{esc(p)}</h3><ul class="findings" data-payer="{esc(p)}">{items}</ul>')
    parts.append("</section>")
    title = f"payerpolicy — encounter {grid.encounter or '(no id)'}"
    return page(title, "\n".join(parts))
