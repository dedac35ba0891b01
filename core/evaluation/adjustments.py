"""Denial terms for findings: the CARC, group code and RARCs a payer's remittance gives (``policies/adjustments.toml``).

A finding that says the payer denies or reduces its line carries an
:class:`~payerpolicy.model.Adjustment` beside the project's finding code, so a billing developer
reads it in the codes of an 835 (``CO-236`` for an NCCI pair, ``CO-97`` bundled, ``CO-151`` units
over the MUE, ``PR-119`` a benefit maximum). The table is policy data with the public source of
each pairing; the engine attaches the entry to each finding with that code (the first entry whose
``payers`` include the payer), and the line's modifiers may change the group (``GY``, ``GA``: the
patient is liable). ``docs/outcome-format.md`` ("adjustment") lists the shipped entries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import PayerPolicyError
from .model import ADJUSTMENT_GROUPS, Adjustment, ClaimLine, Finding
from .tomlcache import load_package_toml

__all__ = ["AdjustmentRule", "adjustment_for", "adjustment_rules", "adjustment_rules_from_mapping", "with_adjustments"]

_KEYS = ("finding", "group", "carc", "rarc", "group_with_modifiers", "payers", "source", "note")
_CARC = re.compile(r"^[A-Z]?\d{1,3}$")
_RARC = re.compile(r"^(M|N|MA)\d{1,3}$")


@attrs.frozen
class AdjustmentRule:
    """One entry of the table: the finding code, its group, CARC and RARCs, and where they come from."""

    finding: str
    group: str
    carc: str
    rarc: tuple[str, ...]
    source: str
    group_with_modifiers: Mapping[str, str] = attrs.field(factory=dict)
    payers: tuple[str, ...] = ()
    note: str = ""

    def adjustment(self, line: ClaimLine | None) -> Adjustment:
        """The adjustment for a finding about ``line`` (its modifiers may change the group)."""
        group = self.group
        for modifier, other in self.group_with_modifiers.items():
            if line is not None and modifier in line.modifiers:
                group = other
                break
        return Adjustment(group=group, carc=self.carc, rarc=self.rarc, source=self.source)


def _fail(file: str, where: str, expected: str, found: Any) -> PayerPolicyError:
    return PayerPolicyError(f"{file}: {where}: expected {expected}, found {found!r}")


def adjustment_rules_from_mapping(data: Any, *, file: str = "<adjustments>") -> tuple[AdjustmentRule, ...]:
    """Validate the table (the parsed TOML) and build its entries; errors name the file and entry."""
    if not isinstance(data, Mapping) or data.get("schema_version") != 1:
        raise _fail(file, "schema_version", "1", data.get("schema_version") if isinstance(data, Mapping) else data)
    rules = []
    for n, entry in enumerate(data.get("reasons", [])):
        where = f"reasons[{n}]"
        if not isinstance(entry, Mapping):
            raise _fail(file, where, "a table", entry)
        for key in entry:
            if key not in _KEYS:
                raise _fail(file, f"{where}.{key}", f"one of the keys {', '.join(_KEYS)}", key)
        for key in ("finding", "group", "carc", "source"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise _fail(file, f"{where}.{key}", "a non-empty string", entry.get(key))
        if entry["group"] not in ADJUSTMENT_GROUPS:
            raise _fail(file, f"{where}.group", f"one of {', '.join(ADJUSTMENT_GROUPS)}", entry["group"])
        if not _CARC.match(entry["carc"]):
            raise _fail(file, f"{where}.carc", "a claim adjustment reason code such as 236", entry["carc"])
        rarc = entry.get("rarc", [])
        if not isinstance(rarc, list) or not all(isinstance(r, str) and _RARC.match(r) for r in rarc):
            raise _fail(file, f"{where}.rarc", "a list of remark codes such as N362, M15, MA122", rarc)
        modifiers = entry.get("group_with_modifiers", {})
        if not isinstance(modifiers, Mapping) or not all(g in ADJUSTMENT_GROUPS for g in modifiers.values()):
            raise _fail(file, f"{where}.group_with_modifiers", "a table of modifier = group code", modifiers)
        payers = entry.get("payers", [])
        if not isinstance(payers, list) or not all(isinstance(p, str) for p in payers):
            raise _fail(file, f"{where}.payers", "a list of payer ids", payers)
        rules.append(
            AdjustmentRule(
                finding=entry["finding"],
                group=entry["group"],
                carc=entry["carc"],
                rarc=tuple(rarc),
                source=entry["source"],
                group_with_modifiers=dict(modifiers),
                payers=tuple(payers),
                note=str(entry.get("note", "")),
            )
        )
    return tuple(rules)


@functools.cache
def adjustment_rules() -> tuple[AdjustmentRule, ...]:
    """The shipped table, ``policies/adjustments.toml`` (read once)."""
    data = load_package_toml("payerpolicy.policies", "adjustments.toml")
    return adjustment_rules_from_mapping(data, file="payerpolicy/policies/adjustments.toml")


def with_adjustments(
    findings: Sequence[Finding],
    lines: Sequence[ClaimLine],
    payer_id: str,
    rules: Sequence[AdjustmentRule] | None = None,
) -> tuple[Finding, ...]:
    """The findings, each with the adjustment of the first table entry for its code and payer.

    A finding that already carries one (set by a plugin) keeps it. ``rules``: another table than
    the shipped one.
    """
    out = []
    for finding in findings:
        if finding.adjustment is None:
            entry = adjustment_for(finding.code, payer_id, rules)
            if entry is not None:
                line = lines[finding.line] if finding.line is not None and finding.line < len(lines) else None
                finding = attrs.evolve(finding, adjustment=entry.adjustment(line))
        out.append(finding)
    return tuple(out)


def adjustment_for(code: str, payer_id: str, rules: Sequence[AdjustmentRule] | None = None) -> AdjustmentRule | None:
    """The first entry for finding ``code`` that applies to the payer, or None (``rules``: default the shipped table)."""
    for rule in _shipped_index().get(code, ()) if rules is None else rules:
        if rule.finding == code and (not rule.payers or payer_id in rule.payers):
            return rule
    return None


@functools.cache
def _shipped_index() -> dict[str, tuple[AdjustmentRule, ...]]:
    """The shipped table's entries by finding code, in table order (built once)."""
    by_code: dict[str, list[AdjustmentRule]] = {}
    for rule in adjustment_rules():
        by_code.setdefault(rule.finding, []).append(rule)
    return {code: tuple(entries) for code, entries in by_code.items()}
