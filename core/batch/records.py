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
