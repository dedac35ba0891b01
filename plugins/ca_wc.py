"""California workers' compensation: the DWC Official Medical Fee Schedule (rules CAWC-01..06).

Everything payer-specific — code maps, their dates and sources, visit caps, open questions — is data
in ``policies/ca_wc.toml``. This module registers the ``ca_wc`` payer, a code-choice hook and five
rule kinds:

``ca_wc_legacy_codes`` (used by the code-choice hook)
    The pre-2014 OMFS code set (CAWC-03): a technique maps to its legacy code (myofascial release
    97250, "tweener" soft-tissue mobilization 97610, massage 97124); an entered code listed in
    ``replaces`` (97140, which the 1999 schedule predates) is replaced by the technique's legacy code.
``ca_wc_retired_codes`` (used by the code-choice hook)
    From 2014 (current CPT): an entered legacy code (97250, 97610) is an ``INVALID_CODE_FOR_DOS``
    error that says why and builds the line with the current code, fixed or chosen by intent.
``ca_wc_legacy_units`` (screen)
    Timed codes on a legacy date get no units: the 1999 OMFS unit rules are not known.
``ca_wc_visit_cap`` (adjust)
    Visits per industrial injury for one discipline (CAWC-01): beyond the cap every line on the
    claim is an expected denial, unless an exception (written authorization, post-surgical) holds.
``ca_wc_notice`` (review)
    Like the core ``notice`` kind, but ``any_status = true`` also matches lines that are not on the
    claim (e.g. bundled by the NCCI-style same-region rule, CAWC-04).

The code-choice hook runs before the core default (which is ``trylast``); it returns None whenever
the policy's ca_wc rules have nothing to say, so the core's ``code_by_technique`` rule decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from payerpolicy import (
    Change,
    ClaimLine,
    CodeChoice,
    Context,
    Finding,
    Param,
    Payer,
    Rule,
    RuleKind,
    Service,
    hookimpl,
)
from payerpolicy.evaluation import library as _core_library
from payerpolicy.evaluation.vocab import INTENTS, PROVIDER_TYPES, TECHNIQUES

__all__ = [
    "KINDS",
    "apply_legacy_units",
    "apply_notice",
    "apply_visit_cap",
    "choose_code",
    "payerpolicy_choose_code",
    "payerpolicy_payers",
    "payerpolicy_rule_kinds",
]

PAYER_ID = "ca_wc"
BY_INTENT = "by_intent"
#: Care flags that can lift a visit cap (names of :class:`payerpolicy.Care` fields).
CAP_EXCEPTIONS = ("written_authorization", "post_surgical")
_EXCEPTION_LABELS = {"written_authorization": "written authorization", "post_surgical": "post-surgical physical medicine"}
_SEVERITIES = ("error", "expected_denial", "warning", "info")


def _on_claim(lines: tuple[ClaimLine, ...]) -> Iterator[tuple[int, ClaimLine]]:
    return ((i, line) for i, line in enumerate(lines) if line.on_claim)


# --------------------------------------------------------------------------------------------
# Code choice (CAWC-03)


def choose_code(service: Service, index: int, ctx: Context) -> CodeChoice | None:
    """Choose the code of one service from the ca_wc code-set rules in force on the DOS.

    Returns None when no ca_wc rule decides, so the core default (CORE-INT-01) does.
    """
    day = ctx.date_of_service
    where = f"services[{index}]"
    for rule in ctx.policy.rules_of("ca_wc_legacy_codes", day):
        choice = _legacy_choice(rule, service, index, where, ctx)
        if choice is not None:
            return choice
    for rule in ctx.policy.rules_of("ca_wc_retired_codes", day):
        choice = _retired_choice(rule, service, where, ctx)
        if choice is not None:
            return choice
    return None


def _legacy_choice(rule: Rule, service: Service, index: int, where: str, ctx: Context) -> CodeChoice | None:
    techniques: dict[str, str] = rule["techniques"]
    replaces = rule.get("replaces")
    legacy = techniques.get(service.technique) if service.technique else None
    span = _span(rule)
    if legacy is not None:
        if service.code is None:
            return CodeChoice(legacy, rule=rule.id, source=rule.source,
                              reason=f"{span}: technique {service.technique} is billed as {legacy} in the pre-2014 OMFS code set")
        if service.code == legacy:
            return CodeChoice(legacy, rule="INPUT", source="code as entered", reason="code as entered")
        if replaces is not None and service.code in replaces:
            return CodeChoice(legacy, rule=rule.id, source=rule.source,
                              reason=f"{span}: {service.code} is not in the pre-2014 OMFS code set; technique {service.technique} is billed as {legacy}")
        return CodeChoice(service.code, rule="INPUT", source="code as entered", reason="code as entered", findings=(
            Finding("CODE_TECHNIQUE_MISMATCH", "warning",
                    f"{where}: code {service.code} was entered but the documented technique {service.technique!r} is billed as {legacy}"
                    f" in the pre-2014 OMFS code set ({span}); the code must be defensible from the note (CORE-INT-02)",
                    rule.id, rule.source),
        ))
    if replaces is None:
        return None
    # Not in the legacy map: let the core choose, then say so when it chose a code the 1999 OMFS predates.
    choice = _core_library.payerpolicy_choose_code(service, index, ctx)
    if choice is None or choice.code is None or choice.code not in replaces:
        return choice
    mapped = ", ".join(f"{t} → {c}" for t, c in techniques.items() if c != "97124") or "none"
    note = Finding("LEGACY_CODE_NOT_MAPPED", "warning",
                   f"{where}: {choice.code} is not in the pre-2014 OMFS code set (built on CPT 1997/1994) and payerpolicy maps only"
                   f" {mapped} and massage → 97124; find the legacy code for this service in the 1999 OMFS",
                   rule.id, rule.source)
    return CodeChoice(choice.code, rule=choice.rule, source=choice.source, reason=choice.reason, findings=(*choice.findings, note))


def _retired_choice(rule: Rule, service: Service, where: str, ctx: Context) -> CodeChoice | None:
    code = service.code
    replacements: dict[str, str] = rule["replacements"]
    if code is None or code not in replacements:
        return None
    why = rule["reasons"].get(code) or f"{code} is not valid on {ctx.date_of_service} for soft-tissue work"
    target = replacements[code]
    technique_codes: dict[str, str] = rule["technique_codes"]
    by_technique = technique_codes.get(service.technique) if service.technique else None
    if by_technique is not None:
        return _replaced(rule, code, by_technique,
                         f"{why}. The documented technique {service.technique!r} is billed as {by_technique} (CORE-INT-01)", where)
    if target != BY_INTENT:
        return _replaced(rule, code, target, f"{why}. Built as {target}; confirm the note supports it", where)
    soft_tissue = service.technique is not None and service.technique in rule["soft_tissue_techniques"]
    intent_codes: dict[str, tuple[str, ...]] = rule["intent_codes"]
    known_intents = {i for intents in intent_codes.values() for i in intents}
    if not soft_tissue and not (set(service.intent) & known_intents):
        return CodeChoice(code, rule="INPUT", source="code as entered", reason="code as entered", findings=(
            Finding("CODE_MEANING_CHANGED", "warning",
                    f"{where}: {why}. Kept as entered (no soft-tissue technique or goal recorded); if this was soft-tissue work,"
                    f" record the technique and goal: {_intent_hint(intent_codes)}",
                    rule.id, rule.source),
        ))
    candidates = [c for c, intents in intent_codes.items() if set(intents) & set(service.intent)]
    if len(candidates) == 1:
        target = candidates[0]
        goal = ", ".join(i for i in service.intent if i in intent_codes[target])
        return _replaced(rule, code, target, f"{why}. The documented goal ({goal}) points to {target}, which is billed instead", where)
    problem = "no goal was documented" if not candidates else f"the documented goals point to more than one code ({', '.join(candidates)})"
    return CodeChoice(None, rule=rule.id, source=rule.source, findings=(
        Finding("INVALID_CODE_FOR_DOS", "error",
                f"{where}: {why}; no line is built because {problem}. Document the goal: {_intent_hint(intent_codes)}",
                rule.id, rule.source),
    ))


def _replaced(rule: Rule, code: str, target: str, message: str, where: str) -> CodeChoice:
    return CodeChoice(target, rule=rule.id, source=rule.source, reason=f"{code} replaced by {target} (current CPT)", findings=(
        Finding("INVALID_CODE_FOR_DOS", "error", f"{where}: {message}", rule.id, rule.source),
    ))


def _intent_hint(intent_codes: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(f"{'/'.join(intents[:3])} → {c}" for c, intents in intent_codes.items())


def _span(rule: Rule) -> str:
    if rule.effective_from and rule.effective_to:
        return f"date of service from {rule.effective_from} to {rule.effective_to}"
    if rule.effective_to:
        return f"date of service on or before {rule.effective_to}"
    if rule.effective_from:
        return f"date of service on or after {rule.effective_from}"
    return "this payer"


@hookimpl
def payerpolicy_choose_code(service: Service, index: int, context: Context) -> CodeChoice | None:
    """Choose a code from the ca_wc code-set rules (CAWC-03); None lets the core default decide."""
    return choose_code(service, index, context)


# --------------------------------------------------------------------------------------------
# screen: legacy units (CAWC-03)


def apply_legacy_units(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Timed codes on a legacy date get no units: the line is taken off the claim with a warning.

    The 1999 OMFS priced therapy with its own relative values and unit rules (some per 30 minutes),
    which payerpolicy does not have; computing 15-minute units would look precise and be wrong.
    """
    for i, line in _on_claim(lines):
        if line.origin != "services" or not ctx.code_info(line.code).timed:
            continue
        minutes = f"{line.minutes} min" if line.minutes is not None else "no minutes"
        yield Change.note(
            rule.id, rule.source, rule["finding"], rule["severity"],
            f"{line.code} ({minutes}): units not computed — the pre-2014 OMFS (1999 schedule) has its own unit rules"
            " (California relative values, some per 30 minutes) that payerpolicy does not have; the line is left off the claim:"
            " price it from the 1999 OMFS and add it by hand",
            line=i, status="not_billable",
        )


# --------------------------------------------------------------------------------------------
# adjust: visit cap (CAWC-01)


def apply_visit_cap(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Beyond ``max_visits`` visits of one discipline per injury, every line is an expected denial.

    Applies when the provider's type is one of ``providers`` and the injury date is on or after
    ``injury_on_or_after``. ``care.visit_number`` is read as the visit number within this
    discipline for this injury. A care flag named in ``exceptions`` that is true lifts the cap.
    When the visit number or injury date needed to decide is missing, an info finding says the cap
    was not checked.
    """
    if ctx.encounter.provider.type not in rule["providers"]:
        return ()
    return list(_visit_cap(rule, lines, ctx))


def _visit_cap(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    care = ctx.encounter.care
    claim = list(_on_claim(lines))
    if not claim:
        return
    limit, cutoff, discipline = rule["max_visits"], rule["injury_on_or_after"], rule["discipline"]
    visit, injury = care.visit_number, care.injury_date
    if (visit is not None and visit <= limit) or (injury is not None and injury < cutoff):
        return
    if visit is None or injury is None:
        missing = " and ".join(n for n, v in (("care.injury_date", injury), ("care.visit_number", visit)) if v is None)
        yield Change.note(
            rule.id, rule.source, rule["unchecked_finding"], "info",
            f"the {limit}-visit {discipline} cap per industrial injury (injuries on or after {cutoff}) was not checked: {missing} not given",
        )
        return
    lifted = [name for name in rule["exceptions"] if getattr(care, name, None) is True]
    if lifted:
        return
    exceptions = " or ".join(_EXCEPTION_LABELS.get(n, n) for n in rule["exceptions"]) or "none listed"
    for i, line in claim:
        yield Change.note(
            rule.id, rule.source, rule["finding"], "expected_denial",
            f"{line.code}: {discipline} visit {visit} for an injury of {injury}; the cap is {limit} visits per industrial injury"
            f" (injuries on or after {cutoff}) and no exception applies ({exceptions}): expected to be denied"
            + (f" ({rule.note})" if rule.note else ""),
            line=i, status="expected_denial",
        )


# --------------------------------------------------------------------------------------------
# review: notices (CAWC-04)


def apply_notice(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A finding from policy data when ``when_codes`` lines and ``with_codes`` lines are present.

    ``with_codes`` must be on the claim; ``when_codes`` lines may have any status when
    ``any_status`` is true (a line bundled away still shows the rule acted). The finding is
    attached to the first matching line.
    """
    claim = list(_on_claim(lines))
    pool = list(enumerate(lines)) if rule["any_status"] else claim
    hits = [(i, line) for i, line in pool if line.code in rule["when_codes"]]
    if not hits:
        return
    with_codes = rule.get("with_codes")
    if with_codes is not None and not any(line.code in with_codes for _, line in claim):
        return
    yield Change.note(rule.id, rule.source, rule["finding"], rule["severity"], rule["message"], line=hits[0][0])


# --------------------------------------------------------------------------------------------
# registry


KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "ca_wc_legacy_codes",
        "Pre-2014 OMFS code set: technique → legacy code; entered codes in `replaces` are replaced (CAWC-03). Read by the code-choice hook.",
        apply={},
        params={
            "techniques": Param("table", required=True, doc='technique = "legacy code"'),
            "replaces": Param("codes", doc="entered codes the legacy schedule predates, replaced by the technique's legacy code"),
        },
    ),
    RuleKind(
        "ca_wc_retired_codes",
        "Current CPT: an entered legacy code is INVALID_CODE_FOR_DOS and is replaced by a fixed code or by intent (CAWC-03). Read by the code-choice hook.",
        apply={},
        params={
            "replacements": Param("table", required=True, doc='legacy code = "current code" or "by_intent"'),
            "reasons": Param("table", default={}, doc="legacy code = why it is invalid (shown in the finding)"),
            "intent_codes": Param("code_names", required=True, choices=INTENTS, doc="code = [intents] for by_intent replacements"),
            "technique_codes": Param("table", default={}, doc='technique = "current code": decides before the replacement or the intent'),
            "soft_tissue_techniques": Param("names", default=(), choices=TECHNIQUES,
                                            doc="techniques that make an entered by_intent code soft-tissue work (decided by intent)"),
        },
    ),
    RuleKind(
        "ca_wc_legacy_units",
        "Timed codes on a legacy date of service get no units and leave the claim with a finding (CAWC-03).",
        apply={"screen": apply_legacy_units},
        params={
            "finding": Param("str", default="LEGACY_UNITS_NOT_COMPUTED"),
            "severity": Param("name", default="warning", choices=_SEVERITIES),
        },
    ),
    RuleKind(
        "ca_wc_visit_cap",
        "At most N visits of one discipline per industrial injury; beyond it every line is an expected denial (CAWC-01).",
        apply={"adjust": apply_visit_cap},
        params={
            "discipline": Param("str", required=True, doc="name of the counter, shown in findings"),
            "providers": Param("names", required=True, choices=PROVIDER_TYPES, doc="provider types whose visits this counter counts"),
            "max_visits": Param("int", required=True),
            "injury_on_or_after": Param("date", required=True, doc="the cap applies to injuries on or after this date"),
            "exceptions": Param("names", default=CAP_EXCEPTIONS, choices=CAP_EXCEPTIONS, doc="care flags that lift the cap"),
            "finding": Param("str", default="CA_VISIT_CAP_EXCEEDED"),
            "unchecked_finding": Param("str", default="CA_VISIT_CAP_NOT_CHECKED"),
        },
    ),
    RuleKind(
        "ca_wc_notice",
        "A finding written in the policy, raised when its codes are present (of any status with any_status) beside with_codes on the claim.",
        apply={"review": apply_notice},
        params={
            "finding": Param("str", required=True),
            "severity": Param("name", default="info", choices=_SEVERITIES),
            "message": Param("str", required=True),
            "when_codes": Param("codes", required=True),
            "with_codes": Param("codes"),
            "any_status": Param("bool", default=False, doc="also match when_codes lines that are not on the claim"),
        },
        triggers=lambda rule: rule["when_codes"],
    ),
)


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``ca_wc`` payer and its policy file."""
    return [
        Payer(
            id=PAYER_ID,
            name="California workers' compensation (DWC OMFS)",
            policy=("payerpolicy.policies", "ca_wc.toml"),
            description="California DWC OMFS: legacy code set before 2014 (97250/97610/97124, LOW confidence), current CPT from 2014, "
            "24-visit caps per discipline and injury, MPPR and NCCI-adoption notes.",
        )
    ]


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the ``ca_wc_*`` rule kinds."""
    return KINDS
