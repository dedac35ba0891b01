"""Claim history on a real PostgreSQL server: the same answers as the SQLite file, concurrent writers."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from payerpolicy.batch import run_batch
from payerpolicy.evaluation.errors import PayerPolicyError
from payerpolicy.history import HistoryStore, Visit, VisitLine, open_history

ROOT = Path(__file__).resolve().parents[2]
MONTH = ROOT / "examples" / "history_month.jsonl"
PAYERS = ["commercial", "ca_wc", "medicare"]


def test_the_month_gives_the_same_rows_on_postgres_as_on_sqlite(postgres_url: str, tmp_path: Path) -> None:
    run_batch(MONTH, tmp_path / "sqlite.jsonl", PAYERS, workers=1, chunk_size=64, history=tmp_path / "h.db", trace=True)
    run_batch(MONTH, tmp_path / "pg.jsonl", PAYERS, workers=1, chunk_size=64, history=postgres_url, trace=True)
    assert (tmp_path / "pg.jsonl").read_bytes() == (tmp_path / "sqlite.jsonl").read_bytes()
    run_batch(MONTH, tmp_path / "pg2.jsonl", PAYERS, workers=1, chunk_size=50, history=postgres_url, trace=True)
    assert (tmp_path / "pg2.jsonl").read_bytes() == (tmp_path / "sqlite.jsonl").read_bytes()
    store = open_history(postgres_url)
    assert isinstance(store, HistoryStore)
    visits = store.visits("P-01")
    assert len(visits) == 26 and max(v.visit_number for v in visits) == 26
    assert store.count() == len(MONTH.read_text().splitlines())  # type: ignore[attr-defined]
    assert store.schema_version == 2  # type: ignore[attr-defined]
    store.close()


def test_a_visit_round_trips_and_is_replaced_by_id(postgres_url: str) -> None:
    visit = Visit("E1", "p", "ep", dt.date(2025, 3, 3), "chiropractic", True, 3, 2, Decimal("100.50"), Decimal("0"),
                  Decimal("12.50"), Decimal("0"), dt.date(2025, 3, 1), dt.date(2025, 2, 1))  # fmt: skip
    with open_history(postgres_url) as store:  # type: ignore[attr-defined]
        store.record([visit])
        store.record([visit])
        assert store.visits("p") == [visit]
        later = Visit("E1", "p", "ep", dt.date(2025, 3, 4), "chiropractic", False, 4, 2, Decimal("100.50"), Decimal("0"),
                      Decimal("0"), Decimal("0"))  # fmt: skip
        store.record([later])
        assert store.visits("p") == [later]
        # schema version 2: the rendering NPI and each payer's claim lines, replaced per payer
        lines = (VisitLine("medicare", "97110", 4, ("GP",), ("lumbar",)),)
        billed = attrs.evolve(later, npi="1234567893").with_claim("medicare", lines).with_claim("bcbsnc", ())
        store.record([billed])
        store.record([attrs.evolve(later, npi="1234567893").with_claim("bcbsnc", lines[:0])])
        (visit,) = store.visits("p")
        assert visit == billed
        assert visit.lines_for("medicare") == lines and visit.lines_for("bcbsnc") == () and visit.lines_for("aetna") is None


def _writer(url: str, start: int) -> None:
    store = open_history(url)
    for n in range(start, start + 200, 5):
        visits = [
            Visit(f"E{i:04d}", f"p{i % 7}", "", dt.date(2025, 3, 1 + i % 28), "chiropractic", False, 1, 0,
                  Decimal(0), Decimal(0), Decimal(0), Decimal(0))
            for i in range(n + 4, n - 1, -1)
        ]  # fmt: skip
        store.record(visits)
    store.close()


def test_two_processes_record_into_one_database_at_once(postgres_url: str) -> None:
    open_history(postgres_url).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(postgres_url, start)) for start in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    store = open_history(postgres_url)
    assert sorted(v.encounter for n in range(7) for v in store.visits(f"p{n}")) == [f"E{i:04d}" for i in range(300)]
    store.close()


def test_the_cli_takes_a_url_and_never_shows_its_password(postgres_server: str, tmp_path: Path) -> None:
    url = postgres_server.replace("postgres@", "postgres:s3cret@").replace("/postgres?", "/nosuchdb?")
    with pytest.raises(PayerPolicyError) as err:
        open_history(url)
    assert "s3cret" not in str(err.value) and "postgres:***@" in str(err.value)
    out = tmp_path / "o.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "payerpolicy", "batch", str(MONTH), "--history", url, "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "s3cret" not in done.stderr
    assert done.stderr.startswith("payerpolicy: error: postgresql://postgres:***@/nosuchdb?")
    assert json.dumps(done.stderr).count("\\n") == 1  # one line
