"""payerpolicy.check(..., history=store): derived counters, the given value winning, record or what-if, the file."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import payerpolicy
import pytest
from payerpolicy import EncounterError, PayerPolicyError
from payerpolicy.history import SCHEMA_VERSION, HistoryStore, SQLiteHistory, Visit


def _dc(day: int, ident: str | None = None, **care: Any) -> dict[str, Any]:
    encounter: dict[str, Any] = {
        "patient": "p-7f3a",
        "episode": "inj-1",
        "date_of_service": f"2025-03-{day:02d}",
        "provider": {"type": "DC"},
        "diagnoses": ["M99.03", "M54.50"],
        "procedures": [{"code": "98940", "regions": ["lumbar"], "diagnosis_pointers": [1]}],
        "services": [{"technique": "petrissage", "intent": ["spasm"], "minutes": 15, "regions": ["lower_extremity"],
                      "diagnosis_pointers": [2], "necessity": ["tight_muscles_shortening_or_spasticity"]}],
    }  # fmt: skip
    if ident is not None:
        encounter["id"] = ident
    if care:
        encounter["care"] = care
    return encounter


def _history(outcome: payerpolicy.Outcome) -> dict[str, tuple[Any, Any, str]]:
    return {t.field: (t.before, t.after, t.reason) for t in outcome.trace if t.rule == "HISTORY"}


def test_patient_and_episode_are_read_written_and_validated() -> None:
    enc = payerpolicy.Encounter.from_mapping(_dc(3, "V1"))
    assert (enc.patient, enc.episode) == ("p-7f3a", "inj-1")
    assert enc.to_mapping()["patient"] == "p-7f3a" and enc.to_mapping()["episode"] == "inj-1"
    data = _dc(3)
    del data["patient"]
    with pytest.raises(EncounterError) as err:
        payerpolicy.Encounter.from_mapping(data)
    assert (err.value.field, err.value.message) == ("patient", "required when episode is given (an episode belongs to a patient)")
    with pytest.raises(EncounterError) as err:
        payerpolicy.Encounter.from_mapping({**_dc(3), "patient": 42})
    assert (err.value.field, err.value.message) == ("patient", "expected a non-empty string, found 42")


def test_visits_are_counted_and_recorded_once_by_id(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        for day in (3, 4, 5, 6):
            outcome = payerpolicy.check(_dc(day, f"V{day}", injury_date="2025-02-01"), "ca_wc", history=store, record=True)
        trace = _history(outcome)
        assert trace["care.visit_number"][:2] == (None, 4)
        assert trace["care.prior_massage_visits"][:2] == (None, 3)
        assert trace["care.episode_start"][:2] == (None, "2025-03-03")
        assert [f.code for f in outcome.findings if f.code.startswith("MASSAGE")] == ["MASSAGE_AUDIT_TRIGGER_VISITS"]
        # the same visit again: recorded once, and counted as it was
        again = payerpolicy.check(_dc(6, "V6", injury_date="2025-02-01"), "ca_wc", history=store, record=True)
        assert again == outcome
        assert store.count() == 4
        # a visit dated before the others counts only what came before it
        early = payerpolicy.check(_dc(1, "V0"), "commercial", history=store)
        assert _history(early)["care.visit_number"][:2] == (None, 1)


def test_a_given_value_wins_and_carries_forward(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        first = payerpolicy.check(_dc(3, "V1", visit_number=24, injury_date="2025-02-01"), "ca_wc", history=store, record=True)
        assert _history(first)["care.visit_number"] == (24, 24, "given in the encounter (claim history would give 1)")
        assert "CA_VISIT_CAP_EXCEEDED" not in [f.code for f in first.findings]
        second = payerpolicy.check(_dc(4, "V2"), "ca_wc", history=store, record=True)
        before, after, reason = _history(second)["care.visit_number"]
        assert (before, after) == (None, 25)
        assert reason == "from claim history: the last chiropractic visit of this episode recorded before this one (V1, 2025-03-03) was visit 24"
        assert _history(second)["care.injury_date"][:2] == (None, "2025-02-01")  # carried from V1
        assert {f.code for f in second.findings} >= {"CA_VISIT_CAP_EXCEEDED"}
        assert {line.status for line in second.lines} == {"expected_denial"}


def test_a_what_if_never_writes(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_dc(3, "V1"), "commercial", history=store)
        payerpolicy.check(_dc(4, "V2"), "commercial", history=store, record=False)
        assert store.count() == 0


def test_recording_needs_an_id_a_patient_and_a_store(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        with pytest.raises(PayerPolicyError, match=r"^id: required to record the visit in claim history$"):
            payerpolicy.check(_dc(3), "commercial", history=store, record=True)
        no_patient = {k: v for k, v in _dc(3, "V1").items() if k not in ("patient", "episode")}
        with pytest.raises(PayerPolicyError, match=r"^patient: required to record"):
            payerpolicy.check(no_patient, "commercial", history=store, record=True)
        # without record, an encounter without id is counted from history and says it is not recorded
        outcome = payerpolicy.check(_dc(3), "commercial", history=store)
        assert _history(outcome)["id"][2].startswith("the encounter has no id")
        assert store.count() == 0
    with pytest.raises(PayerPolicyError, match="needs a history store"):
        payerpolicy.check(_dc(3, "V1"), "commercial", record=True)


def test_without_history_nothing_changes() -> None:
    enc = _dc(3, "V1")
    assert payerpolicy.check(enc, "ca_wc") == payerpolicy.default_engine().check(payerpolicy.Encounter.from_mapping(enc), "ca_wc")


def _pt(day: int, ident: str, charge: str, *, provider: str = "PT", **care: Any) -> dict[str, Any]:
    return {
        "id": ident, "patient": "p-9", "date_of_service": f"2025-03-{day:02d}",
        "provider": {"type": provider}, "care": care or None,
        "services": [{"code": "97110", "minutes": 30, "billed": {"units": 2, "charge": charge}}],
    }  # fmt: skip


def test_year_to_date_charges_count_the_bucket_and_the_year(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_pt(3, "A", "1200.00"), "medicare", history=store, record=True)
        payerpolicy.check(_pt(4, "B", "300.00", provider="OT"), "medicare", history=store, record=True)
        payerpolicy.check(_pt(5, "C", "1200.00"), "medicare", history=store, record=True)
        pt = payerpolicy.check(_pt(6, "D", "5.00"), "medicare", history=store)
        assert _history(pt)["care.ytd_therapy_charges"][:2] == (None, "2400.00")  # the OT visit is another bucket
        assert "KX" not in pt.lines[0].modifiers  # $2,400 + $5 stays below the 2025 threshold of $2,410
        ot = payerpolicy.check(_pt(6, "E", "100.00", provider="OT"), "medicare", history=store)
        assert _history(ot)["care.ytd_therapy_charges"][:2] == (None, "300.00")
        payerpolicy.check(_pt(6, "D", "5.00"), "medicare", history=store, record=True)
        # $2,405 before + this visit's $100 crosses the threshold: KX on the line that crosses it
        crossed = payerpolicy.check(_pt(7, "F", "100.00"), "medicare", history=store)
        assert _history(crossed)["care.ytd_therapy_charges"][:2] == (None, "2405.00")
        assert crossed.lines[0].modifiers == ("GP", "KX")
        given = payerpolicy.check(_pt(7, "F", "100.00", ytd_therapy_charges="10"), "medicare", history=store)
        assert _history(given)["care.ytd_therapy_charges"] == ("10", "10", "given in the encounter (claim history would give $2,405.00)")
        next_year = {**_pt(7, "G", "100.00"), "date_of_service": "2026-01-05"}
        assert _history(payerpolicy.check(next_year, "medicare", history=store))["care.ytd_therapy_charges"][1] == "0"


def test_the_sqlite_store_is_a_history_store_with_a_versioned_schema(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with SQLiteHistory(path) as store:
        assert isinstance(store, HistoryStore)
        assert store.schema_version == SCHEMA_VERSION == 2
        visit = Visit("E1", "p", "", dt.date(2025, 3, 3), "chiropractic", True, 1, 0, Decimal("0"), Decimal("0"),
                      Decimal("12.50"), Decimal("0"), dt.date(2025, 3, 3), None)  # fmt: skip
        store.record([visit])
        assert store.visits("p") == [visit]
        assert store.visits("q") == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 3")
    with pytest.raises(PayerPolicyError, match="history schema version 3 is newer than this payerpolicy knows"):
        SQLiteHistory(path)


def _writer(path: str, start: int) -> None:
    store = SQLiteHistory(path)
    for n in range(start, start + 200, 5):
        visits = [
            Visit(f"E{i:04d}", f"p{i % 7}", "", dt.date(2025, 3, 1 + i % 28), "chiropractic", False, 1, 0,
                  Decimal(0), Decimal(0), Decimal(0), Decimal(0))
            for i in range(n, n + 5)
        ]  # fmt: skip
        store.record(visits)
    store.close()


def test_processes_create_and_record_into_one_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")  # a new file: the processes also race to create it and switch it to WAL
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 100, 50, 100)]  # overlapping ids
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    with SQLiteHistory(path) as store:
        assert store.count() == 300
        assert sorted(v.encounter for n in range(7) for v in store.visits(f"p{n}")) == [f"E{i:04d}" for i in range(300)]


def test_the_aetna_improvement_clock_counts_from_the_episodes_first_visit(tmp_path: Path) -> None:
    with SQLiteHistory(tmp_path / "h.db") as store:
        payerpolicy.check(_dc(3, "V1", improvement_documented=False), "aetna", history=store, record=True)
        day14 = payerpolicy.check(_dc(17, "V2", improvement_documented=False), "aetna", history=store, record=True)
        day15 = payerpolicy.check(_dc(18, "V3", improvement_documented=False), "aetna", history=store)
        alone = payerpolicy.check(_dc(18, "V3", improvement_documented=False), "aetna")
    assert "AETNA_CPB0107_NO_IMPROVEMENT_2WK" not in [f.code for f in day14.findings]
    assert _history(day15)["care.episode_start"] == (None, "2025-03-03", "from claim history: day 15 of the episode; its first recorded visit or given start")
    finding = next(f for f in day15.findings if f.code == "AETNA_CPB0107_NO_IMPROVEMENT_2WK")
    assert finding.message.startswith("day 15 of the episode (started 2025-03-03), no documented improvement after 14 days")
    assert not any(f.code.startswith("AETNA_CPB0107") for f in alone.findings)
