"""Chunks of records and their evaluation: what runs in worker processes and on Dask workers."""

from __future__ import annotations

import collections
import functools
import gc
import json
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ..evaluation.errors import EncounterError, PayerPolicyError
from ..evaluation.model import Encounter, Outcome
from ..evaluation.text import check_text
from ..formats.io import parse_json, read_encounter_data
from ..history.counters import apply as apply_history
from ..history.counters import claim_lines, same_day_claims, with_trace
from ..history.store import VisitLine

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

    With claim history (``--history``) records come in patient and date order: ``first`` is then
    the place of the chunk in that order, ``positions`` the input position of each item (its
    ``record``), and ``derived`` the history-derived counters of each item
    (:class:`payerpolicy.history.Derived` or None), worked out by the parent process.
    """

    first: int
    items: tuple[tuple[str, str, Any], ...]
    positions: tuple[int, ...] = ()
    derived: tuple[Any, ...] = ()


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
    repairs: collections.Counter[str] = attrs.field(factory=collections.Counter)
    edits: collections.Counter[str] = attrs.field(factory=collections.Counter)

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
        self.repairs.update(other.repairs)
        self.edits.update(other.edits)

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
        self.repairs.update(d.rule for d in outcome.differences if d.kind == "repair")
        self.edits.update(d.rule for d in outcome.differences if d.kind == "edit")
        return units, denials, not_billable

    def to_mapping(self) -> dict[str, Any]:
        """JSON-ready form (state file, ``--summary --format json``)."""
        data = attrs.asdict(self)
        data["findings"] = dict(sorted(self.findings.items()))
        data["repairs"] = dict(sorted(self.repairs.items()))
        data["edits"] = dict(sorted(self.edits.items()))
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PayerStats:
        """Inverse of :meth:`to_mapping`."""
        values = dict(data)
        values["findings"] = collections.Counter(values.get("findings", {}))
        values["repairs"] = collections.Counter(values.get("repairs", {}))
        values["edits"] = collections.Counter(values.get("edits", {}))
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
    #: With claim history: ``(encounter id, payer, lines on the claim)`` of each outcome, recorded with the visits.
    claims: tuple[tuple[str, str, tuple[VisitLine, ...]], ...] = ()


def part_suffix(output: OutputFormat) -> str:
    """The extension of a part file: ``jsonl`` (the rows' own bytes) or ``arrow`` (Parquet output's rows).

    A Parquet run keeps its parts as Arrow IPC files with zstd-compressed buffers: the parent writes
    the rows into the one Parquet file of the run as they complete, and a part is only the copy that
    survives a crash (a Parquet file cannot be read back before its footer is written). Arrow IPC is
    about twice as cheap to write as Parquet and several times cheaper to read back.
    """
    return "jsonl" if output == "jsonl" else "arrow"


def write_part(path: Path, data: Any, output: OutputFormat, tmp: Path | None = None) -> None:
    """Write a part file's rows under a temporary name (``tmp``, default ``PATH.tmp``), then rename it to ``path``.

    JSON Lines parts hold the rows' bytes; Parquet output's parts an Arrow IPC file of the rows'
    table (:func:`part_suffix`). Both are flushed to disk before the rename. Used by the parent
    and by Dask workers that write their own parts (``--scheduler`` with shared storage).
    """
    tmp = tmp if tmp is not None else path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        if output == "parquet":
            pa = _pyarrow(path, writing=True)
            options = pa.ipc.IpcWriteOptions(compression="zstd")
            with pa.ipc.new_file(f, data.schema, options=options) as writer:
                writer.write_table(data)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_part(path: Path) -> Any:
    """The rows' table of a Parquet run's part (:func:`write_part`); a part of an earlier version is Parquet."""
    pa = _pyarrow(path)
    if path.suffix == ".parquet":
        return pa.parquet.read_table(path, schema=_parquet_schema())
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


# ------------------------------------------------------------------------------------------------
# Evaluation (runs in worker processes and on Dask workers)


@functools.cache
def process_engine(strict: bool = False) -> Any:
    """The engine of this process, built on first use and kept (one per worker, not per chunk)."""
    from ..evaluation.engine import Engine
    from ..evaluation.manager import PluginHost

    return Engine(PluginHost(strict=strict))


_frozen = False


def _freeze_once() -> None:
    """After a worker process's first chunk: the engine's policies and tables leave the collector's view.

    They live as long as the process; a full collection would otherwise walk all of them again and
    again (``gc.freeze``). One collection first, so that no garbage of the chunk is kept. Only in
    worker processes (process pool, Dask): a program that calls :func:`evaluate_chunk` itself keeps
    its collector as it is.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def _decode(source: str, kind: str, payload: Any) -> tuple[Any, str | None]:
    """The raw data of one record and, when readable, its ``id``; raises EncounterError."""
    if kind == "json":
        data = parse_json(payload, source, one_line=True)
    elif kind == "file":
        data = read_encounter_data(payload)
    elif kind == "x12error":
        raise EncounterError(payload["field"], payload["message"])
    else:
        data = payload
        check_text(data)
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

    With claim history, records come in patient and date order and a chunk never splits one
    patient's date of service: the lines each outcome puts on the claim are handed to the later
    same-day records of the chunk (NCCI PTP and MUE across claims) and returned in ``claims``.
    """
    eng = engine if engine is not None else process_engine(strict)
    stats = {p: PayerStats() for p in payers}
    rows = _Rows(typed=output == "parquet")
    invalid = 0
    evaluated: dict[str, dict[str, tuple[VisitLine, ...]]] = {}
    claims: list[tuple[str, str, tuple[VisitLine, ...]]] = []
    for offset, (source, kind, payload) in enumerate(chunk.items):
        record = chunk.positions[offset] if chunk.positions else chunk.first + offset
        derived = chunk.derived[offset] if chunk.derived else None
        ident: str | None = None
        try:
            data, ident = _decode(source, kind, payload)
            encounter = apply_history(Encounter.from_mapping(data, catalogue=eng.catalogue), derived)
        except EncounterError as exc:
            invalid += 1
            err = exc if exc.file else exc.with_file(source)
            rows.add(record, source, ident, None, None, _error(err.field, err.message, str(err)))
            continue
        except Exception as exc:  # a record that cannot be read at all must not stop the run
            invalid += 1
            message = f"the record cannot be read ({type(exc).__name__})"
            rows.add(record, source, None, None, None, _error("", message, f"{source}: {message}"))
            continue
        visit = derived.visit if derived is not None else None
        for payer in payers:
            same_day, same_day_trace = same_day_claims(derived, payer, evaluated)
            try:
                # the trace is built only when the rows keep it (--trace); an engine of the
                # caller's own may override evaluate without ``trace`` and is asked as before
                untraced = {} if trace or engine is not None else {"trace": False}
                outcome = (
                    eng.evaluate(encounter, payer, same_day=same_day, **untraced)
                    if same_day
                    else eng.evaluate(encounter, payer, **untraced)
                )
            except Exception as exc:  # one payer's failure must not lose the record for the others
                stats[payer].errors += 1
                text = (
                    f"{source}: payer {payer}: {exc}"
                    if isinstance(exc, PayerPolicyError)
                    else f"{source}: payer {payer}: internal error {type(exc).__name__}: {exc}"
                )
                rows.add(record, source, ident, payer, None, _error("", str(exc), text))
                continue
            outcome = with_trace(outcome, derived, same_day_trace)
            if visit is not None:
                lines = claim_lines(outcome, payer)
                evaluated.setdefault(visit.encounter, {})[payer] = lines
                claims.append((visit.encounter, payer, lines))
            figures = stats[payer].count(outcome)
            data = outcome.to_mapping(trace=trace)
            rows.add(record, source, outcome.encounter, payer, data, None, figures)
    encoded: Any = rows.parquet() if output == "parquet" else rows.jsonl()
    if engine is None and multiprocessing.parent_process() is not None:  # a worker process of a batch run
        _freeze_once()
    return ChunkResult(chunk.first, len(chunk.items), invalid, rows.count, encoded, stats, tuple(claims))


#: The standard library's compact encoder: the reference the fast one must match byte for byte.
dumps_reference = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _fast_encoder() -> Callable[[Any], str]:
    """Orjson when installed (about 7x faster on outcomes; same text), else the reference encoder.

    orjson is used rather than msgspec because it encodes the plain dicts and lists that
    ``Outcome.to_mapping`` already builds, with no schema to declare, and its compact output is
    the reference's byte for byte for those values (tests/batch/test_encoding.py proves it on
    every case file and thousands of synthetic outcomes). A value orjson refuses (an integer over
    64 bits, a type of a plugin's own) falls back to the reference encoder.
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - a platform without orjson wheels
        return dumps_reference
    fast = orjson.dumps

    def dumps(value: Any) -> str:
        try:
            return fast(value).decode("utf-8")
        except TypeError:
            return dumps_reference(value)

    return dumps


#: Compact JSON text of a row's values (``ensure_ascii=False``, no spaces).
dumps_fast = _fast_encoder()


class _Rows:
    """The rows of a chunk, each encoded as soon as it is made (a chunk never holds outcome dicts).

    ``typed``: also gather the Parquet-only ``lines`` and ``findings`` columns (JSON Lines output
    has them inside the outcome and never builds them). They are gathered field by field — one flat
    list per struct field and the list offsets — and become Arrow arrays at once in :meth:`parquet`
    (converting a dict per line and finding was most of the cost of Parquet output).
    """

    def __init__(self, *, typed: bool = True) -> None:
        self.typed = typed
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
        self.lines = _Nested(_LINE_FIELDS)
        self.findings = _Nested(_FINDING_FIELDS)

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
        c["outcome"].append(None if outcome is None else dumps_fast(outcome))
        c["error"].append(None if error is None else dumps_fast(error))
        units, denials, not_billable = figures if figures is not None else (None, None, None)
        c["billable_units"].append(units)
        c["expected_denials"].append(denials)
        c["not_billable"].append(not_billable)
        if self.typed:
            self.lines.add(None if outcome is None else outcome["lines"])
            self.findings.add(None if outcome is None else outcome["findings"])

    def jsonl(self) -> bytes:
        """The rows as JSON Lines (the outcome and error JSON spliced in, not encoded twice).

        The typed columns (figures, ``lines``, ``findings``) are Parquet's only: in JSON Lines the
        outcome itself holds them.
        """
        c = self.columns
        out = []
        for i in range(self.count):
            out.append(
                f'{{"record":{c["record"][i]},"source":{dumps_fast(c["source"][i])},"encounter":{dumps_fast(c["encounter"][i])},'
                f'"payer":{dumps_fast(c["payer"][i])},"outcome":{c["outcome"][i] or "null"},"error":{c["error"][i] or "null"}}}\n'
            )
        return "".join(out).encode("utf-8")

    def parquet(self) -> Any:
        """The rows as an Arrow table of the Parquet schema."""
        pa = _pyarrow(writing=True)
        schema = _parquet_schema()
        arrays = [pa.array(self.columns[name], type=schema.field(name).type) for name in self.columns]
        arrays.append(self.lines.array(pa, schema.field("lines").type))
        arrays.append(self.findings.array(pa, schema.field("findings").type))
        return pa.Table.from_arrays(arrays, schema=schema)


#: The ``lines`` column's struct fields: (the outcome line's key, the value put for a missing or empty one; None: none).
_LINE_FIELDS: tuple[tuple[str, Any], ...] = (
    ("code", None),
    ("units", None),
    ("modifiers", None),
    ("status", None),
    ("minutes", None),
    ("origin", None),
    ("service", None),
    ("diagnosis_pointers", []),
)
#: The ``findings`` column's struct fields, the same way (rule, source and plugin: "" when missing).
_FINDING_FIELDS: tuple[tuple[str, Any], ...] = (
    ("code", None),
    ("severity", None),
    ("rule", ""),
    ("source", ""),
    ("line", None),
    ("plugin", ""),
    ("message", None),
)


class _Nested:
    """A list<struct> column gathered field by field: one flat list per field, list offsets, nulls."""

    def __init__(self, fields: tuple[tuple[str, Any], ...]) -> None:
        self.fields = fields
        self.values: list[list[Any]] = [[] for _ in fields]
        self.offsets = [0]
        self.null: list[bool] = []

    def add(self, items: list[dict[str, Any]] | None) -> None:
        """Add one row's list (None: a null list, the row of an error)."""
        self.null.append(items is None)
        if items:
            for values, (name, default) in zip(self.values, self.fields, strict=True):
                if default is None:
                    values.extend([item.get(name) for item in items])
                else:
                    values.extend([item.get(name) or default for item in items])
        self.offsets.append(len(self.values[0]))

    def array(self, pa: Any, kind: Any) -> Any:
        """The column as an Arrow list<struct> array of type ``kind``."""
        struct = kind.value_type
        children = [pa.array(values, type=struct.field(i).type) for i, values in enumerate(self.values)]
        items = pa.StructArray.from_arrays(children, fields=list(struct))
        mask = pa.array(self.null, type=pa.bool_()) if any(self.null) else None
        return pa.ListArray.from_arrays(pa.array(self.offsets, type=pa.int32()), items, type=kind, mask=mask)


def _parquet_schema() -> Any:
    """The Arrow schema of batch Parquet output (documented in docs/batch.md, "Parquet columns").

    ``outcome`` and ``error`` hold the JSON (the full outcome, format v1); ``lines`` and
    ``findings`` hold the same lines and findings as typed lists of structs, so a query engine
    (DuckDB, Spark, pandas) reads them without parsing JSON. Parquet stores the repeated strings
    (payer, codes, statuses, finding codes, rules, sources) dictionary-encoded.
    """
    pa = _pyarrow()
    line = pa.struct(
        [
            ("code", pa.string()),
            ("units", pa.int32()),
            ("modifiers", pa.list_(pa.string())),
            ("status", pa.string()),
            ("minutes", pa.int32()),
            ("origin", pa.string()),
            ("service", pa.int32()),
            ("diagnosis_pointers", pa.list_(pa.int32())),
        ]
    )
    finding = pa.struct(
        [
            ("code", pa.string()),
            ("severity", pa.string()),
            ("rule", pa.string()),
            ("source", pa.string()),
            ("line", pa.int32()),
            ("plugin", pa.string()),
            ("message", pa.string()),
        ]
    )
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
            ("lines", pa.list_(line)),
            ("findings", pa.list_(finding)),
        ]
    )


def _pyarrow(path: Path | None = None, *, writing: bool = False) -> Any:
    where = f"{path}: " if path is not None else ""
    doing = "writing" if writing else "reading"
    try:
        import pyarrow
        import pyarrow.ipc
        import pyarrow.parquet
    except ImportError:
        raise PayerPolicyError(
            f"{where}{doing} Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"
        ) from None
    return pyarrow
