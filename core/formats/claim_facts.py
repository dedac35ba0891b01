"""Facts a claim as billed states through its modifiers, written into the encounter it describes.

An 837P or a claim from a billing system carries no care fields: it says "active treatment" with
AT on the CMT line, "billed for the denial" with GY, "notice given" with GA or GX, "separately
identifiable" with 25 on the E/M. :func:`claim_facts` turns those modifiers into the encounter
fields the payer rules read, **only where the encounter does not already say** — so the claim is
checked on its own terms, and a fact the biller asserted is never silently contradicted. Each fact
added is listed (``ClaimFact``) so a reader can show it; docs/scrub.md has the table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..evaluation import vocab

__all__ = ["ClaimFact", "claim_facts"]

_CMT = ("cmt_spinal",)
_EM = ("em",)


@attrs.frozen
class ClaimFact:
    """One encounter field set from a billed modifier: the field, the value, and the modifier and entry behind it."""

    field: str
    value: Any
    modifier: str
    entry: str

    def text(self) -> str:
        """One line: ``care.phase = active (AT on procedures[0])``."""
        value = json.dumps(self.value) if isinstance(self.value, bool) else self.value
        return f"{self.field} = {value} ({self.modifier} on {self.entry})"


def _billed_modifiers(entry: Mapping[str, Any]) -> list[str]:
    billed = entry.get("billed")
    if not isinstance(billed, Mapping):
        return []
    mods = billed.get("modifiers") or []
    return [str(m).strip().upper() for m in mods if isinstance(m, str)]


def claim_facts(
    data: Mapping[str, Any], catalogue: vocab.CodeCatalogue | None = None
) -> tuple[dict[str, Any], tuple[ClaimFact, ...]]:
    """The encounter mapping with the facts its billed modifiers state, and the list of facts added.

    Never overrides a field that is present: AT on spinal CMT → ``care.phase = active``; GA or GZ
    on spinal CMT → ``care.phase = maintenance`` (GA also ``care.abn = signed``); GX on any line →
    ``care.abn = voluntary``; GY on any line → ``care.bill_noncovered = true``; 25 on an E/M →
    ``separately_identifiable = true`` on it.
    """
    catalogue = catalogue or vocab.default_catalogue()
    out = copy.deepcopy(dict(data))
    care = dict(out.get("care") or {})
    facts: list[ClaimFact] = []

    def care_fact(field: str, value: Any, modifier: str, entry: str) -> None:
        if care.get(field) is None:
            care[field] = value
            facts.append(ClaimFact(f"care.{field}", value, modifier, entry))

    for origin in ("procedures", "services"):
        for i, entry in enumerate(out.get(origin) or []):
            if not isinstance(entry, dict):
                continue
            mods = _billed_modifiers(entry)
            info = catalogue.get(str(entry.get("code", "")).strip().upper())
            category = info.category if info else ""
            where = f"{origin}[{i}]"
            if category in _CMT:
                if "AT" in mods:
                    care_fact("phase", "active", "AT", where)
                elif "GA" in mods or "GZ" in mods:
                    care_fact("phase", "maintenance", "GA" if "GA" in mods else "GZ", where)
                if "GA" in mods:
                    care_fact("abn", "signed", "GA", where)
            if "GX" in mods:
                care_fact("abn", "voluntary", "GX", where)
            if "GY" in mods:
                care_fact("bill_noncovered", True, "GY", where)
            if category in _EM and "25" in mods and entry.get("separately_identifiable") is None:
                entry["separately_identifiable"] = True
                facts.append(ClaimFact(f"{where}.separately_identifiable", True, "25", where))
    if care:
        out["care"] = care
    return out, tuple(facts)
