"""Regional Blue: a fictional regional plan, written as a third-party payerpolicy plugin would be.

Most of its behaviour is policy data (``regional_blue.toml``: XS for soft tissue in another region,
AMA per-code units). The yearly visit cap needs one rule kind of its own, registered here:

``regional_blue_visit_cap``
    When ``care.visit_number`` is above ``max_visits``, every line on the claim is an expected
    denial, with one finding naming the cap.
"""

from __future__ import annotations

from collections.abc import Iterable

from payerpolicy import Change, ClaimLine, Context, Param, Payer, Rule, RuleKind, hookimpl

__all__ = ["KINDS", "PAYER_ID", "apply_visit_cap", "payerpolicy_payers", "payerpolicy_rule_kinds"]

PAYER_ID = "regional_blue"


def apply_visit_cap(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Lines of a visit numbered above ``max_visits`` are expected denials."""
    visit = ctx.encounter.care.visit_number
    limit = rule["max_visits"]
    if visit is None or visit <= limit:
        return
    on_claim = [i for i, line in enumerate(lines) if line.on_claim]
    for n, i in enumerate(on_claim):
        message = f"visit {visit} is over the plan's cap of {limit} visits per calendar year; {lines[i].code} is expected to be denied"
        if n == 0:
            yield Change.note(
                rule.id, rule.source, rule["finding"], "expected_denial", message, line=i, status="expected_denial"
            )
        else:
            yield Change(rule=rule.id, source=rule.source, line=i, status="expected_denial", reason=message)


KINDS = (
    RuleKind(
        "regional_blue_visit_cap",
        "Visits above max_visits in the benefit year: every line is an expected denial (RB-03).",
        apply={"review": apply_visit_cap},
        params={
            "max_visits": Param("int", required=True, doc="covered visits per calendar year"),
            "finding": Param("str", default="EXPECTED_DENIAL_VISIT_CAP"),
        },
    ),
)


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``regional_blue`` payer and its policy file."""
    return [
        Payer(
            id=PAYER_ID,
            name="Regional Blue (example plugin)",
            policy=("payerpolicy_regional_blue", "regional_blue.toml"),
            description="A fictional regional plan: XS over 59, AMA units, 20 visits a year.",
        )
    ]


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the ``regional_blue_visit_cap`` rule kind."""
    return KINDS
