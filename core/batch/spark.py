"""Running batches on Apache Spark through ``mapInArrow`` (no extra of payerpolicy's own).

Spark hands each task a stream of Arrow record batches; :func:`evaluate_arrow_batches` evaluates
them with the same chunk function as ``payerpolicy batch`` and Dask, and yields batches of the
batch Parquet schema (docs/batch.md, "Parquet columns"). Spark needs that schema as DDL text,
which :func:`spark_ddl` gives::

    from pyspark.sql import functions as F
    from payerpolicy.batch.spark import evaluate_arrow_batches, spark_ddl

    visits = spark.read.text("visits/*.jsonl").withColumnRenamed("value", "encounter")
    visits = visits.withColumn("record", F.monotonically_increasing_id())   # optional
    rows = visits.mapInArrow(lambda it: evaluate_arrow_batches(it, ["medicare", "aetna"]), spark_ddl())
    rows.write.parquet("out/")

A ``record`` column in the input (an integer per encounter, e.g. Spark's
``monotonically_increasing_id()``) becomes each row's ``record``; without one, ``record`` is the
encounter's position in its Arrow batch. Every executor builds its engine once per Python worker
(:func:`payerpolicy.batch.process_engine`). Tested by ``nox -s spark`` (tests/spark/).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..evaluation.errors import PayerPolicyError
from .chunks import Chunk, _parquet_schema, _pyarrow, evaluate_chunk, process_engine

__all__ = ["evaluate_arrow_batches", "spark_ddl"]


def evaluate_arrow_batches(
    batches: Iterable[Any],
    payers: Sequence[str] | None = None,
    *,
    column: str = "encounter",
    trace: bool = False,
    strict: bool = False,
) -> Iterator[Any]:
    """Arrow record batches with a string column of encounter JSON -> batches of batch rows.

    One output batch per input batch, in the batch Parquet schema; a record that is not a valid
    encounter gives an error row, as in ``payerpolicy batch``. Raises :class:`PayerPolicyError`
    when the input has no ``column``.
    """
    pa = _pyarrow()
    engine = process_engine(strict)
    ids = list(payers) if payers else sorted(engine.payer_ids, key=lambda p: (p != "commercial", p))
    for batch in batches:
        if column not in batch.schema.names:
            raise PayerPolicyError(f"the input has no column {column!r} (columns: {', '.join(batch.schema.names)})")
        texts = batch.column(column).to_pylist()
        numbers = batch.column("record").to_pylist() if "record" in batch.schema.names else list(range(len(texts)))
        items = tuple(
            (f"record {numbers[i]}", "json", text if text is not None else "null") for i, text in enumerate(texts)
        )
        table = evaluate_chunk(Chunk(0, items), ids, output="parquet", trace=trace, strict=strict, engine=engine).data
        records = pa.array([numbers[r] for r in table.column("record").to_pylist()], type=pa.int64())
        yield from table.set_column(0, pa.field("record", pa.int64()), records).to_batches()


def _ddl(arrow_type: Any) -> str:
    pa = _pyarrow()
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_int32(arrow_type):
        return "int"
    if pa.types.is_list(arrow_type):
        return f"array<{_ddl(arrow_type.value_type)}>"
    if pa.types.is_struct(arrow_type):
        fields = ", ".join(f"{arrow_type.field(i).name}: {_ddl(arrow_type.field(i).type)}" for i in range(arrow_type.num_fields))
        return f"struct<{fields}>"
    raise TypeError(f"no Spark type for {arrow_type}")  # pragma: no cover - the schema uses only the types above


def spark_ddl() -> str:
    """The batch Parquet schema as Spark DDL text, for ``mapInArrow``'s schema argument."""
    return ", ".join(f"{field.name} {_ddl(field.type)}" for field in _parquet_schema())
