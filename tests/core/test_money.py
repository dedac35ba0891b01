"""Money (issue 18): the PFS formula, CMS's file formats, fee files, amounts in outcomes and views."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.cli import main
from payerpolicy.evaluation.errors import PayerPolicyError, PolicyValidationError
from payerpolicy.evaluation.money import FeeBook, load_fee_file, parse_fee_text
from payerpolicy.evaluation.pfs import fee_book, import_pfs_files, load_pfs_dir, parse_gpci, parse_pprrvu
from payerpolicy.formats.schema import outcome_schema

ROOT = Path(__file__).parents[2]
CMS = ROOT / "tests" / "fixtures" / "cms"
RVU = CMS / "PPRRVU25_TEST.csv"
GPCI = CMS / "GPCI2025_TEST.csv"
FEES = ROOT / "examples" / "fees.csv"


@pytest.fixture(scope="module")
def pfs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pfs")
    import_pfs_files(RVU, GPCI, out)
    return out


def _pt_visit(**care: object) -> Encounter:
    return Encounter.from_mapping(
        {
            "date_of_service": "2025-10-14",
            "provider": {"type": "PT"},
            "care": care,
            "diagnoses": ["M54.50"],
            "services": [
                {"code": "97110", "minutes": 25, "diagnosis_pointers": [1], "unit_charge": "60.00"},
                {"code": "97140", "minutes": 15, "regions": ["lumbar"], "diagnosis_pointers": [1], "unit_charge": "55"},
            ],
        }
    )


# ---- CMS's formula and file formats


def test_pfs_formula_national_and_in_a_locality(pfs_dir: Path) -> None:
    # [(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF (CMS PFS Look-up Tool documentation).
    # National (every GPCI 1): (0.45 + 0.40 + 0.02) x 32.3465 = 28.141455 -> 28.14.
    # Locality 01112-05 of the fixture: (0.45 x 1.07 + 0.40 x 1.4 + 0.02 x 0.5) x 32.3465 = 1.0515 x 32.3465 = 34.0123... -> 34.01.
    one = Encounter.from_mapping(
        {"date_of_service": "2025-06-02", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 15}]}
    )
    national = Engine(fees=fee_book(None, str(pfs_dir), None)).check(one, "medicare")
    local = Engine(fees=fee_book(None, str(pfs_dir), "01112-05")).check(one, "medicare")
    assert national.lines[0].allowed == Decimal("28.14")
    assert local.lines[0].allowed == Decimal("34.01")
    step = next(t for t in local.trace if t.field == "allowed")
    assert "× CF 32.3465" in step.reason and "01112-05" in step.reason and step.rule == "CORE-FEE-01"


def test_conversion_factor_follows_the_date_of_service(pfs_dir: Path) -> None:
    # CAA 2024 raised the CF from 2024-03-09, not retroactively; the fixture is a 2025 file, so the
    # 2024 dates have no RVUs: a 2025 date uses 32.3465, and the 2024 table is data in the policy.
    engine = Engine(fees=fee_book(None, str(pfs_dir), None))
    rule = engine.host.policy("medicare").rule("CORE-FEE-01")
    assert rule is not None
    assert rule["conversion_factors"]["2024-01-01"] == "32.7442"
    assert rule["conversion_factors"]["2024-03-09"] == "33.2875"
    old = Encounter.from_mapping(
        {"date_of_service": "2024-05-02", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 15}]}
    )
    outcome = engine.check(old, "medicare")
    assert outcome.lines[0].allowed is None and outcome.expected_total is None
    assert "no CMS relative value data for 2024" in next(t.reason for t in outcome.trace if t.field == "allowed")


def test_status_b_and_carrier_priced_codes_have_no_fee_schedule_amount() -> None:
    rvus = parse_pprrvu(RVU.read_text("utf-8"))
    assert rvus[("97010", "")].status == "B"
    assert rvus[("97039", "")].status == "C"
    assert rvus[("97110", "")].pe_nonfacility == Decimal("0.40")
    assert rvus[("97110", "")].mult_proc == "5"


def test_a_header_split_over_two_rows_is_read() -> None:
    text = (
        "copyright line\n"
        ",,,STATUS,WORK,NON-FAC,FACILITY,MP\n"
        "HCPCS,MOD,DESCRIPTION,CODE,RVU,PE RVU,PE RVU,RVU\n"
        "97140,,Manual therapy (test),A,0.43,0.38,0.16,0.02\n"
    )
    row = parse_pprrvu(text)[("97140", "")]
    assert (row.work, row.pe_nonfacility, row.pe_facility, row.mp) == tuple(
        Decimal(x) for x in ("0.43", "0.38", "0.16", "0.02")
    )


def test_gpci_localities_are_keyed_mac_locality() -> None:
    gpcis = parse_gpci(GPCI.read_text("utf-8"))
    assert set(gpcis) == {"01112-05", "05302-00"}
    assert gpcis["01112-05"].pe == Decimal("1.400")


def test_a_file_that_is_not_cms_format_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "PPRRVU25_X.csv"
    bad.write_text("code,amount\n97110,3\n")
    with pytest.raises(PayerPolicyError, match="no header row found"):
        import_pfs_files(bad, GPCI, tmp_path / "out")


def test_import_records_version_and_sha256(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    assert main(["fees", "import", "--rvu", str(RVU), "--gpci", str(GPCI), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "year 2025" in out and "version PPRRVU25_TEST" in out
    [(year, data)] = list(load_pfs_dir(tmp_path))
    assert year == 2025 and data.version == "PPRRVU25_TEST"
    assert data.sha256[RVU.name] == hashlib.sha256(RVU.read_bytes()).hexdigest()
    assert data.rvus[("98940", "")].work == Decimal("0.46")


def test_an_unknown_locality_is_refused(pfs_dir: Path) -> None:
    with pytest.raises(PayerPolicyError, match="not in the imported GPCI file"):
        fee_book(None, str(pfs_dir), "99999-99")


# ---- Medicare payment rules


def test_mppr_cq_and_charges_on_one_visit(pfs_dir: Path) -> None:
    engine = Engine(fees=fee_book(None, str(pfs_dir), None))
    outcome = engine.check(_pt_visit(), "medicare")
    assert [(ln.code, ln.units, ln.charge, ln.allowed) for ln in outcome.lines] == [
        ("97110", 2, Decimal("120.00"), Decimal("49.81")),
        ("97140", 1, Decimal("55.00"), Decimal("20.70")),
    ]
    assert outcome.expected_total == Decimal("70.51") and outcome.charge_total == Decimal("175.00")
    mppr = [t for t in outcome.trace if t.rule == "MCR-08-MPPR"]
    assert [(t.line, t.before, t.after) for t in mppr] == [(0, "56.28", "49.81"), (1, "26.85", "20.70")]
    assert "Claims Processing Manual ch. 5 §10.7" in mppr[0].source


def test_mppr_before_2013_04_was_20_percent(tmp_path: Path) -> None:
    # The 2011-2013 rule (20 % of PE) is data: a case file on a 2012 date, the fixture read as a 2012
    # file and a made-up test conversion factor of 30 laid over the policy (no 2012 CF is shipped).
    # 97110 full (0.87 x 30) = 26.10; reduced (0.45 + 0.40 x 0.8 + 0.02) x 30 = 0.79 x 30 = 23.70.
    case = tmp_path / "mppr2012.toml"
    case.write_text(
        f"""
title = "MPPR 2012"
payer = "medicare"
[fees]
rvu = "{RVU}"
gpci = "{GPCI}"
year = 2012
[encounter]
date_of_service = 2012-06-01
provider = {{ type = "PT" }}
services = [{{ code = "97110", minutes = 30 }}]
[policy]
rules = [{{ id = "CORE-FEE-01", conversion_factors = {{ "2012-01-01" = "30" }} }}]
[expect]
lines = ["97110 x2 [GP]"]
findings = ["MPPR_REDUCTION"]
allowed = ["49.80"]
cost = {{ MPPR_REDUCTION = "2.40" }}
"""
    )
    from payerpolicy.kit.testing import check_case, load_cases

    [loaded] = load_cases(case)
    assert check_case(loaded) == []


def test_denied_lines_are_valued_at_zero_and_cost_their_fee() -> None:
    book = FeeBook(parse_fee_text("code,amount\n98940,42\n97140,38\n97124,32\n97110,36\n", "f.csv", toml=False), "f.csv")
    data = json.loads((ROOT / "examples" / "dc_visit.json").read_text())
    outcome = Engine(fees=book).check(Encounter.from_mapping(data), "bcbsnc")
    denied = next(ln for ln in outcome.lines if ln.code == "97124")
    assert denied.status == "not_billable" and denied.allowed == Decimal("0.00")
    assert outcome.cost_by_finding == {"NCCI_PTP_DENIAL": Decimal("32.00")}
    assert outcome.expected_total == Decimal("116.00")  # 42 + 38 + 36


def test_no_fee_data_leaves_outcomes_as_before() -> None:
    data = json.loads((ROOT / "examples" / "dc_visit.json").read_text())
    outcome = Engine(fees=FeeBook()).check(Encounter.from_mapping(data), "medicare")
    mapping = outcome.to_mapping()
    assert mapping["expected_total"] is None and mapping["cost_by_finding"] == {}
    assert all(line["allowed"] is None for line in mapping["lines"])
    assert not [t for t in outcome.trace if t.field == "allowed"]


# ---- fee files


def test_a_payers_own_row_and_a_modifier_row_win() -> None:
    rows = parse_fee_text(
        "code,amount,payer,modifier\n97140,38,,\n97140,35,aetna,\n97140,30,aetna,GP\n", "f.csv", toml=False
    )
    book = FeeBook(rows, "f.csv")
    day = dt.date(2025, 3, 1)
    assert book.contract("commercial", "97140", (), day, any_payer=True).amount == Decimal("38")  # type: ignore[union-attr]
    assert book.contract("aetna", "97140", ("59",), day, any_payer=True).amount == Decimal("35")  # type: ignore[union-attr]
    assert book.contract("aetna", "97140", ("GP",), day, any_payer=True).amount == Decimal("30")  # type: ignore[union-attr]
    assert book.contract("medicare", "97140", (), day, any_payer=False) is None


def test_effective_dates_pick_the_row() -> None:
    rows = parse_fee_text(
        "code,amount,effective_from,effective_to\n97110,30,2024-01-01,2024-12-31\n97110,33,2025-01-01,\n", "f", toml=False
    )
    book = FeeBook(rows)
    assert book.contract("x", "97110", (), dt.date(2024, 7, 1), any_payer=True).amount == Decimal("30")  # type: ignore[union-attr]
    assert book.contract("x", "97110", (), dt.date(2025, 7, 1), any_payer=True).amount == Decimal("33")  # type: ignore[union-attr]
    assert book.contract("x", "97110", (), dt.date(2023, 7, 1), any_payer=True) is None


def test_a_bad_csv_fee_file_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "fees.csv"
    bad.write_text(
        "# comment\ncode,amount,modifier,payer,effective_from\n"
        "97140,38.00,,,\n"
        "9714,-3,GPX,,\n"
        "97110,1.234,,bad payer!,2025-13-01\n"
        "97140,40,,,\n"
    )
    assert main(["fees", "check", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"payerpolicy: error: {bad}: line 4: code: expected a 5-character CPT/HCPCS code like \"97140\", found '9714'",
        f"payerpolicy: error: {bad}: line 4: amount: expected an amount like 54.20 (>= 0, at most 2 decimals), found '-3'",
        f"payerpolicy: error: {bad}: line 4: modifier: expected a 2-character modifier like \"GP\" or nothing, found 'GPX'",
        f"payerpolicy: error: {bad}: line 5: amount: expected an amount like 54.20 (>= 0, at most 2 decimals), found '1.234'",
        f"payerpolicy: error: {bad}: line 5: payer: expected a payer id like aetna or nothing (every payer), found 'bad payer!'",
        f"payerpolicy: error: {bad}: line 5: effective_from: expected an ISO date like 2025-01-01 or nothing, found '2025-13-01'",
        f"payerpolicy: error: {bad}: line 6: code: expected one row per payer, code, modifier and start date (also line 3), found '97140'",
    ]


def test_a_bad_toml_fee_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "fees.toml"
    bad.write_text('[[fees]]\ncode = "97140"\namount = 38.5\n\n[[fees]]\ncode = "97110"\namount = "33"\ncolour = "red"\n')
    with pytest.raises(PolicyValidationError) as info:
        load_fee_file(bad)
    assert [str(p) for p in info.value.problems] == [
        f'{bad}: fees[0]: amount: expected an amount as a string like "54.20" (>= 0, at most 2 decimals), found 38.5',
        f"{bad}: fees[1]: colour: expected one of code, amount, modifier, payer, effective_from, effective_to, found an unknown key",
    ]


def test_a_missing_column_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nocol = tmp_path / "f.csv"
    nocol.write_text("code,price\n97140,3\n")
    assert main(["compare", str(ROOT / "examples" / "dc_visit.json"), "--fees", str(nocol)]) == 2
    err = capsys.readouterr().err
    assert "line 1 (header): expected a column 'amount'" in err and "line 1 (header): price" in err
    assert main(["compare", str(ROOT / "examples" / "dc_visit.json"), "--fees", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: (file): expected a readable fee file" in capsys.readouterr().err


def test_a_fee_file_row_for_an_unknown_payer_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f.csv"
    f.write_text("code,amount,payer\n97140,38,aetnaa\n")
    assert main(["compare", str(ROOT / "examples" / "dc_visit.json"), "--fees", str(f)]) == 2
    assert "line 2: payer: expected an installed payer id" in capsys.readouterr().err


def test_the_shipped_example_fee_file_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fees", "check", str(FEES)]) == 0
    assert "ok (16 rows" in capsys.readouterr().out


# ---- outcome format and views


def test_amounts_are_two_decimal_strings_and_validate(pfs_dir: Path) -> None:
    import jsonschema

    engine = Engine(fees=fee_book(str(FEES), str(pfs_dir), None))
    outcome = engine.check(_pt_visit(**{"ytd_therapy_charges": "2360"}), "medicare")
    data = json.loads(outcome.to_json())
    jsonschema.validate(data, outcome_schema())
    assert [line["allowed"] for line in data["lines"]] == ["49.81", "20.70"]
    assert [line["charge"] for line in data["lines"]] == ["120.00", "55.00"]
    assert data["expected_total"] == "70.51" and data["cost_by_finding"] == {"MPPR_REDUCTION": "12.62"}
    assert "float" not in outcome.to_json() and not any(isinstance(v, float) for v in _leaves(data))


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def test_compare_shows_amounts_and_a_totals_row(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["compare", "examples/dc_visit.json", "--fees", "examples/fees.csv", "--payers", "commercial,aetna,bcbsnc,medicare"]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.strip().startswith("expected total"))
    assert total.split()[2:] == ["$148.00", "*$136.50", "*$121.50", "*—"]
    lost = next(line for line in out.splitlines() if line.strip().startswith("lost to findings"))
    assert lost.split()[3:] == ["$0.00", "$0.00", "$32.00", "—"]
    assert "97140 x1 [59] $35.00" in out
    assert "no amounts for medicare" in out


def test_compare_with_cms_data_prices_medicare(pfs_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    args = ["compare", "examples/dc_visit.json", "--fees", "examples/fees.csv", "--fees-dir", str(pfs_dir), "--payers", "medicare"]
    assert main(args) == 0
    out = capsys.readouterr().out
    # 98940: (0.46 + 0.39 + 0.02) x 32.3465 = 28.14; the DC's 97140/97110 are GY lines (expected denials): $0.00.
    assert "98940 x1 [AT] $28.14" in out
    total = next(line for line in out.splitlines() if line.strip().startswith("expected total"))
    assert total.split()[2:] == ["$28.14"]


def test_explain_shows_medicare_step_by_step(pfs_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    visit = tmp_path / "v.json"
    visit.write_text(json.dumps(_pt_visit().to_mapping()))
    assert main(["explain", str(visit), "--payer", "medicare", "--fees-dir", str(pfs_dir)]) == 0
    out = capsys.readouterr().out
    assert "allowed: (none) -> 56.28   CORE-FEE-01" in out
    assert "allowed: 56.28 -> 49.81   MCR-08-MPPR" in out
    assert "source: CMS PFS Look-up Tool documentation" in out
    assert "expected total: $70.51 (charges $175.00); lost to findings: MPPR_REDUCTION $12.62" in out


def test_what_if_shows_the_dollar_change(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    args = ["compare", "examples/dc_visit.json", "--fees", "examples/fees.csv", "--payers", "commercial,ca_wc", "--set", "care.visit_number=30"]
    assert main([*args, "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)["what_if"]["changes"]["expected_total"]
    assert changes == [{"payer": "ca_wc", "before": "148.00", "after": "0.00", "change": "-148.00"}]
    assert main(args) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("what-if change"))
    assert row.split()[2:] == ["+$0.00", "-$148.00"]


def test_report_shows_dollars_by_payer_and_by_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(ROOT)
    out = tmp_path / "m.jsonl"
    assert main(["batch", "examples/month.jsonl", "--out", str(out), "--fees", "examples/fees.csv", "--workers", "1", "--payers", "commercial,aetna,bcbsnc"]) == 0
    from payerpolicy.views.report import read_batch, summarise

    summary = summarise(read_batch(out), str(out))
    assert summary.priced and summary.totals["commercial"].priced == 40
    assert summary.pays_most_and_least() == ("commercial", "aetna")
    top = summary.dollars_lost(1)[0]
    assert (top.payer, top.code) == ("bcbsnc", "BUNDLED_SAME_REGION_CMT")
    html = tmp_path / "r.html"
    assert main(["report", str(out), "--out", str(html)]) == 0
    page = html.read_text()
    assert 'id="payer-dollars"' in page and 'id="finding-dollars"' in page and 'id="pays-most-least"' in page


def test_the_837p_bills_the_outcomes_charges() -> None:
    from payerpolicy.formats.x12 import interchange

    visit = Encounter.from_mapping({**_pt_visit().to_mapping(), "id": "C-1"})
    outcome = Engine(fees=FeeBook()).check(visit, "commercial")
    assert [line.charge for line in outcome.claim_lines] == [Decimal("120.00"), Decimal("55.00")]
    segments = interchange(outcome, visit).split("~")
    assert [s.split("*")[2] for s in segments if s.strip().startswith("SV1*")] == ["120", "55"]
    clm = next(s for s in segments if s.strip().startswith("CLM*"))
    assert clm.split("*")[2] == "175"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("markdown", ["| **expected total** | $148.00 | **$121.50** \\* |", "| **lost to findings** | $0.00 | $32.00 |"]),
        ("csv", ["expected total,,148.00,121.50,bcbsnc", "lost to findings,,0.00,32.00,"]),
    ],
)
def test_every_grid_format_has_the_totals_rows(
    fmt: str, expected: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["compare", "examples/dc_visit.json", "--fees", "examples/fees.csv", "--payers", "commercial,bcbsnc", "--format", fmt]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "total" in line or "lost to" in line] == expected


def test_the_html_grid_has_the_totals_rows(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["compare", "examples/dc_visit.json", "--fees", "examples/fees.csv", "--payers", "commercial,bcbsnc", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert 'data-entry="expected total"' in page and 'data-payer="bcbsnc" data-amount="121.50"' in page
    assert 'data-entry="lost to findings"' in page


def test_without_fees_the_grid_has_no_money_rows(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("PAYERPOLICY_FEES", raising=False)
    monkeypatch.delenv("PAYERPOLICY_FEES_DIR", raising=False)
    assert main(["compare", "examples/dc_visit.json"]) == 0
    out = capsys.readouterr().out
    assert "expected total" not in out and "$" not in out


def test_a_medicare_row_in_a_fee_file_prices_medicare_without_cms_data() -> None:
    # A practice that read its locality's amounts off the CMS look-up tool: rows for medicare only.
    # The MPPR cuts the practice-expense part, which a fee file does not give: traced, not computed.
    rows = parse_fee_text("code,amount,payer\n97110,30.00,medicare\n97140,28.00,medicare\n97124,99,\n", "f.csv", toml=False)
    outcome = Engine(fees=FeeBook(rows, "f.csv")).check(_pt_visit(), "medicare")
    assert [ln.allowed for ln in outcome.lines] == [Decimal("60.00"), Decimal("28.00")]
    notes = [t.reason for t in outcome.trace if t.rule == "MCR-08-MPPR"]
    assert len(notes) == 2 and all("no practice-expense part: not reduced here" in n for n in notes)
    assert outcome.cost_by_finding == {}


def test_a_whole_amount_mppr_reduces_fee_file_amounts(tmp_path: Path) -> None:
    # A payer that cuts later units' whole amount (component = "whole", e.g. 50 %): laid over commercial.
    case = tmp_path / "whole.toml"
    case.write_text(
        """
title = "whole-amount MPPR"
payer = "commercial"
[fees]
rows = [{ code = "97110", amount = "40.00" }, { code = "97140", amount = "30.00" }]
[encounter]
date_of_service = 2025-10-14
provider = { type = "PT" }
services = [{ code = "97110", minutes = 25 }, { code = "97140", minutes = 15, regions = ["lumbar"] }]
[policy]
rules = [{ id = "TEST-MPPR", kind = "therapy_mppr", source = "test overlay", codes = ["97110", "97140"], percent = 50, component = "whole" }]
[expect]
lines = ["97110 x2 []", "97140 x1 []"]
findings = ["MPPR_REDUCTION", "MPPR_REDUCTION"]
allowed = ["60.00", "15.00"]
total = "75.00"
cost = { MPPR_REDUCTION = "35.00" }
"""
    )
    from payerpolicy.kit.testing import check_case, load_cases

    [loaded] = load_cases(case)
    assert check_case(loaded) == []
