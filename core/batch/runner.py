"""The batch run: parts, state and journal in OUT.partial/, one output writer, worker processes or a Dask cluster, the final rename."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..evaluation.errors import PayerPolicyError
from ..history import HistoryStore, Tracker, Visit, history_label, open_history
from .chunks import (
    JSONL_SUFFIXES,
    STATE_VERSION,
    Chunk,
    ChunkResult,
    OutputFormat,
    PayerStats,
    _parquet_schema,
    _pyarrow,
    evaluate_chunk,
    part_suffix,
    process_engine,
    read_part,
    write_part,
)
from .ordered import ordered_chunks
from .records import input_kind, iter_chunks, iter_slices

if TYPE_CHECKING:
    from .dask import PartReport


@attrs.frozen
class BatchCounts:
    """The counts a run ends with; :attr:`reconciled` says whether every record is accounted for."""

    read: int
    valid: int
    invalid: int
    payers: int
    outcomes: int
    payer_errors: int

    @property
    def error_rows(self) -> int:
        """Error rows written: one per invalid record plus one per failed (record, payer)."""
        return self.invalid + self.payer_errors

    @property
    def rows(self) -> int:
        """Every row written."""
        return self.outcomes + self.error_rows

    @property
    def reconciled(self) -> bool:
        """``read == valid + invalid`` and ``outcomes + payer errors == valid × payers``."""
        return self.read == self.valid + self.invalid and self.outcomes + self.payer_errors == self.valid * self.payers

    def text(self) -> str:
        """One line for the end of a run."""
        state = "reconciled" if self.reconciled else "DO NOT RECONCILE"
        return (
            f"read {self.read} records: {self.valid} valid, {self.invalid} invalid; "
            f"{self.rows} rows: {self.outcomes} outcomes, {self.error_rows} errors "
            f"({self.invalid} invalid records, {self.payer_errors} payer failures) — counts {state}"
        )


@attrs.frozen
class BatchResult:
    """What :func:`run_batch` did: where the output is, its counts and the per-payer figures."""

    out: Path
    counts: BatchCounts
    stats: dict[str, PayerStats]
    resumed_from: int
    seconds: float


# ------------------------------------------------------------------------------------------------
# Output: parts, state, finish


def output_format(out: Path) -> OutputFormat:
    """``jsonl`` or ``parquet`` from the output file's extension."""
    suffix = out.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise PayerPolicyError(f"{out}: --out must end in .jsonl, .ndjson or .parquet")


def _fingerprint(path: Path) -> dict[str, Any]:
    """The input's identity for ``--resume``: a hash of its content (every file's, for a directory).

    Not size and modification time: an edit of the same size with the time put back is a new input.
    """
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".toml"))
            for p in files:
                digest.update(f"{p.relative_to(path)}\0".encode("utf-8", "surrogateescape"))
                digest.update(hashlib.sha256(p.read_bytes()).digest())
            return {"path": str(path.resolve()), "files": len(files), "content_sha256": digest.hexdigest()}
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise PayerPolicyError(f"{path}: cannot read the input ({exc.strerror or exc})") from None
    return {"path": str(path.resolve()), "size": path.stat().st_size, "content_sha256": digest.hexdigest()}


def _check_paths(src: Path, dst: Path) -> None:
    """Refuse, before any work, an output that would overwrite the input or land where it cannot be written."""
    work = dst.with_name(dst.name + ".partial")
    real_src, real_dst, real_work = src.resolve(), dst.resolve(), work.resolve()
    if real_dst == real_src or (dst.exists() and src.exists() and os.path.samefile(dst, src)):
        raise PayerPolicyError(f"{dst}: --out is the input file; the run would replace its own input, choose another name")
    if real_src == real_work or real_work in real_src.parents:
        raise PayerPolicyError(f"{src}: the input is inside {work}, the work directory of this very output")
    for parent in real_dst.parents:
        if parent.name.endswith(".partial") and (parent / "state.json").is_file():
            raise PayerPolicyError(f"{dst}: --out is inside {parent}, the work directory of another batch run")
    if dst.is_dir():
        raise PayerPolicyError(f"{dst}: --out is a directory; expected a file name ending in .jsonl, .ndjson or .parquet")
    if not dst.parent.exists():
        raise PayerPolicyError(f"{dst}: the output directory {dst.parent} does not exist")
    if not dst.parent.is_dir():
        raise PayerPolicyError(f"{dst}: {dst.parent} is not a directory")
    if not os.access(dst.parent, os.W_OK | os.X_OK):
        raise PayerPolicyError(f"{dst}: cannot write in the output directory {dst.parent} (permission denied)")
    if dst.exists() and not os.access(dst, os.W_OK):
        raise PayerPolicyError(f"{dst}: the output file exists and cannot be replaced (permission denied)")


#: Parquet output's file in ``OUT.partial/`` while the run writes it; renamed to ``OUT`` at the end.
OUTPUT_FILE = "output.parquet"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Work:
    """The ``OUT.partial`` directory of a run: the settings, complete parts, and a journal of them.

    ``state.json`` (written once) holds the settings; ``parts.jsonl`` gets one line per complete
    part, appended and flushed to disk after the part file is in place. The journal grows by one
    short line per part, so a long run never rewrites what it has already recorded.

    Parquet output has one writer, opened here: each part's rows go into ``OUTPUT_FILE`` as
    a row group as soon as the part is in place (in record order, before its journal line), so
    the end of the run only writes the footer and renames the file. That file cannot be read
    before its footer exists, so a crash loses it: the parts are the copy that survives, and a
    resumed run writes the journalled parts into a new output file first (its only reading of them).
    """

    def __init__(self, out: Path, settings: dict[str, Any], payers: Sequence[str], resume: bool) -> None:
        self.out = out
        self.dir = out.with_name(out.name + ".partial")
        self.state_file = self.dir / "state.json"
        self.journal_file = self.dir / "parts.jsonl"
        self.settings = settings
        self.parts: list[tuple[str, int, int]] = []  # (file, first record, records)
        self.read = self.invalid = 0
        self.stats = {p: PayerStats() for p in payers}
        self.lock: Any = None
        self.created = False  # this run made the directory (not a resumed one)
        self.format: OutputFormat = settings["format"]
        self.output = self.dir / OUTPUT_FILE
        self.writer: Any = None  # Parquet output: the one writer of OUT's rows
        try:
            self.dir.mkdir()
            fresh = True
        except FileExistsError:
            fresh = False
        if not fresh:
            self._lock()
            if not resume:
                self._unlock()
                raise PayerPolicyError(
                    f"{self.dir}: an interrupted run left its work here; add --resume to continue it, or delete the directory to start again"
                )
            try:
                self._load()
            except BaseException:
                self._unlock()
                raise
        elif resume:
            self.dir.rmdir()
            raise PayerPolicyError(f"{self.dir}: nothing to resume (no interrupted run for {out})")
        else:
            self.created = True
            state = {"version": STATE_VERSION, "settings": self.settings}
            _write_atomic(self.state_file, json.dumps(state, indent=1).encode())
            self._lock()
        self.journal = open(self.journal_file, "ab")  # noqa: SIM115 - open for the whole run, closed in finish()
        if self.format == "parquet":
            try:
                self._open_writer()
            except OSError as exc:  # a full disk as the output is written again from the parts
                self.close()
                raise PayerPolicyError(
                    f"{exc.filename or self.output}: cannot write ({exc.strerror or exc}); "
                    f"the work done so far is kept in {self.dir} for --resume"
                ) from None
            except BaseException:
                self.close()
                raise

    def _open_writer(self) -> None:
        """Open the Parquet writer of the run's output; on a resumed run, write the journalled parts into it first."""
        pa = _pyarrow(self.out, writing=True)
        self.writer = pa.parquet.ParquetWriter(self.output, _parquet_schema(), compression="zstd")
        for file, _, _ in self.parts:
            try:
                table = read_part(self.dir / file)
            except Exception as exc:  # pyarrow's own error for a damaged file, or the disk's
                raise PayerPolicyError(
                    f"{self.dir / file}: cannot read this part of the interrupted run ({exc}); "
                    f"delete {self.dir} to start again"
                ) from None
            self.writer.write_table(table)

    def _lock(self) -> None:
        """Hold a lock on state.json for the whole run: a second run on the same OUT is refused."""
        try:
            self.lock = open(self.state_file, "rb")  # noqa: SIM115 - held until close()
        except FileNotFoundError:
            raise PayerPolicyError(
                f"{self.dir}: another batch run is starting on {self.out} (its work directory has no state yet); wait for it"
            ) from None
        try:
            import fcntl

            fcntl.flock(self.lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        except OSError:
            self.lock.close()
            self.lock = None
            raise PayerPolicyError(
                f"{self.dir}: another batch run is writing {self.out} right now; wait for it to finish (or stop it) before running again"
            ) from None

    def _unlock(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def _load(self) -> None:
        try:
            state = json.loads(self.state_file.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise PayerPolicyError(f"{self.state_file}: cannot read the state of the interrupted run ({exc})") from None
        if state.get("version") != STATE_VERSION or state.get("settings") != self.settings:
            raise PayerPolicyError(
                f"{self.state_file}: the interrupted run had other settings or input "
                f"({json.dumps(state.get('settings'), sort_keys=True)}); delete {self.dir} to start again"
            )
        good = b""
        if self.journal_file.exists():
            for raw in self.journal_file.read_bytes().splitlines(keepends=True):
                try:
                    entry = json.loads(raw)
                except ValueError:
                    break  # the line being written when the run stopped
                part = self.dir / entry["file"]
                if not raw.endswith(b"\n") or not part.is_file():
                    break
                if "bytes" in entry and part.stat().st_size != entry["bytes"]:
                    break  # a part a worker wrote, changed since
                good += raw
                self._count(entry)
        _write_atomic(self.journal_file, good)
        listed = {file for file, _, _ in self.parts} | {"state.json", "parts.jsonl"}
        for stray in self.dir.iterdir():  # a part being written when the run stopped
            if stray.name not in listed:
                # a Dask task of the stopped run may still rename its file away meanwhile
                stray.unlink(missing_ok=True)

    def _count(self, entry: dict[str, Any]) -> None:
        self.parts.append((entry["file"], entry["first"], entry["records"]))
        self.read += entry["records"]
        self.invalid += entry["invalid"]
        for p, s in entry["stats"].items():
            self.stats[p].add(PayerStats.from_mapping(s))

    @property
    def done(self) -> int:
        """Records completed so far (the parts cover records 0..done-1)."""
        return self.parts[-1][1] + self.parts[-1][2] if self.parts else 0

    def add(self, result: ChunkResult, fmt: OutputFormat, before_journal: Callable[[], None] | None = None) -> None:
        """Write one chunk's rows as a part (and, for Parquet, into the output), then record it in the journal.

        ``before_journal`` runs once the part is in place and before its journal line (claim
        history is committed there: a part that is journalled always has its visits recorded).
        """
        name = f"part-{len(self.parts):06d}.{part_suffix(fmt)}"
        path = self.dir / name
        if fmt == "parquet":
            write_part(path, result.data, fmt)
            self.writer.write_table(result.data)
        else:
            _write_atomic(path, result.data)
        if before_journal is not None:
            before_journal()
        self._journal(name, result, {})

    def add_written(self, report: PartReport) -> None:
        """Journal a part a Dask worker wrote itself into this directory (``--scheduler`` on shared storage).

        The part must be the next one, and in place with the size the worker reported: a worker
        whose ``OUT.partial`` is not the driver's (storage not shared after all) stops the run.
        A Parquet part is read here, once, and its rows written into the output before the journal line.
        """
        if not report.file.startswith(f"part-{len(self.parts):06d}-"):  # pragma: no cover - a bug
            raise RuntimeError(f"part {report.file} reported out of order (expected part {len(self.parts)})")
        path = self.dir / report.file
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size != report.size:
            here = "missing here" if size < 0 else f"{size} bytes here"
            raise PayerPolicyError(
                f"{path}: a Dask worker wrote this part ({report.size} bytes) but it is {here}; "
                f"{self.dir} must be on storage the driver and every worker share"
            )
        if self.writer is not None:
            self.writer.write_table(read_part(path))
        self._journal(report.file, report.result, {"bytes": report.size, "sha256": report.sha256})

    def _journal(self, name: str, result: ChunkResult, extra: dict[str, Any]) -> None:
        """Append the journal line of a part that is in place, flushed to disk, and count it."""
        entry = {
            "file": name,
            "first": result.first,
            "records": result.records,
            "invalid": result.invalid,
            "rows": result.rows,
            "stats": {p: s.to_mapping() for p, s in result.stats.items()},
            **extra,
        }
        self.journal.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self.journal.flush()
        os.fsync(self.journal.fileno())
        self._count(entry)

    def counts(self) -> BatchCounts:
        """The counts of every part so far."""
        return BatchCounts(
            read=self.read,
            valid=self.read - self.invalid,
            invalid=self.invalid,
            payers=len(self.stats),
            outcomes=sum(s.outcomes for s in self.stats.values()),
            payer_errors=sum(s.errors for s in self.stats.values()),
        )

    def close(self) -> None:
        """Close the journal and the output and release the lock (the work directory stays for --resume).

        The output file of a run that stops is not kept: ``--resume`` writes it again from the parts.
        """
        self.journal.close()
        if self.writer is not None:
            writer, self.writer = self.writer, None
            with contextlib.suppress(Exception):  # already failing (a full disk, say): the parts are what counts
                writer.close()
        self._unlock()

    def abandon(self) -> None:
        """A run that stops: keep the work for --resume, unless this run made it and wrote no part.

        A run that fails before its first part (an unreachable scheduler, say) has nothing to resume;
        leaving ``OUT.partial/`` would only make the rerun ask for ``--resume`` or a deletion.
        """
        self.close()
        if self.created and not self.parts:
            shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self, fmt: OutputFormat) -> None:
        """Put the output in place as OUT (a rename) and remove the work directory.

        Parquet: the writer has every row already; closing it writes the footer. JSON Lines: the
        parts are joined into OUT (through a temporary name; a copy of bytes, nothing parsed).
        """
        if fmt == "parquet":
            writer, self.writer = self.writer, None
            try:
                writer.close()
                with open(self.output, "rb") as done:
                    os.fsync(done.fileno())
            finally:
                self.close()
            os.replace(self.output, self.out)
            shutil.rmtree(self.dir)
            return
        self.close()
        tmp = self.out.with_name(self.out.name + ".tmp")
        with open(tmp, "wb") as dst:
            for file, _, _ in self.parts:
                with open(self.dir / file, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.out)
        shutil.rmtree(self.dir)


class _Progress:
    """A one-line progress report on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, done: int) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.base = done
        self.last = 0.0

    def update(self, done: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.25:
            return
        self.last = now
        rate = (done - self.base) / max(now - self.start, 1e-9)
        sys.stderr.write(f"\r  {done:,} records  {rate:,.0f}/s  {now - self.start:,.0f}s ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


# ------------------------------------------------------------------------------------------------
# The run


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_batch(
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    payers: Sequence[str] | None = None,
    *,
    workers: int | None = None,
    chunk_size: int = 500,
    resume: bool = False,
    trace: bool = False,
    strict: bool = False,
    scheduler: Any = None,
    progress: bool | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    engine: Any = None,
    history: str | os.PathLike[str] | HistoryStore | None = None,
) -> BatchResult:
    """Evaluate every encounter of ``input`` for ``payers`` and write the rows to ``out``.

    :param payers: payer ids (default: every installed payer, ``commercial`` first).
    :param workers: processes to use (default: every core this process may run on; 1 runs in this
        process). Ignored with ``scheduler``.
    :param chunk_size: records per unit of work and per part file.
    :param resume: continue the interrupted run that left ``OUT.partial/``.
    :param trace: keep each outcome's ``trace`` (it is most of an outcome's size; off by default).
    :param strict: a plugin that raises stops the record's evaluation for that payer (an error row)
        instead of giving a ``PLUGIN_FAILED`` finding.
    :param scheduler: a ``dask.distributed`` scheduler address or ``Client``: run the chunks there.
    :param progress: show a progress line on standard error (default: when it is a terminal).
    :param on_chunk: called in this process after each part is safely written (used by tests).
    :param engine: an :class:`~payerpolicy.Engine` of your own (say, with extra plugins registered).
        Worker processes cannot share it, so it needs ``workers=1`` and no ``scheduler``.
    :param history: claim history: a SQLite file name (created when missing), a ``postgresql://``
        URL (extra ``payerpolicy[postgres]``) or a :class:`~payerpolicy.history.HistoryStore`.
        Records are then evaluated in patient and date order (rows are written in that order;
        ``record`` stays the input position), the counters an encounter leaves out are derived
        from the patient's earlier visits, and each chunk's visits are recorded when its part is
        committed (docs/history.md). None: no history, the rows in input order.
    """
    src = Path(input)
    dst = Path(out)
    input_kind(src)
    fmt = output_format(dst)
    _check_paths(src, dst)
    if fmt == "parquet":
        _pyarrow(dst, writing=True)
    if chunk_size < 1:
        raise PayerPolicyError(f"chunk size must be at least 1, found {chunk_size}")
    own_engine = engine is not None
    if own_engine and (scheduler is not None or (workers or 1) > 1):
        raise PayerPolicyError("an engine of your own runs in this process only: use workers=1 and no scheduler")
    engine = engine if engine is not None else process_engine(strict)
    ids = list(payers) if payers else sorted(engine.payer_ids, key=lambda p: (p != "commercial", p))
    for pid in ids:
        engine.host.payer(pid)  # unknown ids fail before any work
    if len(set(ids)) != len(ids):
        raise PayerPolicyError(f"--payers lists a payer twice: {', '.join(ids)}")
    settings: dict[str, Any] = {
        "input": _fingerprint(src),
        "payers": ids,
        "format": fmt,
        "trace": trace,
        "strict": strict,
        "chunk_size": chunk_size,
    }
    store: HistoryStore | None = None
    own_store = isinstance(history, str | os.PathLike)
    if isinstance(history, str | os.PathLike):
        settings["history"] = history_label(history)
        store = open_history(history)  # a file that is not a history database fails before any work
    elif history is not None:
        settings["history"] = str(getattr(history, "path", type(history).__name__))
        store = history
    try:
        work = _Work(dst, settings, ids, resume)
    except OSError as exc:
        if own_store and store is not None:
            store.close()
        raise PayerPolicyError(f"{dst}: cannot create the work directory {dst.name}.partial ({exc.strerror or exc})") from None
    except BaseException:
        if own_store and store is not None:
            store.close()
        raise
    resumed_from = work.done
    started = time.monotonic()
    bar = _Progress(sys.stderr.isatty() if progress is None else progress, resumed_from)
    pending: dict[int, list[Visit]] = {}

    def records() -> Iterator[Chunk]:
        """The chunks with their records, read here (not on the cluster path with shared storage)."""
        if store is not None:
            return ordered_chunks(src, work.dir, chunk_size, resumed_from, Tracker(store, engine), pending)
        return iter_chunks(src, chunk_size, skip=resumed_from)
    job = functools.partial(evaluate_chunk, payers=ids, output=fmt, trace=trace, strict=strict)

    def commit_history(result: ChunkResult) -> Callable[[], None] | None:
        if store is None:
            return None
        keeping = store

        def commit() -> None:
            visits = {v.encounter: v for v in pending.pop(result.first, [])}
            for encounter, payer, lines in result.claims:  # the lines each payer's claim had, for same-day claims
                if encounter in visits:
                    visits[encounter] = visits[encounter].with_claim(payer, lines)
            keeping.record(visits.values())

        return commit

    def keep(result: ChunkResult) -> None:
        work.add(result, fmt, commit_history(result))
        bar.update(work.done)
        if on_chunk is not None:
            on_chunk(result)

    try:
        if scheduler is not None:
            from . import dask as on_dask

            client, owned = on_dask.connect(scheduler)
            try:
                # Workers read their own slices and write their own parts when OUT.partial is shared
                # storage; with claim history the parent derives the counters in order (records()).
                if store is None and on_dask.shared_storage(client, work.dir, src):
                    # The run's own token in the part names: a task left running by an earlier,
                    # stopped run can never replace a part of this one (its file is a stray).
                    base, token = len(work.parts), uuid.uuid4().hex[:12]
                    slices = iter_slices(src.resolve(), chunk_size, resumed_from)
                    suffix = part_suffix(fmt)
                    named = ((f"part-{base + i:06d}-{token}.{suffix}", piece) for i, piece in enumerate(slices))
                    task = functools.partial(
                        on_dask.evaluate_slice_to_part,
                        directory=str(work.dir.resolve()),
                        payers=ids,
                        output=fmt,
                        trace=trace,
                        strict=strict,
                    )
                    for report in on_dask.run_chunks_on_dask(client, named, task):
                        work.add_written(report)
                        bar.update(work.done)
                        if on_chunk is not None:
                            on_chunk(report.result)
                else:
                    for result in on_dask.run_chunks_on_dask(client, records(), job):
                        keep(result)
            finally:
                if owned:
                    client.close()
        else:
            n = 1 if own_engine else (workers or _default_workers())
            if n <= 1:
                for chunk in records():
                    keep(job(chunk, engine=engine))
            else:
                for result in _run_in_processes(n, records(), job):
                    keep(result)
    except OSError as exc:  # a full disk, a permission taken away: the environment, not a bug
        work.close()  # OUT.partial/ stays for --resume
        where = exc.filename or work.dir
        raise PayerPolicyError(
            f"{where}: cannot write ({exc.strerror or exc}); the work done so far is kept in {work.dir} for --resume"
        ) from None
    except BaseException:
        work.abandon()  # OUT.partial/ stays for --resume when it holds a part
        raise
    finally:
        if own_store and store is not None:
            store.close()
    bar.update(work.done, final=True)
    counts = work.counts()
    if not counts.reconciled:  # pragma: no cover - a bug, never a user's mistake
        work.close()
        raise RuntimeError(f"batch counts do not reconcile: {counts}")
    try:
        work.finish(fmt)
    except OSError as exc:
        raise PayerPolicyError(
            f"{exc.filename or dst}: cannot write the output ({exc.strerror or exc}); the parts are kept in {work.dir} for --resume"
        ) from None
    return BatchResult(dst, counts, work.stats, resumed_from, time.monotonic() - started)


def _worker_start(parent: int) -> None:
    """In each worker process: die with the parent (Linux), then build the process's engine."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a worker never outlives a killed parent
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
        if os.getppid() != parent:  # the parent died between the fork and the prctl
            os._exit(1)
    process_engine()


def _run_in_processes(
    workers: int, chunks: Iterator[Chunk], job: Callable[[Chunk], ChunkResult]
) -> Iterator[ChunkResult]:
    """Run ``job`` over ``chunks`` on ``workers`` processes, results in input order.

    At most ``2 × workers`` chunks are in flight, so memory stays flat however long the input.
    """
    window = 2 * workers
    with cf.ProcessPoolExecutor(max_workers=workers, initializer=_worker_start, initargs=(os.getpid(),)) as pool:
        pending: collections.deque[cf.Future[ChunkResult]] = collections.deque()
        for chunk in chunks:
            pending.append(pool.submit(job, chunk))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
