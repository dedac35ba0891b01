"""`payerpolicy report`: reading batch output (JSON Lines, Parquet), adding it up, and the HTML page."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from pagedom import parse, table_rows, write_month_batch
from payerpolicy import report
from payerpolicy.cli import main
from payerpolicy.evaluation.model import ClaimLine, Finding, Outcome, PayerRef, TraceEntry
from payerpolicy.views.report import read_batch, render_report, summarise


def _outcome(payer: str, encounter: str, lines: list[ClaimLine], findings: list[Finding], trace=()) -> dict:
    return Outcome(encounter, PayerRef(payer, payer.title(), "1"), lines, findings, list(trace)).to_mapping()


def _ok(record: int, payer: str, outcome: dict) -> dict:
    return {"record": record, "source": f"visits.jsonl:{record + 1}", "encounter": outcome["encounter"],
            "payer": payer, "outcome": outcome, "error": None}  # fmt: skip


def _error(record: int, payer: str | None, field: str) -> dict:
    text = f"visits.jsonl:{record + 1}: {field}: expected a whole number"
    return {"record": record, "source": f"visits.jsonl:{record + 1}", "encounter": None, "payer": payer,
            "outcome": None, "error": {"field": field, "message": "expected a whole number", "text": text}}  # fmt: skip


def _rows() -> list[dict]:
    """Two encounters for payers a and b, plus two error rows.

    E-1: a bills 97140 x2 and does not bill 97124 (BUNDLED); b's 97140 x1 is an expected denial
    (LIMIT) and it bills 97124 x1. E-2: both bill 98940 x1; b also bills 97110 x1 (a: below min time).
    """
    e1a = _outcome("a", "E-1", [
        ClaimLine("97140", 2, (), "billable", 20, service=0),
        ClaimLine("97124", 0, (), "not_billable", 10, service=1),
    ], [Finding("BUNDLED", "info", "bundled", "R-1", line=1), Finding("AUDIT", "warning", "audit", "R-2", line=0)])  # fmt: skip
    e1b = _outcome("b", "E-1", [
        ClaimLine("97140", 1, (), "expected_denial", 20, service=0),
        ClaimLine("97124", 1, ("59",), "billable", 10, service=1),
    ], [Finding("LIMIT", "expected_denial", "over the limit", "R-3", line=0)])  # fmt: skip
    e2a = _outcome("a", "E-2", [
        ClaimLine("98940", 1, (), "billable", origin="procedures", service=0),
        ClaimLine("97110", 0, (), "not_billable", 5, service=0),
    ], [Finding("BELOW_MIN_TIME", "warning", "5 min", "R-4", line=1), Finding("AUDIT", "warning", "x", "R-2", line=1)],
        [TraceEntry("R-4", "payerpolicy", 1, "status", "billable", "not_billable")])  # fmt: skip
    e2b = _outcome("b", "E-2", [
        ClaimLine("98940", 1, (), "billable", origin="procedures", service=0),
        ClaimLine("97110", 1, (), "billable", 10, service=0),
    ], [])  # fmt: skip
    return [_ok(0, "a", e1a), _ok(0, "b", e1b), _error(1, None, "services[0].minutes"), _ok(2, "a", e2a),
            _ok(2, "b", e2b), _error(3, "b", "care.ytd_therapy_charges")]  # fmt: skip


def _write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def test_totals_per_payer(tmp_path):
    s = summarise(read_batch(_write(_rows(), tmp_path / "out.jsonl")))
    assert (s.rows, s.records, s.outcome_rows, s.error_rows, s.payers) == (6, 4, 4, 2, ("a", "b"))
    a, b = s.totals["a"], s.totals["b"]
    assert (a.encounters, a.billable_units, a.billable_lines, a.expected_denials, a.not_billable, a.error_rows) == (2, 3, 2, 0, 2, 0)
    assert (b.encounters, b.billable_units, b.billable_lines, b.expected_denials, b.expected_denial_units) == (2, 3, 3, 1, 1)
    assert (b.not_billable, b.error_rows) == (0, 1)
    assert s.error_fields == {"services[0].minutes": 1, "care.ytd_therapy_charges": 1}
    assert s.errors[0] == ("visits.jsonl:2", "visits.jsonl:2: services[0].minutes: expected a whole number")


def test_findings_that_cost_the_most_units(tmp_path):
    s = summarise(read_batch(_write(_rows(), tmp_path / "out.jsonl")))
    # a's 97124 (not billed, BUNDLED): b billed it x1 -> 1 unit; a's 97110 (BELOW_MIN_TIME, from the
    # status trace although AUDIT is also on the line): b billed x1 -> 1; b's LIMIT: its own 1 unit.
    top = [(f.payer, f.code, f.severity, f.occurrences, f.lines, f.units) for f in s.top_findings()]
    assert top == [
        ("a", "BELOW_MIN_TIME", "warning", 1, 1, 1),  # equal units, lines and occurrences: payer order, then code
        ("a", "BUNDLED", "info", 1, 1, 1),
        ("b", "LIMIT", "expected_denial", 1, 1, 1),
    ]
    assert s.occurrences_by_code() == [("AUDIT", 2), ("BELOW_MIN_TIME", 1), ("BUNDLED", 1), ("LIMIT", 1)]


def test_encounters_where_payers_disagree(tmp_path):
    s = summarise(read_batch(_write(_rows(), tmp_path / "out.jsonl")))
    assert [(d.encounter, d.source, dict(d.units), d.spread, d.differing_entries) for d in s.disagreements] == [
        ("E-1", "visits.jsonl:1", {"a": 2, "b": 1}, 1, 2),
        ("E-2", "visits.jsonl:3", {"a": 1, "b": 2}, 1, 1),
    ]


def test_interleaved_rows_of_one_encounter_add_up_the_same(tmp_path):
    rows = _rows()
    shuffled = [rows[0], rows[3], rows[2], rows[1], rows[5], rows[4]]
    a = summarise(read_batch(_write(rows, tmp_path / "a.jsonl")))
    b = summarise(read_batch(_write(shuffled, tmp_path / "b.jsonl")))
    assert a.totals == b.totals and sorted(a.top_findings(), key=repr) == sorted(b.top_findings(), key=repr)
    assert {d.encounter for d in a.disagreements} == {d.encounter for d in b.disagreements}


def test_only_the_top_20_disagreements_are_kept(tmp_path):
    rows = []
    for r in range(30):
        for payer, units in (("a", r % 7), ("b", 0)):
            line = ClaimLine("97110", units, (), "billable", 15 * units, service=0)
            rows.append(_ok(r, payer, _outcome(payer, f"E-{r}", [line], [])))
    s = summarise(read_batch(_write(rows, tmp_path / "out.jsonl")))
    assert len(s.disagreements) == 20
    assert [d.encounter for d in s.disagreements[:6]] == ["E-6", "E-13", "E-20", "E-27", "E-5", "E-12"]
    assert [d.spread for d in s.disagreements] == [6] * 4 + [5] * 4 + [4] * 4 + [3] * 4 + [2] * 4


def test_the_page_shows_the_numbers(tmp_path):
    s = summarise(read_batch(_write(_rows(), tmp_path / "out.jsonl")), "out.jsonl")
    dom = parse(render_report(s))
    assert table_rows(dom.by_id("payer-totals")) == [
        ["a", "2", "3", "2", "0", "0", "2", "0"],
        ["b", "2", "3", "3", "1", "1", "0", "1"],
    ]
    assert table_rows(dom.by_id("finding-costs"))[2] == ["b", "LIMIT", "expected_denial", "1", "1", "1"]
    assert table_rows(dom.by_id("disagreements")) == [
        ["E-1", "visits.jsonl:1", "2", "1", "1", "2"],
        ["E-2", "visits.jsonl:3", "1", "2", "1", "1"],
    ]
    assert table_rows(dom.by_id("error-fields")) == [["care.ytd_therapy_charges", "1"], ["services[0].minutes", "1"]]
    assert dom.by_id("units-billable_units-b").text.strip() == "3"
    assert dom.by_id("denials-expected_denials-b").text.strip() == "1"
    assert dom.by_id("denials-not_billable-a").text.strip() == "2"
    assert dom.by_id("findings-findings-AUDIT").text.strip() == "2"
    assert "1 error row names no payer" in dom.text


def test_the_page_is_deterministic_self_contained_and_escaped(tmp_path):
    rows = _rows()
    for row in rows:
        if row["payer"] == "a":
            row["payer"] = "<a&b>"
            row["outcome"]["payer"]["id"] = "<a&b>"
    s = summarise(read_batch(_write(rows, tmp_path / "out.jsonl")), "out.jsonl")
    html = render_report(s)
    assert html == render_report(s)
    assert "<a&b>" not in html and "&lt;a&amp;b&gt;" in html
    assert "<script" not in html and "<link" not in html
    external = [u for u in ("http://", "https://") for _ in range(html.count(u))]
    namespaces = html.count('xmlns="http://www.w3.org/2000/svg"') + html.count('xmlns:xlink="http://www.w3.org/1999/xlink"')
    assert len(external) == namespaces == 6  # three charts, two namespace declarations each, nothing fetched
    assert "<dc:date>" not in html and "<metadata>" not in html


def test_parquet_input_gives_the_same_report(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = _rows()
    as_text = [{**r, "outcome": r["outcome"] and json.dumps(r["outcome"]), "error": r["error"] and json.dumps(r["error"])} for r in rows]
    table = pa.Table.from_pylist(as_text)
    pq.write_table(table, tmp_path / "out.parquet")
    a = summarise(read_batch(_write(rows, tmp_path / "out.jsonl")))
    b = summarise(read_batch(tmp_path / "out.parquet"))
    assert a.totals == b.totals and a.findings == b.findings and a.disagreements == b.disagreements


def test_missing_extras_are_one_line_errors(tmp_path, monkeypatch, capsys):
    batch = _write(_rows(), tmp_path / "out.jsonl")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(batch), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        "payerpolicy: error: the report's charts need matplotlib, which is not installed: pip install 'payerpolicy[report]'\n"
    )
    monkeypatch.delitem(sys.modules, "matplotlib")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "x.parquet").write_bytes(b"")
    assert main(["report", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == (
        f"payerpolicy: error: {tmp_path / 'x.parquet'}: reading Parquet needs pyarrow, which is not installed: "
        "pip install 'payerpolicy[parquet]'\n"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json\n", "{file}:1: invalid JSON at column 2: Expecting property name enclosed in double quotes"),
        ('{"record": 1}\n', "{file}:1: expected a batch output row: an object with record, source, encounter, payer, outcome and error, found keys record"),
        ('{"record": 1, "outcome": null, "error": null}\n', "{file}:1: expected exactly one of outcome and error, found neither"),
        ('{"record": 1, "outcome": {"payer": {"id": "a"}}, "error": null}\n',
         "{file}:1: outcome: expected outcome format v1 (see docs/outcome-format.md), found a problem with 'lines'"),
    ],
)  # fmt: skip
def test_bad_batch_output_is_one_line_exit_2(tmp_path, capsys, text, message):
    file = tmp_path / "bad.jsonl"
    file.write_text(text)
    assert main(["report", str(file), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err == f"payerpolicy: error: {message.format(file=file)}\n"
    assert not (tmp_path / "r.html").exists()


def test_report_of_the_bundled_month_matches_the_outcomes(tmp_path, capsys):
    batch = write_month_batch(tmp_path / "month-out.jsonl")
    out = tmp_path / "report.html"
    assert main(["report", str(batch), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 40 encounters, 200 outcome rows, 0 error rows, payers ")
    units: Counter[str] = Counter()
    denials: Counter[str] = Counter()
    for line in batch.read_text().splitlines():
        row = json.loads(line)
        for ln in row["outcome"]["lines"]:
            units[row["payer"]] += ln["units"] if ln["status"] == "billable" else 0
            denials[row["payer"]] += ln["status"] == "expected_denial"
    dom = parse(out.read_text())
    shown = {r[0]: (int(r[2]), int(r[4])) for r in table_rows(dom.by_id("payer-totals"))}
    assert shown == {p: (units[p], denials[p]) for p in units}
    assert len(table_rows(dom.by_id("disagreements"))) == 20
    assert report.OPEN_RECORDS >= 1


def test_a_line_zeroed_without_a_finding_is_charged_to_its_rule(tmp_path):
    trace = [TraceEntry("CORE-TIME-20", "payerpolicy", 0, "status", "billable", "not_billable", reason="0 units")]
    a = _outcome("a", "E-1", [ClaimLine("97110", 0, (), "not_billable", 8, service=0)], [], trace)
    b = _outcome("b", "E-1", [ClaimLine("97110", 1, (), "billable", 8, service=0)], [])
    s = summarise(read_batch(_write([_ok(0, "a", a), _ok(0, "b", b)], tmp_path / "out.jsonl")))
    assert s.top_findings() == []
    assert [(f.payer, f.code, f.occurrences, f.lines, f.units) for f in s.unexplained()] == [
        ("a", "(rule CORE-TIME-20)", 0, 1, 1)
    ]
    assert s.occurrences_by_code() == []
    dom = parse(render_report(s))
    assert table_rows(dom.by_id("unexplained-costs")) == [["a", "(rule CORE-TIME-20)", "1", "1"]]
    assert 'id="finding-costs"' not in render_report(s)


def test_findings_that_cost_no_units_are_not_among_those_that_cost_the_most(tmp_path):
    # 97124 is not billed by either payer (BUNDLED for both): 1 line each, but no payer billed it, so 0 units
    bundled = ClaimLine("97124", 0, (), "not_billable", 8, service=0)
    billed = ClaimLine("97110", 1, (), "billable", 15, service=1)
    rows = [
        _ok(0, p, _outcome(p, "E-1", [bundled, billed], [Finding("BUNDLED", "info", "bundled", "R-1", "S", line=0)]))
        for p in ("a", "b")
    ]
    s = summarise(read_batch(_write(rows, tmp_path / "out.jsonl")))
    assert [(f.payer, f.code, f.occurrences, f.lines, f.units) for f in s.findings] == [("a", "BUNDLED", 1, 1, 0), ("b", "BUNDLED", 1, 1, 0)]
    assert s.top_findings() == [] and s.unexplained() == []
    assert s.occurrences_by_code() == [("BUNDLED", 2)]
    page = render_report(s)
    assert 'id="finding-costs"' not in page and 'id="unexplained-costs"' not in page
    assert "No line lost units to a finding." in page


def test_an_expected_denial_without_a_trace_is_charged_to_the_denial_finding(tmp_path):
    # batch output keeps no trace by default: the denial finding names line 0, and also explains line 1
    lines = [ClaimLine("97110", 2, (), "expected_denial", 30, service=0), ClaimLine("97140", 1, (), "expected_denial", 15, service=1)]
    findings = [Finding("DOCS", "warning", "docs", "R-9", line=0), Finding("MAINTENANCE", "expected_denial", "maintenance", "R-3", line=0)]
    s = summarise(read_batch(_write([_ok(0, "a", _outcome("a", "E-1", lines, findings))], tmp_path / "out.jsonl")))
    assert [(f.payer, f.code, f.occurrences, f.lines, f.units) for f in s.top_findings()] == [
        ("a", "DOCS", 1, 1, 2),  # the first finding on the line, as before
        ("a", "MAINTENANCE", 1, 1, 1),
    ]
    assert s.unexplained() == []
