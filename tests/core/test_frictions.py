"""What a new user ran into (issue 13), each pinned so it cannot come back.

Batch runs that fail before their first part, messages naming the right thing, modules that answer
``--help``, files made with the user's umask, X12 options implying the format.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from payerpolicy import PayerPolicyError
from payerpolicy.batch import run_batch
from payerpolicy.batch.synth import encounters
from payerpolicy.ncci import load_mue, load_ptp
from payerpolicy.ncci.importer import import_cms_files
from payerpolicy.ncci.synth import write_synthetic_cms_files


def _jsonl(path: Path, count: int = 5) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in encounters(count, seed=3)), encoding="utf-8")
    return path


def test_unreachable_scheduler_leaves_nothing_and_the_rerun_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"

    def unreachable(scheduler: object) -> tuple[object, bool]:
        # what payerpolicy.batch.dask._client raises once distributed gives up (20 s on a real address)
        raise PayerPolicyError(f"cannot reach the Dask scheduler at {scheduler}: Timed out trying to connect")

    monkeypatch.setattr("payerpolicy.batch.dask._client", unreachable)
    with pytest.raises(PayerPolicyError, match=r"^cannot reach the Dask scheduler at tcp://10\.0\.0\.1:8786"):
        run_batch(source, out, ["commercial"], scheduler="tcp://10.0.0.1:8786")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    monkeypatch.undo()
    result = run_batch(source, out, ["commercial"], workers=1)  # no --resume needed, nothing refused
    assert result.counts.read == 5 and result.counts.reconciled
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_run_stopped_after_a_part_still_keeps_it_for_resume(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out.jsonl"

    def stop(result: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(source, out, ["commercial"], workers=1, chunk_size=2, on_chunk=stop)
    assert sorted(p.name for p in (tmp_path / "out.jsonl.partial").iterdir()) == ["part-000000.jsonl", "parts.jsonl", "state.json"]
    assert run_batch(source, out, ["commercial"], workers=1, chunk_size=2, resume=True).resumed_from == 2


def test_writing_parquet_without_pyarrow_says_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(PayerPolicyError) as info:
        run_batch(source, tmp_path / "out.parquet", ["commercial"], workers=1)
    assert str(info.value) == (
        f"{tmp_path / 'out.parquet'}: writing Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_reading_parquet_without_pyarrow_says_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.parquet"
    run_batch(_jsonl(tmp_path / "in.jsonl"), tmp_path / "made.parquet", ["commercial"], workers=1)
    # any Parquet file will do: the reader stops at the missing library before it looks inside
    os.replace(tmp_path / "made.parquet", source)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(PayerPolicyError) as info:
        run_batch(source, tmp_path / "out.jsonl", ["commercial"], workers=1)
    assert str(info.value) == f"{source}: reading Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"


@pytest.mark.parametrize("module", ["payerpolicy.ncci_synth", "payerpolicy.ncci.synth"])
def test_ncci_synth_module_prints_help(module: str) -> None:
    run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: python -m payerpolicy.ncci.synth [-h] --out DIR")
    assert "--ptp-rows" in run.stdout and "--mue-rows" in run.stdout and "--seed" in run.stdout


def test_ncci_synth_module_writes_files_the_importer_reads(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "payerpolicy.ncci_synth", "--out", str(tmp_path / "cms"), "--ptp-rows", "40", "--mue-rows", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    *ptp, mue = [Path(line) for line in run.stdout.splitlines()]
    assert [p.name for p in ptp] == [f"ccipra-v999r0-f{n}.txt" for n in range(1, 5)]
    ptp_info, mue_info = import_cms_files(ptp, mue, tmp_path / "tables")
    assert mue_info.rows == 5 and ptp_info.rows > 0


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_imported_tables_follow_the_umask(tmp_path: Path, umask: int) -> None:
    ptp, mue = write_synthetic_cms_files(tmp_path / "cms", ptp_rows=40, mue_rows=5, seed=1)
    old = os.umask(umask)
    try:
        import_cms_files(ptp, mue, tmp_path / "tables")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "tables").iterdir()}
    assert modes == dict.fromkeys(["ptp.tsv", "ptp.idx", "mue.tsv"], 0o666 & ~umask)
    load_ptp(str(tmp_path / "tables" / "ptp.tsv"))
    load_mue(str(tmp_path / "tables" / "mue.tsv"))
