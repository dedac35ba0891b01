"""The pages as a person sees them: headless Chromium loads them, and the numbers in the page are the outcomes'.

Run for real by `nox -s browser` (which installs Debian's chromium); skipped elsewhere when
/usr/bin/chromium is absent. Screenshots go to build/artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from pagedom import ROOT, Node, parse, table_rows, write_month_batch
from payerpolicy.cli import main
from payerpolicy.views.charts import svg_id

CHROMIUM = Path(os.environ.get("PAYERPOLICY_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "build" / "artifacts"
DC = str(ROOT / "examples" / "dc_visit.json")
REQUIRED = bool(os.environ.get("PAYERPOLICY_REQUIRE_BROWSER"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not REQUIRED,
        reason=f"{CHROMIUM} is not installed (nox -s browser installs Debian's chromium and runs these)",
    ),
]


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "chromium-profile"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _dom(tmp_path: Path, page: Path) -> Node:
    return parse(_chromium(tmp_path, "--dump-dom", page.as_uri()))


def _screenshot(tmp_path: Path, page: Path, name: str, size: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    target.unlink(missing_ok=True)
    _chromium(tmp_path, f"--screenshot={target}", f"--window-size={size}", "--hide-scrollbars", page.as_uri())
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    return target


def _cli(capsys, *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _check_grid(dom: Node, outcomes: list[dict], before: list[dict] | None = None) -> None:
    grid = dom.by_id("grid")
    cells = {(td.parent.attrs["data-entry"], td.attrs["data-payer"]): td for td in grid.find_all("td")}
    for outcome in outcomes:
        payer = outcome["payer"]["id"]
        for line in outcome["lines"]:
            td = cells[(f"{line['origin']}[{line['service']}]", payer)]
            shown = (td.attrs["data-code"], int(td.attrs["data-units"]), td.attrs["data-modifiers"].split(), td.attrs["data-status"])
            assert shown == (line["code"], line["units"], line["modifiers"], line["status"])
            if line["status"] == "billable":
                assert f"{line['code']} x{line['units']} [{', '.join(line['modifiers'])}]" in td.text
        units = sum(ln["units"] for ln in outcome["lines"] if ln["status"] == "billable")
        assert cells[("billable units", payer)].attrs["data-units"] == str(units)
        assert str(units) in cells[("billable units", payer)].text
        shown_findings = [li.attrs["data-code"] for li in dom.find_all("ul", data_payer=payer)[0].find_all("li")] if outcome["findings"] else []
        expected = [f["code"] for f in outcome["findings"]]
        if before is None:
            assert shown_findings == expected
        else:
            assert shown_findings[: len(expected)] == expected  # then the findings the change removed


def test_compare_page_renders_the_outcomes(tmp_path, capsys):
    outcomes = json.loads(_cli(capsys, "compare", DC, "--format", "json"))["outcomes"]
    page = tmp_path / "compare.html"
    page.write_text(_cli(capsys, "compare", DC, "--format", "html"), "utf-8")
    dom = _dom(tmp_path, page)
    _check_grid(dom, outcomes)
    assert [th.attrs["data-payer"] for th in dom.by_id("grid").find_all("th") if "data-payer" in th.attrs] == [
        o["payer"]["id"] for o in outcomes
    ]
    _screenshot(tmp_path, page, "compare.png", "1400,1000")


def test_what_if_page_renders_before_and_after(tmp_path, capsys):
    sets = ["--set", "care.phase=maintenance", "--set", "services[1].minutes=23"]
    data = json.loads(_cli(capsys, "compare", DC, "--format", "json", *sets))
    page = tmp_path / "what-if.html"
    page.write_text(_cli(capsys, "compare", DC, "--format", "html", *sets), "utf-8")
    dom = _dom(tmp_path, page)
    _check_grid(dom, data["outcomes"], data["what_if"]["outcomes_before"])
    changed = {(td.parent.attrs["data-entry"], td.attrs["data-payer"]) for td in dom.find_all("td") if td.has_class("changed")}
    expected = {(c["entry"], c["payer"]) for c in data["what_if"]["changes"]["cells"]}
    expected |= {("billable units", u["payer"]) for u in data["what_if"]["changes"]["billable_units"]}
    assert changed == expected and ("services[1]", "commercial") in changed
    _screenshot(tmp_path, page, "what-if.png", "1400,1000")


def test_report_page_renders_tables_and_charts(tmp_path, capsys):
    batch = write_month_batch(tmp_path / "month-out.jsonl")
    page = tmp_path / "report.html"
    _cli(capsys, "report", str(batch), "--out", str(page), "--title", "Batch report — examples/month.jsonl")
    rows = [json.loads(line) for line in batch.read_text().splitlines()]
    payers = list(dict.fromkeys(r["payer"] for r in rows))
    units: Counter[str] = Counter()
    denials: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for r in rows:
        for ln in r["outcome"]["lines"]:
            units[r["payer"]] += ln["units"] if ln["status"] == "billable" else 0
            denials[r["payer"]] += ln["status"] == "expected_denial"
            dropped[r["payer"]] += ln["status"] == "not_billable"
        codes.update(f["code"] for f in r["outcome"]["findings"])

    dom = _dom(tmp_path, page)
    totals = {r[0]: r for r in table_rows(dom.by_id("payer-totals"))}
    for p in payers:
        assert (int(totals[p][2]), int(totals[p][4]), int(totals[p][6])) == (units[p], denials[p], dropped[p])
        # the bars' value labels, as rendered in the inline SVG
        assert dom.by_id(f"units-{svg_id('billable units', p)}").text.strip() == str(units[p])
        assert dom.by_id(f"denials-{svg_id('expected denials', p)}").text.strip() == str(denials[p])
        assert dom.by_id(f"denials-{svg_id('not billable', p)}").text.strip() == str(dropped[p])
    top = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
    for code, n in top:
        assert dom.by_id(f"findings-{svg_id('findings', code)}").text.strip() == str(n)
    assert len(dom.by_id("charts").find_all("svg")) == 3
    assert dom.find_all("script") == [] and dom.find_all("link") == []
    shot = _screenshot(tmp_path, page, "report.png", "1280,2000")
    assert shot.stat().st_size > 50_000
