"""A month of visits for 50 patients: the caps and thresholds found from claim history alone.

examples/history_month.jsonl gives no visit_number, prior_massage_visits, ytd_therapy_charges or
episode_start: everything the rules below need comes from the visits recorded before each one.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from payerpolicy.batch import run_batch
from payerpolicy.cli import main
from payerpolicy.evaluation.errors import PayerPolicyError
from payerpolicy.history import SQLiteHistory

ROOT = Path(__file__).resolve().parents[2]
MONTH = ROOT / "examples" / "history_month.jsonl"
PAYERS = ["commercial", "ca_wc", "medicare"]
KX_2025 = Decimal("2410")


class Stop(Exception):
    pass


def _rows(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows = {}
    for line in path.read_text("utf-8").splitlines():
        row = json.loads(line)
        rows[(row["encounter"], row["payer"])] = row["outcome"]
    return rows


def _codes(outcome: dict[str, Any]) -> list[str]:
    return [f["code"] for f in outcome["findings"]]


def _visits() -> list[dict[str, Any]]:
    return [json.loads(line) for line in MONTH.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("month")
    run_batch(MONTH, where / "with.jsonl", PAYERS, workers=1, chunk_size=64, history=where / "month.db", trace=True)
    run_batch(MONTH, where / "without.jsonl", PAYERS, workers=1, chunk_size=64)
    return {"with": where / "with.jsonl", "without": where / "without.jsonl", "db": where / "month.db"}


def test_the_bundled_month_is_what_its_generator_makes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_history_month", ROOT / "examples" / "make_history_month.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "m.jsonl")]) == 0
    assert (tmp_path / "m.jsonl").read_bytes() == MONTH.read_bytes()
    visits = _visits()
    assert len({v["patient"] for v in visits}) == 50
    assert not any(k in v.get("care", {}) for v in visits for k in ("visit_number", "prior_massage_visits", "ytd_therapy_charges", "episode_start"))


def test_the_25th_california_visit_is_beyond_the_cap_from_history_alone(runs: dict[str, Path]) -> None:
    with_history, without = _rows(runs["with"]), _rows(runs["without"])
    capped = {enc for (enc, payer), o in with_history.items() if payer == "ca_wc" and "CA_VISIT_CAP_EXCEEDED" in _codes(o)}
    assert capped == {"P-01-V25", "P-01-V26", "P-02-V25", "P-02-V26"}
    for enc in capped:
        assert {line["status"] for line in with_history[(enc, "ca_wc")]["lines"]} == {"expected_denial"}
    assert "CA_VISIT_CAP_EXCEEDED" not in _codes(with_history[("P-01-V24", "ca_wc")])
    message = next(f["message"] for f in with_history[("P-01-V25", "ca_wc")]["findings"] if f["code"] == "CA_VISIT_CAP_EXCEEDED")
    assert message.startswith("98940: chiropractic visit 25 for an injury of 2025-02-24; the cap is 24 visits")
    trace = [t for t in with_history[("P-02-V25", "ca_wc")]["trace"] if t["field"] == "care.visit_number"]
    assert [(t["rule"], t["before"], t["after"]) for t in trace] == [("HISTORY", None, 25)]
    assert "P-02-V24" in trace[0]["reason"] and "physical therapy" in trace[0]["reason"]
    # without history the cap cannot be checked
    assert not any("CA_VISIT_CAP_EXCEEDED" in _codes(o) for o in without.values())
    assert "CA_VISIT_CAP_NOT_CHECKED" in _codes(without[("P-01-V25", "ca_wc")])


def test_the_4th_massage_visit_is_an_audit_trigger_from_history_alone(runs: dict[str, Path]) -> None:
    with_history, without = _rows(runs["with"]), _rows(runs["without"])
    flagged = {enc for (enc, payer), o in with_history.items() if payer == "commercial" and "MASSAGE_AUDIT_TRIGGER_VISITS" in _codes(o)}
    # P-03..P-12 have massage on every visit: the 4th visit and every later one
    for n in range(3, 13):
        visits = sorted(enc for (enc, payer) in with_history if payer == "commercial" and enc.startswith(f"P-{n:02d}-"))
        assert [enc for enc in visits if enc in flagged] == visits[3:], n
    first = next(f for f in with_history[("P-03-V04", "commercial")]["findings"] if f["code"] == "MASSAGE_AUDIT_TRIGGER_VISITS")
    assert first["message"] == "massage billed on 4 visits (this one included), more than 3: a known audit trigger"
    assert not any("MASSAGE_AUDIT_TRIGGER_VISITS" in _codes(o) for o in without.values())


def test_kx_comes_on_once_the_years_billed_therapy_charges_reach_the_threshold(runs: dict[str, Path]) -> None:
    with_history, without = _rows(runs["with"]), _rows(runs["without"])
    # independently of payerpolicy: the billed charges of each patient's earlier visits, from the input
    # KX goes on the line whose charge takes the year's therapy charges to the threshold, and on every
    # later therapy line (CMS: the claim that crosses it carries KX), so a visit is KX when its charges
    # before plus its own reach the threshold.
    expected, past = set(), set()
    before: Counter[str] = Counter()
    for visit in sorted(_visits(), key=lambda v: (v["patient"], v["date_of_service"], v["id"])):
        charges = sum(Decimal(s["billed"]["charge"]) for s in visit.get("services", []) if "billed" in s)
        if visit["provider"]["type"] == "PT" and before[visit["patient"]] + charges >= KX_2025:
            expected.add(visit["id"])
            if before[visit["patient"]] >= KX_2025:
                past.add(visit["id"])
        before[visit["patient"]] += charges  # type: ignore[assignment]
    kx = {enc for (enc, payer), o in with_history.items() if payer == "medicare" and "KX_THRESHOLD_EXCEEDED" in _codes(o)}
    assert kx == expected
    assert {f"P-{n:02d}" for n in range(13, 23)} <= {enc[:4] for enc in kx}
    for enc in kx:
        billable = [line for line in with_history[(enc, "medicare")]["lines"] if line["status"] == "billable"]
        if enc in past:  # already over the threshold before the visit: every therapy line
            assert all("KX" in line["modifiers"] for line in billable)
        else:  # the visit that crosses it: from the crossing line on
            assert "KX" in billable[-1]["modifiers"]
    assert not any("KX_THRESHOLD_EXCEEDED" in _codes(o) for o in without.values())
    # the year-to-date amount before each visit comes from history: below before V08, at or over after
    trace = next(t for t in with_history[("P-13-V08", "medicare")]["trace"] if t["field"] == "care.ytd_therapy_charges")
    assert Decimal(trace["after"]) >= KX_2025 and trace["rule"] == "HISTORY"
    earlier = next(t for t in with_history[("P-13-V07", "medicare")]["trace"] if t["field"] == "care.ytd_therapy_charges")
    assert Decimal(earlier["after"]) < KX_2025


def test_rows_come_per_patient_in_date_order_and_every_record_once(runs: dict[str, Path]) -> None:
    rows = [json.loads(line) for line in runs["with"].read_text().splitlines()]
    keys = [(r["encounter"][:4], r["record"]) for r in rows if r["payer"] == "commercial"]
    assert keys == sorted(keys)  # the input is in date order, so within a patient record order is date order
    assert sorted(r["record"] for r in rows if r["payer"] == "commercial") == list(range(len(_visits())))
    plain = [json.loads(line) for line in runs["without"].read_text().splitlines()]
    assert [r["record"] for r in plain if r["payer"] == "commercial"] == list(range(len(_visits())))


def test_the_same_month_run_twice_counts_each_visit_once(runs: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    run_batch(MONTH, again, PAYERS, workers=2, chunk_size=50, history=runs["db"], trace=True)
    assert _rows(again) == _rows(runs["with"])
    with SQLiteHistory(runs["db"]) as store:
        assert store.count() == len(_visits())
        assert max(v.visit_number for v in store.visits("P-01")) == 26


def test_a_resumed_run_counts_each_visit_once(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    db = tmp_path / "h.db"
    seen: list[int] = []

    def crash(result: Any) -> None:
        seen.append(result.first)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_batch(MONTH, out, PAYERS, workers=1, chunk_size=64, history=db, trace=True, on_chunk=crash)
    with SQLiteHistory(db) as store:
        assert store.count() == 3 * 64  # the visits of the three committed parts, no more
    result = run_batch(MONTH, out, PAYERS, workers=1, chunk_size=64, history=db, trace=True, resume=True)
    assert result.resumed_from == 3 * 64
    assert out.read_bytes() == runs["with"].read_bytes()
    with SQLiteHistory(db) as store:
        assert store.count() == len(_visits())


class _FailsOnce:
    """A store that records a chunk's visits and then fails, as if the run died before the journal line."""

    def __init__(self, store: SQLiteHistory, after: int) -> None:
        self.store = store
        self.after = after
        self.calls = 0

    def visits(self, patient: str) -> Any:
        return self.store.visits(patient)

    def record(self, visits: Any) -> None:
        self.store.record(visits)
        self.calls += 1
        if self.calls == self.after:
            raise Stop

    def close(self) -> None:
        self.store.close()


def test_a_part_redone_after_its_visits_were_recorded_counts_them_once(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    store = SQLiteHistory(tmp_path / "h.db")
    with pytest.raises(Stop):
        run_batch(MONTH, out, PAYERS, workers=1, chunk_size=64, history=_FailsOnce(store, 2), trace=True)
    assert store.count() == 2 * 64  # recorded, but only the first part is journalled
    result = run_batch(MONTH, out, PAYERS, workers=1, chunk_size=64, history=_FailsOnce(store, 0), trace=True, resume=True)
    assert result.resumed_from == 64
    assert out.read_bytes() == runs["with"].read_bytes()
    assert store.count() == len(_visits())
    store.close()


def test_two_batch_processes_writing_one_history_file_at_once(runs: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    def command(n: int) -> list[str]:
        return [
            sys.executable, "-m", "payerpolicy", "batch", str(MONTH), "--history", str(db), "--out",
            str(tmp_path / f"{n}.jsonl"), "--payers", ",".join(PAYERS), "--trace", "--chunk-size", "16", "--workers", "1",
        ]  # fmt: skip

    procs = [subprocess.Popen(command(n), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    for n in range(2):  # whatever the interleaving, each run derives what one run alone derives
        assert _rows(tmp_path / f"{n}.jsonl") == _rows(runs["with"])
    with SQLiteHistory(db) as store:
        assert store.count() == len(_visits())


def test_history_changes_nothing_for_encounters_without_a_patient(tmp_path: Path) -> None:
    visits = tmp_path / "v.jsonl"
    lines = [json.dumps({k: v for k, v in visit.items() if k not in ("patient", "episode")}) for visit in _visits()[:40]]
    visits.write_text("\n".join(lines) + "\n")
    run_batch(visits, tmp_path / "a.jsonl", PAYERS, workers=1, history=tmp_path / "h.db")
    run_batch(visits, tmp_path / "b.jsonl", PAYERS, workers=1)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    with SQLiteHistory(tmp_path / "h.db") as store:
        assert store.count() == 0


def test_a_file_that_is_not_a_history_database_stops_the_run_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (n INTEGER)")
    assert main(["batch", str(MONTH), "--history", str(other), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"payerpolicy: error: {other}: not a payerpolicy history database (another SQLite file); choose another name\n"
    )
    assert not (tmp_path / "o.jsonl.partial").exists()
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, just some text that is long enough to be a header" * 10)
    with pytest.raises(PayerPolicyError, match=r"notes\.db: not a usable payerpolicy history database"):
        SQLiteHistory(text)


def test_the_report_shows_what_history_found(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="needs payerpolicy[report]")
    pages = {}
    for name in ("with", "without"):
        page = tmp_path / f"{name}.html"
        assert main(["report", str(runs[name]), "--out", str(page)]) == 0
        pages[name] = page.read_text("utf-8")
    capsys.readouterr()
    costs = pages["with"][pages["with"].index('id="finding-costs"') :]
    costs = costs[: costs.index("</table>")]
    assert "CA_VISIT_CAP_EXCEEDED" in costs  # 4 visits' lines, expected to be denied
    for code in ("CA_VISIT_CAP_EXCEEDED", "MASSAGE_AUDIT_TRIGGER_VISITS", "KX_THRESHOLD_EXCEEDED"):
        assert code in pages["with"] and code not in pages["without"], code
