"""Running batches on a Dask cluster (optional extra ``payerpolicy[dask]``).

Two ways in:

* ``payerpolicy batch INPUT --out OUT --scheduler tcp://host:8786`` (or :func:`payerpolicy.batch.run_batch`
  with ``scheduler=``): the same chunks, part files, resume and counts as a single-machine run; the
  chunks are evaluated on the cluster's workers and the output is the same, row for row.
* A Python API over collections you already have::

      import dask.bag as db
      from payerpolicy.batch.dask import evaluate_bag, evaluate_dataframe

      rows = evaluate_bag(db.read_text("visits-*.jsonl"), payers=["medicare", "aetna"])
      rows.map(lambda r: r["outcome"]["payer"]["id"] if r["outcome"] else None).frequencies().compute()

      table = evaluate_dataframe(ddf)          # ddf has a string column "encounter" (JSON)

Each worker process builds its engine once (:func:`payerpolicy.batch.process_engine`, a cached
function of an installed module), not once per partition or task. Rows have the batch row format
(:mod:`payerpolicy.batch`); ``record`` is the element's position in the whole collection (the
partitions' lengths are counted first) and ``source`` names the partition and the item in it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..evaluation.errors import PayerPolicyError
from .chunks import Chunk, ChunkResult, OutputFormat, evaluate_chunk, process_engine

__all__ = ["evaluate_bag", "evaluate_dataframe", "run_chunks_on_dask"]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise PayerPolicyError("running on Dask needs dask.distributed: pip install 'payerpolicy[dask]'") from None
    return distributed


def _client(scheduler: Any) -> tuple[Any, bool]:
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        return distributed.Client(scheduler, timeout="20s"), True
    except OSError as exc:
        raise PayerPolicyError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


def run_chunks_on_dask(
    scheduler: Any, chunks: Iterable[Chunk], job: Callable[[Chunk], ChunkResult]
) -> Iterator[ChunkResult]:
    """Evaluate ``chunks`` on a Dask cluster; yield the results in input order.

    A bounded number of chunks is in flight (twice the cluster's threads), so the driver's memory
    stays flat. Tasks are pure, so a worker that dies has its tasks re-run elsewhere by Dask.
    """
    client, owned = _client(scheduler)
    try:
        threads = sum(client.nthreads().values()) or 1
        window = 2 * threads
        pending: collections.deque[Any] = collections.deque()
        for chunk in chunks:
            pending.append(client.submit(job, chunk, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if owned:
            client.close()


_COLUMNS = ("record", "source", "encounter", "payer", "outcome", "error")


def _partition_result(
    items: Sequence[Any],
    number: int,
    first: int,
    payers: Sequence[str] | None,
    trace: bool,
    strict: bool,
    output: OutputFormat,
) -> ChunkResult:
    engine = process_engine(strict)
    ids = list(payers) if payers else sorted(engine.payer_ids, key=lambda p: (p != "commercial", p))
    chunk_items = tuple(
        (f"partition {number} item {i}", "json" if isinstance(item, str | bytes) else "data", item)
        for i, item in enumerate(items)
    )
    return evaluate_chunk(Chunk(first, chunk_items), ids, output=output, trace=trace, strict=strict, engine=engine)


def _offsets(lengths: Sequence[int]) -> list[int]:
    """The global position of each partition's first record, from the partitions' lengths."""
    out, total = [], 0
    for n in lengths:
        out.append(total)
        total += int(n)
    return out


def _rows_of_partition(
    items: Iterable[Any], where: Sequence[tuple[int, int]], payers: Sequence[str] | None, trace: bool, strict: bool
) -> list[dict[str, Any]]:
    import json

    ((number, first),) = where  # one (partition number, first record) per partition of the companion bag
    result = _partition_result(list(items), number, first, payers, trace, strict, "jsonl")
    return [json.loads(line) for line in result.data.decode("utf-8").splitlines()]


def evaluate_bag(bag: Any, payers: Sequence[str] | None = None, *, trace: bool = False, strict: bool = False) -> Any:
    """A Dask bag of encounters (mappings or JSON text) -> a bag of batch rows (dicts).

    Every element gives one row per payer, or one error row when it is not a valid encounter.
    ``record`` is the element's position in the whole bag (0-based), as in ``payerpolicy batch``;
    to number them, the partitions' lengths are counted first (one pass over the bag).
    Each partition of the result is one partition of ``bag`` (``Bag.map_partitions``).
    """
    import dask.bag

    bags: Any = dask.bag  # untyped library: one Any, not an untyped call in typed code
    lengths = bag.map_partitions(lambda part: [sum(1 for _ in part)]).compute()
    where = bags.from_sequence(list(enumerate(_offsets(lengths))), npartitions=bag.npartitions)
    return bag.map_partitions(_rows_of_partition, where, payers, trace, strict)


def _frame(columns: Mapping[str, list[Any]], index: Any = None) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            name: pd.Series(columns.get(name, []), dtype="int64" if name == "record" else "object", index=index)
            for name in _COLUMNS
        },
        index=index,
    )


_POSITION = "__payerpolicy_record__"


def _frame_of_partition(
    frame: Any, payers: Sequence[str] | None, trace: bool, strict: bool, column: str, partition_info: Any = None
) -> Any:
    import pandas as pd

    number = partition_info["number"] if partition_info else 0
    first = int(frame[_POSITION].iloc[0]) if len(frame) else 0
    result = _partition_result(list(frame[column]), number, first, payers, trace, strict, "parquet")
    columns = result.data.select(list(_COLUMNS)).to_pydict()  # outcome and error are JSON text already
    # Each row keeps the index label of the encounter it came from, so the input's divisions stay true.
    labels = pd.Index(frame.index[[r - first for r in columns["record"]]], name=frame.index.name)
    return _frame(columns, index=labels)


def evaluate_dataframe(
    frame: Any,
    payers: Sequence[str] | None = None,
    *,
    column: str = "encounter",
    trace: bool = False,
    strict: bool = False,
) -> Any:
    """A Dask dataframe with a column of encounter JSON text -> a dataframe of batch rows.

    The result has the columns ``record, source, encounter, payer, outcome, error``; ``outcome``
    and ``error`` hold JSON text, as in the Parquet output of ``payerpolicy batch``. ``record`` is
    the encounter's position in the whole frame (0-based, a cumulative count across partitions,
    so it stays right when ``.loc`` or other selections skip partitions). Each row keeps the index
    label of its encounter, so the result has the input's divisions and ``.loc`` on it selects
    the rows of those encounters.
    """
    if column not in frame.columns:
        raise PayerPolicyError(
            f"the dataframe has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    numbered = frame[[column]].assign(**{_POSITION: 1})
    numbered = numbered.assign(**{_POSITION: numbered[_POSITION].cumsum() - 1})
    meta = _frame({}, index=frame._meta.index[:0])
    return numbered.map_partitions(_frame_of_partition, payers, trace, strict, column, meta=meta)
