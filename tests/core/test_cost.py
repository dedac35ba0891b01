"""Cost bounded by input size: evaluation work grows with the number of services, not its square.

Counted, never timed: the test counts the Python lines (and, inside comprehensions, the bytecode
steps) the evaluation executes in payerpolicy's own modules (``sys.settrace``) for 3,000 and
12,000 repeated services. Linear work gives a ratio near
4; the old merge (the trace rebuilt for every merged line) and the old PTP pairing (every pair of
lines) gave 16. A budget stops a runaway count early, so a regression fails fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

import payerpolicy
import pytest
from payerpolicy import Encounter, Engine

CORE = str(Path(payerpolicy.__file__).resolve().parent)


class _Budget(Exception):
    pass


def _lines_executed(engine: Engine, encounter: Encounter, payer: str, budget: int) -> int:
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event in ("line", "opcode"):
            count += 1
            if count > budget:
                raise _Budget
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if not frame.f_code.co_filename.startswith(CORE):
            return None
        if frame.f_code.co_name.startswith("<"):  # a comprehension runs on one line: count its steps
            frame.f_trace_opcodes = True
        return local

    sys.settrace(tracer)
    try:
        engine.check(encounter, payer)
    except _Budget:
        return budget + 1
    finally:
        sys.settrace(None)
    return count


def _repeated(n: int) -> Encounter:
    service = {"code": "97110", "minutes": 10, "regions": ["lumbar"], "diagnosis_pointers": [1]}
    other = {"code": "97530", "minutes": 8, "regions": ["cervical"], "diagnosis_pointers": [1]}
    return Encounter.from_mapping(
        {
            "date_of_service": "2025-03-12",
            "provider": {"type": "PT"},
            "diagnoses": ["M54.50"],
            "services": [service if i % 2 else other for i in range(n)],
        }
    )


@pytest.mark.parametrize("payer", ["commercial", "medicare"])
def test_work_grows_linearly_with_repeated_services(payer: str) -> None:
    engine = Engine()
    engine.check(_repeated(10), payer)  # tables loaded, plans built
    small = _lines_executed(engine, _repeated(3_000), payer, budget=10_000_000)
    assert small <= 10_000_000, "3,000 services: far more work than linear"
    large = _lines_executed(engine, _repeated(12_000), payer, budget=6 * small)
    assert large / small < 5, f"12,000 vs 3,000 services: {large} vs {small} lines executed (linear is about 4x)"
