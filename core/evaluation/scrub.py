"""A claim as billed beside the payer's expected lines: every difference, as a repair or an edit.

The engine evaluates a claim as billed like any encounter: the clinical facts it carries (minutes,
regions, intent, provider) decide the expected lines, and what the facts do not say is taken as
billed (units without minutes, a distinct-service modifier without regions). :func:`differences`
then compares each line as billed with the line the policy expects:

* a **repair** never touches clinical content and a tool may apply it: a therapy or assistant
  modifier the payer wants (GP, CQ), 59 replaced by the X modifier the payer prefers, modifier
  order, a modifier beyond the payer's limit, the order of the diagnosis pointers;
* an **edit** is for a person to decide: units, the code, a line that will not be paid or is
  expected to be denied, a line the payer expects that the claim does not have, and modifiers that
  assert facts (a distinct service, an ABN, the therapy threshold, a separately identifiable E/M).

Nothing is applied here; :func:`repaired_modifiers` says what a line's modifiers become once the
repairs (and only the repairs) are applied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from .model import Billed, ClaimLine, Difference, Encounter, Outcome
from .vocab import CodeCatalogue

__all__ = ["ATTESTING_MODIFIERS", "DISTINCT_MODIFIERS", "differences", "repaired_modifiers"]

#: Distinct-service modifiers: 59 and its X{EPSU} subset.
DISTINCT_MODIFIERS = ("59", "XE", "XP", "XS", "XU")

#: Modifiers that assert a fact about the service or the patient's notice, with the public source of
#: each; adding or removing one is an edit (a person decides), never a repair.
ATTESTING_MODIFIERS: dict[str, str] = {
    "59": "CMS MLN Fact Sheet MLN1783722, Proper Use of Modifiers 59 & X{EPSU} (2024)",
    "XE": "CMS MLN Fact Sheet MLN1783722, Proper Use of Modifiers 59 & X{EPSU} (2024)",
    "XP": "CMS MLN Fact Sheet MLN1783722, Proper Use of Modifiers 59 & X{EPSU} (2024)",
    "XS": "CMS MLN Fact Sheet MLN1783722, Proper Use of Modifiers 59 & X{EPSU} (2024)",
    "XU": "CMS MLN Fact Sheet MLN1783722, Proper Use of Modifiers 59 & X{EPSU} (2024)",
    "25": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 12, §30.6.6 (modifier 25)",
    "GA": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 1, §60 (Advance Beneficiary Notice)",
    "GX": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 1, §60 (Advance Beneficiary Notice)",
    "GY": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 1, §60 (statutorily excluded services)",
    "GZ": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 1, §60 (Advance Beneficiary Notice)",
    "KX": "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 5, §10.3 (KX modifier threshold)",
    "AT": "CMS Medicare Benefit Policy Manual, Pub. 100-02, ch. 15, §240.1.3 (AT: active/corrective chiropractic treatment)",
}

_SCRUB_RULE = "CORE-SCRUB-01"
_SCRUB_SOURCE = "ASC X12 005010X222A1 837P, loop 2400 SV1 (the line as billed) compared with the payer's policy"

#: Modifiers that bill a line for its denial on purpose (non-covered, or liability notice given).
_DENIAL_DECLARED = ("GA", "GX", "GY", "GZ")

_UNTIMED_SOURCE = (
    "CMS Medicare Claims Processing Manual, Pub. 100-04, ch. 5, §20.2 (a service-based, untimed code is one unit"
    " per date of service, whatever its length)"
)

Entry = tuple[str, int]

#: Findings that put the billed code itself in doubt: an edit for a person, with the code the
#: documented facts point to when the finding names one.
_DOUBTFUL_CODE = {"CODE_TECHNIQUE_MISMATCH": "CODE_BY_INTENT", "CMT_LEVEL_MISMATCH": "CMT_LEVEL"}
_POINTS_TO = re.compile(r"(?:points to|regions is|is billed as) ([0-9A-Z]{5})\b")


def _trace_basis(outcome: Outcome, line: int, field: str, value: Any = None) -> tuple[str, str, str]:
    """Rule, source and reason of the last trace entry that set ``field`` of ``line`` (to hold ``value``)."""
    for t in reversed(outcome.trace):
        if t.line != line or t.field != field:
            continue
        if value is not None:
            after = t.after if isinstance(t.after, tuple | list) else (t.after,)
            before = t.before if isinstance(t.before, tuple | list) else (t.before,)
            if (value in after) == (value in before):
                continue
        return t.rule, t.source, t.reason
    return _SCRUB_RULE, _SCRUB_SOURCE, ""


def _removed_by(outcome: Outcome, line: int, modifier: str) -> tuple[str, str, str] | None:
    """Rule, source and reason of a trace entry that took ``modifier`` off ``line``, if one did."""
    for t in reversed(outcome.trace):
        if t.line == line and t.field == "modifiers" and modifier in (t.before or ()) and modifier not in (t.after or ()):
            return t.rule, t.source, t.reason
    return None


def _finding_basis(outcome: Outcome, line: int) -> tuple[str, str, str] | None:
    """Rule, source and message of the most severe finding about ``line``."""
    rank = {"error": 0, "expected_denial": 1, "warning": 2, "info": 3}
    found = sorted((rank[f.severity], n) for n, f in enumerate(outcome.findings) if f.line == line)
    if not found:
        return None
    f = outcome.findings[found[0][1]]
    return f.rule, f.source, f.message


def _entry(encounter: Encounter, origin: str, index: int) -> Any:
    return encounter.services[index] if origin == "services" else encounter.procedures[index]


def _modifier_differences(outcome: Outcome, n: int, line: ClaimLine, billed: Billed, limit: int) -> list[Difference]:
    out: list[Difference] = []
    have, want = list(billed.modifiers), list(line.modifiers)
    missing = [m for m in want if m not in have]
    extra = [m for m in have if m not in want]
    swaps: list[tuple[str, str]] = []
    for m in list(extra):
        if m in DISTINCT_MODIFIERS:
            into = next((w for w in missing if w in DISTINCT_MODIFIERS), None)
            if into is not None:
                swaps.append((m, into))
                extra.remove(m)
                missing.remove(into)
    for old, new in swaps:
        rule, source, _ = _trace_basis(outcome, n, "modifiers", new)
        out.append(
            Difference(
                "repair",
                "DISTINCT_MODIFIER_REPLACED",
                "modifiers",
                n,
                old,
                new,
                f"{line.code}: billed with {old}; this payer wants the distinct service shown with {new}",
                rule,
                source,
            )
        )
    for m in missing:
        rule, source, reason = _trace_basis(outcome, n, "modifiers", m)
        kind: Literal["repair", "edit"] = "edit" if m in ATTESTING_MODIFIERS else "repair"
        what = f"; {reason}" if reason else ""
        out.append(
            Difference(
                kind,
                "MODIFIER_MISSING",
                "modifiers",
                n,
                None,
                m,
                f"{line.code}: {m} is expected and was not billed{what}"
                + ("; it asserts a fact, so a person decides" if kind == "edit" else ""),
                rule,
                source,
            )
        )
    over = len(have) > limit
    for m in extra:
        removed = _removed_by(outcome, n, m)
        if m in ATTESTING_MODIFIERS:
            kind, why = "edit", "; it asserts a fact, so a person decides"
        elif removed is not None:
            kind, why = "repair", f"; the policy takes it off ({removed[2]})" if removed[2] else ""
        else:
            kind, why = "edit", "; keep it only if the payer asks for it"
        if removed is not None:
            rule, source = removed[0], removed[1]
        else:
            rule, source = _SCRUB_RULE, ATTESTING_MODIFIERS.get(m, _SCRUB_SOURCE)
        out.append(
            Difference(
                kind,
                "MODIFIER_NOT_EXPECTED",
                "modifiers",
                n,
                m,
                None,
                f"{line.code}: billed with {m}, which this payer's policy does not put on the line{why}",
                rule,
                source,
            )
        )
    if over:
        out.append(
            Difference(
                "repair",
                "MODIFIER_LIMIT",
                "modifiers",
                n,
                list(have),
                list(want),
                f"{line.code}: billed with {len(have)} modifiers; a claim line holds {limit}",
                "CORE-MOD-05",
                "CMS-1500 item 24D; ASC X12 005010X222A1 SV101-3 to SV101-6",
            )
        )
    kept = [m for m in have if m in want]
    if not missing and not extra and not swaps and kept != [m for m in want if m in kept]:
        rule, source, _ = _trace_basis(outcome, n, "modifiers")
        out.append(
            Difference(
                "repair",
                "MODIFIER_ORDER",
                "modifiers",
                n,
                list(have),
                list(want),
                f"{line.code}: modifiers billed as {', '.join(have)}; this payer wants them as {', '.join(want)}",
                rule,
                source,
            )
        )
    return out


def differences(
    encounter: Encounter,
    outcome: Outcome,
    catalogue: CodeCatalogue,
    *,
    entries: Sequence[Sequence[Entry]] | None = None,
    max_modifiers: int = 4,
) -> tuple[Difference, ...]:
    """Every difference between the claim as billed (``encounter``) and the payer's lines (``outcome``).

    ``entries`` lists, per outcome line, the encounter entries merged into it (by default the one
    the line names). An encounter with no billed entry has no differences.
    """
    if not encounter.as_billed:
        return ()
    per_line = entries if entries is not None else [[(line.origin, line.service)] for line in outcome.lines]
    out: list[Difference] = []
    covered: set[Entry] = set()
    for n, line in enumerate(outcome.lines):
        covered.update(per_line[n])
        first = _entry(encounter, line.origin, line.service)
        billed = line.billed
        if billed is None:
            if line.on_claim:
                rule, source, _ = _trace_basis(outcome, n, "units")
                out.append(
                    Difference(
                        "edit",
                        "LINE_NOT_BILLED",
                        "line",
                        n,
                        None,
                        f"{line.code} x{line.units}",
                        f"{line.code} x{line.units} is expected from {line.origin}[{line.service}] but is not on the claim as billed",
                        rule,
                        source,
                    )
                )
            continue
        code = getattr(first, "code", None)
        if code is not None and code != line.code:
            rule, source, reason = _trace_basis(outcome, n, "code")
            out.append(
                Difference(
                    "edit",
                    "CODE_CHANGED",
                    "code",
                    n,
                    code,
                    line.code,
                    f"billed as {code}; this payer's policy bills {line.code}" + (f": {reason}" if reason else ""),
                    rule,
                    source,
                )
            )
        for f in outcome.findings:
            if f.line == n and f.code in _DOUBTFUL_CODE:
                hint = _POINTS_TO.search(f.message)
                out.append(
                    Difference(
                        "edit",
                        _DOUBTFUL_CODE[f.code],
                        "code",
                        n,
                        line.code,
                        hint.group(1) if hint else None,
                        f"{line.code} as billed: {f.message}",
                        f.rule,
                        f.source,
                    )
                )
        if line.status != "billable":
            basis = _finding_basis(outcome, n)
            rule, source, message = basis or _trace_basis(outcome, n, "status")
            denial = line.status == "expected_denial"
            declared = {m for m in line.modifiers if m in _DENIAL_DECLARED}
            if denial and declared and declared <= set(billed.modifiers):
                # billed for the denial on purpose (a GY, GZ, GA or GX line as the payer expects it);
                # any other modifier difference on the line is reported on its own below
                pass
            else:
                out.append(
                    Difference(
                        "edit",
                        "EXPECTED_DENIAL" if denial else "LINE_NOT_BILLABLE",
                        "status",
                        n,
                        "billable",
                        line.status,
                        f"{code or line.code} as billed "
                        + ("is expected to be denied" if denial else "is not billable for this payer")
                        + (f": {message}" if message else ""),
                        rule,
                        source,
                    )
                )
            if not denial:
                continue
        if billed.units != line.units:
            rule, source, reason = _trace_basis(outcome, n, "units")
            if rule == _SCRUB_RULE and not catalogue[line.code].timed:
                rule, source = "CORE-CODE-01", _UNTIMED_SOURCE
            billed_units = (
                "no units" if billed.units is None else f"{billed.units} unit{'s' if billed.units != 1 else ''}"
            )
            out.append(
                Difference(
                    "edit",
                    "UNITS_CHANGED",
                    "units",
                    n,
                    billed.units,
                    line.units,
                    f"{line.code}: billed with {billed_units}; this payer's policy expects {line.units}"
                    + (f" ({reason})" if reason else ""),
                    rule,
                    source,
                )
            )
        out.extend(_modifier_differences(outcome, n, line, billed, max_modifiers))
        pointers = tuple(getattr(first, "diagnosis_pointers", ()))
        if pointers and pointers != line.diagnosis_pointers:
            same = sorted(pointers) == sorted(line.diagnosis_pointers)
            rule, source, reason = _trace_basis(outcome, n, "diagnosis_pointers")
            out.append(
                Difference(
                    "repair" if same else "edit",
                    "POINTER_ORDER" if same else "POINTERS_CHANGED",
                    "diagnosis_pointers",
                    n,
                    list(pointers),
                    list(line.diagnosis_pointers),
                    f"{line.code}: diagnosis pointers billed as {list(pointers)}; expected {list(line.diagnosis_pointers)}"
                    + (f" ({reason})" if reason else ""),
                    rule,
                    source,
                )
            )
    billed_entries: list[tuple[str, int, Any]] = [("procedures", i, p) for i, p in enumerate(encounter.procedures)]
    billed_entries += [("services", i, s) for i, s in enumerate(encounter.services)]
    for origin, i, item in billed_entries:
        if item.billed is None or (origin, i) in covered:
            continue
        shown = getattr(item, "code", None) or getattr(item, "technique", None) or "?"
        out.append(
            Difference(
                "edit",
                "LINE_NOT_EXPECTED",
                "line",
                None,
                shown,
                None,
                f"{origin}[{i}] ({shown}) is billed but gives no claim line for this payer",
                _SCRUB_RULE,
                _SCRUB_SOURCE,
            )
        )
    return tuple(out)


def repaired_modifiers(outcome: Outcome, line: int, *, limit: int = 4) -> tuple[str, ...] | None:
    """The line's modifiers as billed with the outcome's repairs applied, and nothing else changed.

    None when the line was not billed. ``limit`` is the payer's modifiers per line (over it, the
    modifiers the payer's line does not have are dropped, last billed first). Edits are not applied: a modifier an edit names stays as
    billed (present or absent).
    """
    target = outcome.lines[line]
    if target.billed is None:
        return None
    mods = list(target.billed.modifiers)
    ordered = False
    limited: int | None = None
    for d in outcome.differences:
        if d.line != line or d.field != "modifiers" or d.kind != "repair":
            continue
        if d.code == "DISTINCT_MODIFIER_REPLACED":
            mods = [d.expected if m == d.billed else m for m in mods]
        elif d.code == "MODIFIER_MISSING" and d.expected not in mods:
            mods.append(d.expected)
        elif d.code == "MODIFIER_NOT_EXPECTED":
            mods = [m for m in mods if m != d.billed]
        elif d.code == "MODIFIER_ORDER":
            ordered = True
        elif d.code == "MODIFIER_LIMIT":
            ordered, limited = True, limit
    want = list(target.modifiers)
    rank = {m: i for i, m in enumerate(want)}
    if ordered or any(d.line == line and d.kind == "repair" and d.field == "modifiers" for d in outcome.differences):
        mods = sorted(mods, key=lambda m: (rank.get(m, len(want)), mods.index(m)))
    mods = list(dict.fromkeys(mods))
    if limited is not None:
        # Over the limit: the modifiers the payer's line does not have go first, last billed first.
        while len(mods) > max(limited, 1) and any(m not in rank for m in mods):
            mods.remove(next(m for m in reversed(mods) if m not in rank))
    return tuple(mods)
