"""The fast JSON encoder of batch rows (orjson) writes exactly what the reference encoder writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.batch.chunks import dumps_fast, dumps_reference
from payerpolicy.batch.synth import encounters
from payerpolicy.kit.testing import case_ids, load_cases, run_case

CASES = load_cases(Path(__file__).parents[1] / "cases")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def test_the_fast_encoder_is_orjson() -> None:
    import orjson  # a dependency of payerpolicy

    assert orjson.dumps({"a": 1}) == b'{"a":1}'
    assert dumps_fast is not dumps_reference and dumps_fast({"a": 1}) == '{"a":1}'


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_every_case_outcome_encodes_the_same(case, engine) -> None:
    mapping = run_case(case, engine).to_mapping()  # with its trace: every value type an outcome holds
    assert dumps_fast(mapping) == dumps_reference(mapping)


def test_thousands_of_synthetic_outcomes_encode_the_same(engine: Engine) -> None:
    checked = 0
    for data in encounters(600, seed=23):
        encounter = Encounter.from_mapping(data, catalogue=engine.catalogue)
        for outcome in engine.compare(encounter).values():
            mapping = outcome.to_mapping()
            assert dumps_fast(mapping) == dumps_reference(mapping)
            checked += 1
    assert checked >= 3000


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**70},  # over 64 bits: orjson refuses, the reference writes it
        {"text": "é \u2028 \x1f \\ \" /", "nested": [None, True, 0, -1, "ö"]},
        {"float": 1.5, "tiny": 0.1},
    ],
)
def test_values_at_the_edges_encode_the_same(value) -> None:
    assert dumps_fast(value) == dumps_reference(value)
