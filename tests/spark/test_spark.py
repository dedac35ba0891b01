"""The Spark recipe of docs/batch.md: mapInArrow over the batch chunk function gives the rows of `payerpolicy batch`.

Run for real by `nox -s spark` (which installs pyspark; Spark needs a Java 17 runtime); skipped
elsewhere when pyspark is absent, unless $PAYERPOLICY_REQUIRE_SPARK is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.batch.synth import encounters

try:
    import pyspark  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("PAYERPOLICY_REQUIRE_SPARK"):
        raise
    pytest.skip("pyspark is not installed (nox -s spark installs it and runs these)", allow_module_level=True)

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

pytestmark = pytest.mark.spark
PAYERS = ["medicare", "aetna"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    # Python workers run this interpreter (the one payerpolicy is installed in); Spark talks on loopback only.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("payerpolicy-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_map_in_arrow_gives_the_rows_of_payerpolicy_batch(spark: Any, tmp_path: Path) -> None:
    from payerpolicy.batch.spark import evaluate_arrow_batches, spark_ddl

    visits = tmp_path / "visits.jsonl"
    lines = [json.dumps(v) for v in encounters(40, seed=9)]
    lines[7] = "{not json"
    visits.write_text("\n".join(lines) + "\n")
    run_batch(visits, tmp_path / "local.jsonl", PAYERS, workers=1)
    expected = list(read_rows(tmp_path / "local.jsonl"))

    frame = spark.read.text(str(visits)).withColumnRenamed("value", "encounter").coalesce(1)
    frame = frame.withColumn("record", F.monotonically_increasing_id())  # one partition: 0, 1, 2, ...
    rows = frame.mapInArrow(lambda it: evaluate_arrow_batches(it, PAYERS), spark_ddl()).orderBy("record").collect()

    assert len(rows) == len(expected) == 39 * 2 + 1
    got = sorted(((r["record"], r["payer"] or "", r["outcome"]) for r in rows), key=lambda t: (t[0], PAYERS.index(t[1]) if t[1] else -1))
    want = [(r["record"], r["payer"] or "", r["outcome"]) for r in expected]
    assert [(g[0], g[1]) for g in got] == [(w[0], w[1]) for w in want]
    assert [json.loads(g[2]) if g[2] else None for g in got] == [w[2] for w in want]
    # the typed columns arrive as Spark arrays of structs
    first = next(r for r in rows if r["payer"] == "medicare")
    assert [line["code"] for line in first["lines"]] == [x["code"] for x in json.loads(first["outcome"])["lines"]]
    bad = next(r for r in rows if r["error"])
    assert bad["record"] == 7 and bad["payer"] is None and "invalid JSON" in json.loads(bad["error"])["text"]


def test_spark_ddl_names_every_column() -> None:
    from payerpolicy.batch.spark import spark_ddl

    ddl = spark_ddl()
    assert ddl.startswith("record bigint, source string, encounter string, payer string, outcome string, error string")
    assert "lines array<struct<code: string, units: int, modifiers: array<string>" in ddl
    assert "findings array<struct<code: string, severity: string" in ddl
