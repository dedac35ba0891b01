"""The bcbsnc payer: policy data, the bcbsnc_line_modifiers kind, modifier order and NCCI wiring."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from payerpolicy import Encounter, Engine, PluginHost
from payerpolicy.evaluation.policy import load_policy_text

BASE: dict[str, Any] = {
    "date_of_service": "2025-05-06",
    "provider": {"type": "DC"},
    "diagnoses": ["M99.01", "M62.89"],
    "procedures": [{"code": "98940", "regions": ["cervical"], "diagnosis_pointers": [1]}],
    "services": [
        {"code": "97124", "minutes": 15, "regions": ["lower_extremity"], "diagnosis_pointers": [2],
         "necessity": ["tight_muscles_shortening_or_spasticity"]},
    ],
    "care": {"zelis": True},
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _enc(**changes: Any) -> Encounter:
    data = {**BASE, **changes}
    return Encounter.from_mapping(data)


def test_payer_and_kinds_registered(engine: Engine) -> None:
    assert "bcbsnc" in engine.payer_ids
    kinds = engine.host.kinds
    ours = [k for k in kinds.values() if k.plugin == "bcbsnc"]
    assert ours and all(k.name.startswith("bcbsnc_") for k in ours)


def test_unit_method_is_a_documented_unverified_setting(engine: Engine) -> None:
    policy = engine.host.policy("bcbsnc")
    assert policy.settings.unit_method == "cms_total_time"
    basis = policy.settings.basis_of("unit_method")
    assert basis is not None and basis.rule == "BCNC-05" and "UNVERIFIED" in basis.source


def test_zelis_massage_with_cmt_takes_59_then_gp_and_trace_names_the_rule(engine: Engine) -> None:
    outcome = engine.check(_enc(), "bcbsnc")
    massage = next(line for line in outcome.lines if line.code == "97124")
    assert massage.modifiers == ("59", "GP")
    rules = {t.rule for t in outcome.trace if t.field == "modifiers" and t.line is not None and outcome.lines[t.line].code == "97124"}
    assert "BCNC-02" in rules


def test_order_is_policy_data(engine: Engine) -> None:
    # Swap the categories: the same line comes out GP, 59 — the order lives in the TOML.
    text = """
schema_version = 1
extends = "bcbsnc"
[payer]
id = "bcbsnc"
name = "x"
policy_version = "t"
[settings]
modifier_order = ["pricing", "discipline", "payment", "threshold", "location"]
"""
    policy = load_policy_text(text, engine.host.kinds)
    other = Engine(engine.host.with_policy("bcbsnc", policy), engine.catalogue)
    massage = next(line for line in other.check(_enc(), "bcbsnc").lines if line.code == "97124")
    assert massage.modifiers == ("GP", "59")


def test_disputed_and_open_question_findings_cite_their_source(engine: Engine) -> None:
    em = _enc(procedures=[{"code": "99213", "separately_identifiable": True, "diagnosis_pointers": [1]}])
    finding = next(f for f in engine.check(em, "bcbsnc").findings if f.code == "SEED_RULE_DISPUTED")
    assert finding.severity == "info" and finding.rule == "BCNC-03" and "sources disagree" in finding.source and "HNS" in finding.source and finding.plugin == "bcbsnc"

    manual = _enc(services=[{"code": "97140", "minutes": 20, "regions": ["upper_extremity"], "diagnosis_pointers": [2]}])
    finding = next(f for f in engine.check(manual, "bcbsnc").findings if f.code == "OPEN_QUESTION_GP_ON_97140")
    assert finding.rule == "BCNC-04" and "open question" in finding.source


def test_other_payers_are_untouched(engine: Engine) -> None:
    massage = next(line for line in engine.check(_enc(), "commercial").lines if line.code == "97124")
    assert massage.modifiers == ("59",)


def test_ncci_rules_when_the_core_kinds_exist(engine: Engine) -> None:
    kinds = PluginHost().kinds
    if "ncci_ptp" not in kinds:
        pytest.skip("core NCCI rule kinds (core/ncci.py) are not registered yet")
    policy = engine.host.policy("bcbsnc")
    for kind in ("ncci_ptp", "ncci_mue"):
        rules = policy.rules_of(kind)
        assert rules, f"bcbsnc.toml has no {kind} rule"
        assert all(r.effective_from == dt.date(2021, 7, 28) for r in rules)
