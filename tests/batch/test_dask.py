"""The same batch on a Dask LocalCluster with two worker processes: same rows, nothing lost."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.bag as db
import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.batch.dask import evaluate_bag, evaluate_dataframe
from payerpolicy.batch.synth import encounters
from payerpolicy.formats.x12_synth import synthetic_837p

PAYERS = ["commercial", "medicare", "bcbsnc", "aetna", "ca_wc"]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "visits.jsonl"
    with open(path, "w") as f:
        for i, data in enumerate(encounters(120, seed=5)):
            f.write("{broken\n" if i == 50 else json.dumps(data) + "\n")
    return path


@pytest.fixture(scope="module")
def local(source: Path) -> bytes:
    out = source.with_name("local.jsonl")
    run_batch(source, out, PAYERS, workers=1, chunk_size=10)
    return out.read_bytes()


def test_cluster_output_equals_single_machine(client: Client, source: Path, local: bytes, tmp_path: Path) -> None:
    out = tmp_path / "dask.jsonl"
    result = run_batch(source, out, PAYERS, scheduler=client, chunk_size=10)
    assert result.counts.read == 120 and result.counts.invalid == 1 and result.counts.reconciled
    assert out.read_bytes() == local
    # each worker process built its engine once, whatever the number of chunks it ran
    built = client.run(lambda: __import__("payerpolicy.batch", fromlist=["x"]).process_engine.cache_info().misses)
    assert set(built.values()) <= {0, 1}


def test_scheduler_address_from_the_cli_path(client: Client, source: Path, local: bytes, tmp_path: Path) -> None:
    out = tmp_path / "addr.jsonl"
    run_batch(source, out, PAYERS, scheduler=client.scheduler.address, chunk_size=10)
    assert out.read_bytes() == local


def test_a_worker_killed_mid_run_loses_nothing(client: Client, source: Path, local: bytes, tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl"
    killed: list[str] = []

    def kill_one(result: Any) -> None:
        if not killed:
            worker = sorted(client.scheduler_info()["workers"])[0]
            pid = client.run(os.getpid, workers=[worker])[worker]
            killed.append(worker)
            os.kill(pid, signal.SIGKILL)  # the worker process dies with its tasks; its nanny starts a new one

    result = run_batch(source, out, PAYERS, scheduler=client, chunk_size=5, on_chunk=kill_one)
    assert killed
    assert result.counts.reconciled and result.counts.read == 120
    assert out.read_bytes() == local
    client.wait_for_workers(2, timeout=60)


def test_bag_api(client: Client, source: Path, local: bytes) -> None:
    expected = [r for r in read_rows(source.with_name("local.jsonl")) if r["payer"] == "medicare" or r["error"]]
    bag = db.read_text(str(source), blocksize=None).repartition(npartitions=3)
    rows = evaluate_bag(bag, ["medicare"]).compute()
    assert [(r["encounter"], r["outcome"]) for r in rows] == [(r["encounter"], r["outcome"]) for r in expected]
    # records are numbered across the whole bag, as in the batch output (not from 0 in each partition)
    assert [r["record"] for r in rows] == [r["record"] for r in expected]
    assert [r["error"]["field"] for r in rows if r["error"]] == [""]


def test_dataframe_api(client: Client, source: Path) -> None:
    lines = [line for line in source.read_text().splitlines() if line.startswith("{\"")][:30]
    frame = dd.from_pandas(pd.DataFrame({"encounter": lines}), npartitions=4)
    table = evaluate_dataframe(frame, ["aetna", "ca_wc"]).compute()
    assert len(table) == 60
    assert list(table.columns) == ["record", "source", "encounter", "payer", "outcome", "error"]
    assert table["error"].isna().all()
    first = json.loads(table.iloc[0]["outcome"])
    assert first["payer"]["id"] == "aetna" and first["encounter"] == json.loads(lines[0])["id"]
    assert list(table["record"]) == [n for n in range(30) for _ in ("aetna", "ca_wc")]


def test_dataframe_divisions_are_true_and_loc_selects_the_right_encounters(client: Client, source: Path) -> None:
    lines = [line for line in source.read_text().splitlines() if line.startswith("{\"")][:40]
    pdf = pd.DataFrame({"encounter": lines}, index=pd.Index(range(1000, 1040), name="visit"))
    frame = dd.from_pandas(pdf, npartitions=4)
    result = evaluate_dataframe(frame, ["medicare", "aetna"])
    assert result.divisions == frame.divisions and result.known_divisions
    # .loc uses the divisions to pick partitions: wrong divisions silently returned the wrong rows
    picked = result.loc[1017:1022].compute()
    assert sorted(set(picked.index)) == list(range(1017, 1023))
    ids = [json.loads(line)["id"] for line in lines[17:23]]
    assert list(picked["encounter"]) == [i for i in ids for _ in ("medicare", "aetna")]
    assert list(picked["record"]) == [n for n in range(17, 23) for _ in ("medicare", "aetna")]
    # every partition's records are global: none repeats across partitions
    whole = result.compute()
    assert sorted(set(whole["record"])) == list(range(40)) and len(whole) == 80


def test_claim_history_on_the_cluster_gives_the_rows_of_one_machine(client: Client, tmp_path: Path) -> None:
    # the parent derives the counters and records the visits; the workers only evaluate
    month = Path(__file__).resolve().parents[2] / "examples" / "history_month.jsonl"
    run_batch(month, tmp_path / "local.jsonl", ["ca_wc", "medicare"], workers=1, chunk_size=40, history=tmp_path / "a.db")
    run_batch(month, tmp_path / "dask.jsonl", ["ca_wc", "medicare"], scheduler=client, chunk_size=40, history=tmp_path / "b.db")
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    capped = [r["encounter"] for r in read_rows(tmp_path / "dask.jsonl") if r["payer"] == "ca_wc"
              and any(f["code"] == "CA_VISIT_CAP_EXCEEDED" for f in r["outcome"]["findings"])]  # fmt: skip
    assert sorted(capped) == ["P-01-V25", "P-01-V26", "P-02-V25", "P-02-V26"]


# ------------------------------------------------------------------------------------------------
# Workers read their own slices and write their own parts (OUT.partial on shared storage)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 90 records as JSON Lines (with blank lines between) and as Parquet in row groups of 17."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = tmp_path_factory.mktemp("slices")
    texts = ["{broken" if i == 31 else json.dumps(data) for i, data in enumerate(encounters(90, seed=11))]
    jsonl = where / "visits.jsonl"
    with open(jsonl, "w") as f:
        for i, text in enumerate(texts):
            f.write(text + "\n" + ("\n   \n" if i % 13 == 4 else ""))  # after records 4, 17, 30: line 38 is record 31
    parquet = where / "visits.parquet"
    pq.write_table(pa.table({"encounter": texts}), parquet, row_group_size=17)
    return {"jsonl": jsonl, "parquet": parquet}


def _driver_must_not_read_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every record reader and the evaluation fail in this (the driver's) process only."""
    import payerpolicy.batch.records as records
    import payerpolicy.batch.runner as runner

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the driver read or evaluated records")

    for name in ("_iter_jsonl", "_iter_parquet", "iter_records", "iter_chunks"):
        monkeypatch.setattr(records, name, refuse)
    monkeypatch.setattr(runner, "iter_chunks", refuse)
    monkeypatch.setattr(runner, "evaluate_chunk", refuse)


@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_workers_read_their_slices_and_write_their_parts(
    client: Client, inputs: dict[str, Path], kind: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = inputs[kind]
    local = run_batch(src, tmp_path / f"local.{fmt}", PAYERS, workers=1, chunk_size=8)
    assert local.counts.read == 90 and local.counts.invalid == 1
    _driver_must_not_read_records(monkeypatch)
    received: list[Any] = []
    result = run_batch(src, tmp_path / f"dask.{fmt}", PAYERS, scheduler=client, chunk_size=8, on_chunk=lambda r: received.append(r.data))
    assert (tmp_path / f"dask.{fmt}").read_bytes() == (tmp_path / f"local.{fmt}").read_bytes()
    assert result.counts == local.counts and result.stats == local.stats
    assert len(received) == 12 and received == [None] * 12  # the driver got counts back, never rows
    rows = list(read_rows(tmp_path / f"dask.{fmt}"))
    broken = [r for r in rows if r["error"]]
    assert [(r["record"], r["source"]) for r in broken] == [
        (31, "visits.jsonl:38" if kind == "jsonl" else "visits.parquet:row 31")
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("resume_on", ["cluster", "one machine"])
def test_resume_after_a_crash_on_the_cluster_path(
    client: Client, inputs: dict[str, Path], tmp_path: Path, resume_on: str, fmt: str
) -> None:
    src = inputs["jsonl"]
    run_batch(src, tmp_path / f"local.{fmt}", PAYERS, workers=1, chunk_size=7)
    out = tmp_path / f"out.{fmt}"
    seen: list[int] = []

    def crash(result: Any) -> None:
        seen.append(result.first)
        if len(seen) == 4:
            raise KeyboardInterrupt  # the driver stops after journalling four parts

    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, PAYERS, scheduler=client, chunk_size=7, on_chunk=crash)
    work = tmp_path / f"out.{fmt}.partial"
    journal = [json.loads(line) for line in (work / "parts.jsonl").read_text().splitlines()]
    assert [(e["file"][:11], e["first"], e["records"]) for e in journal] == [(f"part-{i:06d}", 7 * i, 7) for i in range(4)]
    assert all((work / e["file"]).stat().st_size == e["bytes"] for e in journal)
    # a worker that died mid-part leaves a temporary file; a part renamed but never journalled is redone
    suffix = "jsonl" if fmt == "jsonl" else "arrow"  # Parquet output's parts are Arrow IPC files
    token = journal[0]["file"][11:].removesuffix(f".{suffix}")
    (work / f"part-000004{token}.{suffix}.0123abcd.tmp").write_text('{"record":28,"half')
    (work / f"part-000005{token}.{suffix}").write_text("not journalled\n")
    where: dict[str, Any] = {"scheduler": client} if resume_on == "cluster" else {"workers": 1}
    result = run_batch(src, out, PAYERS, chunk_size=7, resume=True, **where)
    assert result.resumed_from == 28 and result.counts.read == 90 and result.counts.reconciled
    assert out.read_bytes() == (tmp_path / f"local.{fmt}").read_bytes()
    assert not work.exists()


def test_without_shared_storage_the_driver_reads_and_writes(
    client: Client, inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = inputs["parquet"]
    run_batch(src, tmp_path / "local.jsonl", PAYERS, workers=1, chunk_size=10)
    monkeypatch.setenv("PAYERPOLICY_DASK_SHARED", "0")
    received: list[Any] = []
    run_batch(src, tmp_path / "dask.jsonl", PAYERS, scheduler=client, chunk_size=10, on_chunk=lambda r: received.append(r.data))
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert len(received) == 9 and all(isinstance(data, bytes) and data for data in received)


def test_a_directory_on_the_cluster_path(client: Client, inputs: dict[str, Path], tmp_path: Path) -> None:
    # the driver lists the file names; the workers read the files and write the parts
    folder = tmp_path / "visits"
    (folder / "b").mkdir(parents=True)
    for i, line in enumerate(inputs["jsonl"].read_text().split("\n")[:30]):
        if line.strip():
            (folder / ("b" if i % 2 else ".") / f"v{i:02d}.json").write_text(line)
    run_batch(folder, tmp_path / "local.parquet", PAYERS, workers=1, chunk_size=4)
    received: list[Any] = []
    run_batch(folder, tmp_path / "dask.parquet", PAYERS, scheduler=client, chunk_size=4, on_chunk=lambda r: received.append(r.data))
    assert (tmp_path / "dask.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert received and set(received) == {None}


def test_an_x12_file_on_the_cluster_path(client: Client, tmp_path: Path) -> None:
    # the driver reads the 837P's claims (one interchange); the workers evaluate them and write the parts
    src = tmp_path / "claims.x12"
    src.write_bytes(synthetic_837p(60, seed=3))
    run_batch(src, tmp_path / "local.jsonl", PAYERS, workers=1, chunk_size=16)
    received: list[Any] = []
    result = run_batch(src, tmp_path / "dask.jsonl", PAYERS, scheduler=client, chunk_size=16, on_chunk=lambda r: received.append(r.data))
    assert result.counts.read == 60 and result.counts.reconciled
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert received == [None] * 4
