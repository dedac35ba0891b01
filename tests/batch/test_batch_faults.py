"""Batch faults: the input as output, a changed input on --resume, an output that cannot be written,
a full disk and two runs on one OUT are each one clear line (exit 2), refused before the work where
possible, with the work done so far kept for --resume."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import PayerPolicyError
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.batch import runner as batch_runner
from payerpolicy.batch.synth import encounters
from payerpolicy.cli import main

PAYERS = ["commercial"]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in encounters(12, seed=3)), "utf-8")
    return path


def test_out_equal_to_the_input_is_refused_before_any_work(src: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = src.read_bytes()
    assert main(["batch", str(src), "--out", str(src), "--workers", "1"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"payerpolicy: error: {src}: --out is the input file; the run would replace its own input, choose another name"
    assert src.read_bytes() == before
    assert not src.with_name("in.jsonl.partial").exists()


def test_out_equal_to_the_input_through_a_symlink_is_refused(src: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    with pytest.raises(PayerPolicyError, match="--out is the input file"):
        run_batch(src, link, PAYERS, workers=1)


def test_an_input_inside_out_partial_is_refused(tmp_path: Path, src: Path) -> None:
    work = tmp_path / "out.jsonl.partial"
    work.mkdir()
    inside = work / "in.jsonl"
    inside.write_bytes(src.read_bytes())
    with pytest.raises(PayerPolicyError, match=r"the input is inside .*out\.jsonl\.partial, the work directory of this very output"):
        run_batch(inside, tmp_path / "out.jsonl", PAYERS, workers=1)


def test_an_out_inside_another_runs_work_directory_is_refused(tmp_path: Path, src: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_batch(src, tmp_path / "a.jsonl", PAYERS, workers=1, chunk_size=4, on_chunk=_interrupt)
    with pytest.raises(PayerPolicyError, match=r"--out is inside .*a\.jsonl\.partial, the work directory of another batch run"):
        run_batch(src, tmp_path / "a.jsonl.partial" / "b.jsonl", PAYERS, workers=1)


def _interrupt(_: Any) -> None:
    raise KeyboardInterrupt


def test_out_that_is_a_directory_is_refused_before_any_work(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.mkdir()
    with pytest.raises(PayerPolicyError) as info:
        run_batch(src, out, PAYERS, workers=1)
    assert str(info.value) == f"{out}: --out is a directory; expected a file name ending in .jsonl, .ndjson or .parquet"
    assert not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_output_directory_is_refused_before_any_work(tmp_path: Path, src: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PayerPolicyError, match="cannot write in the output directory"):
            run_batch(src, locked / "out.jsonl", PAYERS, workers=1)
    finally:
        locked.chmod(0o700)


def test_a_full_disk_is_one_line_and_the_work_is_kept_for_resume(
    tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    real = batch_runner._write_atomic
    writes = 0

    def fills_up(path: Path, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes == 3:  # state.json, part 0, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(batch_runner, "_write_atomic", fills_up)
    assert main(["batch", str(src), "--out", str(out), "--payers", "commercial", "--workers", "1", "--chunk-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith(f"payerpolicy: error: {tmp_path}/out.jsonl.partial/part-000001.jsonl: cannot write (No space left on device);")
    assert line.endswith(f"the work done so far is kept in {tmp_path}/out.jsonl.partial for --resume")
    monkeypatch.setattr(batch_runner, "_write_atomic", real)
    result = run_batch(src, out, PAYERS, workers=1, chunk_size=4, resume=True)
    assert result.resumed_from == 4 and result.counts.read == 12 and result.counts.reconciled
    assert [r["record"] for r in read_rows(out)] == list(range(12))


def test_a_same_size_edit_with_the_time_put_back_is_not_resumed(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, PAYERS, workers=1, chunk_size=4, on_chunk=_interrupt)
    st = src.stat()
    text = src.read_text("utf-8")
    edited = text.replace('"minutes": 1', '"minutes": 2', 1)
    assert edited != text and len(edited) == len(text)
    src.write_text(edited, "utf-8")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(PayerPolicyError, match="the interrupted run had other settings or input"):
        run_batch(src, out, PAYERS, workers=1, chunk_size=4, resume=True)


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out.jsonl"
    refused: list[str] = []

    def second_run(_: Any) -> None:
        if refused:
            return
        for resume in (False, True):
            with pytest.raises(PayerPolicyError) as info:
                run_batch(src, out, PAYERS, workers=1, chunk_size=4, resume=resume)
            refused.append(str(info.value))

    result = run_batch(src, out, PAYERS, workers=1, chunk_size=4, on_chunk=second_run)
    assert result.counts.read == 12 and result.counts.reconciled
    assert refused == [f"{tmp_path}/out.jsonl.partial: another batch run is writing {out} right now; wait for it to finish (or stop it) before running again"] * 2
    assert all("delete" not in message for message in refused)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_worker_processes_die_with_a_killed_parent(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    big.write_text("".join(json.dumps(v) + "\n" for v in encounters(3000, seed=5)), "utf-8")
    script = (
        "import sys\n"
        "from payerpolicy.batch import run_batch\n"
        f"run_batch({str(big)!r}, {str(tmp_path / 'out.jsonl')!r}, workers=2, chunk_size=10)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    children: list[int] = []
    try:
        for _ in range(600):  # wait until both workers run
            try:
                text = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text()
            except OSError:
                text = ""
            children = [int(c) for c in text.split()]
            if len(children) >= 2 and (tmp_path / "out.jsonl.partial" / "part-000001.jsonl").exists():
                break
            time.sleep(0.05)
        assert len(children) >= 2, "the workers never started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        for _ in range(200):
            alive = [c for c in children if Path(f"/proc/{c}").exists() and "Z" not in _state(c)]
            if not alive:
                break
            time.sleep(0.05)
        assert alive == [], f"a worker outlived its killed parent: {[_cmdline(c) for c in alive]}"
        assert (tmp_path / "out.jsonl.partial").is_dir()  # the work so far stays for --resume
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in children:  # never leave a worker of this test behind, whatever happened
            if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    except OSError:
        return "?"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
