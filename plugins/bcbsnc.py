"""Blue Cross NC and plans on Zelis claim edits (rules BCNC-01..06).

Everything payer-specific is data in ``policies/bcbsnc.toml``; this module registers the payer and
one rule kind:

``bcbsnc_line_modifiers``
    Adds modifiers to a line of a listed code when other codes are (``with_codes``) or are not
    (``without_codes``) billed on the same date of service, optionally only on plans that use Zelis
    edits (``care.zelis``), and reports an optional finding. The policy uses it for BCNC-02
    (massage with CMT: 59 then GP), BCNC-03 (massage with an E/M: 59, disputed) and BCNC-04 (the
    open question on GP for manual therapy).

The NCCI edits Blue Cross NC adopted on 2021-07-28 (BCNC-01) come from the core NCCI rule kinds
(the same data as the Medicare payer), referenced by the policy file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from payerpolicy import Change, ClaimLine, Context, Finding, Param, Payer, Rule, RuleKind, hookimpl

__all__ = ["KINDS", "apply_line_modifiers", "payerpolicy_payers", "payerpolicy_rule_kinds"]

PAYER_ID = "bcbsnc"
_SEVERITIES = ("error", "expected_denial", "warning", "info")


def apply_line_modifiers(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Modifiers (and a finding) on lines of ``codes`` when the same-day conditions hold.

    A line qualifies when it is on the claim, its code is in ``codes``, at least one *other* line on
    the claim has a code in ``with_codes`` (when given), no line on the claim has a code in
    ``without_codes`` (when given), and the plan uses Zelis edits when ``zelis_only`` is true.
    Lines bundled or otherwise not billable are not on the claim and never qualify.
    """
    if rule["zelis_only"] and not ctx.encounter.care.zelis:
        return ()
    return list(_line_modifiers(rule, lines))


def _line_modifiers(rule: Rule, lines: tuple[ClaimLine, ...]) -> Iterator[Change]:
    with_codes = rule.get("with_codes")
    without_codes = rule.get("without_codes")
    claim = [(i, line) for i, line in enumerate(lines) if line.on_claim]
    if without_codes is not None and any(line.code in without_codes for _, line in claim):
        return
    add = tuple(rule["add_modifiers"])
    finding_code = rule.get("finding")
    for i, line in claim:
        if line.code not in rule["codes"]:
            continue
        partners = [other.code for j, other in claim if j != i and (with_codes is None or other.code in with_codes)]
        if with_codes is not None and not partners:
            continue
        context = f" with {', '.join(dict.fromkeys(partners))} on the same date of service" if partners else ""
        reason = (rule.note or f"{rule.id}: payer rule for {line.code}") + context
        finding = None
        if finding_code:
            message = f"{line.code}: {rule['message']}" if rule.get("message") else f"{line.code}{context}"
            finding = Finding(finding_code, rule["severity"], message, rule.id, rule.source, i)
        missing = tuple(m for m in add if m not in line.modifiers)
        if not missing and finding is None:
            continue
        yield Change(rule.id, rule.source, line=i, add_modifiers=missing, finding=finding, reason=reason)


KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "bcbsnc_line_modifiers",
        "Modifiers (and an optional finding) on listed codes billed with / without other codes the same day; "
        "optionally only on Zelis-edited plans (BCNC-02/03/04).",
        apply={"modifiers": apply_line_modifiers},
        params={
            "codes": Param("codes", required=True, doc="codes of the lines the rule changes"),
            "with_codes": Param("codes", doc="at least one other line on the claim must have one of these codes"),
            "without_codes": Param("codes", doc="no line on the claim may have one of these codes"),
            "zelis_only": Param("bool", default=False, doc="apply only when care.zelis is true"),
            "add_modifiers": Param("str_list", default=(), doc="modifiers to add, in order (the policy's modifier_order then sorts them)"),
            "finding": Param("str", doc="finding code to report on each changed line"),
            "severity": Param("name", default="info", choices=_SEVERITIES),
            "message": Param("str", doc="the finding's message (the line's code is put in front)"),
        },
        triggers=lambda rule: rule["codes"],
    ),
)


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``bcbsnc`` payer and its policy file."""
    return [
        Payer(
            id=PAYER_ID,
            name="Blue Cross NC / Zelis-edited plans",
            policy=("payerpolicy.policies", "bcbsnc.toml"),
            description="Blue Cross NC, NC State Health Plan, MedCost and plans on Zelis edits: NCCI since 2021-07-28, "
            "CMS total-time units (unverified), 59 then GP on massage with CMT (Blue Cross NC, State Health Plan, MedCost, Zelis plans).",
        )
    ]


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the ``bcbsnc_*`` rule kinds."""
    return KINDS
