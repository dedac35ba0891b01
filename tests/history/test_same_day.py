"""Same-day claims: NCCI PTP pairs and MUE limits count the patient's earlier claim of the same date of service.

A biller splits one date of service over two claims (claim A already sent, claim B now). With
claim history, claim B is checked against claim A's lines as if both were on one claim; only claim
B's lines change, and every finding names claim A.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import payerpolicy
import pytest
from payerpolicy.batch import run_batch
from payerpolicy.history import SQLiteHistory, Visit, VisitLine
from payerpolicy.history.store import MIGRATIONS

PTP_TABLE = "table: CMS practitioner PTP v301r0 / 2024-07-01; curated subset"
MUE_TABLE = "table: MUE practitioner 2024-07-01; curated subset"
MEDICARE_PTP_LIABILITY = (
    ". MCR-09: a service denied by an NCCI edit cannot be billed to the patient, and an ABN does not shift liability"
    " (NGS medically unlikely edits page)"
)


def _pt(ident: str, day: int, code: str, minutes: int, *, patient: str = "p-1", npi: str | None = None) -> dict[str, Any]:
    provider: dict[str, Any] = {"type": "PT"}
    if npi is not None:
        provider["npi"] = npi
    return {
        "id": ident,
        "patient": patient,
        "date_of_service": f"2025-03-{day:02d}",
        "provider": provider,
        "diagnoses": ["M54.50"],
        "services": [{"code": code, "minutes": minutes, "regions": ["lumbar"], "diagnosis_pointers": [1]}],
    }


def _dc(ident: str, *, procedures: tuple[tuple[str, str], ...] = (), services: tuple[tuple[str, str | None], ...] = ()) -> dict[str, Any]:
    return {
        "id": ident,
        "patient": "p-3",
        "date_of_service": "2025-03-03",
        "provider": {"type": "DC"},
        "diagnoses": ["M99.03", "M54.50"],
        "procedures": [{"code": c, "regions": [r], "diagnosis_pointers": [1]} for c, r in procedures],
        "services": [{"code": c, "minutes": 15, "regions": [r] if r else [], "diagnosis_pointers": [2]} for c, r in services],
    }


def _lines(outcome: payerpolicy.Outcome) -> list[tuple[str, int, tuple[str, ...], str]]:
    return [(line.code, line.units, line.modifiers, line.status) for line in outcome.lines]


def _ncci(outcome: payerpolicy.Outcome) -> list[tuple[str, str, str, int | None, str]]:
    return [(f.code, f.severity, f.rule, f.line, f.message) for f in outcome.findings if f.code.startswith("NCCI")]


def _same_day_trace(outcome: payerpolicy.Outcome) -> list[tuple[Any, str]]:
    return [(t.after, t.reason) for t in outcome.trace if t.rule == "HISTORY" and t.field == "same_day_lines"]


def _ptp_97124(rule: str, liability: str = "") -> tuple[str, str, str, int, str]:
    return (
        "NCCI_PTP_DENIAL",
        "warning",
        rule,
        0,
        "97124 is column 2 of NCCI PTP edit 97140/97124 with 97140 billed on claim A-1, the same patient's earlier claim"
        " on the same date of service and provider (claim history); modifier indicator 0: no modifier bypasses this edit;"
        f" CMS rationale: Standards of medical/surgical practice; {PTP_TABLE}. 97124 is not billed on this claim{liability}",
    )


@pytest.mark.parametrize(
    ("payer", "rule", "modifiers", "liability"),
    [("medicare", "NCCI-01", ("GP",), MEDICARE_PTP_LIABILITY), ("bcbsnc", "BCNC-01-PTP", (), "")],
)
def test_a_column_2_code_on_a_later_same_day_claim_is_denied_naming_the_earlier_claim(
    tmp_path: Path, payer: str, rule: str, modifiers: tuple[str, ...], liability: str
) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        first = payerpolicy.check(_pt("A-1", 3, "97140", 15), payer, history=store, record=True)
        assert _lines(first) == [("97140", 1, modifiers, "billable")]
        later = payerpolicy.check(_pt("B-1", 3, "97124", 15), payer, history=store)
        assert _lines(later) == [("97124", 0, (), "not_billable")]
        assert _ncci(later) == [_ptp_97124(rule, liability)]
        listing = "97140 x1" + (f" [{' '.join(modifiers)}]" if modifiers else "")
        assert _same_day_trace(later) == [
            (
                "A-1",
                f"same patient, date of service and provider: A-1 was billed earlier ({listing}); NCCI procedure-to-procedure"
                " pairs and MUE limits count its lines with this claim's",
            )
        ]
        # the next day is another date of service: no edit
        next_day = payerpolicy.check(_pt("B-1", 4, "97124", 15), payer, history=store)
        assert _lines(next_day) == [("97124", 1, modifiers, "billable")]
        assert _ncci(next_day) == [] and _same_day_trace(next_day) == []
        # another patient on the same day: no edit
        other = payerpolicy.check(_pt("B-9", 3, "97124", 15, patient="p-2"), payer, history=store)
        assert _lines(other) == [("97124", 1, modifiers, "billable")]
        # without history the claim is checked alone, as before
        alone = payerpolicy.check(_pt("B-1", 3, "97124", 15), payer)
        assert _lines(alone) == [("97124", 1, modifiers, "billable")] and _ncci(alone) == []


def test_only_this_claims_lines_change_and_the_earlier_claim_is_left_as_billed(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        # the earlier claim has the column-2 code: this claim's column-1 line stays billable
        payerpolicy.check(_pt("A-1", 3, "97124", 15), "bcbsnc", history=store, record=True)
        later = payerpolicy.check(_pt("B-1", 3, "97140", 15), "bcbsnc", history=store, record=True)
        assert _lines(later) == [("97140", 1, (), "billable")] and _ncci(later) == []
        # recording B did not change what A was recorded with
        visits = {v.encounter: v for v in store.visits("p-1")}
        assert visits["A-1"].lines == (VisitLine("bcbsnc", "97124", 1, (), ("lumbar",), "billable"),)


def test_an_earlier_claim_dated_the_same_day_but_later_in_order_is_not_counted(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_pt("B-1", 3, "97140", 15), "bcbsnc", history=store, record=True)
        # A-0 sorts before B-1 (same date, smaller id): B-1 is after it, so A-0 is checked alone
        earlier = payerpolicy.check(_pt("A-0", 3, "97124", 15), "bcbsnc", history=store)
        assert _lines(earlier) == [("97124", 1, (), "billable")] and _same_day_trace(earlier) == []


def test_indicator_1_pairs_across_claims_take_the_distinct_modifier_only_for_a_different_region(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_dc("A-1", procedures=(("98940", "lumbar"),)), "bcbsnc", history=store, record=True)
        other_region = payerpolicy.check(_dc("B-1", services=(("97140", "cervical"),)), "bcbsnc", history=store)
        assert _lines(other_region) == [("97140", 1, ("59",), "billable")] and _ncci(other_region) == []
        same_region = payerpolicy.check(_dc("B-2", services=(("97140", "lumbar"),)), "bcbsnc", history=store)
        assert _lines(same_region) == [("97140", 0, (), "not_billable")]
        assert _ncci(same_region)[0][4] == (
            "97140 is column 2 of NCCI PTP edit 98940/97140 with 98940 billed on claim A-1, the same patient's earlier claim"
            " on the same date of service and provider (claim history); modifier indicator 1, but both lines treat the same"
            f" region (lumbar), so no distinct-service modifier is justified; CMS rationale: Standards of medical/surgical"
            f" practice; {PTP_TABLE}. 97140 is not billed on this claim"
        )
        no_region = payerpolicy.check(_dc("B-3", services=(("97140", None),)), "bcbsnc", history=store)
        assert _lines(no_region) == [("97140", 0, (), "not_billable")]
        assert "modifier indicator 1, but no region is recorded on this line and the other claim's time blocks are not known" in _ncci(no_region)[0][4]


def test_mue_units_of_the_earlier_same_day_claim_count_toward_the_date_of_service_limit(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_pt("A-1", 3, "97110", 60), "medicare", history=store, record=True)
        later = payerpolicy.check(_pt("B-1", 3, "97110", 45), "medicare", history=store)
        # MUE 6, MAI 3: 4 + 3 units that day; flagged as billed (Medicare caps only MAI 2)
        assert _lines(later) == [("97110", 3, ("GP",), "expected_denial")]
        assert _ncci(later) == [
            (
                "NCCI_MUE_EXCEEDED",
                "expected_denial",
                "NCCI-03",
                0,
                "97110 x3 on this claim and x4 on the same patient's earlier claim(s) of the same date of service and provider"
                " (A-1; claim history), x7 in all: above the MUE of 6 per date of service (MAI 3, date-of-service edit"
                " (clinical): units above it are paid only on appeal with records showing medical necessity; rationale: not"
                f" given; {MUE_TABLE}): expected to be denied as billed. MCR-09: units denied by an MUE cannot be billed to the"
                " patient, and an ABN does not shift liability (NGS medically unlikely edits page)",
            )
        ]
        within = payerpolicy.check(_pt("B-1", 3, "97110", 30), "medicare", history=store)  # 4 + 2 = 6: within the MUE
        assert _lines(within) == [("97110", 2, ("GP",), "billable")] and _ncci(within) == []


def test_an_mai_2_limit_already_reached_on_the_earlier_claim_removes_this_claims_units(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_dc("A-1", procedures=(("98940", "lumbar"),)), "bcbsnc", history=store, record=True)
        later = payerpolicy.check(_dc("B-1", procedures=(("98940", "cervical"),)), "bcbsnc", history=store)
        assert _lines(later) == [("98940", 0, (), "not_billable")]
        code, severity, rule, line, message = _ncci(later)[0]
        assert (code, severity, rule, line) == ("NCCI_MUE_EXCEEDED", "warning", "BCNC-01-MUE", 0)
        assert message.startswith(
            "98940 x1 on this claim and x1 on the same patient's earlier claim(s) of the same date of service and provider"
            " (A-1; claim history), x2 in all: above the MUE of 1 per date of service (MAI 2"
        )
        assert "capped at 0 unit(s) on this claim (the MUE less the 1 unit(s) already billed that day)" in message


def test_another_rendering_provider_is_another_claim_for_ncci(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_pt("A-1", 3, "97140", 15, npi="1234567893"), "bcbsnc", history=store, record=True)
        other = payerpolicy.check(_pt("B-1", 3, "97124", 15, npi="1245319599"), "bcbsnc", history=store)
        assert _lines(other) == [("97124", 1, (), "billable")] and _same_day_trace(other) == []
        same = payerpolicy.check(_pt("B-1", 3, "97124", 15, npi="1234567893"), "bcbsnc", history=store)
        assert _lines(same) == [("97124", 0, (), "not_billable")]


def test_an_earlier_claim_recorded_for_another_payer_is_named_but_not_counted(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_pt("A-1", 3, "97140", 15), "medicare", history=store, record=True)
        later = payerpolicy.check(_pt("B-1", 3, "97124", 15), "bcbsnc", history=store)
        assert _lines(later) == [("97124", 1, (), "billable")]
        assert _same_day_trace(later) == [
            (
                None,
                "same patient, date of service and provider: A-1 is recorded without its claim lines for bcbsnc (evaluated"
                " for another payer, or recorded before claim lines were kept), so this claim is not checked against it for"
                " NCCI pairs and MUE limits",
            )
        ]


def test_a_version_1_file_is_migrated_and_claim_lines_are_kept_per_payer(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # a file written by the first schema
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA application_id = 1347443016")
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO visits VALUES ('E1', 'p', '', '2025-03-03', 'chiropractic', 0, 1, 0, '0', '0', '0', '0', NULL, NULL, 'x')"
        )
    old = Visit("E1", "p", "", dt.date(2025, 3, 3), "chiropractic", False, 1, 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
    with SQLiteHistory(path) as store:
        assert store.schema_version == 2
        assert store.visits("p") == [old]
        medicare = (VisitLine("medicare", "98940", 1, ("AT",), ("lumbar",)),)
        store.record([old.with_claim("medicare", medicare)])
        store.record([attrs.evolve(old, npi="1234567893").with_claim("bcbsnc", ())])  # no lines on bcbsnc's claim
        (visit,) = store.visits("p")
        assert visit.npi == "1234567893"
        assert visit.payers == ("bcbsnc", "medicare")
        assert visit.lines_for("medicare") == medicare and visit.lines_for("bcbsnc") == ()
        assert visit.lines_for("aetna") is None


def _records(path: Path) -> None:
    records = [
        _pt("B-2", 3, "97124", 15),  # input order is not date order: B-2 comes first
        _pt("Z-9", 3, "97110", 15, patient="p-0"),
        _pt("A-1", 3, "97140", 15),
        _pt("C-3", 4, "97124", 15),
        _pt("M-2", 5, "97110", 45, patient="p-2"),
        _pt("M-1", 5, "97110", 60, patient="p-2"),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _rows(path: Path) -> list[tuple[Any, ...]]:
    rows = []
    for text in path.read_text().splitlines():
        row = json.loads(text)
        outcome = row["outcome"]
        lines = [(x["code"], x["units"], x["status"]) for x in outcome["lines"]]
        ncci = [(f["code"], f["line"]) for f in outcome["findings"] if f["code"].startswith("NCCI")]
        named = all("A-1" in f["message"] or "M-1" in f["message"] for f in outcome["findings"] if f["code"].startswith("NCCI"))
        rows.append((row["encounter"], row["payer"], lines, ncci, named))
    return rows


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_with_history_checks_two_same_day_encounters_of_one_patient_together(tmp_path: Path, workers: int) -> None:
    src = tmp_path / "in.jsonl"
    _records(src)
    out = tmp_path / "out.jsonl"
    # a chunk size of 1 would put each record in its own chunk: one date of service stays in one chunk
    run_batch(src, out, ["medicare", "bcbsnc"], history=tmp_path / "h.db", chunk_size=1, workers=workers)
    expected = []
    for encounter, lines, ncci in [
        ("Z-9", [("97110", 1, "billable")], []),
        ("A-1", [("97140", 1, "billable")], []),
        ("B-2", [("97124", 0, "not_billable")], [("NCCI_PTP_DENIAL", 0)]),
        ("C-3", [("97124", 1, "billable")], []),
        ("M-1", [("97110", 4, "billable")], []),
        ("M-2", [("97110", 3, "expected_denial")], [("NCCI_MUE_EXCEEDED", 0)]),
    ]:
        expected += [(encounter, payer, lines, ncci, True) for payer in ("medicare", "bcbsnc")]
    assert _rows(out) == expected
    # the same month again: the same rows, and each visit's lines recorded once per payer
    again = tmp_path / "again.jsonl"
    run_batch(src, again, ["medicare", "bcbsnc"], history=tmp_path / "h.db", chunk_size=1, workers=workers)
    assert again.read_bytes() == out.read_bytes()
    with SQLiteHistory(tmp_path / "h.db") as store:
        visits = {v.encounter: v for v in store.visits("p-1")}
        assert visits["A-1"].payers == ("bcbsnc", "medicare")
        assert visits["B-2"].lines_for("bcbsnc") == ()  # its only line was denied: nothing went on the claim
        assert visits["C-3"].lines_for("bcbsnc") == (VisitLine("bcbsnc", "97124", 1, (), ("lumbar",), "billable"),)
