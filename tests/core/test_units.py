"""payerpolicy.evaluation.units: the unit table, the CMS total-time method and the AMA per-code method.

Every expected value comes from rules.md §3 (CORE-TIME-10/20/30), not from the implementation.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payerpolicy.evaluation.units import UnitResult, units_ama_per_code, units_cms_total_time, units_for_minutes

# ---------------------------------------------------------------------------------------------
# CORE-TIME-10: the unit table (rules.md §3.2)

UNIT_TABLE = [
    *[(m, 0) for m in range(8)],
    (8, 1),
    (15, 1),
    (22, 1),
    (23, 2),
    (30, 2),
    (37, 2),
    (38, 3),
    (45, 3),
    (52, 3),
    (53, 4),
    (60, 4),
    (67, 4),
    (68, 5),
    (82, 5),
    (83, 6),
    (97, 6),
    (98, 7),
    (112, 7),
    (113, 8),
    (127, 8),
    (128, 9),
]


@pytest.mark.parametrize(("minutes", "units"), UNIT_TABLE)
def test_unit_table(minutes: int, units: int) -> None:
    assert units_for_minutes(minutes) == units


def test_unit_table_rejects_negative_minutes() -> None:
    with pytest.raises(ValueError, match="negative"):
        units_for_minutes(-1)


# ---------------------------------------------------------------------------------------------
# CORE-TIME-20: the CMS examples of rules.md §3.3, exactly


@pytest.mark.parametrize(
    ("minutes", "units", "tied"),
    [
        pytest.param({"97112": 24, "97110": 23}, {"97112": 2, "97110": 1}, (), id="cms-example-1"),
        # Example 2: 40 min -> 3 units, one code x2 and the other x1 (never 3 on one code); the
        # leftovers are equal, so the choice is a tie that entry order decides and both are reported.
        pytest.param({"97112": 20, "97110": 20}, {"97112": 2, "97110": 1}, ("97112", "97110"), id="cms-example-2"),
        pytest.param({"97110": 33, "97140": 7}, {"97110": 2, "97140": 1}, (), id="cms-example-3"),
        pytest.param(
            {"97110": 18, "97140": 13, "97116": 10, "97035": 8},
            {"97110": 1, "97140": 1, "97116": 1, "97035": 0},
            (),
            id="cms-example-4",
        ),
        pytest.param({"97140": 35, "97035": 7}, {"97140": 2, "97035": 1}, (), id="A52758"),
    ],
)
def test_cms_examples(minutes: dict[str, int], units: dict[str, int], tied: tuple[str, ...]) -> None:
    result = units_cms_total_time(minutes)
    assert isinstance(result, UnitResult)
    assert dict(result.units) == units
    assert result.tied == tied
    assert sum(result.units.values()) == units_for_minutes(sum(minutes.values()))


def test_cms_example_2_order_decides_the_tie() -> None:
    result = units_cms_total_time({"97112": 20, "97110": 20}, order=["97110", "97112"])
    assert dict(result.units) == {"97112": 1, "97110": 2}
    assert set(result.tied) == {"97112", "97110"}


def test_cms_example_4_keeps_every_key_and_bills_the_smallest_leftover_last() -> None:
    # 97035 (8 min) is not billed: 49 min allow 3 units, which go to the bigger leftovers.
    result = units_cms_total_time({"97110": 18, "97140": 13, "97116": 10, "97035": 8})
    assert list(result.units) == ["97110", "97140", "97116", "97035"]
    assert result.units["97035"] == 0


def test_cms_empty_input() -> None:
    result = units_cms_total_time({})
    assert dict(result.units) == {}
    assert result.tied == ()


# ---------------------------------------------------------------------------------------------
# rules.md §3.4: where the two methods differ (both columns)

DIFFERENCES = [
    # minutes, CMS units per code, CMS tied, AMA units per code
    pytest.param(
        {"97110": 7, "97140": 7}, {"97110": 1, "97140": 0}, ("97110", "97140"), {"97110": 0, "97140": 0}, id="7+7"
    ),
    pytest.param(
        {"97110": 8, "97140": 8, "97112": 8},
        {"97110": 1, "97140": 1, "97112": 0},
        ("97110", "97140", "97112"),
        {"97110": 1, "97140": 1, "97112": 1},
        id="8+8+8",
    ),
    pytest.param({"97110": 33, "97140": 7}, {"97110": 2, "97140": 1}, (), {"97110": 2, "97140": 0}, id="33+7"),
    pytest.param({"97112": 24, "97110": 23}, {"97112": 2, "97110": 1}, (), {"97112": 2, "97110": 2}, id="24+23"),
    pytest.param(
        {"97112": 20, "97110": 20}, {"97112": 2, "97110": 1}, ("97112", "97110"), {"97112": 1, "97110": 1}, id="20+20"
    ),
    pytest.param(
        {"97110": 18, "97140": 13, "97116": 10, "97035": 8},
        {"97110": 1, "97140": 1, "97116": 1, "97035": 0},
        (),
        {"97110": 1, "97140": 1, "97116": 1, "97035": 1},
        id="18+13+10+8",
    ),
]

# The totals of the table's CMS and AMA columns.
TOTALS = {"7+7": (1, 0), "8+8+8": (2, 3), "33+7": (3, 2), "24+23": (3, 4), "20+20": (3, 2), "18+13+10+8": (3, 4)}


@pytest.mark.parametrize(("minutes", "cms", "cms_tied", "ama"), DIFFERENCES)
def test_method_differences(
    minutes: dict[str, int],
    cms: dict[str, int],
    cms_tied: tuple[str, ...],
    ama: dict[str, int],
    request: pytest.FixtureRequest,
) -> None:
    cms_result = units_cms_total_time(minutes)
    ama_result = units_ama_per_code(minutes)
    assert dict(cms_result.units) == cms
    assert cms_result.tied == cms_tied
    assert dict(ama_result.units) == ama
    assert ama_result.tied == ()  # ties only exist in the CMS method
    case = request.node.callspec.id
    assert (sum(cms_result.units.values()), sum(ama_result.units.values())) == TOTALS[case]


# ---------------------------------------------------------------------------------------------
# Properties

minutes_maps = st.dictionaries(
    keys=st.sampled_from(["97110", "97112", "97116", "97124", "97140", "97530", "97032", "97035"]),
    values=st.integers(min_value=0, max_value=480),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_units_never_negative(minutes: dict[str, int]) -> None:
    for result in (units_cms_total_time(minutes), units_ama_per_code(minutes)):
        assert all(u >= 0 for u in result.units.values())
        assert set(result.units) == set(minutes)


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_cms_total_is_fixed_by_the_days_total_minutes(minutes: dict[str, int]) -> None:
    result = units_cms_total_time(minutes)
    total = sum(minutes.values())
    assert sum(result.units.values()) <= (total + 7) // 15
    # CMS step 1: the total fixes the number of units (there is always room to place them).
    assert sum(result.units.values()) == units_for_minutes(total)


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_cms_each_code_gets_its_full_units_plus_at_most_one(minutes: dict[str, int]) -> None:
    result = units_cms_total_time(minutes)
    for code, m in minutes.items():
        assert result.units[code] in (m // 15, m // 15 + 1)
        if m % 15 == 0:
            assert result.units[code] == m // 15  # no leftover, no extra unit


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_cms_extra_units_go_to_the_largest_leftovers(minutes: dict[str, int]) -> None:
    result = units_cms_total_time(minutes)
    got = [m % 15 for c, m in minutes.items() if result.units[c] > m // 15]
    missed = [m % 15 for c, m in minutes.items() if result.units[c] == m // 15 and m % 15 > 0]
    if got and missed:
        assert min(got) >= max(missed)
        # a tie at the boundary is reported, naming exactly the codes with the boundary leftover
        if min(got) == max(missed):
            assert set(result.tied) == {c for c, m in minutes.items() if m % 15 == min(got)}
        else:
            assert result.tied == ()
    else:
        assert result.tied == ()


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_ama_is_the_unit_table_per_code(minutes: dict[str, int]) -> None:
    result = units_ama_per_code(minutes)
    assert dict(result.units) == {c: (m + 7) // 15 for c, m in minutes.items()}
    assert result.tied == ()


@settings(max_examples=200, deadline=None)
@given(minutes_maps)
def test_deterministic(minutes: dict[str, int]) -> None:
    copy = dict(minutes)
    assert units_cms_total_time(minutes) == units_cms_total_time(copy)
    assert units_ama_per_code(minutes) == units_ama_per_code(copy)
    assert minutes == copy  # inputs are not modified


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_unit_table_formula(m: int) -> None:
    units = units_for_minutes(m)
    assert units == (m + 7) // 15
    # a unit is attained once the midpoint (8 of 15 minutes) is passed
    assert units * 15 - 7 <= m < units * 15 + 8
