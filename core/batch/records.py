"""Reading batch input: JSON Lines, a directory of encounter files, or Parquet, as numbered records and chunks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from ..evaluation.errors import PayerPolicyError
from .chunks import JSONL_SUFFIXES, Chunk, _pyarrow


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


def _parquet_items(rows: list[dict[str, Any]], single: bool, name: str, record: int) -> Iterator[tuple[int, str, str, Any]]:
    """The records of Parquet rows, the first of them at input position ``record``."""
    for row in rows:
        if single:
            yield record, f"{name}:row {record}", "json", row["encounter"] or ""
        else:
            yield record, f"{name}:row {record}", "data", _drop_nulls(row)
        record += 1


def _parquet_file(path: Path) -> Any:
    """``pyarrow.parquet.ParquetFile`` of ``path``; a file that is not Parquet is one line naming it."""
    pa = _pyarrow(path)
    try:
        return pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise PayerPolicyError(f"{path}: not a readable Parquet file ({exc})") from None


def _iter_parquet(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    name = _source_name(path)
    file = _parquet_file(path)
    record = 0
    for batch in file.iter_batches(batch_size=4096):
        if record + batch.num_rows <= skip:
            record += batch.num_rows
            continue
        single = batch.schema.names == ["encounter"]
        ahead = max(skip - record, 0)
        yield from _parquet_items(batch.slice(ahead).to_pylist(), single, name, record + ahead)
        record += batch.num_rows


#: An X12 837P: every claim of it is one record.
X12_SUFFIXES = (".x12", ".edi", ".837")


def _iter_x12(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    """One record per 837P claim: its encounter mapping as billed, or the claim's error.

    The envelope is checked before the first claim (a problem there stops the run, exit 2). The
    facts the billed modifiers state fill the care fields the 837P cannot carry (docs/scrub.md).
    """
    from ..formats.claim_facts import claim_facts
    from ..formats.x12_in import ClaimError, read_837p

    name = _source_name(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PayerPolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for claim in read_837p(data, source=str(path)):
        if claim.position < skip:
            continue
        if isinstance(claim, ClaimError):
            element = f", {claim.element}" if claim.element else ""
            field = f"{claim.segment_id} segment {claim.segment}{element}"
            yield claim.position, f"{name}:claim {claim.position + 1}", "x12error", {"field": field, "message": str(claim)}
            continue
        mapping, _ = claim_facts(claim.encounter)
        yield claim.position, f"{name}:claim {claim.position + 1} ({claim.claim_id})", "data", mapping


def input_kind(path: Path) -> str:
    """``jsonl``, ``directory``, ``parquet`` or ``x12``; a clear error for anything else."""
    if path.is_dir():
        return "directory"
    if not path.exists():
        raise PayerPolicyError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    if suffix in X12_SUFFIXES:
        return "x12"
    raise PayerPolicyError(
        f"{path}: expected JSON Lines (.jsonl, .ndjson), Parquet (.parquet), an X12 837P (.x12, .edi, .837)"
        " or a directory of .json/.toml encounters"
    )


def iter_records(path: Path, skip: int = 0) -> Iterator[tuple[int, str, str, Any]]:
    """Yield ``(position, source, kind, payload)`` for every record of the input, from ``skip`` on."""
    kind = input_kind(path)
    if kind == "directory":
        return _iter_directory(path, skip)
    if kind == "parquet":
        return _iter_parquet(path, skip)
    if kind == "x12":
        return _iter_x12(path, skip)
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
# Slices: chunks described by where their records are, read by the worker that evaluates them


@attrs.frozen
class ChunkSlice:
    """Where a chunk's records are, for a worker to read them itself (``--scheduler``).

    ``kind`` ``jsonl``: the lines of ``path`` in the byte range ``start``..``end``, the first of
    them line ``line`` of the file; ``parquet``: rows ``first``..``first + count`` of ``path``
    (the worker reads only the row groups that hold them); ``chunk``: the records themselves in
    ``chunk`` (a directory's file names, an X12 file's claims). ``first`` is the input position
    of the first record and ``count`` the number of records, so the rows are numbered exactly as
    in a run on one machine.
    """

    kind: Literal["jsonl", "parquet", "chunk"]
    path: str
    first: int
    count: int
    start: int = 0
    end: int = 0
    line: int = 0
    chunk: Chunk | None = None


def _jsonl_slices(path: Path, size: int, skip: int) -> Iterator[ChunkSlice]:
    """Slices of a JSON Lines file: newline offsets only, no JSON parsed, no record kept."""
    where = str(path)
    record = 0
    first = start = line = end = count = 0
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            here = offset
            offset += len(raw)
            if not raw.strip():
                continue
            if record >= skip:
                if count == 0:
                    first, start, line = record, here, lineno
                count += 1
                end = offset
                if count >= size:
                    yield ChunkSlice("jsonl", where, first, count, start, end, line)
                    count = 0
            record += 1
    if count:
        yield ChunkSlice("jsonl", where, first, count, start, end, line)


def _parquet_slices(path: Path, size: int, skip: int) -> Iterator[ChunkSlice]:
    """Slices of a Parquet file from its metadata (the row count), no row read."""
    rows = _parquet_file(path).metadata.num_rows
    for first in range(skip, rows, size):
        yield ChunkSlice("parquet", str(path), first, min(size, rows - first))


def iter_slices(path: Path, size: int, skip: int = 0) -> Iterator[ChunkSlice]:
    """The chunks of :func:`iter_chunks` as slices a worker reads itself (same records, same numbers).

    ``path`` should be absolute, as the workers see it. JSON Lines and Parquet give descriptors
    (the driver reads newline offsets or metadata only); a directory gives its file names and an
    X12 file its claims (parsed here: one 837P is one interchange), as chunks.
    """
    kind = input_kind(path)
    if kind == "jsonl":
        return _jsonl_slices(path, size, skip)
    if kind == "parquet":
        return _parquet_slices(path, size, skip)
    return (ChunkSlice("chunk", str(path), c.first, len(c.items), chunk=c) for c in iter_chunks(path, size, skip))


def _changed(path: Path) -> PayerPolicyError:
    return PayerPolicyError(f"{path}: the input changed while the run was reading it; run again with --resume")


def read_slice(piece: ChunkSlice) -> Chunk:
    """The chunk a slice describes, read from the input (on the worker that evaluates it)."""
    if piece.chunk is not None:
        return piece.chunk
    path = Path(piece.path)
    items: list[tuple[str, str, Any]] = []
    if piece.kind == "jsonl":
        name = _source_name(path)
        try:
            with open(path, "rb") as f:
                f.seek(piece.start)
                data = f.read(piece.end - piece.start)
        except OSError as exc:
            raise PayerPolicyError(f"{path}: cannot read: {exc.strerror or exc}") from None
        for lineno, raw in enumerate(io.BytesIO(data), piece.line):
            if raw.strip():
                items.append((f"{name}:{lineno}", "json", raw))
    else:
        name = _source_name(path)
        file = _parquet_file(path)
        stop = piece.first + piece.count
        top = 0
        for group in range(file.metadata.num_row_groups):
            rows = file.metadata.row_group(group).num_rows
            low, high = max(piece.first, top), min(stop, top + rows)
            if low < high:
                table = file.read_row_group(group).slice(low - top, high - low)
                single = table.schema.names == ["encounter"]
                items.extend((s, k, p) for _, s, k, p in _parquet_items(table.to_pylist(), single, name, low))
            top += rows
    if len(items) != piece.count:
        raise _changed(path)
    return Chunk(piece.first, tuple(items))
