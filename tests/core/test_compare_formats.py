"""`payerpolicy compare` in every format, and the what-if (--set): exact cells, markers and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import payerpolicy
import pytest
from pagedom import parse
from payerpolicy.cli import main
from payerpolicy.evaluation.paths import PathError, parse_assignment, set_path
from payerpolicy.views.grid import WhatIf, build_grid
from payerpolicy.views.pages import compare_html
from payerpolicy.views.render import compare_markdown

ROOT = Path(__file__).resolve().parents[2]
DC = str(ROOT / "examples" / "dc_visit.json")


def _run(capsys, *args: str) -> str:
    assert main(["compare", DC, *args]) == 0
    return capsys.readouterr().out


def test_csv_is_the_grid_then_the_findings(capsys):
    out = _run(capsys, "--payers", "commercial,bcbsnc", "--format", "csv")
    grid, findings = out.split("\n\n")
    rows = list(csv.reader(io.StringIO(grid)))
    assert rows == [
        ["entry", "label", "commercial", "bcbsnc", "marked"],
        ["procedures[0]", "98940 cervical/thoracic", "98940 x1 []", "98940 x1 []", ""],
        ["services[0]", "myofascial_release 18m upper_extremity", "97140 x1 [59]", "97140 x1 [59]", ""],
        ["services[1]", "petrissage 12m lumbar", "97124 x1 [59]", "97124 not billed: NCCI_PTP_DENIAL", "bcbsnc"],
        ["services[2]", "therapeutic_exercise 10m lumbar", "97110 x1 []", "97110 x1 []", ""],
        ["billable units", "", "4", "3", "bcbsnc"],
    ]
    found = list(csv.DictReader(io.StringIO(findings)))
    assert [(f["payer"], f["severity"], f["code"], f["where"], f["rule"], f["change"]) for f in found] == [
        ("commercial", "warning", "MASSAGE_AUDIT_TRIGGER_VISITS", "line 97124", "CORE-UTIL-01", ""),
        ("bcbsnc", "warning", "NCCI_PTP_DENIAL", "line 97124", "BCNC-01-PTP", ""),
        ("bcbsnc", "info", "OPEN_QUESTION_GP_ON_97140", "line 97140", "BCNC-04", ""),
    ]


def test_markdown_table_marks_cells_that_differ_in_bold(capsys):
    out = _run(capsys, "--payers", "commercial,bcbsnc", "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "### Encounter S42-dc-visit — date of service 2025-03-12 — provider DC"
    start = lines.index("| entry | commercial | bcbsnc |")
    assert lines[start : start + 7] == [
        "| entry | commercial | bcbsnc |",
        "|---|---|---|",
        "| `procedures[0]` 98940 cervical/thoracic | `98940 x1 []` | `98940 x1 []` |",
        "| `services[0]` myofascial\\_release 18m upper\\_extremity | `97140 x1 [59]` | `97140 x1 [59]` |",
        "| `services[1]` petrissage 12m lumbar | `97124 x1 [59]` | **`97124 not billed: NCCI_PTP_DENIAL`** \\* |",
        "| `services[2]` therapeutic\\_exercise 10m lumbar | `97110 x1 []` | `97110 x1 []` |",
        "| **billable units** | 4 | **3** \\* |",
    ]
    assert "#### Findings — bcbsnc" in lines
    assert any(line.startswith("- warning `NCCI_PTP_DENIAL` line 97124 \\[BCNC-01-PTP\\]: 97124 is column 2") for line in lines)


def test_markdown_escapes_text_from_data():
    data = json.loads(Path(DC).read_text())
    data["id"] = "a|b *c* <x>"
    enc = payerpolicy.Encounter.from_mapping(data)
    md = compare_markdown(build_grid(enc, payerpolicy.compare(enc, ["commercial"])))
    assert md.splitlines()[0] == "### Encounter a\\|b \\*c\\* \\<x\\> — date of service 2025-03-12 — provider DC"


def test_table_format_is_unchanged_by_default(capsys):
    out = _run(capsys, "--payers", "commercial,bcbsnc")
    assert "  services[1] petrissage 12m lumbar                   97124 x1 [59]  *97124 not billed: NCCI_PTP_DENIAL" in out
    assert "  billable units                                      4              *3" in out
    assert "  * differs from commercial" in out


def test_json_format_keeps_its_contract(capsys):
    out = json.loads(_run(capsys, "--payers", "commercial,medicare", "--format", "json"))
    assert list(out) == ["encounter", "payers", "outcomes"]
    assert out["payers"] == ["commercial", "medicare"]
    assert [o["outcome_version"] for o in out["outcomes"]] == [1, 1]


# ---------------------------------------------------------------------------------------------
# HTML


def test_html_grid_cells_carry_code_units_and_modifiers(capsys):
    html = _run(capsys, "--payers", "commercial,bcbsnc,medicare", "--format", "html")
    dom = parse(html)
    grid = dom.by_id("grid")
    cell = {(td.parent.attrs["data-entry"], td.attrs["data-payer"]): td for td in grid.find_all("td")}
    medicare = cell[("services[0]", "medicare")]
    assert (medicare.attrs["data-code"], medicare.attrs["data-units"], medicare.attrs["data-modifiers"]) == ("97140", "1", "GP GY")
    # billed with GY to be denied (issue 14 item 8): an expected denial, not billable units
    assert medicare.attrs["data-status"] == "expected_denial"
    assert medicare.has_class("differs") and medicare.text == "97140 x1 [GP, GY]expected denial: NONCOVERED_DC_SERVICE*"
    bcbsnc = cell[("services[1]", "bcbsnc")]
    assert bcbsnc.attrs["data-status"] == "not_billable" and bcbsnc.text == "97124not billed: NCCI_PTP_DENIAL*"
    commercial = cell[("services[1]", "commercial")]
    assert not commercial.has_class("differs") and commercial.text == "97124 x1 [59]"
    assert [cell[("billable units", p)].attrs["data-units"] for p in ("commercial", "bcbsnc", "medicare")] == ["4", "3", "1"]
    codes = [li.attrs["data-code"] for li in dom.find_all("ul", data_payer="bcbsnc")[0].find_all("li")]
    assert codes == ["NCCI_PTP_DENIAL", "OPEN_QUESTION_GP_ON_97140"]


def test_html_is_self_contained_and_printable(capsys):
    html = _run(capsys, "--format", "html")
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "http://" not in html and "https://" not in html
    assert "default-src 'none'" in html
    assert "@media print" in html


def test_html_escapes_all_text():
    data = json.loads(Path(DC).read_text())
    data["id"] = '<img src=x onerror="alert(1)">&'
    enc = payerpolicy.Encounter.from_mapping(data)
    html = compare_html(build_grid(enc, payerpolicy.compare(enc, ["commercial"])))
    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in html


# ---------------------------------------------------------------------------------------------
# what-if


WHAT_IF = ["--set", "care.phase=maintenance", "--set", "services[1].minutes=23"]


def test_what_if_table_shows_before_and_after(capsys):
    out = _run(capsys, "--payers", "commercial,medicare", *WHAT_IF)
    lines = out.splitlines()
    assert lines[1] == "what-if: --set care.phase=maintenance --set services[1].minutes=23"
    rows = {line.split()[0]: line for line in lines if line.startswith(("  procedures", "  services", "  billable"))}
    assert "!98940 x1 [AT] → 98940 x1 [GZ] (DENIAL?: MEDICARE_MAINTENANCE)" in rows["procedures[0]"]
    assert "services[1] petrissage 12m lumbar → petrissage 23m lumbar  !97124 x1 [59] → 97124 x2 [59]" in rows["services[1]"]
    assert "!" not in rows["services[0]"] and "!" not in rows["services[2]"]
    assert rows["billable"].split()[2:] == ["!4", "→", "5", "!1", "→", "0"]
    assert "+ warning         MASSAGE_AUDIT_TRIGGER_UNITS          line 97124" in out
    assert "+ expected_denial MEDICARE_MAINTENANCE                 line 98940" in out
    assert "  ! changed by the what-if (before → after)" in out


def test_what_if_json_gives_both_outcomes_and_the_changes(capsys):
    out = json.loads(_run(capsys, "--payers", "commercial,medicare", "--format", "json", *WHAT_IF))
    assert list(out) == ["encounter", "payers", "outcomes", "what_if"]
    after = {o["payer"]["id"]: o for o in out["outcomes"]}
    before = {o["payer"]["id"]: o for o in out["what_if"]["outcomes_before"]}
    assert after["commercial"]["lines"][2]["units"] == 2 and before["commercial"]["lines"][2]["units"] == 1
    assert after["medicare"]["lines"][0]["modifiers"] == ["GZ"] and before["medicare"]["lines"][0]["modifiers"] == ["AT"]
    changes = out["what_if"]["changes"]
    assert out["what_if"]["set"] == ["care.phase=maintenance", "services[1].minutes=23"]
    assert changes["cells"] == [
        {"payer": "medicare", "entry": "procedures[0]", "before": "98940 x1 [AT]",
         "after": "98940 x1 [GZ] (DENIAL?: MEDICARE_MAINTENANCE)"},
        {"payer": "commercial", "entry": "services[1]", "before": "97124 x1 [59]", "after": "97124 x2 [59]"},
    ]  # fmt: skip
    assert changes["billable_units"] == [
        {"payer": "commercial", "before": 4, "after": 5},
        {"payer": "medicare", "before": 1, "after": 0},
    ]
    assert changes["findings"] == [
        {"payer": "commercial", "code": "MASSAGE_AUDIT_TRIGGER_UNITS", "where": "line 97124", "change": "added"},
        {"payer": "medicare", "code": "MEDICARE_MAINTENANCE", "where": "line 98940", "change": "added"},
    ]


def test_what_if_csv_markdown_and_html_mark_the_changes(capsys):
    rows = list(csv.reader(io.StringIO(_run(capsys, "--payers", "commercial,medicare", "--format", "csv", *WHAT_IF).split("\n\n")[0])))
    assert rows[3] == ["services[1]", "petrissage 12m lumbar → petrissage 23m lumbar", "97124 x1 [59] → 97124 x2 [59]",
                       "97124 not billed: NCCI_PTP_DENIAL", "commercial"]  # fmt: skip
    assert rows[-1] == ["billable units", "", "4 → 5", "1 → 0", "commercial medicare"]
    md = _run(capsys, "--payers", "commercial,medicare", "--format", "markdown", *WHAT_IF)
    assert "| ~~`97124 x1 [59]`~~ → **`97124 x2 [59]`** |" in md
    assert "| **billable units** | ~~4~~ → **5** | ~~1~~ → **0** |" in md
    dom = parse(_run(capsys, "--payers", "commercial,medicare", "--format", "html", *WHAT_IF))
    changed = [(td.parent.attrs["data-entry"], td.attrs["data-payer"]) for td in dom.find_all("td") if td.has_class("changed")]
    assert changed == [("procedures[0]", "medicare"), ("services[1]", "commercial"), ("billable units", "commercial"),
                       ("billable units", "medicare")]  # fmt: skip
    cell = next(td for td in dom.find_all("td", data_payer="commercial") if td.parent.attrs["data-entry"] == "services[1]")
    assert cell.find_all("del")[0].text == "97124 x1 [59]" and cell.attrs["data-units"] == "2"


def test_what_if_values_are_json_when_they_can_be():
    assert parse_assignment("services[1].minutes=23") == ("services[1].minutes", 23)
    assert parse_assignment("care.zelis=true") == ("care.zelis", True)
    assert parse_assignment('care.abn="none"') == ("care.abn", "none")
    assert parse_assignment("care.phase=maintenance") == ("care.phase", "maintenance")
    assert parse_assignment("diagnoses=[\"M54.2\"]") == ("diagnoses", ["M54.2"])
    assert parse_assignment("care.phase=null") == ("care.phase", None)


def test_set_path_names_the_part_that_does_not_fit():
    data = {"services": [{"minutes": 1}], "care": {}}
    set_path(data, "services[0].minutes", 5)
    set_path(data, "care.phase", "active")
    assert data == {"services": [{"minutes": 5}], "care": {"phase": "active"}}
    with pytest.raises(PathError) as exc:
        set_path(data, "services[3].minutes", 1)
    assert str(exc.value) == "services[3]: no such entry: services has 1"
    with pytest.raises(PathError) as exc:
        set_path(data, "care[0]", 1)
    assert str(exc.value) == "care[0]: care is not an array"
    with pytest.raises(PathError):
        set_path(data, "services..x", 1)


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("services[1].minutes=999", "--set services[1].minutes=999: services[1].minutes: expected a whole number from 0 to 480, found 999"),
        ("services[7].minutes=9", "--set services[7].minutes=9: services[7]: no such entry: services has 3"),
        ("care.phase=later", "--set care.phase=later: care.phase: unknown phase \"later\"; known: initial, active, maintenance"),
        ("services.x=1", "--set services.x=1: services.x: services is not a table"),
        ("care", "--set care: expected PATH=VALUE (for example care.phase=maintenance), found 'care'"),
    ],
)
def test_a_bad_set_is_one_line_exit_2(capsys, assignment, message):
    assert main(["compare", DC, "--set", assignment]) == 2
    err = capsys.readouterr().err
    assert err == f"payerpolicy: error: {message}\n"


def test_what_if_through_the_grid_api():
    data = json.loads(Path(DC).read_text())
    before = payerpolicy.Encounter.from_mapping(data)
    data["services"][1]["minutes"] = 23
    after = payerpolicy.Encounter.from_mapping(data)
    what_if = WhatIf(["services[1].minutes=23"], before, payerpolicy.compare(before, ["commercial"]))
    grid = build_grid(after, payerpolicy.compare(after, ["commercial"]), what_if)
    assert [(r.key, r.cells[0].before, r.cells[0].text) for r in grid.rows if r.cells[0].changed] == [
        ("services[1]", "97124 x1 [59]", "97124 x2 [59]")
    ]
    assert (grid.units_before, grid.units) == ((4,), (5,))
