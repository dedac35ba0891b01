"""Reading batch output back (JSON Lines or Parquet) and the end-of-run summary."""

from __future__ import annotations

import collections
import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..evaluation.errors import PayerPolicyError
from ..evaluation.wording import plural
from .chunks import _pyarrow
from .runner import BatchResult

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
    encounters = "encounter" if result.counts.read == 1 else "encounters"
    buf.write(f"summary — {result.counts.read:,} {encounters} × {plural(len(payers), 'payer')}\n")
    for r in [headers, *rows][:8]:
        buf.write(
            "  "
            + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()
            + "\n"
        )
    buf.write(f"  findings by code (top {len(shown)} of {len(ranked)}):\n")
    for r in rows[7:]:
        buf.write(
            "  "
            + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()
            + "\n"
        )
    for kind in ("repairs", "edits"):
        by_rule = collections.Counter[str]()
        for st in stats:
            by_rule.update(getattr(st, kind))
        if not by_rule:
            continue
        what = "repairs (a tool may apply)" if kind == "repairs" else "edits (a person decides)"
        buf.write(f"  claims as billed — {what}, by rule:\n")
        for rule, _ in by_rule.most_common(top):
            cells = [f"  {rule}", *(f"{getattr(st, kind).get(rule, 0):,}" for st in stats)]
            buf.write(
                "  "
                + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)).rstrip()
                + "\n"
            )
    return buf.getvalue().rstrip("\n")


def summary_mapping(result: BatchResult) -> dict[str, Any]:
    """``--summary --format json``: the counts and, per payer, the figures of :func:`render_summary`.

    ``counts`` holds :class:`BatchCounts`' fields plus ``error_rows``, ``rows`` and ``reconciled``;
    ``payers`` maps each payer id, in ``--payers`` order, to its :class:`PayerStats` (findings by
    code, sorted).
    """
    counts = result.counts
    return {
        "out": str(result.out),
        "counts": {
            "read": counts.read,
            "valid": counts.valid,
            "invalid": counts.invalid,
            "payers": counts.payers,
            "outcomes": counts.outcomes,
            "payer_errors": counts.payer_errors,
            "error_rows": counts.error_rows,
            "rows": counts.rows,
            "reconciled": counts.reconciled,
        },
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 3),
        "payers": {payer: stats.to_mapping() for payer, stats in result.stats.items()},
    }
