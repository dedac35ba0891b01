"""The core rule library: the rule kinds every payer's policy can use, and the default code choice.

Each kind is plain code that reads its parameters from a policy rule; *which* rules apply to a
payer, with which parameters, sources and dates, is data (``policies/*.toml``). This module is a
plugin like any other (registered by the host as ``payerpolicy.library``).

Rule ids cited below (CORE-INT-01, ...) are the project's own public rule ids; each rule's public
source is in the policy data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import attrs

from .hookspecs import hookimpl
from .kinds import Change, CodeChoice, Context, Param, RuleKind
from .model import Care, ClaimLine, Finding, Service
from .policy import Rule
from .vocab import CATEGORIES, INTENTS, PROVIDER_TYPES, SPINAL_REGIONS, TECHNIQUES, CodeCatalogue
from .wording import a_or_an, count_range, plural

__all__ = ["CORE_KINDS", "lines_over_visit_limit", "payerpolicy_choose_code", "payerpolicy_rule_kinds"]


#: Distinct-service modifiers: 59 and the X{EPSU} subset (CMS MLN Fact Sheet, Proper Use of Modifiers 59 and X{EPSU}).
_DISTINCT = ("59", "XE", "XP", "XS", "XU")


def _on_claim(lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    """The lines on the claim (billable or expected to be denied), with their index."""
    return [(i, line) for i, line in enumerate(lines) if line.status != "not_billable"]


def _service(line: ClaimLine, ctx: Context) -> Service | None:
    return ctx.encounter.services[line.service] if line.origin == "services" else None


_T = TypeVar("_T")
#: (id of a rule, function) -> (the rule, what the function worked out from it). Rules are immutable,
#: so what depends only on the rule is worked out once; the rule is held so its id is not reused.
_COMPILED: dict[tuple[int, Callable[[Rule], Any]], tuple[Rule, Any]] = {}


def _compiled(rule: Rule, build: Callable[[Rule], _T]) -> _T:
    """``build(rule)``, worked out once per rule."""
    key = (id(rule), build)
    known = _COMPILED.get(key)
    if known is None or known[0] is not rule:
        if len(_COMPILED) >= 4096:  # policies reloaded many times (tests): start again
            _COMPILED.clear()
        known = _COMPILED[key] = (rule, build(rule))
    return known[1]


def _where(line: ClaimLine) -> str:
    return f"{line.origin}[{line.service}]"


def _a(who: str) -> str:
    """``who`` with its article, as read aloud: "a PT", "an LMT", "an OT"."""
    return ("an " if who[:1] in "AEFHILMNORSX" else "a ") + who


# --------------------------------------------------------------------------------------------
# Code choice (CORE-INT-01)


def choose_code(service: Service, index: int, ctx: Context) -> CodeChoice | None:
    """Choose a code from the service's code, or from its technique and intent (CORE-INT-01)."""
    rules = ctx.policy.rules_of("code_by_technique", ctx.date_of_service)
    rule = rules[0] if rules else None
    where = f"services[{index}]"
    if rule is None:
        if service.code is None:
            return CodeChoice(
                None,
                rule="CORE-INT-01",
                source="payerpolicy engine",
                findings=(
                    Finding(
                        "NEEDS_CLARIFICATION",
                        "warning",
                        f"{where}: no code given and this payer's policy has no code_by_technique rule; enter the code",
                        "CORE-INT-01",
                        "payerpolicy engine",
                    ),
                ),
            )
        return CodeChoice(service.code, rule="INPUT", source="code as entered", reason="code as entered")

    from_technique, findings = _code_from_technique(service, where, rule)
    if service.code is not None:
        extra: list[Finding] = []
        if (
            from_technique not in (None, "cmt")
            and from_technique != service.code
            and (rule.get("codes_checked") is None or service.code in rule["codes_checked"])
            and not _forbidden_rules(service, ctx)
        ):
            extra.append(
                Finding(
                    "CODE_TECHNIQUE_MISMATCH",
                    "warning",
                    f"{where}: code {service.code} was entered but the documented technique {service.technique!r}"
                    f" with intent {', '.join(service.intent) or '(none)'} points to {from_technique}; the code must be defensible from the note (CORE-INT-02)",
                    rule.id,
                    rule.source,
                )
            )
        return CodeChoice(
            service.code, rule="INPUT", source="code as entered", reason="code as entered", findings=tuple(extra)
        )
    if from_technique == "cmt":
        return CodeChoice(
            None,
            rule=rule.id,
            source=rule.source,
            findings=(
                Finding(
                    "CMT_NOT_A_SERVICE",
                    "error",
                    f'{where}: manipulation (thrust) is billed as CMT 98940-98943 under "procedures", never as 97140',
                    rule.id,
                    rule.source,
                ),
            ),
        )
    if from_technique is None:
        return CodeChoice(None, rule=rule.id, source=rule.source, findings=tuple(findings))
    reason = f"technique {service.technique}" + (f", intent {', '.join(service.intent)}" if service.intent else "")
    return CodeChoice(from_technique, rule=rule.id, source=rule.source, reason=reason, findings=tuple(findings))


def _forbidden_rules(service: Service, ctx: Context) -> list[Rule]:
    """The ``forbidden_code_choice`` rules in force that forbid the service's entered code for its technique."""
    if service.code is None or service.technique is None:
        return []
    return [
        r
        for r in ctx.policy.rules_of("forbidden_code_choice", ctx.date_of_service)
        if service.technique in r["forbidden"].get(service.code, ())
    ]


def _code_from_technique(service: Service, where: str, rule: Rule) -> tuple[str | None, list[Finding]]:
    if service.technique is None:
        return None, []
    target = rule["techniques"].get(service.technique)
    if target is None:
        return None, [
            Finding(
                "NEEDS_CLARIFICATION",
                "warning",
                f"{where}: this payer's policy maps no code to technique {service.technique!r}; enter the code",
                rule.id,
                rule.source,
            )
        ]
    if target != "by_intent":
        return target, []
    candidates = [code for code, intents in rule["intent_codes"].items() if set(intents) & set(service.intent)]
    if len(candidates) == 1:
        return candidates[0], []
    if not candidates:
        why = (
            "no intent was documented"
            if not service.intent
            else f"the documented intents ({', '.join(service.intent)}) point to no code"
        )
    else:
        why = f"the documented intents point to more than one code ({', '.join(candidates)})"
    return None, [
        Finding(
            "NEEDS_CLARIFICATION",
            "warning",
            f"{where}: {service.technique!r} is a label, not a code; {why}. Document the technique and goal"
            " (range of motion/adhesions → 97140; circulation/spasm/relaxation → 97124)",
            rule.id,
            rule.source,
        )
    ]


# --------------------------------------------------------------------------------------------
# code phase


def apply_code_crosswalk(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Replace codes by the payer's equivalents (e.g. G0283 ↔ 97014)."""
    mapping = rule["map"]
    for i, line in _on_claim(lines):
        if line.code in mapping:
            yield Change(
                rule.id,
                rule.source,
                line=i,
                code=mapping[line.code],
                reason=f"{line.code} is billed to this payer as {mapping[line.code]}",
            )


# --------------------------------------------------------------------------------------------
# screen phase


def apply_code_valid_for_dos(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A code that does not exist on the date of service is an error (CPT annual code set)."""
    bounded = _dated_codes(ctx.catalogue)
    if not any(line.code in bounded for line in lines):
        return ()
    return list(_invalid_for_dos(rule, lines, ctx))


def _dated_codes(catalogue: CodeCatalogue) -> frozenset[str]:
    """The catalogue's codes with a first or last valid date (every other code is valid on every day)."""
    known = _DATED.get(id(catalogue))
    if known is None or known[0] is not catalogue or known[1] != len(catalogue.codes):
        if len(_DATED) >= 64:
            _DATED.clear()
        codes = frozenset(
            code for code, info in catalogue.codes.items() if info.valid_from is not None or info.valid_to is not None
        )
        known = _DATED[id(catalogue)] = (catalogue, len(catalogue.codes), codes)
    return known[2]


#: id of a catalogue -> (the catalogue, its number of codes, its codes with validity dates).
_DATED: dict[int, tuple[CodeCatalogue, int, frozenset[str]]] = {}


def _invalid_for_dos(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    exempt = rule.get("exempt")
    for i, line in _on_claim(lines):
        info = ctx.code_info(line.code)
        if info.valid_on(ctx.date_of_service) or (exempt and line.code in exempt):
            continue
        span = []
        if info.valid_from:
            span.append(f"from {info.valid_from}")
        if info.valid_to:
            span.append(f"until {info.valid_to}")
        yield Change.note(
            rule.id,
            rule.source,
            "INVALID_CODE_FOR_DOS",
            "error",
            f"{line.code} ({info.label}) is valid {' '.join(span)}, not on {ctx.date_of_service}",
            line=i,
            status="not_billable",
        )


def apply_time_required(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A timed code without minutes cannot be built (CORE-DOC-01)."""
    if all(line.minutes is not None or line.origin != "services" for line in lines):
        return ()
    return list(_time_missing(rule, lines, ctx))


def _time_missing(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    for i, line in _on_claim(lines):
        if line.origin == "services" and line.minutes is None and ctx.code_info(line.code).timed:
            if line.billed is not None and line.billed.units is not None:
                yield Change.note(
                    rule.id,
                    rule.source,
                    "UNITS_AS_BILLED",
                    "info",
                    f"{line.code}: {line.billed.units} unit{'s' if line.billed.units != 1 else ''} taken as billed; {_where(line)}"
                    " records no minutes, so the units are not verified against time",
                    line=i,
                )
                continue
            yield Change.note(
                rule.id,
                rule.source,
                "TIME_MISSING",
                "error",
                f"{line.code} is a timed code but {_where(line)} has no minutes; record direct one-on-one minutes",
                line=i,
                status="not_billable",
            )


def apply_not_billable_intent(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Massage only for relaxation or wellness is not billed to a payer (CORE-INT-03)."""
    codes = rule["codes"]
    services = ctx.encounter.services
    changes: list[Change] = []
    intents: set[str] | None = None
    for i, line in enumerate(lines):
        if line.origin != "services" or line.status == "not_billable" or line.code not in codes:
            continue
        service = services[line.service]
        if not service.intent:
            continue
        if intents is None:
            intents = set(rule["intents"])
        if set(service.intent) <= intents and not service.necessity:
            changes.append(
                Change.note(
                    rule.id,
                    rule.source,
                    "NOT_MEDICALLY_NECESSARY_RELAXATION",
                    "info",
                    f"{line.code} for {', '.join(service.intent)} with no medical-necessity condition is not billed to the payer; it may be offered as self-pay outside the claim",
                    line=i,
                    status="not_billable",
                )
            )
    return changes


def apply_provider_code_restriction(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Codes a provider type should not bill (CORE-PROV-01)."""
    if ctx.encounter.provider.type not in rule["providers"]:
        return
    for i, line in _on_claim(lines):
        if line.code in rule["codes"]:
            yield Change.note(
                rule.id,
                rule.source,
                "PROVIDER_CODE_RESTRICTED",
                "error",
                f"{line.code} is on this payer's list of codes {a_or_an(ctx.encounter.provider.type)} should not bill, so it is"
                " left off the claim. If a provider who may bill it performed the service, enter that provider; if your"
                f" contract with this payer allows it, ask whoever maintains your payer policies to switch off rule {rule.id}",
                line=i,
                status="not_billable",
            )


def apply_forbidden_code_choice(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """An entered code a source says cannot describe the documented technique: not billable (CORE-INT-04).

    The code named instead is the one the policy's ``code_by_technique`` table gives the technique.
    """
    forbidden = rule["forbidden"]
    services = ctx.encounter.services
    changes: list[Change] = []
    table: dict[str, str] | None = None
    for i, line in enumerate(lines):
        if line.origin != "services" or line.status == "not_billable" or line.code not in forbidden:
            continue  # this rule forbids no technique for the code: it is not among the forbidding rules
        service = services[line.service]
        if service.code != line.code or rule not in _forbidden_rules(service, ctx):
            continue
        if table is None:
            choosers = ctx.policy.rules_of("code_by_technique", ctx.date_of_service)
            table = choosers[0]["techniques"] if choosers else {}
        right = table.get(service.technique or "")
        instead = f"; report it as {right}" if right and right not in ("by_intent", "cmt") else ""
        why = f" ({rule.note})" if rule.note else ""
        changes.append(
            Change.note(
                rule.id,
                rule.source,
                rule["finding"],
                "error",
                f"{line.code} was entered for {service.technique!r}, but it cannot describe that service{why}{instead};"
                " not billable as entered",
                line=i,
                status="not_billable",
            )
        )
    return changes


def apply_bundled_code(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Codes this payer never pays separately (Medicare fee schedule status B): not billed (MCR-11)."""
    for i, line in _on_claim(lines):
        if line.code in rule["codes"]:
            yield Change.note(
                rule.id,
                rule.source,
                rule["finding"],
                "info",
                f"{line.code} ({ctx.code_info(line.code).label}) is never paid separately by this payer"
                f" ({rule['status_name']}): its payment is always included in the other services of the day, so it is"
                " not put on the claim. There is nothing to appeal, and the patient may not be charged for it",
                line=i,
                status="not_billable",
            )


def apply_provider_eligibility(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Who may bill this payer: an ineligible provider's lines are not billable, with an error (CORE-PROV-03).

    ``eligible`` provider types bill as usual; ``unverified`` ones bill with one warning that no
    public source settles it; every other provider type is ineligible.
    """
    who = ctx.encounter.provider.type
    if who in rule["eligible"] or who in rule["unverified"]:
        return ()  # billed as usual (an unverified type with one warning, in the review phase)
    codes = rule.get("codes")
    claim = [(i, line) for i, line in _on_claim(lines) if codes is None or line.code in codes]
    why = f" ({rule.note})" if rule.note else ""
    return [
        Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            "error",
            f"{line.code}: this payer does not pay services furnished by {_a(who)}{why}; the line is not put on the claim"
            " (billing it as another provider's service would misrepresent who furnished it)",
            line=i,
            status=rule["status"],
        )
        for i, line in claim
    ]


def review_provider_eligibility(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """An unverified provider type with lines still on the claim: one warning to confirm (CORE-PROV-03)."""
    who = ctx.encounter.provider.type
    if who in rule["eligible"] or who not in rule["unverified"]:
        return ()
    codes = rule.get("codes")
    if not any(codes is None or line.code in codes for _, line in _on_claim(lines)):
        return ()
    return (
        Change.note(
            rule.id,
            rule.source,
            rule["unverified_finding"],
            "warning",
            f"whether this payer pays services furnished by {_a(who)} is not settled by a public source"
            + (f" ({rule.note})" if rule.note else "")
            + "; confirm that the plan credentials this provider type before billing",
        ),
    )


def apply_assistant_modifier(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """CQ / CO on therapy furnished in whole or in part by an assistant, de minimis 10 % (MCR-08).

    Runs in the screen phase, before same-code services are merged, so that each code's minutes and
    assistant minutes are added over all its services; every line of a code gets the same answer.
    """
    enc = ctx.encounter
    if enc.provider.type not in rule["assistants"] and not any(s.assistant_minutes for s in enc.services):
        return ()  # furnished by the provider alone: nothing to mark
    return list(_assistant_changes(rule, lines, ctx))


def _assistant_changes(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    who = ctx.encounter.provider.type
    modifier = rule["modifiers"].get(who)
    codes = rule["codes"]
    claim = [(i, line) for i, line in _on_claim(lines) if line.code in codes]
    if not claim:
        return
    if who in rule["assistants"]:
        if modifier is None:
            return
        for i, line in claim:
            if modifier not in line.modifiers:
                yield Change(
                    rule.id,
                    rule.source,
                    line=i,
                    add_modifiers=(modifier,),
                    reason=f"{line.code} furnished in whole by {_a(who)}",
                )
        return
    by_code: dict[str, list[tuple[int, ClaimLine, Service]]] = {}
    for _, line in claim:
        service = _service(line, ctx)
        if service is not None and service.assistant_minutes:
            by_code.setdefault(line.code, [])
    if not by_code:
        return
    if modifier is None:
        yield Change.note(
            rule.id,
            rule.source,
            "ASSISTANT_MODIFIER_UNKNOWN",
            "warning",
            f"assistant minutes are recorded, but this payer's policy names no assistant modifier for {_a(who)} provider;"
            " check who supervised the assistant",
        )
        return
    for i, line in claim:
        service = _service(line, ctx)
        if service is not None and line.code in by_code:
            by_code[line.code].append((i, line, service))
    percent = rule["de_minimis_percent"]
    for code, entries in by_code.items():
        assistant = sum(s.assistant_minutes or 0 for _, _, s in entries)
        known = all(s.minutes is not None for _, _, s in entries)
        total = sum(s.minutes or 0 for _, _, s in entries)
        first = entries[0][0]
        if known and assistant * 100 <= percent * total:
            yield Change.note(
                rule.id,
                rule.source,
                "ASSISTANT_DE_MINIMIS",
                "info",
                f"{code}: the assistant furnished {assistant} of {total} minutes, not more than {percent} %: no {modifier}",
                line=first,
            )
            continue
        share = f"{assistant} of {total} minutes, more than {percent} %" if known else f"{assistant} minutes (the service's total is not recorded)"
        message = (
            f"{code}: furnished in part by an assistant ({share}): {modifier} on the line"
            + (f"; {rule.note}" if rule.note else "")
        )
        for n, (i, line, _) in enumerate(entries):
            if modifier in line.modifiers:
                continue
            yield Change(
                rule.id,
                rule.source,
                line=i,
                add_modifiers=(modifier,),
                finding=Finding("ASSISTANT_MODIFIER", "info", message, rule.id, rule.source, i) if n == 0 else None,
                reason=message,
            )


def _clock(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def apply_same_time_block(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Two timed services in the same minutes: only the overlapping minutes are in conflict (CORE-TIME-05).

    Services are taken in entry order; a later service's minutes that fall in an earlier kept
    service's block are not counted for it. Entirely inside earlier blocks: not billable. Partly:
    its minutes are cut to the minutes of its block outside them (never raised), with a warning.
    """
    services = ctx.encounter.services
    blocks = 0
    for line in lines:
        if line.origin == "services" and line.status != "not_billable":
            service = services[line.service]
            if service.start is not None and service.end is not None:
                blocks += 1
    if blocks < 2:
        return ()  # one time block cannot overlap another
    return list(_time_block_changes(rule, lines, ctx))


def _time_block_changes(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    timed = []
    for i, line in _on_claim(lines):
        service = _service(line, ctx)
        if service is None or service.start is None or service.end is None or not ctx.code_info(line.code).timed:
            continue
        timed.append((i, line, service.start, service.end))
    kept: list[tuple[ClaimLine, dt.time, dt.time, set[int]]] = []
    for ib, lb, sb, eb in timed:
        block = set(range(_clock(sb), _clock(eb)))
        hits = [(la, sa, ea, minutes) for la, sa, ea, minutes in kept if minutes & block]
        if not hits:
            kept.append((lb, sb, eb, block))
            continue
        overlap = block & set().union(*(minutes for *_, minutes in hits))
        others = ", ".join(f"{la.code} ({_where(la)}, {sa:%H:%M}-{ea:%H:%M})" for la, sa, ea, _ in hits)
        if len(overlap) >= len(block):
            yield Change.note(
                rule.id,
                rule.source,
                "SAME_TIME_BLOCK_CONFLICT",
                "error",
                f"{lb.code} ({_where(lb)}, {sb:%H:%M}-{eb:%H:%M}) overlaps {others}:"
                " two timed services cannot be billed for the same minutes, and 59 does not apply within one block; its minutes are not counted",
                line=ib,
                status="not_billable",
            )
            continue
        outside = len(block) - len(overlap)
        minutes = min(lb.minutes if lb.minutes is not None else outside, outside)
        kept.append((lb, sb, eb, block))
        message = (
            f"{lb.code} ({_where(lb)}, {sb:%H:%M}-{eb:%H:%M}) overlaps {others} for {len(overlap)} minutes: only those"
            f" minutes are in conflict and are not counted for {lb.code}; it keeps {minutes} of its {lb.minutes} minutes"
            " (CMS counts direct one-on-one minutes)"
        )
        yield Change(
            rule.id,
            rule.source,
            line=ib,
            minutes=minutes,
            finding=Finding("SAME_TIME_BLOCK_PARTIAL_OVERLAP", "warning", message, rule.id, rule.source, ib),
            reason=message,
        )


_CMT_LEVELS = {"98940": (1, 2), "98941": (3, 4), "98942": (5, 5)}
_CMT_RANK = {"98940": 1, "98941": 2, "98942": 3}


def _cmt_supported(n: int) -> str | None:
    return next((c for c, (a, b) in _CMT_LEVELS.items() if a <= n <= b), None)


def _spinal_cmt_to_keep(spinal: list[tuple[int, ClaimLine]], supported: str | None, n: int) -> int:
    """Which of several spinal CMT lines stays: the level the regions support, else the closest below it."""
    if supported is None and n == 0:
        # No regions recorded: NCCI keeps the column-1 code, the more extensive procedure.
        return max(spinal, key=lambda item: (_CMT_RANK[item[1].code], -item[0]))[0]
    cap = _CMT_RANK[supported] if supported else 0
    within = [item for item in spinal if _CMT_RANK[item[1].code] <= cap]
    if within:
        return max(within, key=lambda item: (_CMT_RANK[item[1].code], -item[0]))[0]
    return min(spinal, key=lambda item: (_CMT_RANK[item[1].code], item[0]))[0]


def apply_cmt_level(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """CMT level must match the regions manipulated; one spinal CMT per DOS (CORE-CMT-01).

    Two spinal CMT codes: the one the documented regions support is kept and the other denied, as
    the NCCI indicator-0 pairs 98941/98940, 98942/98940 and 98942/98941 do. A level above what the
    documented spinal regions support is upcoding: with ``unsupported_level = "bill_supported"``
    the supported level is billed, with ``"not_billable"`` nothing; an error either way. A level
    below the regions is a warning (the clinician may have reasons; it is never an overpayment).
    """
    for i, line in _on_claim(lines):
        if line.code == "98943" and line.regions and set(line.regions) <= set(SPINAL_REGIONS):
            yield Change.note(
                rule.id,
                rule.source,
                "CMT_LEVEL_MISMATCH",
                "warning",
                f"98943 is extraspinal CMT but {_where(line)} lists only spinal regions",
                line=i,
            )
    spinal = [(i, line) for i, line in _on_claim(lines) if line.code in _CMT_LEVELS]
    if not spinal:
        return
    documented = [r for _, line in spinal for r in line.regions]
    regions = sorted({r for r in documented if r in SPINAL_REGIONS}, key=SPINAL_REGIONS.index)
    n = len(regions)
    supported = _cmt_supported(n)
    keep = _spinal_cmt_to_keep(spinal, supported, n if documented else 0) if len(spinal) > 1 else spinal[0][0]
    kept = lines[keep]
    for i, line in spinal:
        if i == keep:
            continue
        why = (
            f"the documented spinal regions ({', '.join(regions)}) support {kept.code}"
            if documented and supported == kept.code
            else f"NCCI keeps the more extensive code ({kept.code})"
            if not documented
            else f"{kept.code} is the level closest to what the documented regions support"
        )
        yield Change.note(
            rule.id,
            rule.source,
            "DUPLICATE_SPINAL_CMT",
            "error",
            f"only one spinal CMT code is billed per date of service; {line.code} is denied and {kept.code} kept: {why}"
            f" (NCCI pair {max(line.code, kept.code)}/{min(line.code, kept.code)}, modifier indicator 0: no modifier bypasses it)",
            line=i,
            status="not_billable",
        )
    if not documented:
        return
    extra = [r for r in documented if r not in SPINAL_REGIONS]
    if extra:
        yield Change.note(
            rule.id,
            rule.source,
            "CMT_LEVEL_MISMATCH",
            "warning",
            f"{kept.code} is spinal CMT; extraspinal regions ({', '.join(dict.fromkeys(extra))}) are billed as 98943",
            line=keep,
        )
    lo, hi = _CMT_LEVELS[kept.code]
    span = count_range(lo, hi, "spinal region")
    if n > hi:
        yield Change.note(
            rule.id,
            rule.source,
            "CMT_LEVEL_MISMATCH",
            "warning",
            f"{kept.code} is for {span} but {n} are documented ({', '.join(regions)}); {plural(n, 'spinal region')} is {supported}",
            line=keep,
        )
        return
    if n >= lo:
        return
    found = f"only {n} documented ({', '.join(regions)})" if n else "no spinal region is documented"
    if supported is not None and rule["unsupported_level"] == "bill_supported":
        message = (
            f"{kept.code} is for {span} but {found}: a level above what the record supports is upcoding;"
            f" billed as {supported}, the level the documented regions support"
        )
        yield Change(
            rule.id,
            rule.source,
            line=keep,
            code=supported,
            finding=Finding("CMT_LEVEL_UNSUPPORTED", "error", message, rule.id, rule.source, keep),
            reason=message,
        )
        return
    what = "nothing is billed" if supported is None else "not billed (this policy bills an unsupported level not at all)"
    yield Change.note(
        rule.id,
        rule.source,
        "CMT_LEVEL_UNSUPPORTED",
        "error",
        f"{kept.code} is for {span} but {found}: a level above what the record supports is upcoding; {what}",
        line=keep,
        status="not_billable",
    )


def _cmt_lines(rule: Rule, lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    return [(i, line) for i, line in _on_claim(lines) if line.code in rule["cmt_codes"]]


def screen_cmt_same_region(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Soft-tissue codes in a region that received CMT are bundled into it (CORE-SAME-01/02)."""
    cmts = _cmt_lines(rule, lines)
    if not cmts:
        return
    cmt_regions: set[str] = set()
    unknown = [line for _, line in cmts if not line.regions]
    for _, line in cmts:
        cmt_regions.update(line.regions)
    low = (
        " (LOW confidence: no published edit row confirms this pair; bundled by analogy)"
        if rule.confidence == "L"
        else ""
    )
    for i, line in _on_claim(lines):
        if line.code not in rule["codes"] or line.origin != "services":
            continue
        if not line.regions or unknown:
            asserted = next((m for m in (line.billed.modifiers if line.billed else ()) if m in _DISTINCT), None)
            if asserted is not None:
                yield Change.note(
                    rule.id,
                    rule.source,
                    "DISTINCT_AS_BILLED",
                    "warning",
                    f"{line.code} with CMT {', '.join(c.code for _, c in cmts)}: billed with {asserted}, but no region is"
                    " recorded on both lines, so the different region is taken as billed, not verified; the note must show it",
                    line=i,
                )
                continue
            missing = _where(line) if not line.regions else ", ".join(_where(u) for u in unknown)
            yield Change.note(
                rule.id,
                rule.source,
                "REGION_MISSING",
                "warning",
                f"{line.code} with CMT {', '.join(c.code for _, c in cmts)}: no region recorded on {missing}, so a different region cannot be shown;"
                " treated as the same region (not billed, no 59)",
                line=i,
                status="not_billable",
            )
            continue
        shared = sorted(set(line.regions) & cmt_regions)
        if shared:
            partial = (
                ""
                if set(line.regions) <= cmt_regions
                else " (part of the service was in another region: record it as a separate service with its own minutes)"
            )
            yield Change.note(
                rule.id,
                rule.source,
                "BUNDLED_SAME_REGION_CMT",
                "info",
                f"{line.code} in {', '.join(shared)} is included in CMT {', '.join(c.code for _, c in cmts)} of the same region; its minutes are not billed{partial}{low}",
                line=i,
                status="not_billable",
            )


def modifiers_cmt_same_region(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Soft-tissue codes beside CMT in another region take the distinct-service modifier (CORE-MOD-01/02)."""
    cmts = _cmt_lines(rule, lines)
    if not cmts:
        return
    modifier = ctx.policy.settings.distinct_modifier_region
    for i, line in _on_claim(lines):
        if line.code in rule["codes"] and line.origin == "services" and modifier not in line.modifiers:
            yield Change(
                rule.id,
                rule.source,
                line=i,
                add_modifiers=(modifier,),
                reason=f"{line.code} in {', '.join(line.regions)}, a region other than CMT {', '.join(c.code for _, c in cmts)}: distinct-service modifier on the column-2 code",
            )


def _em_and_others(rule: Rule, lines: tuple[ClaimLine, ...]) -> tuple[list[tuple[int, ClaimLine]], list[ClaimLine]]:
    ems = [(i, line) for i, line in _on_claim(lines) if line.code in rule["em_codes"]]
    others = [line for _, line in _on_claim(lines) if line.code not in rule["em_codes"]]
    return ems, others


def screen_em_with_procedure(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """An E/M with CMT or another procedure needs a separately identifiable service (CORE-MOD-03)."""
    ems, others = _em_and_others(rule, lines)
    if not others:
        return
    for i, line in ems:
        proc = ctx.encounter.procedures[line.service] if line.origin == "procedures" else None
        if proc is None or proc.separately_identifiable is not True:
            yield Change.note(
                rule.id,
                rule.source,
                "EM_NOT_SEPARATELY_IDENTIFIABLE",
                "info",
                f"{line.code} is billed beside {', '.join(o.code for o in others)} only when it is significant and separately identifiable"
                " (set separately_identifiable: true); a routine pre-manipulation assessment is part of the CMT",
                line=i,
                status="not_billable",
            )


def modifiers_em_with_procedure(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Modifier 25 on a separately identifiable E/M billed with another procedure (CORE-MOD-03)."""
    ems, others = _em_and_others(rule, lines)
    if not others:
        return
    modifier = rule["modifier"]
    for i, line in ems:
        if modifier not in line.modifiers:
            yield Change(
                rule.id,
                rule.source,
                line=i,
                add_modifiers=(modifier,),
                reason=f"significant, separately identifiable E/M on the same day as {', '.join(o.code for o in others)}",
            )


# --------------------------------------------------------------------------------------------
# modifiers phase


def apply_therapy_modifier(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A therapy discipline modifier (GP/GO/GN) on every listed code (MCR-02 and similar)."""
    providers = rule.get("providers")
    if providers and ctx.encounter.provider.type not in providers:
        return ()
    modifier = rule["modifier"]
    codes = rule["codes"]
    return [
        Change(rule.id, rule.source, line=i, add_modifiers=(modifier,), reason=f"{line.code} is an always-therapy code")
        for i, line in enumerate(lines)
        if line.status != "not_billable" and line.code in codes and modifier not in line.modifiers
    ]


# --------------------------------------------------------------------------------------------
# adjust phase


def lines_over_visit_limit(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> list[tuple[int, ClaimLine]]:
    """The lines on the claim beyond a ``per_visit_limit`` rule's limit (empty when within it).

    Lines in ``exclude_categories`` are not counted; each counted line costs one (``count_basis =
    "codes"``) or its units (``"units"``), in ``value_order`` (highest value first) then claim order.
    Payer plugins that need to know whether a visit is over the limit use this, so they count exactly
    as the rule does.
    """
    by_units = rule["count_basis"] == "units"
    limit = rule["max"]
    claim = _on_claim(lines)
    if (sum(line.units for _, line in claim) if by_units else len(claim)) <= limit:
        return []  # even counting every line on the claim, the visit is within the limit
    excluded, rank = _compiled(rule, _visit_limit_tables)
    counted = [(i, line) for i, line in claim if ctx.code_info(line.code).category not in excluded]
    counted.sort(key=lambda item: (rank.get(item[1].code, len(rank)), item[0]))
    used, over = 0, []
    for i, line in counted:
        used += line.units if by_units else 1
        if used > limit:
            over.append((i, line))
    return over


def _visit_limit_tables(rule: Rule) -> tuple[frozenset[str], dict[str, int]]:
    """A per_visit_limit rule's excluded categories and the rank of each code in its value order."""
    return frozenset(rule["exclude_categories"]), {code: n for n, code in enumerate(rule.get("value_order") or ())}


def apply_per_visit_limit(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """At most N physical-medicine codes (or units) paid per visit (COM-04, AET-01).

    Lines beyond the limit stay on the claim as expected denials. Counting follows claim order,
    or ``value_order`` (highest value first) when the policy gives one.
    """
    limit, basis = rule["max"], rule["count_basis"]
    return [
        Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            "expected_denial",
            f"{line.code}: more than {limit} physical-medicine {basis} on one visit; this line is expected to be denied"
            + (f" ({rule.note})" if rule.note else ""),
            line=i,
            status="expected_denial",
        )
        for i, line in lines_over_visit_limit(rule, lines, ctx)
    ]


# --------------------------------------------------------------------------------------------
# review phase


def apply_necessity_required(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Massage needs one of the documented medical-necessity conditions (CORE-DOC-03)."""
    codes = rule["codes"]
    services = ctx.encounter.services
    return [
        Change.note(
            rule.id,
            rule.source,
            "MEDICAL_NECESSITY_NOT_SUPPORTED",
            "warning",
            f"{line.code} without a documented medical-necessity condition (one of: {', '.join(rule['conditions'])})",
            line=i,
        )
        for i, line in enumerate(lines)
        if line.origin == "services"
        and line.status != "not_billable"
        and line.code in codes
        and not services[line.service].necessity
    ]


def apply_unlisted_code(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Unlisted codes are paid by report, if at all (97039; Collins, Dynamic Chiropractic 2006)."""
    codes = rule["codes"]
    return [
        Change.note(
            rule.id,
            rule.source,
            "UNLISTED_CODE_BY_REPORT",
            "info",
            f"{line.code} is an unlisted code: describe the device and time in a report; many payers do not pay it",
            line=i,
        )
        for i, line in enumerate(lines)
        if line.status != "not_billable" and line.code in codes
    ]


def apply_massage_audit(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Massage audit triggers: more than N units on one DOS, or massage on more than M visits (CORE-UTIL-01)."""
    codes, max_units = rule["codes"], rule["max_units"]
    massage = [(i, line) for i, line in _on_claim(lines) if line.code in codes]
    if not massage:
        return ()
    prior = ctx.encounter.care.prior_massage_visits
    if (prior is None or prior + 1 <= rule["max_visits"]) and all(line.units <= max_units for _, line in massage):
        return ()
    return list(_massage_changes(rule, massage, ctx))


def _massage_changes(rule: Rule, massage: list[tuple[int, ClaimLine]], ctx: Context) -> Iterator[Change]:
    for i, line in massage:
        if line.units > rule["max_units"]:
            yield Change.note(
                rule.id,
                rule.source,
                "MASSAGE_AUDIT_TRIGGER_UNITS",
                "warning",
                f"{line.code} x{line.units}: more than {rule['max_units']} unit on one date of service is a known audit trigger",
                line=i,
            )
    prior = ctx.encounter.care.prior_massage_visits
    if prior is not None and prior + 1 > rule["max_visits"]:
        yield Change.note(
            rule.id,
            rule.source,
            "MASSAGE_AUDIT_TRIGGER_VISITS",
            "warning",
            f"massage billed on {plural(prior + 1, 'visit')} (this one included), more than {rule['max_visits']}: a known audit trigger",
            line=massage[0][0],
        )


def apply_initial_phase_count(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """More than N therapies in the initial phase of care is beyond usual and customary (CORE-UTIL-02)."""
    if ctx.encounter.care.phase != "initial" or len(lines) <= rule["max"]:
        return ()  # not the initial phase, or too few lines to count more than ``max`` codes
    codes = []
    for _, line in _on_claim(lines):
        if ctx.code_info(line.code).is_physical_medicine and line.code not in codes:
            codes.append(line.code)
    if len(codes) <= rule["max"]:
        return ()
    return (
        Change.note(
            rule.id,
            rule.source,
            "INITIAL_PHASE_MODALITY_COUNT",
            "warning",
            f"{len(codes)} therapies/modalities ({', '.join(codes)}) in the initial phase of care; more than {rule['max']} is beyond usual and customary",
        ),
    )


def apply_documentation_required(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Elements the note must contain for a code or provider type (CORE-DOC-02, CORE-DOC-04).

    Runs only when the encounter says what the note contains (``documentation`` given).
    """
    enc = ctx.encounter
    present = enc.documentation
    if present is None:
        return ()
    providers = rule.get("providers")
    if providers and enc.provider.type not in providers:
        return ()
    missing = [e for e in rule["elements"] if e not in present]
    if not missing:
        return ()
    codes = rule.get("codes")
    changes = []
    for i, line in enumerate(lines):
        if line.status != "not_billable" and (codes is None or line.code in codes):
            changes.append(
                Change.note(
                    rule.id,
                    rule.source,
                    "DOCUMENTATION_INCOMPLETE",
                    "warning",
                    f"{line.code}: the note lacks {', '.join(missing)}",
                    line=i,
                )
            )
            if codes is None:
                break
    return changes


def apply_care_fact_required(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A care fact a payer needs is absent or false while listed lines are on the claim (MCR-12, MCR-13)."""
    providers = rule.get("providers")
    if providers and ctx.encounter.provider.type not in providers:
        return ()
    value = getattr(ctx.encounter.care, rule["field"])
    when = rule["when"]
    if when == "missing" and value is not None:
        return ()
    if when == "false" and value is not False:
        return ()
    if when == "not_true" and value is True:
        return ()
    codes, modifier = rule.get("codes"), rule.get("with_modifier")
    hit = next(
        (
            i
            for i, line in enumerate(lines)
            if line.status != "not_billable"
            and (codes is None or line.code in codes)
            and (modifier is None or modifier in line.modifiers)
        ),
        None,
    )
    if hit is None:
        return ()
    state = "not recorded" if value is None else f"recorded as {value}"
    return (
        Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            rule["severity"],
            f"care.{rule['field']} is {state}: {rule['message']}",
            line=hit,
            status="expected_denial" if rule["severity"] == "expected_denial" else None,
        ),
    )


def apply_notice(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """A finding from policy data when its condition holds (open questions, payment notes)."""
    when_codes = rule.get("when_codes")
    with_codes = rule.get("with_codes")
    providers = rule.get("providers")
    if providers and ctx.encounter.provider.type not in providers:
        return ()
    claim = _on_claim(lines)
    hits = [(i, line) for i, line in claim if when_codes is None or line.code in when_codes]
    if not hits:
        return ()
    if with_codes is not None and not any(line.code in with_codes for _, line in claim):
        return ()
    return (
        Change.note(
            rule.id,
            rule.source,
            rule["finding"],
            rule["severity"],
            rule["message"],
            line=hits[0][0] if when_codes is not None else None,
        ),
    )


# --------------------------------------------------------------------------------------------
# claim phase


def apply_claim_form_limits(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """At most 12 diagnoses per claim and 4 pointers per line (CORE-CLAIM-01)."""
    max_ptr = rule["max_pointers"]
    if len(ctx.encounter.diagnoses) <= rule["max_diagnoses"] and all(
        len(line.diagnosis_pointers) <= max_ptr for line in lines
    ):
        return ()  # the claim form holds every diagnosis and pointer
    return list(_claim_form_changes(rule, lines, ctx))


def _claim_form_changes(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    max_dx, max_ptr = rule["max_diagnoses"], rule["max_pointers"]
    diagnoses = ctx.encounter.diagnoses
    claim = _on_claim(lines)
    for i, line in claim:
        if len(line.diagnosis_pointers) > max_ptr:
            dropped = line.diagnosis_pointers[max_ptr:]
            yield Change(
                rule.id,
                rule.source,
                line=i,
                diagnosis_pointers=line.diagnosis_pointers[:max_ptr],
                finding=Finding(
                    "TOO_MANY_POINTERS",
                    "warning",
                    f"{line.code} points to {len(line.diagnosis_pointers)} diagnoses; the first {max_ptr} are kept (dropped: {', '.join(diagnoses[p - 1] for p in dropped)})",
                ),
            )
    if len(diagnoses) <= max_dx:
        return
    referenced = sorted({p for _, line in claim for p in line.diagnosis_pointers[:max_ptr]})
    if len(referenced) > max_dx:
        yield Change.note(
            rule.id,
            rule.source,
            "TOO_MANY_DIAGNOSES",
            "error",
            f"the lines point to {len(referenced)} different diagnoses; a claim holds {max_dx}: split the claim",
        )
        for i, _ in claim:
            yield Change(
                rule.id, rule.source, line=i, status="not_billable", reason="no claim can hold these diagnoses"
            )
        return
    keep = set(referenced)
    for n in range(1, len(diagnoses) + 1):
        if len(keep) >= max_dx:
            break
        keep.add(n)
    kept = sorted(keep)
    new_index = {old: new for new, old in enumerate(kept, start=1)}
    lost = [diagnoses[n - 1] for n in range(1, len(diagnoses) + 1) if n not in keep]
    yield Change(
        rule.id,
        rule.source,
        claim_diagnoses=tuple(diagnoses[n - 1] for n in kept),
        finding=Finding(
            "TOO_MANY_DIAGNOSES",
            "warning",
            f"{len(diagnoses)} diagnoses; a claim holds {max_dx}: kept every diagnosis a line points to, dropped {', '.join(lost)}",
        ),
    )
    for i, line in claim:
        new = tuple(new_index[p] for p in line.diagnosis_pointers[:max_ptr])
        if new != line.diagnosis_pointers[:max_ptr]:
            yield Change(
                rule.id, rule.source, line=i, diagnosis_pointers=new, reason="diagnoses renumbered on the claim"
            )


# --------------------------------------------------------------------------------------------
# registry


def _no_phase(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    return ()


CODES = Param("codes", required=True, doc="codes and ranges the rule applies to")
_CARE_FIELDS = tuple(f.name for f in attrs.fields(Care))

# Trigger codes (RuleKind.triggers): each kind below changes nothing unless a line carries one of
# these codes, as its function shows (it only looks at lines whose code is in the parameter).
_CMT_CODES = frozenset({*_CMT_LEVELS, "98943"})


def _param(name: str) -> Callable[[Rule], Any]:
    """Trigger codes from a ``codes`` parameter; None (always run) when the rule leaves it out."""
    return lambda rule: rule.get(name)


def _param_keys(name: str) -> Callable[[Rule], Any]:
    """Trigger codes from the keys of a code-keyed table parameter."""
    return lambda rule: frozenset(rule[name])


CORE_KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "code_by_technique",
        "Choose a code from the documented technique, and from the intent for labels such as trigger point (CORE-INT-01).",
        apply={},
        params={
            "techniques": Param("table", required=True, doc='technique = "code", "by_intent" or "cmt"'),
            "intent_codes": Param(
                "code_names", required=True, choices=INTENTS, doc="code = [intents] for by_intent techniques"
            ),
            "codes_checked": Param("codes", default=None, doc="entered codes checked against the technique"),
        },
    ),
    RuleKind(
        "code_crosswalk",
        "Replace codes by this payer's equivalents.",
        apply={"code": apply_code_crosswalk},
        params={"map": Param("code_map", required=True)},
        triggers=_param_keys("map"),
    ),
    RuleKind(
        "code_valid_for_dos",
        "A code outside its validity dates is an error.",
        apply={"screen": apply_code_valid_for_dos},
        params={"exempt": Param("codes", doc="codes this payer still accepts outside the current code set")},
    ),
    RuleKind("time_required", "A timed code needs minutes (CORE-DOC-01).", apply={"screen": apply_time_required}),
    RuleKind(
        "not_billable_intent",
        "Services for these intents alone are not billed (CORE-INT-03).",
        apply={"screen": apply_not_billable_intent},
        params={"codes": CODES, "intents": Param("names", required=True, choices=INTENTS)},
        triggers=_param("codes"),
    ),
    RuleKind(
        "provider_code_restriction",
        "Codes a provider type must not bill (CORE-PROV-01).",
        apply={"screen": apply_provider_code_restriction},
        params={"codes": CODES, "providers": Param("names", required=True, choices=PROVIDER_TYPES)},
        triggers=_param("codes"),
    ),
    RuleKind(
        "forbidden_code_choice",
        "An entered code a source says cannot describe the documented technique: not billable, error naming the right code (CORE-INT-04).",
        apply={"screen": apply_forbidden_code_choice},
        params={
            "forbidden": Param("code_names", required=True, choices=TECHNIQUES, doc="code = [techniques it may not describe]"),
            "finding": Param("str", default="CODE_NOT_FOR_TECHNIQUE"),
        },
        triggers=_param_keys("forbidden"),
    ),
    RuleKind(
        "bundled_code",
        "Codes never paid separately (e.g. Medicare fee schedule status B): not billed, no appeal, no patient charge.",
        apply={"screen": apply_bundled_code},
        params={
            "codes": CODES,
            "status_name": Param("str", default="fee schedule status B, bundled", doc="how the payer's schedule marks them"),
            "finding": Param("str", default="BUNDLED_CODE_NOT_PAYABLE"),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "provider_eligibility",
        "Who may bill this payer: other provider types are not billable, with an error; unverified ones warn (CORE-PROV-03).",
        apply={"screen": apply_provider_eligibility, "review": review_provider_eligibility},
        params={
            "eligible": Param("names", required=True, choices=PROVIDER_TYPES, doc="provider types this payer pays"),
            "unverified": Param(
                "names", default=(), choices=PROVIDER_TYPES, doc="provider types no public source settles: billed, with a warning"
            ),
            "codes": Param("codes", doc="limit the rule to these codes (all when omitted)"),
            "status": Param("name", default="not_billable", choices=("not_billable", "expected_denial")),
            "finding": Param("str", default="PROVIDER_NOT_ELIGIBLE"),
            "unverified_finding": Param("str", default="PROVIDER_ELIGIBILITY_UNVERIFIED"),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "assistant_modifier",
        "CQ/CO on therapy furnished in whole or in part by an assistant; in part means more than the de minimis share of a code's minutes (MCR-08).",
        apply={"screen": apply_assistant_modifier},
        params={
            "codes": CODES,
            "modifiers": Param("table", required=True, doc='provider type = "modifier", e.g. PT = "CQ", OTA = "CO"'),
            "assistants": Param("names", default=("PTA", "OTA"), choices=PROVIDER_TYPES, doc="provider types that are assistants"),
            "de_minimis_percent": Param("int", default=10),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "same_time_block",
        "Two timed services in the same minutes (CORE-TIME-05).",
        apply={"screen": apply_same_time_block},
    ),
    RuleKind(
        "cmt_level",
        "CMT code matches the regions; one spinal CMT per DOS; an unsupported level is upcoding (CORE-CMT-01).",
        apply={"screen": apply_cmt_level},
        params={
            "unsupported_level": Param(
                "name",
                default="bill_supported",
                choices=("bill_supported", "not_billable"),
                doc="a level above the documented spinal regions: bill the supported level, or nothing",
            )
        },
        triggers=lambda rule: _CMT_CODES,
    ),
    RuleKind(
        "cmt_same_region",
        "Soft-tissue codes in a CMT region are bundled; in another region they take the distinct-service modifier (CORE-SAME-01).",
        apply={"screen": screen_cmt_same_region, "modifiers": modifiers_cmt_same_region},
        params={"codes": CODES, "cmt_codes": Param("codes", required=True)},
        triggers=_param("cmt_codes"),
    ),
    RuleKind(
        "em_with_procedure",
        "E/M beside a procedure: billed with 25 when separately identifiable, else not billed (CORE-MOD-03).",
        apply={"screen": screen_em_with_procedure, "modifiers": modifiers_em_with_procedure},
        params={"em_codes": Param("codes", required=True), "modifier": Param("str", default="25")},
        triggers=_param("em_codes"),
    ),
    RuleKind(
        "merge_same_code", "One line per timed code per DOS, minutes added (CORE-TIME-02).", apply={"merge": _no_phase}
    ),
    RuleKind(
        "fee_schedule",
        "Where the amount of one unit comes from: the CMS physician fee schedule computed from imported RVU and GPCI"
        " files (rbrvs), or the practice's fee file (fee_file); read by the engine when it prices the lines.",
        apply={"price": _no_phase},
        params={
            "method": Param("name", required=True, choices=("rbrvs", "fee_file"), doc="rbrvs: RVUs × GPCI × CF; fee_file: --fees"),
            "conversion_factors": Param("table", default={}, doc='first date of service = "CF", e.g. "2025-01-01" = "32.3465" (rbrvs)'),
            "setting": Param("name", default="non_facility", choices=("non_facility", "facility"), doc="which PE RVU (rbrvs)"),
        },
    ),
    RuleKind(
        "therapy_mppr",
        "Multiple procedure payment reduction: the second and later units and procedures of the listed codes on one day"
        " are paid with the practice-expense part (or the whole amount) reduced by percent.",
        apply={"price": _no_phase},
        params={
            "codes": CODES,
            "percent": Param("int", required=True, doc="the reduction, e.g. 50"),
            "component": Param("name", default="practice_expense", choices=("practice_expense", "whole")),
        },
    ),
    RuleKind(
        "assistant_payment",
        "A line with one of the modifiers (CQ, CO) is paid percent of the amount otherwise due.",
        apply={"price": _no_phase},
        params={
            "modifiers": Param("str_list", required=True, doc='e.g. ["CQ", "CO"]'),
            "percent": Param("int", required=True, doc="the share paid, e.g. 85"),
        },
    ),
    RuleKind(
        "timed_units",
        "How timed minutes become units; the policy's settings.unit_method picks the rule.",
        apply={"units": _no_phase},
        params={"method": Param("name", required=True, choices=("cms_total_time", "ama_per_code"))},
    ),
    RuleKind(
        "therapy_modifier",
        "A therapy discipline modifier on listed codes (MCR-02).",
        apply={"modifiers": apply_therapy_modifier},
        params={
            "codes": CODES,
            "modifier": Param("str", required=True),
            "providers": Param("names", choices=PROVIDER_TYPES),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "per_visit_limit",
        "At most N physical-medicine codes or units per visit; the rest are expected denials (COM-04, AET-01).",
        apply={"adjust": apply_per_visit_limit},
        params={
            "max": Param("int", required=True),
            "count_basis": Param("name", default="codes", choices=("codes", "units")),
            "exclude_categories": Param(
                "names", default=("em", "cmt_spinal", "cmt_extraspinal", "evaluation"), choices=CATEGORIES
            ),
            "value_order": Param(
                "str_list", doc="codes from highest to lowest value; decides which lines are over the limit"
            ),
            "finding": Param("str", default="EXPECTED_DENIAL_VISIT_LIMIT"),
        },
    ),
    RuleKind(
        "necessity_required",
        "A documented medical-necessity condition is needed (CORE-DOC-03).",
        apply={"review": apply_necessity_required},
        params={"codes": CODES, "conditions": Param("str_list", required=True)},
        triggers=_param("codes"),
    ),
    RuleKind(
        "unlisted_code",
        "Unlisted codes are paid by report (97039).",
        apply={"review": apply_unlisted_code},
        params={"codes": CODES},
        triggers=_param("codes"),
    ),
    RuleKind(
        "massage_audit",
        "Massage audit triggers (CORE-UTIL-01).",
        apply={"review": apply_massage_audit},
        params={"codes": CODES, "max_units": Param("int", default=1), "max_visits": Param("int", default=3)},
        triggers=_param("codes"),
    ),
    RuleKind(
        "initial_phase_count",
        "Therapies per visit in the initial phase (CORE-UTIL-02).",
        apply={"review": apply_initial_phase_count},
        params={"max": Param("int", default=2)},
    ),
    RuleKind(
        "documentation_required",
        "Elements the note must contain (CORE-DOC-02/04).",
        apply={"review": apply_documentation_required},
        params={
            "codes": Param("codes"),
            "providers": Param("names", choices=PROVIDER_TYPES),
            "elements": Param("str_list", required=True),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "notice",
        "A finding written in the policy, raised when its codes are on the claim.",
        apply={"review": apply_notice},
        params={
            "finding": Param("str", required=True),
            "severity": Param("name", default="info", choices=("error", "expected_denial", "warning", "info")),
            "message": Param("str", required=True),
            "when_codes": Param("codes"),
            "with_codes": Param("codes"),
            "providers": Param("names", choices=PROVIDER_TYPES),
        },
        triggers=_param("when_codes"),
    ),
    RuleKind(
        "care_fact_required",
        "A finding when a care fact the payer needs is missing or false while listed lines are on the claim.",
        apply={"review": apply_care_fact_required},
        params={
            "field": Param("name", required=True, choices=_CARE_FIELDS, doc="the care field, e.g. plan_of_care"),
            "when": Param("name", default="missing", choices=("missing", "false", "not_true")),
            "codes": Param("codes", doc="lines that need the fact (all when omitted)"),
            "providers": Param("names", choices=PROVIDER_TYPES),
            "with_modifier": Param("str", doc="only lines carrying this modifier (e.g. AT)"),
            "finding": Param("str", required=True),
            "severity": Param("name", default="warning", choices=("error", "expected_denial", "warning", "info")),
            "message": Param("str", required=True),
        },
        triggers=_param("codes"),
    ),
    RuleKind(
        "claim_form_limits",
        "Diagnoses per claim and pointers per line (CORE-CLAIM-01).",
        apply={"claim": apply_claim_form_limits},
        params={"max_diagnoses": Param("int", default=12), "max_pointers": Param("int", default=4)},
    ),
)


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the core rule kinds."""
    return CORE_KINDS


@hookimpl(trylast=True)
def payerpolicy_choose_code(service: Service, index: int, context: Context) -> CodeChoice | None:
    """Default code choice: the entered code, or the policy's ``code_by_technique`` rule."""
    return choose_code(service, index, context)
