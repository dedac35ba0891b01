"""`payerpolicy batch`: every record comes out, rows match single checks, runs resume, output is atomic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import payerpolicy
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from payerpolicy import Encounter, EncounterError, PayerPolicyError, PluginHost, hookimpl
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.batch.synth import encounters

PAYERS = ["commercial", "medicare", "aetna"]
BAD_DATE = {"id": "BAD-DATE", "date_of_service": "2024-13-01", "provider": {"type": "DC"}, "services": [{"code": "97140", "minutes": 10}]}


def write_jsonl(path: Path, items: list[Any]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for item in items:
            f.write(item if isinstance(item, str) else json.dumps(item))
            f.write("\n")
    return path


@pytest.fixture(scope="module")
def visits() -> list[dict[str, Any]]:
    return list(encounters(60, seed=11))


@pytest.fixture
def mixed_input(tmp_path: Path, visits: list[dict[str, Any]]) -> Path:
    """60 valid encounters with, in the middle, a broken JSON line, an invalid encounter and a blank line."""
    items: list[Any] = [*visits[:20], "{not json", *visits[20:40], "", BAD_DATE, *visits[40:]]
    return write_jsonl(tmp_path / "visits.jsonl", items)


def expected_row(data: dict[str, Any], payer: str) -> dict[str, Any]:
    outcome = payerpolicy.check(Encounter.from_mapping(data), payer).to_mapping()
    del outcome["trace"]
    return outcome


def test_every_record_is_an_outcome_or_an_error_row(mixed_input: Path, tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    result = run_batch(mixed_input, tmp_path / "out.jsonl", PAYERS, workers=1, chunk_size=7)
    counts = result.counts
    assert (counts.read, counts.valid, counts.invalid) == (62, 60, 2)
    assert (counts.outcomes, counts.payer_errors, counts.rows) == (180, 0, 182)
    assert counts.reconciled
    rows = list(read_rows(tmp_path / "out.jsonl"))
    assert len(rows) == 182
    errors = [r for r in rows if r["error"]]
    assert [(r["record"], r["source"], r["encounter"], r["payer"]) for r in errors] == [
        (20, "visits.jsonl:21", None, None),
        (41, "visits.jsonl:43", "BAD-DATE", None),
    ]
    # the same field-naming message the CLI gives for the same mistake
    with pytest.raises(EncounterError) as exc:
        Encounter.from_mapping(BAD_DATE)
    assert errors[1]["error"]["field"] == "date_of_service"
    assert errors[1]["error"]["message"] == exc.value.message
    assert errors[1]["error"]["text"] == f"visits.jsonl:43: {exc.value.field}: {exc.value.message}"
    assert errors[0]["error"]["text"].startswith("visits.jsonl:21: invalid JSON at column 2")
    # outcome rows: one per (record, payer), in input order, equal to a single check
    good = [r for r in rows if r["outcome"]]
    assert [(r["encounter"], r["payer"]) for r in good] == [(v["id"], p) for v in visits for p in PAYERS]
    for row in good[::17]:
        data = next(v for v in visits if v["id"] == row["encounter"])
        assert row["outcome"] == expected_row(data, row["payer"])
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_summary_adds_up_the_outcomes(mixed_input: Path, tmp_path: Path) -> None:
    result = run_batch(mixed_input, tmp_path / "out.jsonl", PAYERS, workers=1)
    rows = [r for r in read_rows(tmp_path / "out.jsonl") if r["outcome"]]
    for payer in PAYERS:
        lines = [line for r in rows if r["payer"] == payer for line in r["outcome"]["lines"]]
        stats = result.stats[payer]
        assert stats.billable_units == sum(x["units"] for x in lines if x["status"] == "billable")
        assert stats.expected_denials == sum(1 for x in lines if x["status"] == "expected_denial")
        assert stats.not_billable == sum(1 for x in lines if x["status"] == "not_billable")
        codes = [f["code"] for r in rows if r["payer"] == payer for f in r["outcome"]["findings"]]
        assert sum(stats.findings.values()) == len(codes)
        assert stats.findings["DOCUMENTATION_INCOMPLETE"] == codes.count("DOCUMENTATION_INCOMPLETE")


def test_two_processes_give_the_same_file(mixed_input: Path, tmp_path: Path) -> None:
    run_batch(mixed_input, tmp_path / "one.jsonl", PAYERS, workers=1, chunk_size=5)
    run_batch(mixed_input, tmp_path / "two.jsonl", PAYERS, workers=2, chunk_size=5)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


class Stop(Exception):
    pass


def test_an_interrupted_run_resumes_without_duplicates_or_gaps(mixed_input: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    run_batch(mixed_input, full, PAYERS, workers=1, chunk_size=8)
    out = tmp_path / "out.jsonl"
    seen: list[int] = []

    def crash(result: Any) -> None:
        seen.append(result.first)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_batch(mixed_input, out, PAYERS, workers=1, chunk_size=8, on_chunk=crash)
    assert not out.exists()  # never a half-written file under the final name
    assert (tmp_path / "out.jsonl.partial" / "state.json").is_file()
    assert sorted(p.name for p in (tmp_path / "out.jsonl.partial").iterdir()) == [
        "part-000000.jsonl", "part-000001.jsonl", "part-000002.jsonl", "parts.jsonl", "state.json",
    ]  # fmt: skip
    work = tmp_path / "out.jsonl.partial"
    assert len((work / "parts.jsonl").read_text().splitlines()) == 3
    # a half-written part and a torn journal line (the process died while writing them) are discarded
    (work / "part-000003.jsonl.tmp").write_text('{"record": 24, "sou')
    (work / "part-000003.jsonl").write_text('{"record": 24, "source": "visits.jsonl:25"}\n')
    with open(work / "parts.jsonl", "a") as journal:
        journal.write('{"file":"part-000003.jsonl","first":24,"rec')
    with pytest.raises(PayerPolicyError, match="--resume"):
        run_batch(mixed_input, out, PAYERS, workers=1, chunk_size=8)
    result = run_batch(mixed_input, out, PAYERS, workers=1, chunk_size=8, resume=True)
    assert result.resumed_from == 24
    assert result.counts.read == 62 and result.counts.reconciled
    assert out.read_bytes() == full.read_bytes()
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_resume_refuses_other_settings(mixed_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    def crash(result: Any) -> None:
        raise Stop

    with pytest.raises(Stop):
        run_batch(mixed_input, out, PAYERS, workers=1, chunk_size=8, on_chunk=crash)
    with pytest.raises(PayerPolicyError, match="other settings"):
        run_batch(mixed_input, out, ["medicare"], workers=1, chunk_size=8, resume=True)
    with pytest.raises(PayerPolicyError, match="nothing to resume"):
        run_batch(mixed_input, tmp_path / "other.jsonl", PAYERS, workers=1, resume=True)


def test_directory_of_json_and_toml(tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    folder = tmp_path / "in"
    (folder / "b").mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(visits[0]))
    (folder / "b" / "c.toml").write_text('id = "T-1"\ndate_of_service = 2025-03-12\nprovider = {type = "PT"}\nservices = [{code = "97110", minutes = 23}]\n')
    (folder / "b" / "d.toml").write_text("id = \n")
    (folder / "notes.txt").write_text("not an encounter")
    result = run_batch(folder, tmp_path / "out.jsonl", ["medicare"], workers=1)
    assert (result.counts.read, result.counts.invalid) == (3, 1)
    rows = list(read_rows(tmp_path / "out.jsonl"))
    assert [(r["source"], r["payer"]) for r in rows] == [("a.json", "medicare"), ("b/c.toml", "medicare"), ("b/d.toml", None)]
    assert [(x["code"], x["units"], x["modifiers"]) for x in rows[1]["outcome"]["lines"]] == [("97110", 2, ["GP"])]
    assert "invalid TOML" in rows[2]["error"]["text"]


def test_parquet_in_and_out_match_json_lines(tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "v.jsonl", visits[:25])
    pq.write_table(pa.table({"encounter": [json.dumps(v) for v in visits[:25]]}), tmp_path / "v.parquet")
    run_batch(src, tmp_path / "a.jsonl", PAYERS, workers=1)
    run_batch(tmp_path / "v.parquet", tmp_path / "b.parquet", PAYERS, workers=2, chunk_size=10)
    a = list(read_rows(tmp_path / "a.jsonl"))
    b = list(read_rows(tmp_path / "b.parquet"))
    assert [r["outcome"] for r in a] == [r["outcome"] for r in b]
    table = pq.read_table(tmp_path / "b.parquet")
    assert table.num_rows == 75
    assert table.column("billable_units").to_pylist() == [
        sum(x["units"] for x in r["outcome"]["lines"] if x["status"] == "billable") for r in a
    ]


def test_parquet_lines_and_findings_are_typed_columns_equal_to_the_outcome_json(tmp_path: Path, mixed_input: Path) -> None:
    run_batch(mixed_input, tmp_path / "out.parquet", PAYERS, workers=1, chunk_size=16)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("lines").type.value_type.field("units").type == pa.int32()
    assert table.schema.field("findings").type.value_type.field("code").type == pa.string()
    for row in table.to_pylist():
        if row["outcome"] is None:  # an error row has no lines and no findings
            assert row["lines"] is None and row["findings"] is None and row["error"]
            continue
        outcome = json.loads(row["outcome"])
        assert [(x["code"], x["units"], x["modifiers"], x["status"], x["minutes"], x["diagnosis_pointers"]) for x in row["lines"]] == [
            (x["code"], x["units"], x["modifiers"], x["status"], x.get("minutes"), x.get("diagnosis_pointers", [])) for x in outcome["lines"]
        ]
        assert [(f["code"], f["severity"], f["rule"], f["source"], f["line"]) for f in row["findings"]] == [
            (f["code"], f["severity"], f["rule"], f["source"], f["line"]) for f in outcome["findings"]
        ]
    # the repeated strings are stored dictionary-encoded
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert any("DICTIONARY" in e for e in encodings["findings.list.element.code"])
    assert any("DICTIONARY" in e for e in encodings["payer"])


def test_duckdb_reads_the_typed_columns_as_documented(tmp_path: Path, mixed_input: Path) -> None:
    import duckdb  # in the test extra: this test never skips
    out = tmp_path / "results.parquet"
    run_batch(mixed_input, out, PAYERS, workers=1)
    rows = list(read_rows(out))
    # the two example queries of docs/batch.md, "Parquet columns"
    units = dict(
        duckdb.sql(
            f"""SELECT payer, sum(l.units) AS billable_units
                FROM (SELECT payer, unnest(lines) AS l FROM '{out}')
                WHERE l.status = 'billable' GROUP BY payer"""
        ).fetchall()
    )
    denials = {
        (payer, code): n
        for payer, code, n in duckdb.sql(
            f"""SELECT payer, f.code, count(*) AS n
                FROM (SELECT payer, unnest(findings) AS f FROM '{out}')
                WHERE f.severity IN ('error', 'expected_denial') GROUP BY payer, f.code"""
        ).fetchall()
    }
    expected_units: dict[str, int] = {}
    expected_denials: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["outcome"] is None:
            continue
        for x in r["outcome"]["lines"]:
            if x["status"] == "billable":
                expected_units[r["payer"]] = expected_units.get(r["payer"], 0) + x["units"]
        for f in r["outcome"]["findings"]:
            if f["severity"] in ("error", "expected_denial"):
                key = (r["payer"], f["code"])
                expected_denials[key] = expected_denials.get(key, 0) + 1
    assert units == expected_units and sum(units.values()) > 0
    assert denials == expected_denials and denials


def test_parquet_with_encounter_columns(tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    rows = [dict(v) for v in visits[:10]]
    pq.write_table(pa.Table.from_struct_array(pa.array(rows)), tmp_path / "cols.parquet")  # schema from every row
    run_batch(tmp_path / "cols.parquet", tmp_path / "out.jsonl", ["commercial"], workers=1)
    out = list(read_rows(tmp_path / "out.jsonl"))
    assert [r["error"] for r in out] == [None] * 10
    assert [r["outcome"] for r in out] == [expected_row(v, "commercial") for v in visits[:10]]


class RaisesOnOne:
    """A payer plugin hook that raises for one encounter."""

    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, context: Any) -> list[Any]:
        if context.encounter.id == "SYN-00000005":
            raise RuntimeError("boom on record 5")
        return []


def test_a_plugin_raising_on_one_record_loses_nothing(tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "v.jsonl", visits[:12])
    engine = payerpolicy.Engine(PluginHost([RaisesOnOne()]))
    result = run_batch(src, tmp_path / "lenient.jsonl", ["medicare"], engine=engine)
    rows = list(read_rows(tmp_path / "lenient.jsonl"))
    assert len(rows) == 12 and result.counts.reconciled
    assert [f["code"] for f in rows[5]["outcome"]["findings"]].count("PLUGIN_FAILED") == 1
    strict = payerpolicy.Engine(PluginHost([RaisesOnOne()], strict=True))
    result = run_batch(src, tmp_path / "strict.jsonl", ["medicare", "aetna"], engine=strict)
    rows = list(read_rows(tmp_path / "strict.jsonl"))
    assert (result.counts.outcomes, result.counts.payer_errors, result.counts.reconciled) == (22, 2, True)
    failed = [r for r in rows if r["error"]]
    assert [(r["record"], r["payer"]) for r in failed] == [(5, "medicare"), (5, "aetna")]
    assert "boom on record 5" in failed[0]["error"]["text"]


class OwnEngine(payerpolicy.Engine):
    """An engine of the caller's own whose evaluate predates ``trace`` (and ``stop``, ``same_day``)."""

    def evaluate(self, encounter: Any, payer_id: str) -> Any:  # type: ignore[override]
        return super().evaluate(encounter, payer_id)


def test_an_engine_of_ones_own_without_the_trace_argument(tmp_path: Path, visits: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "v.jsonl", visits[:6])
    run_batch(src, tmp_path / "own.jsonl", ["commercial"], engine=OwnEngine())
    run_batch(src, tmp_path / "ours.jsonl", ["commercial"], workers=1)
    own, ours = list(read_rows(tmp_path / "own.jsonl")), list(read_rows(tmp_path / "ours.jsonl"))
    assert [r["error"] for r in own] == [None] * 6
    assert [r["outcome"] for r in own] == [r["outcome"] for r in ours]


def test_cli_batch_summary_and_bad_input(mixed_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "payerpolicy", "batch", str(mixed_input), "--out", str(out), "--payers", "medicare,aetna", "--workers", "1", "--summary"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read 62 records: 60 valid, 2 invalid; 122 rows: 120 outcomes, 2 errors" in proc.stderr
    assert "reconciled" in proc.stderr
    assert "\r" not in proc.stderr  # no progress bar when standard error is not a terminal
    lines = proc.stdout.splitlines()
    assert lines[0] == "summary — 62 encounters × 2 payers"
    assert lines[1].split() == ["medicare", "aetna"]
    for args, message in [
        (["missing.jsonl", "--out", str(out)], "missing.jsonl: no such file or directory"),
        ([str(mixed_input), "--out", str(tmp_path / "o.csv")], "--out must end in .jsonl, .ndjson or .parquet"),
        ([str(mixed_input), "--out", str(out), "--payers", "nope"], "unknown payer 'nope'"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "payerpolicy", "batch", *args], capture_output=True, text=True)
        assert proc.returncode == 2
        assert message in proc.stderr and "Traceback" not in proc.stderr
