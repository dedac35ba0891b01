"""Reading batch input: JSON Lines, a directory of encounter files, or Parquet, as numbered records and chunks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _iter_parquet(path: Path, skip: int) -> Iterator[tuple[int, str, str, Any]]:
    pa = _pyarrow(path)
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
