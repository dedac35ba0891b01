"""Parquet output has one writer in the parent: rows go into the output as parts complete, the end of
a run only closes and renames it, and a run stopped at any point resumes to the very same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from payerpolicy import PayerPolicyError
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.batch import runner as batch_runner
from payerpolicy.batch.synth import encounters
from payerpolicy.history import SQLiteHistory

PAYERS = ["commercial", "medicare", "aetna"]
MONTH = Path(__file__).resolve().parents[2] / "examples" / "history_month.jsonl"


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 synthetic encounters; record 40 is not JSON."""
    path = tmp_path_factory.mktemp("resume") / "visits.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, data in enumerate(encounters(90, seed=21)):
            f.write("{broken\n" if i == 40 else json.dumps(data) + "\n")
    return path


@pytest.fixture(scope="module")
def whole(source: Path) -> bytes:
    """The output of an uninterrupted run (chunks of 8 records)."""
    out = source.with_name("whole.parquet")
    run_batch(source, out, PAYERS, workers=1, chunk_size=8)
    return out.read_bytes()


def test_the_uninterrupted_output_has_every_row_in_record_order(whole: bytes, source: Path) -> None:
    table = pq.read_table(source.with_name("whole.parquet"))
    assert table.num_rows == 89 * 3 + 1
    assert table.column("record").to_pylist() == [r for r in range(90) for _ in (PAYERS if r != 40 else [None])]
    assert pq.ParquetFile(source.with_name("whole.parquet")).metadata.num_row_groups == 12  # one per chunk, as before
    assert pq.ParquetFile(source.with_name("whole.parquet")).metadata.row_group(0).column(0).compression == "ZSTD"


def test_a_run_stopped_after_three_parts_resumes_to_the_same_file(source: Path, whole: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    seen: list[int] = []

    def crash(result: Any) -> None:
        seen.append(result.first)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_batch(source, out, PAYERS, workers=1, chunk_size=8, on_chunk=crash)
    assert not out.exists()
    work = tmp_path / "out.parquet.partial"
    assert sorted(p.name for p in work.iterdir()) == [
        "output.parquet", "part-000000.arrow", "part-000001.arrow", "part-000002.arrow", "parts.jsonl", "state.json",
    ]  # fmt: skip
    # what a process killed mid-write leaves: a half-written part, a part never journalled, a torn journal line
    (work / "part-000003.arrow.tmp").write_bytes(b"ARROW1\0\0half")
    (work / "part-000003.arrow").write_bytes((work / "part-000002.arrow").read_bytes())
    with open(work / "parts.jsonl", "a") as journal:
        journal.write('{"file":"part-000003.arrow","first":24,"rec')
    result = run_batch(source, out, PAYERS, workers=1, chunk_size=8, resume=True)
    assert result.resumed_from == 24 and result.counts.read == 90 and result.counts.reconciled
    assert out.read_bytes() == whole
    assert not work.exists()


def test_rows_in_the_output_but_not_journalled_are_written_once(
    source: Path, whole: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer has the third part's rows when the run dies before that part's journal line
    out = tmp_path / "out.parquet"
    real = batch_runner._Work._journal
    calls = 0

    def dies_on_the_third(self: Any, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Stop
        real(self, *args)

    monkeypatch.setattr(batch_runner._Work, "_journal", dies_on_the_third)
    with pytest.raises(Stop):
        run_batch(source, out, PAYERS, workers=1, chunk_size=8)
    monkeypatch.setattr(batch_runner._Work, "_journal", real)
    result = run_batch(source, out, PAYERS, workers=2, chunk_size=8, resume=True)
    assert result.resumed_from == 16
    assert out.read_bytes() == whole


def test_the_end_of_a_run_reads_no_part_back(source: Path, whole: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> Any:
        raise AssertionError(f"read {path.name} back")

    monkeypatch.setattr(batch_runner, "read_part", refuse)
    run_batch(source, tmp_path / "out.parquet", PAYERS, workers=2, chunk_size=8)
    assert (tmp_path / "out.parquet").read_bytes() == whole


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; workers die with the parent on Linux")
def test_a_killed_run_resumes_to_the_same_file(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(v) + "\n" for v in encounters(600, seed=4)), "utf-8")
    run_batch(src, tmp_path / "whole.parquet", PAYERS, workers=1, chunk_size=3)
    out = tmp_path / "out.parquet"
    journal = tmp_path / "out.parquet.partial" / "parts.jsonl"
    script = (
        "from payerpolicy.batch import run_batch\n"
        f"run_batch({str(src)!r}, {str(out)!r}, {PAYERS!r}, workers=2, chunk_size=3)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script])
    workers: list[int] = []
    try:
        for _ in range(3000):  # until some parts are journalled, then kill it wherever it is
            if journal.exists() and journal.read_bytes().count(b"\n") >= 5:
                break
            time.sleep(0.02)
        workers = _children(run.pid)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
        for _ in range(500):  # its workers die with it (and release the run's lock, which they inherited)
            if not any(_alive(pid) for pid in workers):
                break
            time.sleep(0.02)
    finally:
        if run.poll() is None:
            run.kill()
    assert not out.exists(), "the run ended before it was killed"
    assert not any(_alive(pid) for pid in workers)
    result = run_batch(src, out, PAYERS, workers=2, chunk_size=3, resume=True)
    assert result.resumed_from >= 15 and result.counts.read == 600 and result.counts.reconciled
    assert out.read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert [r["record"] for r in read_rows(out)] == [r for r in range(600) for _ in PAYERS]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class _FailsOnce:
    """A history store that records a chunk's visits and then fails, as if the run died before the journal line."""

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


def test_with_claim_history_a_resumed_parquet_run_counts_each_visit_once(tmp_path: Path) -> None:
    # the second part's rows are in the writer and its visits recorded when the run dies before its journal line
    payers = ["ca_wc", "medicare"]
    run_batch(MONTH, tmp_path / "whole.parquet", payers, workers=1, chunk_size=64, history=tmp_path / "whole.db")
    out = tmp_path / "out.parquet"
    store = SQLiteHistory(tmp_path / "h.db")
    try:
        with pytest.raises(Stop):
            run_batch(MONTH, out, payers, workers=1, chunk_size=64, history=_FailsOnce(store, 2))
        assert store.count() == 2 * 64
        result = run_batch(MONTH, out, payers, workers=1, chunk_size=64, history=_FailsOnce(store, 0), resume=True)
        assert result.resumed_from == 64
        assert out.read_bytes() == (tmp_path / "whole.parquet").read_bytes()
        assert store.count() == len(MONTH.read_text("utf-8").splitlines())
    finally:
        store.close()


def _stopped_after_three_parts(source: Path, out: Path) -> Path:
    def crash(result: Any) -> None:
        if result.first == 16:
            raise Stop

    with pytest.raises(Stop):
        run_batch(source, out, PAYERS, workers=1, chunk_size=8, on_chunk=crash)
    return out.with_name(out.name + ".partial")


def test_a_run_interrupted_by_an_earlier_version_with_parquet_parts_resumes(source: Path, whole: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    work = _stopped_after_three_parts(source, out)
    # before 0.2.0 a Parquet run's parts were Parquet files; the journal names them
    entries = [json.loads(line) for line in (work / "parts.jsonl").read_text().splitlines()]
    for entry in entries:
        arrow = work / entry["file"]
        entry["file"] = arrow.with_suffix(".parquet").name
        with pa.OSFile(str(arrow)) as f:
            pq.write_table(pa.ipc.open_file(f).read_all(), work / entry["file"], compression="zstd")
        arrow.unlink()
    (work / "parts.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    result = run_batch(source, out, PAYERS, workers=1, chunk_size=8, resume=True)
    assert result.resumed_from == 24
    assert out.read_bytes() == whole


def test_a_damaged_part_stops_the_resume_with_one_line(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    work = _stopped_after_three_parts(source, out)
    (work / "part-000001.arrow").write_bytes(b"ARROW1\0\0 not an Arrow file")
    with pytest.raises(PayerPolicyError) as info:
        run_batch(source, out, PAYERS, workers=1, chunk_size=8, resume=True)
    message = str(info.value)
    assert message.startswith(f"{work}/part-000001.arrow: cannot read this part of the interrupted run (")
    assert message.endswith(f"); delete {work} to start again") and "\n" not in message


def test_a_stray_renamed_away_while_resuming_is_no_error(
    source: Path, whole: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dask task of the stopped run may still rename its temporary file while --resume clears strays."""
    out = tmp_path / "out.parquet"
    seen: list[int] = []

    def crash(result: Any) -> None:
        seen.append(result.first)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        run_batch(source, out, PAYERS, workers=1, chunk_size=8, on_chunk=crash)
    work = tmp_path / "out.parquet.partial"
    listing = Path.iterdir

    def with_a_vanished_file(self: Path) -> Any:  # the file is listed, then renamed away before its unlink
        yield from listing(self)
        if self == work:
            yield work / "part-000009-0123456789ab.arrow.tmp"

    monkeypatch.setattr(Path, "iterdir", with_a_vanished_file)
    run_batch(source, out, PAYERS, workers=1, chunk_size=8, resume=True)
    assert out.read_bytes() == whole
