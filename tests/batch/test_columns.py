"""The typed Parquet columns ``lines`` and ``findings``, gathered field by field, equal the reference.

The reference builds one dict per line and finding (``_line_struct``, ``_finding_struct``) and lets
pyarrow convert them; the batch gathers one flat list per struct field instead. Both must give the
same Arrow table — values, nulls (error rows) and empty lists — on every case file and thousands of
synthetic outcomes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.batch.chunks import _parquet_schema, _Rows
from payerpolicy.batch.synth import encounters
from payerpolicy.kit.testing import load_cases, run_case

pa = pytest.importorskip("pyarrow")

CASES = load_cases(Path(__file__).parents[1] / "cases")


def _line_struct(line: dict[str, Any]) -> dict[str, Any]:
    """One outcome line as the ``lines`` column's struct, as docs/batch.md ("Parquet columns") describes it."""
    return {
        "code": line["code"],
        "units": line["units"],
        "modifiers": line["modifiers"],
        "status": line["status"],
        "minutes": line.get("minutes"),
        "origin": line.get("origin"),
        "service": line.get("service"),
        "diagnosis_pointers": line.get("diagnosis_pointers") or [],
    }


def _finding_struct(finding: dict[str, Any]) -> dict[str, Any]:
    """One finding as the ``findings`` column's struct."""
    return {
        "code": finding["code"],
        "severity": finding["severity"],
        "rule": finding.get("rule") or "",
        "source": finding.get("source") or "",
        "line": finding.get("line"),
        "plugin": finding.get("plugin") or "",
        "message": finding["message"],
    }


def reference(rows: list[tuple[Any, ...]]) -> Any:
    """The table as the dict-per-struct conversion builds it."""
    columns: dict[str, list[Any]] = {name: [] for name in _parquet_schema().names}
    built = _Rows(typed=False)
    for row in rows:
        built.add(*row)
    for name, values in built.columns.items():
        columns[name] = values
    columns["lines"] = [None if r[4] is None else [_line_struct(x) for x in r[4]["lines"]] for r in rows]
    columns["findings"] = [None if r[4] is None else [_finding_struct(f) for f in r[4]["findings"]] for r in rows]
    return pa.Table.from_pydict(columns, schema=_parquet_schema())


def gathered(rows: list[tuple[Any, ...]]) -> Any:
    built = _Rows(typed=True)
    for row in rows:
        built.add(*row)
    return built.parquet()


def row(n: int, outcome: Any) -> tuple[Any, ...]:
    mapping = outcome.to_mapping(trace=False)
    figures = (sum(x["units"] for x in mapping["lines"]), 0, len(mapping["lines"]))
    return (n, f"r{n}", outcome.encounter, outcome.payer.id, mapping, None, figures)


ERROR = (7, "bad.json", None, None, None, {"field": "id", "message": "m", "text": "t"}, None)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def test_every_case_file_gives_the_same_columns(engine: Engine) -> None:
    rows = [row(n, run_case(case, engine)) for n, case in enumerate(CASES)]
    rows.insert(3, ERROR)
    new, old = gathered(rows), reference(rows)
    assert new.schema == old.schema
    assert new.equals(old)
    assert new.column("lines").null_count == 1 and new.column("findings").null_count == 1


@pytest.mark.parametrize("seed", [5, 6])
def test_thousands_of_synthetic_outcomes_give_the_same_columns(engine: Engine, seed: int) -> None:
    rows: list[tuple[Any, ...]] = []
    for data in encounters(400, seed=seed):
        encounter = Encounter.from_mapping(data, catalogue=engine.catalogue)
        for outcome in engine.compare(encounter).values():
            rows.append(row(len(rows), outcome))
            if len(rows) % 97 == 0:
                rows.append(ERROR)
    assert len(rows) >= 2000
    new, old = gathered(rows), reference(rows)
    assert new.equals(old)
    assert new.to_pylist() == old.to_pylist()


@pytest.mark.parametrize("shape", ["only errors", "no lines", "empty"])
def test_edges_give_the_same_columns(engine: Engine, shape: str) -> None:
    if shape == "only errors":
        rows = [ERROR, ERROR]
    elif shape == "empty":
        rows = []
    else:  # outcomes with no lines and no findings, beside one with both
        visit = Encounter.from_mapping(
            {"date_of_service": "2025-03-12", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 30}]},
            catalogue=engine.catalogue,
        )
        full = row(0, engine.evaluate(visit, "commercial"))
        bare = (*full[:4], {**full[4], "lines": [], "findings": []}, None, (0, 0, 0))
        rows = [bare, full, bare]
    assert gathered(rows).equals(reference(rows))
