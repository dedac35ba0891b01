"""Batch evaluation: many encounters × several payers, streamed, with nothing lost.

``payerpolicy batch INPUT --payers ID,... --out OUT`` and :func:`run_batch` read encounters from

* **JSON Lines** (``*.jsonl``, ``*.ndjson``): one encounter (format v1) per line; blank lines are
  skipped;
* **a directory**: every ``*.json`` and ``*.toml`` file below it, one encounter each, in path order;
* **Parquet** (``*.parquet``, extra ``payerpolicy[parquet]``): one encounter per row, either in a
  string column ``encounter`` holding its JSON, or as columns named like the encounter's fields;

and write one row per (encounter, payer) to JSON Lines or Parquet (by the extension of ``OUT``)::

    {"record": 0, "source": "visits.jsonl:1", "encounter": "V-1", "payer": "medicare",
     "outcome": {...outcome format v1, without "trace" unless --trace...}, "error": null}

A record that cannot be read or is not a valid encounter gives one **error row** (``payer`` null,
``outcome`` null, ``error`` = ``{"field", "message", "text"}`` — ``text`` is the line the CLI
prints for the same mistake). A payer whose evaluation fails for a record gives an error row for
that (record, payer). So ``read == valid + invalid`` and ``outcome rows + payer errors ==
valid × payers``: :class:`BatchCounts` reconciles them.

Crash safety and resume: the run writes into ``OUT.partial/`` — ``state.json`` (the settings,
written once), part files (each written to a temporary name and renamed when complete) and the
journal ``parts.jsonl`` (one line appended and flushed per complete part). Only when every record
is done are the parts joined into ``OUT`` (again through a temporary name and a rename), so a file
named ``OUT`` is always complete. ``--resume`` continues an
interrupted run from its last complete part: nothing is duplicated or dropped.

Work is spread over processes (every core by default) in chunks; each process builds its engine
once (:func:`process_engine`). With ``scheduler=`` (a ``dask.distributed`` scheduler address or
``Client``) the same chunks run on a Dask cluster instead (see :mod:`payerpolicy.dask`).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import functools
import hashlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from .errors import EncounterError, PayerPolicyError
from .io import parse_json, read_encounter_data
from .model import Encounter, Outcome

__all__ = [
    "BatchCounts",
    "BatchResult",
    "Chunk",
    "ChunkResult",
    "PayerStats",
    "evaluate_chunk",
    "iter_chunks",
    "iter_output",
    "process_engine",
    "read_rows",
    "render_summary",
    "run_batch",
]

STATE_VERSION = 1
JSONL_SUFFIXES = (".jsonl", ".ndjson")
OutputFormat = Literal["jsonl", "parquet"]

# ------------------------------------------------------------------------------------------------
# Records and chunks


@attrs.frozen
class Chunk:
    """A run of consecutive input records, the unit of work sent to a process or a Dask worker.

    ``items`` holds ``(source, kind, payload)``: kind ``json`` with the raw JSON text (bytes or
    str), ``file`` with the path of a .json/.toml file, or ``data`` with a decoded mapping (a
    Parquet row). ``first`` is the position of the first record in the whole input (0-based).
    """

    first: int
    items: tuple[tuple[str, str, Any], ...]


@attrs.define
class PayerStats:
    """What one payer made of the records of a run: the figures of ``--summary``."""

    outcomes: int = 0
    errors: int = 0
    billable_units: int = 0
    billable_lines: int = 0
    expected_denials: int = 0
    denied_units: int = 0
    not_billable: int = 0
    findings: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def add(self, other: PayerStats) -> None:
        """Add another run's figures to these."""
        self.outcomes += other.outcomes
        self.errors += other.errors
        self.billable_units += other.billable_units
        self.billable_lines += other.billable_lines
        self.expected_denials += other.expected_denials
        self.denied_units += other.denied_units
        self.not_billable += other.not_billable
        self.findings.update(other.findings)

    def count(self, outcome: Outcome) -> tuple[int, int, int]:
        """Count one outcome; return its billable units, expected denials and not-billable lines."""
        self.outcomes += 1
        units = denials = not_billable = 0
        for line in outcome.lines:
            if line.status == "billable":
                units += line.units
                self.billable_lines += 1
            elif line.status == "expected_denial":
                denials += 1
                self.denied_units += line.units
            else:
                not_billable += 1
        self.billable_units += units
        self.expected_denials += denials
        self.not_billable += not_billable
        self.findings.update(f.code for f in outcome.findings)
        return units, denials, not_billable

    def to_mapping(self) -> dict[str, Any]:
        """JSON-ready form (state file, ``--summary --format json``)."""
        data = attrs.asdict(self)
        data["findings"] = dict(sorted(self.findings.items()))
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PayerStats:
        """Inverse of :meth:`to_mapping`."""
        values = dict(data)
        values["findings"] = collections.Counter(values.get("findings", {}))
        return cls(**values)


@attrs.frozen
class ChunkResult:
    """The rows of one chunk, encoded for the output format, and the counts that go with them."""

    first: int
    records: int
    invalid: int
    rows: int
    data: Any  # bytes (JSON Lines) or a pyarrow.Table (Parquet)
    stats: dict[str, PayerStats]


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


def _source_name(path: Path) -> str:
    return path.name


def _iter_jsonl(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    name = _source_name(path)
    record = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            if record >= skip:
                yield record, f"{name}:{lineno}", "json", raw
            record += 1


def _iter_directory(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".toml"))
    for record, file in enumerate(files):
        if record >= skip:
            yield record, str(file.relative_to(path)), "file", str(file)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _pyarrow(path: Path | None = None) -> Any:
    where = f"{path}: " if path is not None else ""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise PayerPolicyError(
            f"{where}reading Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"
        ) from None
    return pyarrow


def _iter_parquet(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    pa = _pyarrow()
    name = _source_name(path)
    try:
        file = pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise PayerPolicyError(f"{path}: not a readable Parquet file ({exc})") from None
    record = 0
    for batch in file.iter_batches(batch_size=4096):
        if record + batch.num_rows <= skip:
            record += batch.num_rows
            continue
        single = batch.schema.names == ["encounter"]
        for row in batch.to_pylist():
            if record >= skip:
                if single:
                    yield record, f"{name}:row {record}", "json", row["encounter"] or ""
                else:
                    yield record, f"{name}:row {record}", "data", _drop_nulls(row)
            record += 1


def input_kind(path: Path) -> str:
    """``jsonl``, ``directory`` or ``parquet``; a clear error for anything else."""
    if path.is_dir():
        return "directory"
    if not path.exists():
        raise PayerPolicyError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise PayerPolicyError(
        f"{path}: expected JSON Lines (.jsonl, .ndjson), Parquet (.parquet) or a directory of .json/.toml encounters"
    )


def iter_records(path: Path, skip: int = 0) -> Iterator[tuple[int, str, str, Any]]:
    """Yield ``(position, source, kind, payload)`` for every record of the input, from ``skip`` on."""
    kind = input_kind(path)
    if kind == "directory":
        return _iter_directory(path, skip)
    if kind == "parquet":
        return _iter_parquet(path, skip)
    return _iter_jsonl(path, skip)


def iter_chunks(path: Path, size: int, skip: int = 0) -> Iterator[Chunk]:
    """Group the records of ``path`` (from ``skip`` on) into chunks of ``size`` records."""
    items: list[tuple[str, str, Any]] = []
    first = skip
    for record, source, kind, payload in iter_records(path, skip):
        if not items:
            first = record
        items.append((source, kind, payload))
        if len(items) >= size:
            yield Chunk(first, tuple(items))
            items = []
    if items:
        yield Chunk(first, tuple(items))


# ------------------------------------------------------------------------------------------------
# Evaluation (runs in worker processes and on Dask workers)


@functools.cache
def process_engine(strict: bool = False) -> Any:
    """The engine of this process, built on first use and kept (one per worker, not per chunk)."""
    from .engine import Engine
    from .manager import PluginHost

    return Engine(PluginHost(strict=strict))


def _decode(source: str, kind: str, payload: Any) -> tuple[Any, str | None]:
    """The raw data of one record and, when readable, its ``id``; raises EncounterError."""
    if kind == "json":
        data = parse_json(payload, source, one_line=True)
    elif kind == "file":
        data = read_encounter_data(payload)
    else:
        data = payload
    ident = data.get("id") if isinstance(data, dict) else None
    return data, ident if isinstance(ident, str) else None


def _error(field: str, message: str, text: str) -> dict[str, str]:
    return {"field": field, "message": message, "text": text}


def evaluate_chunk(
    chunk: Chunk,
    payers: Sequence[str],
    *,
    output: OutputFormat = "jsonl",
    trace: bool = False,
    strict: bool = False,
    engine: Any = None,
) -> ChunkResult:
    """Evaluate every record of ``chunk`` for every payer and encode the rows for ``output``.

    Never raises for a record's or a payer's fault: those become error rows. ``engine`` defaults to
    this process's :func:`process_engine`.
    """
    eng = engine if engine is not None else process_engine(strict)
    stats = {p: PayerStats() for p in payers}
    rows = _Rows()
    invalid = 0
    for offset, (source, kind, payload) in enumerate(chunk.items):
        record = chunk.first + offset
        ident: str | None = None
        try:
            data, ident = _decode(source, kind, payload)
            encounter = Encounter.from_mapping(data, catalogue=eng.catalogue)
        except EncounterError as exc:
            invalid += 1
            err = exc if exc.file else exc.with_file(source)
            rows.add(record, source, ident, None, None, _error(err.field, err.message, str(err)))
            continue
        for payer in payers:
            try:
                outcome = eng.evaluate(encounter, payer)
            except Exception as exc:  # one payer's failure must not lose the record for the others
                stats[payer].errors += 1
                text = f"{source}: payer {payer}: {exc}" if isinstance(exc, PayerPolicyError) else f"{source}: payer {payer}: internal error {type(exc).__name__}: {exc}"
                rows.add(record, source, ident, payer, None, _error("", str(exc), text))
                continue
            figures = stats[payer].count(outcome)
            data = outcome.to_mapping()
            if not trace:
                del data["trace"]
            rows.add(record, source, outcome.encounter, payer, data, None, figures)
    encoded: Any = rows.parquet() if output == "parquet" else rows.jsonl()
    return ChunkResult(chunk.first, len(chunk.items), invalid, rows.count, encoded, stats)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class _Rows:
    """The rows of a chunk, each encoded as soon as it is made (a chunk never holds outcome dicts)."""

    def __init__(self) -> None:
        self.count = 0
        self.columns: dict[str, list[Any]] = {
            "record": [],
            "source": [],
            "encounter": [],
            "payer": [],
            "outcome": [],
            "error": [],
            "billable_units": [],
            "expected_denials": [],
            "not_billable": [],
        }

    def add(
        self,
        record: int,
        source: str,
        ident: str | None,
        payer: str | None,
        outcome: dict[str, Any] | None,
        error: dict[str, str] | None,
        figures: tuple[int, int, int] | None = None,
    ) -> None:
        """Add one row; ``figures`` are the outcome's billable units, expected denials and not-billable lines."""
        c = self.columns
        self.count += 1
        c["record"].append(record)
        c["source"].append(source)
        c["encounter"].append(ident)
        c["payer"].append(payer)
        c["outcome"].append(None if outcome is None else _dumps(outcome))
        c["error"].append(None if error is None else _dumps(error))
        units, denials, not_billable = figures if figures is not None else (None, None, None)
        c["billable_units"].append(units)
        c["expected_denials"].append(denials)
        c["not_billable"].append(not_billable)

    def jsonl(self) -> bytes:
        """The rows as JSON Lines (the outcome and error JSON spliced in, not encoded twice)."""
        c = self.columns
        out = []
        for i in range(self.count):
            out.append(
                f'{{"record":{c["record"][i]},"source":{_dumps(c["source"][i])},"encounter":{_dumps(c["encounter"][i])},'
                f'"payer":{_dumps(c["payer"][i])},"outcome":{c["outcome"][i] or "null"},"error":{c["error"][i] or "null"}}}\n'
            )
        return "".join(out).encode("utf-8")

    def parquet(self) -> Any:
        """The rows as an Arrow table of the Parquet schema."""
        pa = _pyarrow()
        return pa.Table.from_pydict(self.columns, schema=_parquet_schema())


def _parquet_schema() -> Any:
    pa = _pyarrow()
    return pa.schema(
        [
            ("record", pa.int64()),
            ("source", pa.string()),
            ("encounter", pa.string()),
            ("payer", pa.string()),
            ("outcome", pa.string()),
            ("error", pa.string()),
            ("billable_units", pa.int32()),
            ("expected_denials", pa.int32()),
            ("not_billable", pa.int32()),
        ]
    )


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
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".toml"))
        digest = hashlib.sha256()
        for p in files:
            st = p.stat()
            digest.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"path": str(path.resolve()), "files": len(files), "listing_sha256": digest.hexdigest()}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


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
        if self.dir.exists():
            if not resume:
                raise PayerPolicyError(
                    f"{self.dir}: an interrupted run left its work here; add --resume to continue it, or delete the directory to start again"
                )
            self._load()
        elif resume:
            raise PayerPolicyError(f"{self.dir}: nothing to resume (no interrupted run for {out})")
        else:
            self.dir.mkdir(parents=True)
            state = {"version": STATE_VERSION, "settings": self.settings}
            _write_atomic(self.state_file, json.dumps(state, indent=1).encode())
        self.journal = open(self.journal_file, "ab")  # noqa: SIM115 - open for the whole run, closed in finish()

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
                if not raw.endswith(b"\n") or not (self.dir / entry["file"]).is_file():
                    break
                good += raw
                self._count(entry)
        _write_atomic(self.journal_file, good)
        listed = {file for file, _, _ in self.parts} | {"state.json", "parts.jsonl"}
        for stray in self.dir.iterdir():  # a part being written when the run stopped
            if stray.name not in listed:
                stray.unlink()

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

    def add(self, result: ChunkResult, fmt: OutputFormat) -> None:
        """Write one chunk's rows as a part, then record it in the journal."""
        name = f"part-{len(self.parts):06d}.{fmt}"
        path = self.dir / name
        if fmt == "parquet":
            pa = _pyarrow()
            tmp = path.with_name(name + ".tmp")
            pa.parquet.write_table(result.data, tmp, compression="zstd")
            os.replace(tmp, path)
        else:
            _write_atomic(path, result.data)
        entry = {
            "file": name,
            "first": result.first,
            "records": result.records,
            "invalid": result.invalid,
            "rows": result.rows,
            "stats": {p: s.to_mapping() for p, s in result.stats.items()},
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
        """Close the journal (the work directory stays for --resume)."""
        self.journal.close()

    def finish(self, fmt: OutputFormat) -> None:
        """Join the parts into OUT (through a temporary name) and remove the work directory."""
        self.close()
        tmp = self.out.with_name(self.out.name + ".tmp")
        if fmt == "parquet":
            pa = _pyarrow()
            with pa.parquet.ParquetWriter(tmp, _parquet_schema(), compression="zstd") as writer:
                for file, _, _ in self.parts:
                    writer.write_table(pa.parquet.read_table(self.dir / file, schema=_parquet_schema()))
        else:
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
    """
    src = Path(input)
    dst = Path(out)
    input_kind(src)
    fmt = output_format(dst)
    if fmt == "parquet":
        _pyarrow()
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
    settings = {
        "input": _fingerprint(src),
        "payers": ids,
        "format": fmt,
        "trace": trace,
        "strict": strict,
        "chunk_size": chunk_size,
    }
    if not dst.parent.exists():
        raise PayerPolicyError(f"{dst}: the output directory {dst.parent} does not exist")
    work = _Work(dst, settings, ids, resume)
    resumed_from = work.done
    started = time.monotonic()
    bar = _Progress(sys.stderr.isatty() if progress is None else progress, resumed_from)
    chunks = iter_chunks(src, chunk_size, skip=resumed_from)
    job = functools.partial(evaluate_chunk, payers=ids, output=fmt, trace=trace, strict=strict)

    def keep(result: ChunkResult) -> None:
        work.add(result, fmt)
        bar.update(work.done)
        if on_chunk is not None:
            on_chunk(result)

    try:
        if scheduler is not None:
            from .dask import run_chunks_on_dask

            for result in run_chunks_on_dask(scheduler, chunks, job):
                keep(result)
        else:
            n = 1 if own_engine else (workers or _default_workers())
            if n <= 1:
                for chunk in chunks:
                    keep(job(chunk, engine=engine))
            else:
                for result in _run_in_processes(n, chunks, job):
                    keep(result)
    except BaseException:
        work.close()  # OUT.partial/ stays for --resume
        raise
    bar.update(work.done, final=True)
    counts = work.counts()
    if not counts.reconciled:  # pragma: no cover - a bug, never a user's mistake
        work.close()
        raise RuntimeError(f"batch counts do not reconcile: {counts}")
    work.finish(fmt)
    return BatchResult(dst, counts, work.stats, resumed_from, time.monotonic() - started)


def _run_in_processes(
    workers: int, chunks: Iterator[Chunk], job: Callable[[Chunk], ChunkResult]
) -> Iterator[ChunkResult]:
    """Run ``job`` over ``chunks`` on ``workers`` processes, results in input order.

    At most ``2 × workers`` chunks are in flight, so memory stays flat however long the input.
    """
    window = 2 * workers
    with cf.ProcessPoolExecutor(max_workers=workers, initializer=process_engine) as pool:
        pending: collections.deque[cf.Future[ChunkResult]] = collections.deque()
        for chunk in chunks:
            pending.append(pool.submit(job, chunk))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ------------------------------------------------------------------------------------------------
# Reading results, summary


def iter_output(path: str | os.PathLike[str]) -> Iterator[tuple[str, Any]]:
    """``(where, raw row)`` for every row of a batch output: ``.parquet`` with pyarrow, else JSON Lines.

    ``where`` is ``file:line`` or ``file: row N``; in Parquet rows ``outcome`` and ``error`` are
    JSON text. A file that cannot be read is a PayerPolicyError naming it and the position.
    """
    p = Path(path)
    if not p.is_file():
        raise PayerPolicyError(f"{p}: no such file")
    if p.suffix.lower() == ".parquet":
        pa = _pyarrow(p)
        try:
            file = pa.parquet.ParquetFile(p)
        except Exception as exc:  # pyarrow raises its own error types for a damaged file
            raise PayerPolicyError(f"{p}: cannot read the Parquet file ({type(exc).__name__}: {exc})") from None
        n = 0
        for batch in file.iter_batches(batch_size=2048):
            for data in batch.to_pylist():
                n += 1
                yield f"{p}: row {n}", data
        return
    with p.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            where = f"{p}:{number}"
            try:
                yield where, json.loads(text)
            except json.JSONDecodeError as exc:
                raise PayerPolicyError(f"{where}: invalid JSON at column {exc.colno}: {exc.msg}") from None


def read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the rows of a batch output (JSON Lines or Parquet), ``outcome``/``error`` decoded."""
    for _, row in iter_output(path):
        for key in ("outcome", "error"):
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        yield row


def render_summary(result: BatchResult, *, top: int = 10) -> str:
    """``--summary``: per payer the billable units, expected denials and findings by code."""
    payers = list(result.stats)
    headers = ["", *payers]
    rows: list[list[str]] = []

    def row(label: str, values: Iterable[int]) -> None:
        rows.append([label, *(f"{v:,}" for v in values)])

    stats = [result.stats[p] for p in payers]
    row("outcomes", (s.outcomes for s in stats))
    row("error rows (payer failed)", (s.errors for s in stats))
    row("billable lines", (s.billable_lines for s in stats))
    row("billable units", (s.billable_units for s in stats))
    row("expected denials (lines)", (s.expected_denials for s in stats))
    row("units expected to be denied", (s.denied_units for s in stats))
    row("not billable (lines)", (s.not_billable for s in stats))
    codes = collections.Counter[str]()
    for s in stats:
        codes.update(s.findings)
    ranked = [c for c, _ in codes.most_common()]
    shown = ranked[:top]
    for code in shown:
        row(f"  {code}", (s.findings.get(code, 0) for s in stats))
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    buf = io.StringIO()
    buf.write(f"summary — {result.counts.read:,} encounters × {len(payers)} payers\n")
    for r in [headers, *rows][:8]:
        buf.write("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")
    buf.write(f"  findings by code (top {len(shown)} of {len(ranked)}):\n")
    for r in rows[7:]:
        buf.write("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip() + "\n")
    return buf.getvalue().rstrip("\n")
