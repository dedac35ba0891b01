"""Compiled plans agree with the interpreter: a rule skipped for its trigger codes changes nothing.

``Engine(compiled=False)`` runs every rule of every phase (the reference); the default engine skips
a rule when none of its kind's trigger codes (``RuleKind.triggers``) is on a line. Both must give
the same outcome — lines, findings and trace — on every case file and on thousands of synthetic
encounters for every payer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.batch.synth import encounters
from payerpolicy.kit.testing import case_ids, load_cases, run_case

CASES = load_cases(Path(__file__).parents[1] / "cases")


@pytest.fixture(scope="module")
def engines() -> tuple[Engine, Engine]:
    return Engine(compiled=True), Engine(compiled=False)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_every_case_file_gives_the_same_outcome(case, engines) -> None:
    fast, reference = engines
    assert run_case(case, fast).to_mapping() == run_case(case, reference).to_mapping()


@pytest.mark.parametrize("seed", [101, 202, 303, 404])  # 4 x 5,000 = 20,000 encounters x every payer
def test_synthetic_encounters_give_the_same_outcomes_for_every_payer(seed: int, engines) -> None:
    fast, reference = engines
    compared = untraced = 0
    for n, data in enumerate(encounters(5_000, seed=seed)):
        encounter = Encounter.from_mapping(data, catalogue=reference.catalogue)
        for payer in reference.payer_ids:
            expected = reference.evaluate(encounter, payer).to_mapping()
            assert fast.evaluate(encounter, payer).to_mapping() == expected, (data.get("id"), payer)
            compared += 1
            if n % 4 == 0:  # a batch without --trace: no trace built, everything else the same
                quick = fast.evaluate(encounter, payer, trace=False)
                assert quick.trace == ()
                assert quick.to_mapping(trace=False) == {k: v for k, v in expected.items() if k != "trace"}
                untraced += 1
    assert compared == 5_000 * len(reference.payer_ids)
    assert untraced == 1_250 * len(reference.payer_ids)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_every_case_file_gives_the_same_outcome_without_its_trace(case, engines) -> None:
    """Claims as billed and priced cases read the trace inside the engine; the outcome is the same without it."""
    fast, _ = engines
    full = run_case(case, fast)
    quick = run_case(case, fast, trace=False)
    assert quick.trace == ()
    assert quick.to_mapping(trace=False) == full.to_mapping(trace=False)


def test_the_compiled_engine_really_skips_rules(engines) -> None:
    """Without a code a rule acts on, its function is not called (else the test above proves nothing)."""
    fast, reference = engines
    calls: list[str] = []
    visit = Encounter.from_mapping(
        {"date_of_service": "2025-03-12", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 30}]},
        catalogue=reference.catalogue,
    )
    for engine in (fast, reference):
        plan = engine._plan_on("medicare", engine.host.policy("medicare"), "screen", visit.date_of_service)
        wrapped = []
        for rule, function, plugin, trigger in plan:

            def spy(r, lines, ctx, _f=function, _id=rule.id, _name=engine is fast):  # type: ignore[no-untyped-def]
                calls.append(f"{'fast' if _name else 'ref'}:{_id}")
                return _f(r, lines, ctx)

            wrapped.append((rule, spy, plugin, trigger))
        key = next(k for k, v in engine._in_force.items() if v is plan)
        engine._in_force[key] = tuple(wrapped)
        engine.evaluate(visit, "medicare")
        del engine._in_force[key]
    fast_calls = {c.split(":", 1)[1] for c in calls if c.startswith("fast:")}
    ref_calls = {c.split(":", 1)[1] for c in calls if c.startswith("ref:")}
    assert "CORE-CMT-01" in ref_calls and "CORE-CMT-01" not in fast_calls  # no CMT code on the visit
    assert "MCR-11" in ref_calls and "MCR-11" not in fast_calls  # no 97010 on the visit
    assert fast_calls < ref_calls
