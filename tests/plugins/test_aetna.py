"""The aetna payer: per-visit limit wiring, claim order, CPB 0107 clock and the extraspinal list."""

from __future__ import annotations

from typing import Any

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.evaluation.policy import load_policy_text
from payerpolicy.plugins import aetna

SIX: dict[str, Any] = {
    "date_of_service": "2025-06-10",
    "provider": {"type": "DC"},
    "diagnoses": ["M99.01", "M25.611"],
    "procedures": [{"code": "98940", "regions": ["cervical"], "diagnosis_pointers": [1]}],
    "services": [
        {"code": "97014", "regions": ["lumbar"], "diagnosis_pointers": [1]},
        {"code": "97012", "regions": ["cervical"], "diagnosis_pointers": [1]},
        {"code": "97140", "minutes": 15, "regions": ["upper_extremity"], "diagnosis_pointers": [2]},
        {"code": "97110", "minutes": 15, "diagnosis_pointers": [2]},
        {"code": "97112", "minutes": 15, "regions": ["upper_extremity"], "diagnosis_pointers": [2]},
        {"code": "97530", "minutes": 15, "diagnosis_pointers": [2]},
    ],
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _overlay(engine: Engine, body: str) -> Engine:
    text = 'schema_version = 1\nextends = "aetna"\n[payer]\nid = "aetna"\nname = "x"\npolicy_version = "t"\n' + body
    policy = load_policy_text(text, engine.host.kinds)
    return Engine(engine.host.with_policy("aetna", policy), engine.catalogue)


def test_kinds_are_prefixed(engine: Engine) -> None:
    ours = [k.name for k in engine.host.kinds.values() if k.plugin == "aetna"]
    assert ours and all(name.startswith("aetna_") for name in ours)


def test_limit_denies_lowest_value_whatever_the_entry_order(engine: Engine) -> None:
    outcome = engine.check(Encounter.from_mapping(SIX), "aetna")
    assert [line.code for line in outcome.lines] == ["98940", "97530", "97112", "97110", "97140", "97012", "97014"]
    denied = [line.code for line in outcome.lines if line.status == "expected_denial"]
    assert denied == ["97012", "97014"]
    codes = sorted(f.code for f in outcome.findings)
    assert codes == ["APPEAL_WILL_NOT_ADD_PAYMENT", "EXPECTED_DENIAL_AETNA_LIMIT", "EXPECTED_DENIAL_AETNA_LIMIT"]


def test_order_always_setting(engine: Engine) -> None:
    four = {**SIX, "services": SIX["services"][2:]}
    default = engine.check(Encounter.from_mapping(four), "aetna")
    assert [line.code for line in default.lines] == ["98940", "97140", "97110", "97112", "97530"]
    always = _overlay(engine, '[[rules]]\nid = "AET-01-ORDER"\nwhen = "always"\n')
    assert [line.code for line in always.check(Encounter.from_mapping(four), "aetna").lines] == ["98940", "97530", "97112", "97110", "97140"]


def test_limit_disabled_means_no_flags_and_default_order(engine: Engine) -> None:
    off = _overlay(engine, '[[rules]]\nid = "AET-01"\nenabled = false\n')
    outcome = off.check(Encounter.from_mapping(SIX), "aetna")
    assert all(line.status == "billable" for line in outcome.lines)
    assert [line.code for line in outcome.lines][:3] == ["98940", "97014", "97012"]
    assert not outcome.findings


def test_order_hook_does_not_reach_other_payers(engine: Engine) -> None:
    outcome = engine.check(Encounter.from_mapping(SIX), "commercial")
    assert [line.code for line in outcome.lines] == ["98940", "97014", "97012", "97140", "97110", "97112", "97530"]


@pytest.mark.parametrize(
    ("dx", "warned"),
    [("M75.01", False), ("M7501", False), ("M25.611", False), ("M25.50", True), ("M54.6", True), ("S43.401A", False), ("M26.601", False)],
)
def test_extraspinal_list(engine: Engine, dx: str, warned: bool) -> None:
    data = {**SIX, "diagnoses": ["M99.01", dx], "services": [SIX["services"][2]]}
    codes = [f.code for f in engine.check(Encounter.from_mapping(data), "aetna").findings]
    assert ("RECORDS_MAY_BE_REQUESTED" in codes) is warned


def test_clock_needs_episode_start(engine: Engine) -> None:
    data = {**SIX, "services": [], "care": {"improvement_documented": False}}
    assert not engine.check(Encounter.from_mapping(data), "aetna").findings


def test_clock_one_finding_for_many_lines_and_em_not_flagged(engine: Engine) -> None:
    data = {
        **SIX,
        "date_of_service": "2025-06-30",
        "procedures": [{"code": "99213", "separately_identifiable": True, "diagnosis_pointers": [2]}, *SIX["procedures"]],
        "services": SIX["services"][2:4],
        "care": {"episode_start": "2025-06-01", "improvement_documented": False},
    }
    outcome = engine.check(Encounter.from_mapping(data), "aetna")
    assert [(line.code, line.status) for line in outcome.lines] == [
        ("99213", "billable"), ("98940", "expected_denial"), ("97140", "expected_denial"), ("97110", "expected_denial")]
    assert [f.code for f in outcome.findings] == ["AETNA_CPB0107_NO_IMPROVEMENT_2WK"]
    assert outcome.findings[0].source.startswith("Aetna CPB 0107")


def test_over_limit_counts_like_the_core_kind(engine: Engine) -> None:
    from payerpolicy.evaluation.kinds import Context

    enc = Encounter.from_mapping(SIX)
    policy = engine.host.policy("aetna")
    ctx = Context(encounter=enc, payer=engine.host.payer("aetna"), policy=policy, catalogue=engine.catalogue)
    limit = policy.rule("AET-01")
    assert limit is not None
    outcome = engine.check(enc, "aetna")
    assert aetna.over_limit(limit, outcome.lines, ctx)
    assert not aetna.over_limit(limit, outcome.lines[:5], ctx)
