"""Medicare Part B (CMS) with NCCI edits (rules MCR-01..10; NCCI-01, NCCI-03).

Everything payer-specific (codes, modifiers, thresholds, sources) is data in
``policies/medicare.toml``. The NCCI PTP and MUE edits are the core ``ncci_ptp`` / ``ncci_mue``
kinds (``payerpolicy.ncci``); units (MCR-01), GP (MCR-02) and the G0283 crosswalk are core kinds
too. This module registers the payer and four ``medicare_*`` rule kinds:

``medicare_dc_noncovered``
    MCR-03 / MCR-10: a doctor of chiropractic's services other than the covered codes (spinal CMT)
    are never paid. Without ``care.bill_noncovered`` the line is not billed (screen phase, before
    units); with it, the line is billed with GY (statutory exclusion), GX first when a voluntary
    ABN was given, the discipline modifier kept and the distinct-service / E/M modifiers dropped
    (adjust phase): the line goes on the claim with status ``expected_denial`` (it is billed to be
    denied). ``NONCOVERED_DC_SERVICE`` either way (info when not billed, expected_denial when billed).
``medicare_cmt_care_type``
    MCR-04: CMT for active/corrective care takes AT; maintenance care is not reasonable and
    necessary: GA with a signed ABN, GZ without, the line an expected denial
    (``MEDICARE_MAINTENANCE``). Never AT with GA/GZ.
``medicare_primary_dx``
    MCR-05: the first diagnosis of a CMT line must be a subluxation code (M99.00-M99.05).
``medicare_kx_threshold``
    MCR-07: KX on the therapy line whose expected amount takes ``care.ytd_therapy_charges`` to the
    year's threshold, and on every later therapy line (thresholds by year are data), INFO
    ``KX_THRESHOLD_EXCEEDED``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from payerpolicy import Change, ClaimLine, Context, Finding, Param, Payer, Rule, RuleKind, hookimpl
from payerpolicy.evaluation.errors import PayerPolicyError
from payerpolicy.evaluation.vocab import ABN_KINDS, PHASES, PROVIDER_TYPES
from payerpolicy.evaluation.wording import a_or_an

__all__ = [
    "KINDS",
    "PAYER_ID",
    "adjust_cmt_care_type",
    "adjust_dc_noncovered",
    "adjust_primary_dx",
    "modifiers_kx_threshold",
    "payerpolicy_payers",
    "payerpolicy_rule_kinds",
    "screen_dc_noncovered",
]

PAYER_ID = "medicare"


def _claim(lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    return [(i, line) for i, line in enumerate(lines) if line.on_claim]


def _provider_in(rule: Rule, ctx: Context) -> bool:
    providers = rule.get("providers")
    return not providers or ctx.encounter.provider.type in providers


# --------------------------------------------------------------------------------------------
# MCR-03 / MCR-10: a DC's services other than spinal CMT


def _noncovered(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> list[tuple[int, ClaimLine]]:
    if not _provider_in(rule, ctx):
        return []
    codes = rule.get("codes")
    covered = rule["covered_codes"]
    return [
        (i, line)
        for i, line in _claim(lines)
        if line.code not in covered and (codes is None or line.code in codes) and rule["modifier"] not in line.modifiers
    ]


def screen_dc_noncovered(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Without ``care.bill_noncovered``, a DC's non-covered services are not billed (MCR-03/10)."""
    if ctx.encounter.care.bill_noncovered or not _provider_in(rule, ctx):
        return ()
    who = ctx.encounter.provider.type
    return [
        Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            "info",
            f"{line.code}: Medicare pays {a_or_an(who)} only for {', '.join(rule['covered_codes'].items)}; {line.code} is never paid"
            " (statutory exclusion), so it is not put on the claim. Set care.bill_noncovered to bill it with"
            f" {rule['modifier']} (patient request or a secondary payer); an ABN is not required for a statutory exclusion",
            line=i,
            status="not_billable",
        )
        for i, line in _noncovered(rule, lines, ctx)
    ]


def adjust_dc_noncovered(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """With ``care.bill_noncovered``, a DC's non-covered lines take GY (GX first with a voluntary ABN)."""
    care = ctx.encounter.care
    if not care.bill_noncovered or not _provider_in(rule, ctx):
        return
    who = ctx.encounter.provider.type
    gx = care.abn in rule["voluntary_abn_states"]
    add = (rule["voluntary_abn_modifier"], rule["modifier"]) if gx else (rule["modifier"],)
    for i, line in _noncovered(rule, lines, ctx):
        dropped = tuple(m for m in rule["drop_modifiers"] if m in line.modifiers)
        abn = f" and {rule['voluntary_abn_modifier']} (voluntary ABN given)" if gx else ""
        drop = f"; {', '.join(dropped)} dropped (no payment to unlock on an excluded service)" if dropped else ""
        message = (
            f"{line.code}: Medicare pays {a_or_an(who)} only for {', '.join(rule['covered_codes'].items)}; {line.code} is billed"
            f" because care.bill_noncovered is set, with {rule['modifier']} (statutorily excluded){abn}{drop}; it will be denied"
            " and the patient (or a secondary payer) is responsible"
        )
        yield Change(
            rule.id,
            rule.source,
            line=i,
            add_modifiers=add,
            remove_modifiers=dropped,
            status="expected_denial",
            finding=Finding(rule["finding"], "expected_denial", message, rule.id, rule.source, i),
            reason=message,
        )


# --------------------------------------------------------------------------------------------
# MCR-04: active vs maintenance CMT


def adjust_cmt_care_type(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """AT on active/corrective CMT; GA (signed ABN) or GZ on maintenance CMT, an expected denial (MCR-04)."""
    if not _provider_in(rule, ctx):
        return
    care = ctx.encounter.care
    targets = [(i, line) for i, line in _claim(lines) if line.code in rule["codes"]]
    for i, line in targets:
        if care.phase in rule["active_phases"]:
            if rule["active_modifier"] not in line.modifiers:
                yield Change(
                    rule.id,
                    rule.source,
                    line=i,
                    add_modifiers=(rule["active_modifier"],),
                    reason=f"CMT for {care.phase} (active/corrective) care",
                )
        elif care.phase in rule["maintenance_phases"]:
            signed = care.abn in rule["abn_states"]
            modifier = rule["abn_modifier"] if signed else rule["no_abn_modifier"]
            liable = (
                "the patient signed an ABN and is liable"
                if signed
                else "no signed ABN: the provider is liable and may not bill the patient"
            )
            yield Change(
                rule.id,
                rule.source,
                line=i,
                add_modifiers=(modifier,),
                remove_modifiers=(rule["active_modifier"],),
                status="expected_denial",
                finding=Finding(
                    "MEDICARE_MAINTENANCE",
                    "expected_denial",
                    f"{line.code}: maintenance (supportive) CMT is not reasonable and necessary under Medicare; billed with"
                    f" {modifier}, never {rule['active_modifier']}; expected to be denied — {liable}",
                    rule.id,
                    rule.source,
                    i,
                ),
                reason=f"maintenance CMT, {modifier}",
            )
        else:
            yield Change.note(
                rule.id,
                rule.source,
                "MEDICARE_CARE_PHASE_MISSING",
                "warning",
                f"{line.code}: record care.phase — {rule['active_modifier']} only for active/corrective care;"
                " without it Medicare denies CMT as maintenance",
                line=i,
            )


# --------------------------------------------------------------------------------------------
# MCR-05: subluxation as primary diagnosis of CMT


def adjust_primary_dx(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """The first diagnosis of a CMT line must be one of the listed subluxation codes (MCR-05)."""
    codes = rule["codes"]
    targets = [(i, line) for i, line in _claim(lines) if line.code in codes]
    if not targets:
        return
    diagnoses = ctx.encounter.diagnoses
    allowed = set(rule["diagnoses"])
    for i, line in targets:
        pointers = line.diagnosis_pointers or ((1,) if diagnoses else ())
        primary = diagnoses[pointers[0] - 1] if pointers else None
        if primary in allowed:
            continue
        others = [n for n in pointers[1:] if diagnoses[n - 1] in allowed]
        fix = (
            f"; point to {diagnoses[others[0] - 1]} first"
            if others
            else "; add the subluxation diagnosis of the region manipulated and point to it first"
        )
        found = f"the primary diagnosis is {primary}" if primary else "no diagnosis is given"
        yield Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            "expected_denial",
            f"{line.code}: {found}, but Medicare CMT needs a subluxation code ({', '.join(rule['diagnoses'])}) as primary"
            f" diagnosis, with the neuromusculoskeletal condition secondary{fix}",
            line=i,
            status="expected_denial",
        )


# --------------------------------------------------------------------------------------------
# MCR-07: KX threshold


def _money(text: str, rule: Rule, key: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise PayerPolicyError(f'rule {rule.id} ({rule.origin}): {key} must be an amount like "2410", found {text!r}')
    return value


def modifiers_kx_threshold(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """KX on the therapy line whose amount takes the year's therapy expenses to the threshold, and on every later one (MCR-07).

    The running total starts at ``care.ytd_therapy_charges`` and adds each billable therapy line's
    expected allowed amount (the fee schedule amount, incurred expenses as CMS counts them), or the
    line's charge when no fee is known; without either, KX goes on every therapy line once the
    year-to-date amount alone reaches the threshold.
    """
    ytd = ctx.encounter.care.ytd_therapy_charges
    if ytd is None or not _provider_in(rule, ctx):
        return ()
    return list(_kx_changes(rule, lines, ctx, ytd))


def _kx_changes(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context, ytd: Decimal) -> Iterator[Change]:
    targets = [(i, line) for i, line in _claim(lines) if line.code in rule["codes"]]
    if not targets:
        return
    year = ctx.date_of_service.year
    raw = rule["thresholds"].get(str(year))
    if raw is None:
        known = ", ".join(sorted(rule["thresholds"]))
        yield Change.note(
            rule.id,
            rule.source,
            "KX_THRESHOLD_UNKNOWN",
            "warning",
            f"no KX threshold for {year} in this policy (years known: {known}); KX not decided — add the year's amount",
        )
        return
    threshold = _money(raw, rule, f"thresholds.{year}")
    amounts = ctx.price(lines)
    running = ytd
    first: int | None = None
    steps: dict[int, str] = {}
    for i, line in targets:
        if ytd >= threshold:
            first = targets[0][0]
            break
        amount = amounts[i]
        basis = "expected allowed amount"
        if amount is None and line.billed is not None and line.billed.charge is not None:
            amount, basis = line.billed.charge, "charge as billed"
        if amount is None:
            entries = ctx.encounter.services if line.origin == "services" else ctx.encounter.procedures
            unit = entries[line.service].unit_charge if line.service < len(entries) else None
            if unit is not None:
                amount, basis = unit * line.units, "charge"
        if amount is None or line.status != "billable":
            continue
        before, running = running, running + amount
        steps[i] = f"${before:,.2f} + {line.code} {basis} ${amount:,.2f} = ${running:,.2f}"
        if running >= threshold:
            first = i
            break
    if first is None:
        return
    modifier = rule["modifier"]
    review = rule.get("review_threshold")
    note = ""
    if review is not None:
        limit = _money(review, rule, "review_threshold")
        above = " (already above it)" if ytd >= limit else ""
        note = f"; above ${limit:,} claims may be chosen for targeted medical review{above}"
    if first in steps:
        crossing = lines[first].code
        what = (
            f"year-to-date therapy expenses ${ytd:,} plus this visit reach the {year} threshold of ${threshold:,} on {crossing}"
            f" ({steps[first]}): {modifier} added to {crossing} and the therapy lines after it"
        )
    else:
        what = f"year-to-date therapy charges ${ytd:,} reach the {year} threshold of ${threshold:,}: {modifier} added to the therapy lines"
    yield Change.note(
        rule.id,
        rule.source,
        rule["finding"],
        "info",
        f"{what}; it attests that the services are medically necessary, and the record must support that{note}",
        line=first if first in steps else None,
    )
    reached = False
    for i, line in targets:
        reached = reached or i == first
        if reached and modifier not in line.modifiers:
            why = f"{year} KX threshold reached" + (f" on this line: {steps[i]}" if i in steps else "")
            yield Change(rule.id, rule.source, line=i, add_modifiers=(modifier,), reason=why)


# --------------------------------------------------------------------------------------------
# Registry

_PROVIDERS = Param("names", choices=PROVIDER_TYPES, doc="provider types the rule applies to (all when omitted)")


def _codes(rule: Rule) -> Any:
    """Trigger codes (``RuleKind.triggers``) of a kind that changes only lines whose code is in ``codes``."""
    return rule["codes"]


class _NonCovered:
    """Trigger codes of ``medicare_dc_noncovered``: every code outside ``covered`` (and in ``codes`` when given).

    The rule changes only such lines, so a claim with none of them is skipped.
    """

    __slots__ = ("codes", "covered")

    def __init__(self, covered: Any, codes: Any) -> None:
        self.covered = covered
        self.codes = codes

    def __contains__(self, code: object) -> bool:
        return code not in self.covered and (self.codes is None or code in self.codes)

KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "medicare_dc_noncovered",
        "A DC's services other than the covered codes: not billed, or billed with GY (GX first with a voluntary ABN) when"
        " care.bill_noncovered is set (MCR-03, MCR-10).",
        apply={"screen": screen_dc_noncovered, "adjust": adjust_dc_noncovered},
        params={
            "providers": Param("names", default=("DC",), choices=PROVIDER_TYPES),
            "covered_codes": Param("codes", required=True, doc="the only codes paid to these providers"),
            "codes": Param("codes", doc="limit the rule to these codes (all non-covered codes when omitted)"),
            "modifier": Param("str", default="GY", doc="statutory-exclusion modifier"),
            "voluntary_abn_modifier": Param("str", default="GX"),
            "voluntary_abn_states": Param("names", default=("voluntary", "signed"), choices=ABN_KINDS),
            "drop_modifiers": Param("str_list", default=(), doc="modifiers removed from a billed non-covered line"),
            "finding": Param("str", default="NONCOVERED_DC_SERVICE"),
        },
        triggers=lambda rule: _NonCovered(rule["covered_codes"], rule.get("codes")),
    ),
    RuleKind(
        "medicare_cmt_care_type",
        "CMT: AT for active/corrective care; GA (signed ABN) or GZ for maintenance, an expected denial (MCR-04).",
        apply={"adjust": adjust_cmt_care_type},
        params={
            "providers": _PROVIDERS,
            "codes": Param("codes", required=True),
            "active_phases": Param("names", default=("initial", "active"), choices=PHASES),
            "maintenance_phases": Param("names", default=("maintenance",), choices=PHASES),
            "active_modifier": Param("str", default="AT"),
            "abn_modifier": Param("str", default="GA"),
            "no_abn_modifier": Param("str", default="GZ"),
            "abn_states": Param("names", default=("signed",), choices=ABN_KINDS, doc="ABN states that make GA apply"),
        },
        triggers=_codes,
    ),
    RuleKind(
        "medicare_primary_dx",
        "The primary diagnosis of listed lines must be one of the listed codes (MCR-05: subluxation for CMT).",
        apply={"adjust": adjust_primary_dx},
        params={
            "codes": Param("codes", required=True),
            "diagnoses": Param("str_list", required=True, doc="ICD-10-CM codes accepted as primary"),
            "finding": Param("str", default="MEDICARE_PRIMARY_DX_NOT_SUBLUXATION"),
        },
        triggers=_codes,
    ),
    RuleKind(
        "medicare_kx_threshold",
        "KX on the therapy line whose amount takes care.ytd_therapy_charges to the year's threshold, and on every later"
        " therapy line (MCR-07); runs after the NCCI edits (adjust phase) so denied lines do not count.",
        apply={"adjust": modifiers_kx_threshold},
        params={
            "codes": Param("codes", required=True),
            "providers": _PROVIDERS,
            "thresholds": Param("table", required=True, doc='year = "amount", e.g. "2025" = "2410"'),
            "modifier": Param("str", default="KX"),
            "review_threshold": Param("str", doc="amount above which claims may be chosen for targeted medical review"),
            "finding": Param("str", default="KX_THRESHOLD_EXCEEDED"),
        },
        triggers=_codes,
    ),
)


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``medicare`` payer and its policy file."""
    return [
        Payer(
            id=PAYER_ID,
            name="Medicare Part B (CMS)",
            policy=("payerpolicy.policies", "medicare.toml"),
            description="Medicare Part B: CMS total-time units, GP on always-therapy codes, NCCI PTP and MUE edits, "
            "a chiropractor paid only for spinal CMT (AT / GA / GZ), KX above the therapy threshold.",
        )
    ]


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the ``medicare_*`` rule kinds."""
    return KINDS
