"""Running batches on a Dask cluster (optional extra ``payerpolicy[dask]``).

Two ways in:

* ``payerpolicy batch INPUT --out OUT --scheduler tcp://host:8786`` (or :func:`payerpolicy.batch.run_batch`
  with ``scheduler=``): the same chunks, resume and counts as a single-machine run, and the same
  output, byte for byte. When ``OUT.partial/`` is on storage the driver and the workers share
  (:func:`shared_storage`), each task reads its own slice of the input
  (:class:`~payerpolicy.batch.records.ChunkSlice`), writes its own part and returns only a
  :class:`PartReport` (:func:`evaluate_slice_to_part`); otherwise the driver reads the records and
  writes the parts the workers return.
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
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..evaluation.errors import PayerPolicyError
from .chunks import Chunk, ChunkResult, OutputFormat, evaluate_chunk, process_engine, write_part
from .records import ChunkSlice, read_slice

__all__ = [
    "PartReport",
    "connect",
    "evaluate_bag",
    "evaluate_dataframe",
    "evaluate_slice_to_part",
    "run_chunks_on_dask",
    "shared_storage",
]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise PayerPolicyError("running on Dask needs dask.distributed: pip install 'payerpolicy[dask]'") from None
    return distributed


def connect(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` (an address or a Client) and whether this call made it."""
    return _client(scheduler)


def _client(scheduler: Any) -> tuple[Any, bool]:
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    try:
        return distributed.Client(scheduler, timeout="20s"), True
    except OSError as exc:
        raise PayerPolicyError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None


_T = TypeVar("_T")
_R = TypeVar("_R")


def run_chunks_on_dask(scheduler: Any, chunks: Iterable[_T], job: Callable[[_T], _R]) -> Iterator[_R]:
    """Run ``job`` over ``chunks`` on a Dask cluster; yield the results in input order.

    A bounded number of chunks is in flight (twice the cluster's threads), so the driver's memory
    stays flat. Tasks are pure, so a worker that dies has its tasks re-run elsewhere by Dask. When
    the caller stops early (an error), the tasks still in flight are cancelled.
    """
    client, owned = connect(scheduler)
    pending: collections.deque[Any] = collections.deque()
    try:
        threads = sum(client.nthreads().values()) or 1
        window = 2 * threads
        for chunk in chunks:
            pending.append(client.submit(job, chunk, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if pending:
            client.cancel(list(pending))
        if owned:
            client.close()


#: ``PAYERPOLICY_DASK_SHARED=0``: workers never write parts themselves (the driver reads and writes, as before 0.2.0).
SHARED_ENV = "PAYERPOLICY_DASK_SHARED"


def _probe(directory: str, source: str, token: str) -> str | None:
    """On a worker: leave a file in ``directory`` and check ``source`` is readable; the file's name, or None."""
    name = f".probe-{token}-{os.getpid()}-{threading.get_ident()}"
    try:
        if not os.access(source, os.R_OK):
            return None
        with open(os.path.join(directory, name), "wb") as f:
            f.write(token.encode())
    except OSError:
        return None
    return name


def shared_storage(client: Any, directory: Path, source: Path) -> bool:
    """Whether every worker reads ``source`` and writes into ``directory`` as this process sees them.

    Each worker leaves a probe file in ``directory``; the storage is shared when this process sees
    every one of them (they are removed again). ``PAYERPOLICY_DASK_SHARED=0`` answers no without asking.
    """
    if os.environ.get(SHARED_ENV, "").strip().lower() in ("0", "no", "false", "off"):
        return False
    token = uuid.uuid4().hex
    # A worker that is going away as we ask (killed, its nanny starting another) cannot answer; the
    # ones that can decide. Its replacement is a new process of the same deployment.
    answers = client.run(_probe, str(directory.resolve()), str(source.resolve()), token, on_error="return")
    names = [n for n in answers.values() if not isinstance(n, BaseException)]
    try:
        return bool(names) and all(isinstance(n, str) and (directory / n).is_file() for n in names)
    finally:
        for n in names:
            if isinstance(n, str):
                with contextlib.suppress(OSError):
                    (directory / n).unlink()


@attrs.frozen
class PartReport:
    """What a worker that wrote its own part sends back: the part's name, size and hash, and its counts.

    ``result`` is the chunk's :class:`ChunkResult` without its rows (``data`` is None).
    """

    file: str
    size: int
    sha256: str
    result: ChunkResult


def evaluate_slice_to_part(
    named: tuple[str, ChunkSlice],
    directory: str,
    payers: Sequence[str],
    output: OutputFormat,
    trace: bool,
    strict: bool,
) -> PartReport:
    """On a worker: read a slice of the input, evaluate it, write its part into ``directory``; report.

    The part is written under a name of its own (``PART.<random>.tmp``) and renamed when complete,
    so a worker that dies mid-part leaves only a temporary file (removed by ``--resume`` and at the
    end of the run), and two attempts at the same part (Dask re-running a task) never mix their
    bytes. A Parquet run's part is an Arrow IPC file; the driver writes its rows into the run's one
    Parquet output as it journals the part.
    """
    name, piece = named
    result = evaluate_chunk(read_slice(piece), payers, output=output, trace=trace, strict=strict)
    path = Path(directory) / name
    tmp = path.with_name(f"{name}.{uuid.uuid4().hex}.tmp")
    try:
        write_part(path, result.data, output, tmp)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        size = path.stat().st_size
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return PartReport(name, size, digest.hexdigest(), attrs.evolve(result, data=None))


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
