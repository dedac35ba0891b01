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
journal ``parts.jsonl`` (one line appended and flushed per complete part). Parquet output has one
writer in the parent: each part's rows go into ``OUT.partial/output.parquet`` as the part is
journalled, and the end of the run closes it and renames it to ``OUT``; JSON Lines parts are joined
into ``OUT`` when every record is done. Either way a file named ``OUT`` is always complete.
``--resume`` continues an interrupted run from its last complete part (a Parquet run first writes
the journalled parts into a new output file): nothing is duplicated or dropped.

Work is spread over processes (every core by default) in chunks; each process builds its engine
once (:func:`process_engine`). With ``scheduler=`` (a ``dask.distributed`` scheduler address or
``Client``) the same chunks run on a Dask cluster instead (see :mod:`payerpolicy.dask`).

Layer: above the evaluation core and the formats (it reads encounters with
:mod:`payerpolicy.formats.io` and evaluates them with :class:`payerpolicy.evaluation.engine.Engine`);
below the views (the report reads batch output) and the CLI. Modules: ``records`` (input),
``chunks`` (evaluation of one chunk, in any worker), ``runner`` (the run: parts, journal, resume,
processes or Dask), ``output`` (reading output back, the summary), ``dask`` (Dask bag/dataframe APIs
and the scheduler path; imports ``chunks`` only), ``synth`` (synthetic encounters for benchmarks).
"""

from __future__ import annotations

from .chunks import Chunk, ChunkResult, OutputFormat, PayerStats, evaluate_chunk, process_engine
from .output import iter_output, read_rows, render_summary, summary_mapping
from .records import input_kind, iter_chunks, iter_records
from .runner import BatchCounts, BatchResult, output_format, run_batch

__all__ = [
    "BatchCounts",
    "BatchResult",
    "Chunk",
    "ChunkResult",
    "OutputFormat",
    "PayerStats",
    "evaluate_chunk",
    "input_kind",
    "iter_chunks",
    "iter_output",
    "iter_records",
    "output_format",
    "process_engine",
    "read_rows",
    "render_summary",
    "run_batch",
    "summary_mapping",
]
