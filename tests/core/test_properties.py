"""Invariants of every outcome, for generated encounters and every installed payer."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payerpolicy import Encounter, Engine
from payerpolicy.evaluation.vocab import INTENTS, NECESSITY_CONDITIONS, REGIONS, SPINAL_REGIONS

ENGINE = Engine()
TIMED = ["97110", "97112", "97116", "97124", "97140", "97530", "97035"]
UNTIMED = ["97010", "97012", "97014", "G0283"]
TECHNIQUES = [
    "myofascial_release",
    "petrissage",
    "joint_mobilization",
    "effleurage",
    "trigger_point",
    "therapeutic_exercise",
]

service = st.fixed_dictionaries(
    {"minutes": st.integers(0, 90), "regions": st.lists(st.sampled_from(REGIONS), max_size=2, unique=True)},
    optional={
        "code": st.sampled_from(TIMED + UNTIMED),
        "intent": st.lists(st.sampled_from(INTENTS), max_size=2, unique=True),
        "necessity": st.lists(st.sampled_from(NECESSITY_CONDITIONS), max_size=1),
    },
).flatmap(lambda s: st.just(s) if "code" in s else st.sampled_from(TECHNIQUES).map(lambda t: {**s, "technique": t}))

cmt = st.lists(st.sampled_from(SPINAL_REGIONS), min_size=1, max_size=5, unique=True).map(
    lambda regions: {
        "code": "98940" if len(regions) <= 2 else "98941" if len(regions) <= 4 else "98942",
        "regions": regions,
    }
)

encounter = st.fixed_dictionaries(
    {
        "date_of_service": st.dates(dt.date(2015, 1, 1), dt.date(2026, 12, 31)).map(dt.date.isoformat),
        "provider": st.fixed_dictionaries({"type": st.sampled_from(["DC", "PT", "OT", "LMT", "MD"])}),
        "services": st.lists(service, min_size=1, max_size=6),
    },
    optional={
        "procedures": st.lists(st.one_of(cmt, st.just({"code": "99213", "separately_identifiable": True})), max_size=2),
        "care": st.fixed_dictionaries(
            {},
            optional={
                "phase": st.sampled_from(["initial", "active", "maintenance"]),
                "prior_massage_visits": st.integers(0, 10),
                "visit_number": st.integers(1, 40),
                "bill_noncovered": st.booleans(),
                "zelis": st.booleans(),
            },
        ),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encounter)
def test_outcome_invariants(data):
    enc = Encounter.from_mapping(data)
    total_minutes = sum(s.minutes or 0 for s in enc.services)
    for payer in ENGINE.payer_ids:
        outcome = ENGINE.check(enc, payer)
        timed_units = 0
        for line in outcome.lines:
            assert line.units >= 0
            assert len(line.modifiers) <= 4
            assert len(set(line.modifiers)) == len(line.modifiers)
            if line.status == "not_billable":
                assert line.units == 0
            info = ENGINE.catalogue[line.code]
            if info.timed and line.on_claim:
                assert line.minutes is not None
                # never more than the line's own minutes allow, even under CMS total time
                assert line.units <= (line.minutes + 14) // 15
                timed_units += line.units
        # never more timed units than the minutes allow under the payer's method
        timed_lines = [ln for ln in outcome.lines if ENGINE.catalogue[ln.code].timed and ln.on_claim]
        if ENGINE.host.policy(payer).settings.unit_method == "cms_total_time":
            # the day's timed minutes (including services that ended with 0 units) fix the units
            assert timed_units <= (total_minutes + 7) // 15
        else:
            assert all(ln.units <= ((ln.minutes or 0) + 7) // 15 for ln in timed_lines)
        for finding in outcome.findings:
            assert finding.rule and finding.source, finding
            assert finding.line is None or 0 <= finding.line < len(outcome.lines)
        # same input -> same output
        assert ENGINE.check(enc, payer) == outcome
        assert ENGINE.check(Encounter.from_mapping(enc.to_mapping()), payer).to_mapping() == outcome.to_mapping()
