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
