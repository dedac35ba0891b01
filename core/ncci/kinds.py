"""The rule kinds ``ncci_ptp`` and ``ncci_mue``: procedure-to-procedure pairs and MUE limits applied to claim lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..evaluation.hookspecs import hookimpl
from ..evaluation.kinds import Change, Context, Param, RuleKind, SameDayLine
from ..evaluation.model import ClaimLine, Finding, Status
from ..evaluation.policy import Rule
from .index import PtpTable
from .table import _MAI_MEANING, DISTINCT_MODIFIERS, MueRow, MueTable, PtpRow
from .tables import mue_table_for, ptp_table_for

# --------------------------------------------------------------------------------------------
# PTP rule kind


def _on_claim(lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    return [(i, line) for i, line in enumerate(lines) if line.status != "not_billable"]


def _times(line: ClaimLine, ctx: Context) -> tuple[dt.time, dt.time] | None:
    if line.origin != "services":
        return None
    service = ctx.encounter.services[line.service]
    if service.start is None or service.end is None:
        return None
    return service.start, service.end


def billed_distinct(line: ClaimLine) -> str | None:
    """The distinct-service modifier (59, XE, XP, XS, XU) the claim as billed put on ``line``, if any."""
    if line.billed is None:
        return None
    return next((m for m in line.billed.modifiers if m in DISTINCT_MODIFIERS), None)


def distinct(a: ClaimLine, b: ClaimLine, ctx: Context) -> str | None:
    """Why two lines are distinct services: ``"region"``, ``"time"``, ``"billed"`` or None.

    ``region``: both lines record regions and they share none. ``time``: both come from services
    with a start and an end, and the blocks do not overlap. ``billed``: the facts that would show
    it are not recorded (a line without regions, no time blocks), but the claim as billed asserts a
    distinct service with a distinct-service modifier on one of the lines; taken as billed, not
    verified.
    """
    if a.regions and b.regions and not set(a.regions) & set(b.regions):
        return "region"
    ta, tb = _times(a, ctx), _times(b, ctx)
    if ta is not None and tb is not None and not (ta[0] < tb[1] and tb[0] < ta[1]):
        return "time"
    if (not a.regions or not b.regions) and (ta is None or tb is None) and (billed_distinct(a) or billed_distinct(b)):
        return "billed"
    return None


class _Edit(NamedTuple):
    col1: int
    col2: int
    row: PtpRow
    why: str | None


def _certain(line: ClaimLine, ctx: Context) -> bool:
    """Before units: whether a line is sure to be billed with at least one unit."""
    if line.origin != "services" or not ctx.code_info(line.code).timed:
        return True
    minutes = line.minutes or 0
    threshold = 8 if ctx.policy.settings.unit_method == "ama_per_code" else 15
    return minutes >= threshold


def _edits(table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context) -> list[_Edit]:
    """Every PTP edit between two claim lines of different codes, in claim order of the pair.

    Lines are grouped by code first: the table is asked once per pair of codes, and lines of one
    code are never paired, so the work grows with the edits found, not with the square of the lines.
    Only codes the table has rows for are grouped (any other code is in no edit), so a claim with
    fewer than two of them asks the table nothing.
    """
    known = table.codes()
    by_code: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        code = line.code
        if code in known and line.status != "not_billable":
            if code in by_code:
                by_code[code].append(i)
            else:
                by_code[code] = [i]
    if len(by_code) < 2:
        return []
    day = ctx.date_of_service
    codes = list(by_code)
    found: list[tuple[int, int, _Edit]] = []
    for n, code_a in enumerate(codes):
        for code_b in codes[n + 1 :]:
            forward = table.edit_on(code_a, code_b, day)
            if forward is None:  # the table looks both ways: no edit either way
                continue
            backward: PtpRow | None = None
            for i in by_code[code_a]:
                for j in by_code[code_b]:
                    if i < j:
                        row = forward
                    else:  # asked with the earlier line's code first, as the table ranks ties
                        backward = backward or table.edit_on(code_b, code_a, day) or forward
                        row = backward
                    col1, col2 = (i, j) if row.column_1 == code_a else (j, i)
                    why = distinct(lines[col1], lines[col2], ctx) if row.indicator == 1 else None
                    found.append((min(i, j), max(i, j), _Edit(col1, col2, row, why)))
    found.sort(key=lambda f: (f[0], f[1]))
    return [edit for _, _, edit in found]


def _denials(edits: list[_Edit], usable: set[int]) -> list[_Edit]:
    """Which unjustified edits deny their column-2 line, resolving chains (A denies B denies C).

    A line denied by one edit does not deny others. An edit waits while its column-1 line is the
    column 2 of another pending edit; cycles are broken in claim order.
    """
    pending = [e for e in edits if e.why is None and e.col1 in usable]
    denied: set[int] = set()
    done: list[_Edit] = []
    while True:
        pending = [e for e in pending if e.col1 not in denied and e.col2 not in denied]
        if not pending:
            return done
        targets = {e.col2 for e in pending}
        ready = [e for e in pending if e.col1 not in targets] or pending[:1]
        edit = ready[0]
        denied.add(edit.col2)
        done.append(edit)


class _Cross(NamedTuple):
    """An edit whose column 1 is on an earlier same-day claim (claim history) and column 2 on this claim."""

    col2: int
    other: SameDayLine
    row: PtpRow
    why: str | None


def cross_distinct(line: ClaimLine, other: SameDayLine) -> str | None:
    """Why a line of this claim and a line of an earlier same-day claim are distinct services.

    ``region``: both record regions and they share none. ``billed``: the regions are not both
    recorded, but this claim as billed puts a distinct-service modifier on the line (taken as
    billed). The other claim's time blocks are not known, so time never separates them.
    """
    if line.regions and other.regions and not set(line.regions) & set(other.regions):
        return "region"
    if (not line.regions or not other.regions) and billed_distinct(line):
        return "billed"
    return None


def _cross_edits(table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context) -> list[_Cross]:
    """Edits between this claim's lines (column 2) and the lines of the patient's earlier same-day claims (column 1).

    The earlier claims are already billed: only this claim's lines are changed. Where several
    earlier lines are column 1 of the same line, one the line is not distinct from decides.
    """
    if not ctx.same_day_lines:
        return []
    day = ctx.date_of_service
    known = table.codes()
    others: dict[str, list[SameDayLine]] = {}
    for other in ctx.same_day_lines:
        if other.units > 0 and other.code in known:
            others.setdefault(other.code, []).append(other)
    found: list[_Cross] = []
    if not others:
        return found
    for i, line in _on_claim(lines):
        if line.code not in known:
            continue
        for code, group in others.items():
            if code == line.code:
                continue
            row = table.edit_on(code, line.code, day)
            if row is None or row.column_1 != code or row.column_2 != line.code:
                continue  # no edit, or this line is column 1 (the earlier claim's line is not changed)
            reasons = [(cross_distinct(line, other) if row.indicator == 1 else None, other) for other in group]
            why, other = next(((w, o) for w, o in reasons if w is None), reasons[0])
            found.append(_Cross(i, other, row, why))
    return found


def _in_force(row: PtpRow) -> str:
    dates = []
    if row.effective is not None:
        dates.append(f"effective {row.effective}")
    if row.deletion is not None:
        dates.append(f"deletion date {row.deletion}")
    return f" ({', '.join(dates)})" if dates else ""


def _cross_message(rule: Rule, table: PtpTable, edit: _Cross, lines: tuple[ClaimLine, ...]) -> str:
    row, other, line = edit.row, edit.other, lines[edit.col2]
    if row.indicator == 0:
        why = "modifier indicator 0: no modifier bypasses this edit"
    elif line.regions and other.regions:
        why = (
            f"modifier indicator 1, but both lines treat the same region ({', '.join(sorted(set(line.regions) & set(other.regions)))}),"
            " so no distinct-service modifier is justified"
        )
    else:
        missing = "this line" if not line.regions else f"{other.code} on {other.encounter}"
        if not line.regions and not other.regions:
            missing = "either line"
        why = (
            f"modifier indicator 1, but no region is recorded on {missing} and the other claim's time blocks are not"
            " known, so no distinct service is documented and no distinct-service modifier is justified"
        )
    liability = rule.get("liability_note")
    return (
        f"{line.code} is column 2 of NCCI PTP edit {row.column_1}/{row.column_2}{_in_force(row)} with {other.code} billed"
        f" on claim {other.encounter}, the same patient's earlier claim on the same date of service and provider (claim"
        f" history); {why}; CMS rationale: {row.rationale or 'not given'}; table: {table.info.version}."
        f" {line.code} is not billed on this claim" + (f". {liability}" if liability else "")
    )


def _cross_denials(table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context) -> list[_Cross]:
    """The unjustified cross-claim edits, one per denied line of this claim."""
    denied: dict[int, _Cross] = {}
    for edit in _cross_edits(table, lines, ctx):
        if edit.why is None and edit.col2 not in denied:
            denied[edit.col2] = edit
    return list(denied.values())


def _ptp_message(rule: Rule, table: PtpTable, edit: _Edit, lines: tuple[ClaimLine, ...], ctx: Context) -> str:
    row = edit.row
    col1, col2 = lines[edit.col1], lines[edit.col2]
    if row.indicator == 0:
        why = "modifier indicator 0: no modifier bypasses this edit"
    else:
        why = (
            "modifier indicator 1, but no distinct service is documented (no different region recorded on both lines,"
            " no separate time blocks), so no distinct-service modifier is justified"
        )
    dates = []
    if row.effective is not None:
        dates.append(f"effective {row.effective}")
    if row.deletion is not None:
        dates.append(f"deletion date {row.deletion}")
    in_force = f" ({', '.join(dates)})" if dates else ""
    liability = rule.get("liability_note")
    return (
        f"{col2.code} is column 2 of NCCI PTP edit {row.column_1}/{row.column_2}{in_force} with {col1.code} on the same date"
        f" of service; {why}; CMS rationale: {row.rationale or 'not given'}; table: {table.info.version}."
        f" {col2.code} is not billed" + (f". {liability}" if liability else "")
    )


def _screen(
    rule: Rule, table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context, usable: Callable[[ClaimLine], bool]
) -> list[Change]:
    """Cross-claim denials first (the earlier claim is billed: its column 1 stands), then this claim's own edits.

    ``usable`` tells whether a line may deny others as column 1; it is asked only when there are edits.
    """
    cross = _cross_denials(table, lines, ctx) if ctx.same_day_lines else []
    edits = _edits(table, lines, ctx)
    if not cross and not edits:
        return []
    changes = [_denial(rule, edit.col2, _cross_message(rule, table, edit, lines)) for edit in cross]
    gone = {edit.col2 for edit in cross}
    edits = [e for e in edits if e.col1 not in gone and e.col2 not in gone]
    if edits:  # every line of an edit is on the claim and not gone: only its column 1 is asked about
        col1s = {e.col1 for e in edits if e.why is None}
        changes.extend(_deny(rule, table, _denials(edits, {i for i in col1s if usable(lines[i])}), lines, ctx))
    return changes


def screen_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Deny column-2 lines of unjustified edits whose column-1 line is sure to be billed (before units).

    With claim history, a column-1 code on the patient's earlier claim of the same date of service
    (``Context.same_day_lines``) denies its column-2 line on this claim as if both were on one claim.
    """
    return _screen(rule, ptp_table_for(rule), lines, ctx, lambda line: _certain(line, ctx))


def _has_units(line: ClaimLine) -> bool:
    return line.units > 0


def adjust_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Safety net after units: deny column-2 lines of unjustified edits still on the claim."""
    return _screen(rule, ptp_table_for(rule), lines, ctx, _has_units)


def _denial(rule: Rule, line: int, message: str) -> Change:
    """The column-2 line of an unjustified PTP edit (on this claim or across claims): not billed."""
    return Change(
        rule.id,
        rule.source,
        line=line,
        status="not_billable",
        set_modifiers=(),
        finding=Finding("NCCI_PTP_DENIAL", "warning", message, rule.id, rule.source, line),
        reason=message,
    )


def _deny(
    rule: Rule, table: PtpTable, edits: list[_Edit], lines: tuple[ClaimLine, ...], ctx: Context
) -> Iterator[Change]:
    for edit in edits:
        yield _denial(rule, edit.col2, _ptp_message(rule, table, edit, lines, ctx))


def modifiers_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """The distinct-service modifier on the column-2 line of each justified indicator-1 edit."""
    table = ptp_table_for(rule)
    edits = _edits(table, lines, ctx)
    if not edits and not ctx.same_day_lines:
        return ()
    return _modifiers(rule, table, edits, lines, ctx)


def _modifiers(
    rule: Rule, table: PtpTable, edits: list[_Edit], lines: tuple[ClaimLine, ...], ctx: Context
) -> Iterator[Change]:
    settings = ctx.policy.settings
    for edit in edits:
        if edit.why is None:
            continue
        line = lines[edit.col2]
        if line.units == 0 and ctx.code_info(line.code).timed:
            continue
        if any(m in line.modifiers for m in DISTINCT_MODIFIERS):
            continue  # already bypassed (e.g. by the same-region rule CORE-SAME-01): nothing to add
        row = edit.row
        finding = None
        if edit.why == "billed":
            asserted = billed_distinct(line) or billed_distinct(lines[edit.col1]) or ""
            modifier = settings.distinct_modifier_time if asserted == "XU" else settings.distinct_modifier_region
            basis = f"the claim as billed asserts a distinct service with {asserted}"
            finding = Finding(
                "DISTINCT_AS_BILLED",
                "warning",
                f"{line.code} is column 2 of NCCI PTP edit {row.column_1}/{row.column_2}: billed with {asserted}, but no"
                " different region or separate time block is recorded, so the distinct service is taken as billed,"
                " not verified; the note must show it",
                rule.id,
                rule.source,
                edit.col2,
            )
        else:
            modifier = settings.distinct_modifier_region if edit.why == "region" else settings.distinct_modifier_time
            basis = "a different region documented" if edit.why == "region" else "separate time blocks documented"
        yield Change(
            rule.id,
            rule.source,
            line=edit.col2,
            add_modifiers=(modifier,),
            finding=finding,
            reason=f"NCCI PTP edit {row.column_1}/{row.column_2} (modifier indicator 1; {row.rationale}; table: {table.info.version}):"
            f" {basis}, so the column-2 code takes {modifier}",
        )
    yield from _cross_modifiers(rule, table, lines, ctx)


def _cross_modifiers(rule: Rule, table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterator[Change]:
    """The distinct-service modifier on this claim's column-2 line of a justified edit with an earlier same-day claim."""
    settings = ctx.policy.settings
    done: set[int] = set()
    for edit in _cross_edits(table, lines, ctx):
        line = lines[edit.col2]
        if edit.why is None or edit.col2 in done:
            continue
        if line.units == 0 and ctx.code_info(line.code).timed:
            continue
        if any(m in line.modifiers for m in DISTINCT_MODIFIERS):
            continue
        done.add(edit.col2)
        row, other = edit.row, edit.other
        finding = None
        if edit.why == "billed":
            asserted = billed_distinct(line) or ""
            modifier = settings.distinct_modifier_time if asserted == "XU" else settings.distinct_modifier_region
            basis = f"the claim as billed asserts a distinct service with {asserted}"
            finding = Finding(
                "DISTINCT_AS_BILLED",
                "warning",
                f"{line.code} is column 2 of NCCI PTP edit {row.column_1}/{row.column_2} with {other.code} billed on claim"
                f" {other.encounter} (same patient, same date of service): billed with {asserted}, but no different region"
                " is recorded on both lines, so the distinct service is taken as billed, not verified; the note must show it",
                rule.id,
                rule.source,
                edit.col2,
            )
        else:
            modifier = settings.distinct_modifier_region
            basis = "a different region documented"
        yield Change(
            rule.id,
            rule.source,
            line=edit.col2,
            add_modifiers=(modifier,),
            finding=finding,
            reason=f"NCCI PTP edit {row.column_1}/{row.column_2} (modifier indicator 1; {row.rationale}; table: {table.info.version})"
            f" with {other.code} on the same patient's earlier claim {other.encounter} of the same date of service:"
            f" {basis}, so the column-2 code takes {modifier}",
        )


# --------------------------------------------------------------------------------------------
# MUE rule kind


def apply_mue(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Units above the MUE in force on the date of service, handled per MAI."""
    table = mue_table_for(rule)
    rows = table.codes
    by_code: dict[str, list[tuple[int, ClaimLine]]] = {}
    for i, line in enumerate(lines):
        code = line.code
        if code in rows and line.status != "not_billable":  # a code without rows has no MUE
            if code in by_code:
                by_code[code].append((i, line))
            else:
                by_code[code] = [(i, line)]
    if not by_code:
        return ()
    day = ctx.date_of_service
    changes: list[Change] = []
    for code, group in by_code.items():
        limit = table.limit_on(code, day)
        if limit is None:
            continue
        if limit.value == 0 and rule["zero_mue"] == "not_applied":
            # An MUE of 0 says Medicare does not pay the code to practitioners (a coverage fact, not a
            # count of units): a payer that adopts the edits but decides coverage itself says so.
            changes.append(
                Change.note(
                    rule.id,
                    rule.source,
                    "NCCI_MUE_ZERO_NOT_APPLIED",
                    "info",
                    f"{code}: the Medicare MUE of 0 (table: {table.info.version}) reflects Medicare coverage, not a units"
                    " limit; this payer's policy does not apply it, so the line is billed and coverage is the plan's own",
                    line=group[0][0],
                )
            )
            continue
        if limit.mai == 1:
            over = [[(i, line)] for i, line in group if line.units > limit.value]
            scope = "claim line"
            earlier: list[SameDayLine] = []
        else:
            # per date of service: the units of the patient's earlier same-day claims count too (claim history)
            earlier = [o for o in ctx.same_day_lines if o.code == code and o.units > 0] if ctx.same_day_lines else []
            billed = sum(line.units for _, line in group) + sum(o.units for o in earlier)
            over = [group] if billed > limit.value else []
            scope = "date of service"
        if over:
            cap = limit.mai in {int(m) for m in rule["cap_mai"]}
            liability = rule.get("liability_note")
            for lines_over in over:
                changes.extend(_mue_changes(rule, table, limit, lines_over, scope, cap, liability, earlier))
    return changes


def _mue_changes(
    rule: Rule,
    table: MueTable,
    limit: MueRow,
    group: list[tuple[int, ClaimLine]],
    scope: str,
    cap: bool,
    liability: str | None,
    earlier: list[SameDayLine] | None = None,
) -> Iterator[Change]:
    here = sum(line.units for _, line in group)
    before = sum(o.units for o in earlier or ())
    total = here + before
    code = group[0][1].code
    if before:
        claims = ", ".join(dict.fromkeys(o.encounter for o in earlier or ()))
        count = (
            f"{code} x{here} on this claim and x{before} on the same patient's earlier claim(s) of the same date of"
            f" service and provider ({claims}; claim history), x{total} in all"
        )
    else:
        count = f"{code} x{total}"
    head = (
        f"{count}: above the MUE of {limit.value} per {scope} (MAI {limit.mai}, {_MAI_MEANING[limit.mai]};"
        f" rationale: {limit.rationale or 'not given'}; table: {table.info.version})"
    )
    tail = f". {liability}" if liability else ""
    if cap:
        left = max(limit.value - before, 0)
        first = True
        for i, line in group:
            keep = min(line.units, left)
            left -= keep
            status: Status | None = "not_billable" if keep == 0 else None
            what = f"capped at {limit.value} unit(s)" if limit.value else "not billable (MUE 0)"
            if before and limit.value:
                what = (
                    f"capped at {max(limit.value - before, 0)} unit(s) on this claim (the MUE less the {before} unit(s)"
                    " already billed that day)"
                )
            finding = (
                Finding("NCCI_MUE_EXCEEDED", "warning", f"{head}: {what}{tail}", rule.id, rule.source, i)
                if first
                else None
            )
            first = False
            yield Change(
                rule.id,
                rule.source,
                line=i,
                units=keep,
                status=status,
                set_modifiers=() if keep == 0 else None,
                finding=finding,
                reason=f"MUE {limit.value}",
            )
        return
    first = True
    for i, _line in group:
        finding = (
            Finding(
                "NCCI_MUE_EXCEEDED",
                "expected_denial",
                f"{head}: expected to be denied as billed{tail}",
                rule.id,
                rule.source,
                i,
            )
            if first
            else None
        )
        first = False
        yield Change(
            rule.id, rule.source, line=i, status="expected_denial", finding=finding, reason=f"above MUE {limit.value}"
        )


# --------------------------------------------------------------------------------------------
# Registry

_TABLE = Param(
    "str",
    default="builtin",
    doc='"builtin" ($PAYERPOLICY_NCCI_DIR if set, else the shipped curated subset), or a path to a table file or a directory',
)
_LIABILITY = Param("str", doc="sentence appended to every finding (e.g. who may be billed for a denied service)")

NCCI_KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "ncci_ptp",
        "NCCI procedure-to-procedure edits: the column-2 code of a pair in force on the date of service is denied unless "
        "the modifier indicator is 1 and a distinct region or time block justifies the distinct-service modifier (NCCI-01/02).",
        apply={"screen": screen_ptp, "modifiers": modifiers_ptp, "adjust": adjust_ptp},
        params={"table": _TABLE, "liability_note": _LIABILITY},
    ),
    RuleKind(
        "ncci_mue",
        "NCCI medically unlikely edits: units above the MUE in force on the date of service, per MAI (NCCI-03).",
        apply={"adjust": apply_mue},
        params={
            "table": _TABLE,
            "liability_note": _LIABILITY,
            "cap_mai": Param(
                "names",
                default=("2",),
                choices=("1", "2", "3"),
                doc="MAIs whose excess units are removed (capped at the MUE); lines over other MAIs are flagged as expected denials",
            ),
            "zero_mue": Param(
                "name",
                default="applied",
                choices=("applied", "not_applied"),
                doc='an MUE of 0 (Medicare does not pay the code to practitioners, e.g. 98943, 97010): "applied" like any'
                ' MUE, or "not_applied" by a payer that adopts the NCCI edits but decides coverage itself (info finding)',
            ),
        },
    ),
)


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the NCCI rule kinds ``ncci_ptp`` and ``ncci_mue``."""
    return NCCI_KINDS
