"""The public scenarios (shared/domain/scenarios.md) as case files: exact lines, statuses, findings."""

from pathlib import Path

import pytest
from payerpolicy import Engine
from payerpolicy.kit.testing import assert_case, case_ids, load_cases

CASES = load_cases(Path(__file__).parent / "cases")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_case(case, engine):
    assert_case(case, engine)
