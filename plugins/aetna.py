"""Aetna (rules AET-01..05).

Everything payer-specific is data in ``policies/aetna.toml``; this module registers the payer, the
``aetna_*`` rule kinds below and the claim order.

Rule kinds:

``aetna_improvement_clock``
    CPB 0107 (AET-02): from ``care.episode_start``, ``care.improvement_documented`` and
    ``care.treatment_modified``, lines of a chiropractic visit are expected denials after the
    two-week check without improvement (unless treatment was modified), and after the 30-day check
    without improvement despite modification.
``aetna_phase_exclusion``
    Care in a listed phase (``maintenance``) is not covered for the listed provider types: CPB 0107
    for a chiropractor (AET-02), CPB 0325 for a physical therapist (AET-05).
``aetna_extraspinal_dx``
    97140 beside CMT (AET-03): a warning that records may be requested unless the line's first
    diagnosis pointer names an extraspinal diagnosis from the policy's list.
``aetna_limit_notice``
    A finding when the per-visit limit rule (core ``per_visit_limit``, AET-01) left lines over the
    limit ("an appeal will not add payment").
``aetna_claim_order``
    Data for :func:`payerpolicy_order_lines`: claim order highest value first, by the
    ``value_order`` of the per-visit limit rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from payerpolicy import Change, ClaimLine, Context, Param, Payer, Rule, RuleKind, hookimpl
from payerpolicy.evaluation.library import lines_over_visit_limit
from payerpolicy.evaluation.vocab import PHASES, PROVIDER_TYPES

__all__ = [
    "KINDS",
    "apply_extraspinal_dx",
    "apply_improvement_clock",
    "apply_limit_notice",
    "apply_phase_exclusion",
    "claim_order",
    "over_limit",
    "payerpolicy_order_lines",
    "payerpolicy_payers",
    "payerpolicy_rule_kinds",
]

PAYER_ID = "aetna"
_SEVERITIES = ("error", "expected_denial", "warning", "info")
#: The engine's default claim order for procedures (E/M, evaluation, spinal CMT, extraspinal CMT).
_PROCEDURE_RANK = {"em": 0, "evaluation": 1, "cmt_spinal": 2, "cmt_extraspinal": 3}


def _claim(lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    return [(i, line) for i, line in enumerate(lines) if line.on_claim]


def _deny(rule: Rule, targets: list[tuple[int, ClaimLine]], code: str, message: str) -> Iterator[Change]:
    """One expected-denial finding on the first target line; the other targets change status only."""
    first = True
    for i, line in targets:
        if first:
            yield Change.note(rule.id, rule.source, code, "expected_denial", message, line=i, status="expected_denial")
            first = False
        elif line.status != "expected_denial":
            yield Change(rule.id, rule.source, line=i, status="expected_denial", reason=f"{code}: {message}")


# --------------------------------------------------------------------------------------------
# AET-02: CPB 0107 improvement clock


def apply_improvement_clock(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """CPB 0107 (AET-02): the two-week and 30-day improvement checks, counted from ``episode_start``.

    Days are ``date_of_service - episode_start``. Up to ``check_days`` (14) nothing is flagged. After
    that, without documented improvement: the listed lines are expected denials
    (``finding_check``) unless ``treatment_modified`` is true; with a modification, they are
    expected denials once past ``modified_days`` (30) (``finding_modified``). An unrecorded
    ``improvement_documented`` past the check is a warning (``finding_unknown``); an unrecorded
    ``treatment_modified`` counts as not modified. No ``episode_start``: the rule cannot run.
    """
    care = ctx.encounter.care
    providers = rule.get("providers")
    if (providers and ctx.encounter.provider.type not in providers) or care.episode_start is None:
        return ()
    days = (ctx.date_of_service - care.episode_start).days
    if days <= rule["check_days"] or care.improvement_documented is True:
        return ()
    return list(_improvement_clock(rule, lines, ctx, days))


def _improvement_clock(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context, days: int) -> Iterator[Change]:
    care = ctx.encounter.care
    targets = [(i, line) for i, line in _claim(lines) if line.code in rule["codes"]]
    if not targets:
        return
    codes = ", ".join(line.code for _, line in targets)
    if care.improvement_documented is None:
        yield Change.note(
            rule.id, rule.source, rule["finding_unknown"], "warning",
            f"day {days} of the episode (started {care.episode_start}): CPB 0107 requires documented improvement after "
            f"{rule['check_days']} days; record whether improvement is documented (care.improvement_documented)",
            line=targets[0][0],
        )
        return
    if care.treatment_modified is True:
        if days <= rule["modified_days"]:
            return
        yield from _deny(
            rule, targets, rule["finding_modified"],
            f"day {days} of the episode (started {care.episode_start}), no documented improvement within "
            f"{rule['modified_days']} days despite a modified treatment: continued care is not medically necessary "
            f"under CPB 0107 ({codes} expected to be denied)",
        )
        return
    yield from _deny(
        rule, targets, rule["finding_check"],
        f"day {days} of the episode (started {care.episode_start}), no documented improvement after "
        f"{rule['check_days']} days and treatment not modified: further care is not medically necessary under "
        f"CPB 0107 unless the treatment is modified ({codes} expected to be denied)",
    )


# --------------------------------------------------------------------------------------------
# AET-02 / AET-05: maintenance care excluded


def apply_phase_exclusion(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Lines of listed codes are expected denials when ``care.phase`` is one of ``phases``."""
    providers = rule.get("providers")
    if providers and ctx.encounter.provider.type not in providers:
        return ()
    phase = ctx.encounter.care.phase
    if phase is None or phase not in rule["phases"]:
        return ()
    targets = [(i, line) for i, line in _claim(lines) if line.code in rule["codes"]]
    if not targets:
        return ()
    codes = ", ".join(line.code for _, line in targets)
    return list(_deny(rule, targets, rule["finding"], f"{phase} phase: {rule['message']} ({codes} expected to be denied)"))


# --------------------------------------------------------------------------------------------
# AET-03: 97140 beside CMT, extraspinal diagnosis


def _normal_dx(dx: str) -> str:
    return dx.replace(".", "").upper()


def apply_extraspinal_dx(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """97140 beside CMT: warn that records may be requested unless its first pointer is extraspinal.

    A diagnosis is extraspinal when it starts with one of ``extraspinal_dx`` (ICD-10-CM prefixes,
    compared without dots). A line without a diagnosis pointer is warned about too.
    """
    claim = _claim(lines)
    cmt_codes, codes = rule["cmt_codes"], rule["codes"]
    cmts = [line.code for _, line in claim if line.code in cmt_codes]
    if not cmts:
        return
    targets = [(i, line) for i, line in claim if line.code in codes]
    if not targets:
        return
    prefixes = tuple(_normal_dx(p) for p in rule["extraspinal_dx"])
    diagnoses = ctx.encounter.diagnoses
    for i, line in targets:
        if line.diagnosis_pointers:
            dx = diagnoses[line.diagnosis_pointers[0] - 1]
            if _normal_dx(dx).startswith(prefixes):
                continue
            why = f"its first diagnosis {dx} is not on the extraspinal list"
        else:
            why = "it points to no diagnosis"
        yield Change.note(
            rule.id, rule.source, rule["finding"], rule["severity"],
            f"{line.code} beside CMT {', '.join(dict.fromkeys(cmts))}: {why}; Aetna may request records to show a "
            "separate region before paying it (point it first to the diagnosis of the region treated)",
            line=i,
        )


# --------------------------------------------------------------------------------------------
# AET-01: per-visit limit notice and claim order


def over_limit(limit: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> bool:
    """Whether the lines on the claim exceed the core ``per_visit_limit`` rule ``limit``.

    Counts exactly as the core kind does (:func:`payerpolicy.evaluation.library.lines_over_visit_limit`).
    """
    return bool(lines_over_visit_limit(limit, lines, ctx))


def _limit_rule(name: str, ctx: Context) -> Rule | None:
    limit = ctx.policy.rule(name)
    if limit is None or limit.kind != "per_visit_limit" or not limit.active_on(ctx.date_of_service):
        return None
    return limit


def apply_limit_notice(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A finding for the whole visit when the per-visit limit rule ``limit_rule`` was exceeded."""
    limit = _limit_rule(rule["limit_rule"], ctx)
    if limit is None or not over_limit(limit, lines, ctx):
        return ()
    return (Change.note(rule.id, rule.source, rule["finding"], rule["severity"], rule["message"]),)


def claim_order(lines: tuple[ClaimLine, ...], ctx: Context) -> list[int] | None:
    """Claim order per the policy's ``aetna_claim_order`` rule, or None for the engine's default.

    Procedures first in the engine's order (E/M, evaluation, CMT); then services by the limit rule's
    ``value_order`` (highest value first; codes not listed after the listed ones), ties and unlisted
    codes in entry order. With ``when = "over_limit"`` only when the visit exceeds the limit.
    """
    rules = ctx.policy.rules_of("aetna_claim_order", ctx.date_of_service)
    if not rules:
        return None
    rule = rules[0]
    limit = ctx.policy.rule(rule["value_order_from"])
    if limit is None or limit.kind != "per_visit_limit":
        return None
    if rule["when"] == "over_limit":
        active = _limit_rule(limit.id, ctx)
        if active is None or not over_limit(active, lines, ctx):
            return None
    order = limit.get("value_order") or ()
    rank = {code: n for n, code in enumerate(order)}

    def key(i: int) -> tuple[int, int, int]:
        line = lines[i]
        if line.origin == "procedures":
            return (0, _PROCEDURE_RANK.get(ctx.code_info(line.code).category, 9), line.service)
        return (1, rank.get(line.code, len(rank)), line.service)

    return sorted(range(len(lines)), key=key)


KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "aetna_improvement_clock",
        "Aetna CPB 0107: no documented improvement after the 2-week / 30-day checks makes the visit's lines expected denials (AET-02).",
        apply={"review": apply_improvement_clock},
        params={
            "codes": Param("codes", required=True, doc="lines of chiropractic care the clock applies to"),
            "providers": Param("names", choices=PROVIDER_TYPES, doc="provider types the CPB applies to"),
            "check_days": Param("int", default=14, doc="days after episode_start by which improvement must be documented"),
            "modified_days": Param("int", default=30, doc="days after episode_start by which a modified treatment must show improvement"),
            "finding_check": Param("str", default="AETNA_CPB0107_NO_IMPROVEMENT_2WK"),
            "finding_modified": Param("str", default="AETNA_CPB0107_NO_IMPROVEMENT_30D"),
            "finding_unknown": Param("str", default="AETNA_CPB0107_IMPROVEMENT_UNKNOWN"),
        },
        triggers=lambda rule: rule["codes"],
    ),
    RuleKind(
        "aetna_phase_exclusion",
        "Care in a listed phase (maintenance) is not covered for listed provider types: lines are expected denials (AET-02, AET-05).",
        apply={"review": apply_phase_exclusion},
        params={
            "codes": Param("codes", required=True),
            "phases": Param("names", required=True, choices=PHASES),
            "providers": Param("names", choices=PROVIDER_TYPES),
            "finding": Param("str", required=True),
            "message": Param("str", required=True),
        },
        triggers=lambda rule: rule["codes"],
    ),
    RuleKind(
        "aetna_extraspinal_dx",
        "97140 beside CMT: records may be requested unless the first diagnosis pointer is extraspinal (AET-03).",
        apply={"review": apply_extraspinal_dx},
        params={
            "codes": Param("codes", required=True),
            "cmt_codes": Param("codes", required=True),
            "extraspinal_dx": Param("str_list", required=True, doc="ICD-10-CM prefixes accepted as extraspinal"),
            "finding": Param("str", default="RECORDS_MAY_BE_REQUESTED"),
            "severity": Param("name", default="warning", choices=_SEVERITIES),
        },
        triggers=lambda rule: rule["cmt_codes"],
    ),
    RuleKind(
        "aetna_limit_notice",
        "A finding when the visit exceeds the per-visit limit rule named by limit_rule (AET-01).",
        apply={"review": apply_limit_notice},
        params={
            "limit_rule": Param("str", required=True, doc="id of the per_visit_limit rule"),
            "finding": Param("str", required=True),
            "severity": Param("name", default="info", choices=_SEVERITIES),
            "message": Param("str", required=True),
        },
    ),
    RuleKind(
        "aetna_claim_order",
        "Claim order highest value first, by the value_order of a per_visit_limit rule (AET-01; read by the plugin's order hook).",
        apply={},
        params={
            "value_order_from": Param("str", required=True, doc="id of the per_visit_limit rule whose value_order ranks the codes"),
            "when": Param("name", default="over_limit", choices=("always", "over_limit"),
                          doc="reorder always, or only when the visit exceeds that limit"),
        },
    ),
)


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``aetna`` payer and its policy file."""
    return [
        Payer(
            id=PAYER_ID,
            name="Aetna",
            policy=("payerpolicy.policies", "aetna.toml"),
            description="Aetna commercial plans: four physical-medicine codes paid per visit, CPB 0107 improvement clock, "
            "97140 beside CMT with 59 and an extraspinal diagnosis, CMS total-time units (unverified).",
        )
    ]


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the ``aetna_*`` rule kinds."""
    return KINDS


@hookimpl
def payerpolicy_order_lines(lines: tuple[ClaimLine, ...], context: Context) -> Sequence[int] | None:
    """Claim order highest value first when the policy's ``aetna_claim_order`` rule says so (AET-01, S26)."""
    return claim_order(lines, context)
