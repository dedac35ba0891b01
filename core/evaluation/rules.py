"""The policy as loaded: :class:`Policy`, its :class:`Settings` and their :class:`Basis`, and each :class:`Rule`.

Value types only (attrs, frozen); :mod:`payerpolicy.evaluation.policy` reads and validates TOML into them.
Rule kinds (:mod:`payerpolicy.evaluation.kinds`) receive them, so this module sits below both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
import tomli_w


@attrs.frozen
class Basis:
    """Why a setting has its value: the rule id and the source behind it."""

    rule: str
    source: str


@attrs.frozen
class Settings:
    """Payer-wide settings shared by several rule kinds."""

    unit_method: str
    distinct_modifier_region: str
    distinct_modifier_time: str
    modifier_order: tuple[str, ...]
    max_modifiers_per_line: int
    tie_break: str
    basis: Mapping[str, Basis] = attrs.field(factory=dict)

    def basis_of(self, name: str) -> Basis | None:
        """The rule and source behind setting ``name``, when the policy gives one."""
        return self.basis.get(name)


@attrs.frozen
class Rule:
    """One rule entry of a policy: id, kind, source, confidence, dates and parameters.

    ``params`` holds the kind's parameters as written (for dumping); ``values`` holds them
    converted (code sets, tuples) with defaults filled in, which is what rule functions read.
    ``origin`` is the file the entry came from (the last one that changed it).
    """

    id: str
    kind: str
    source: str
    confidence: str = "M"
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None
    enabled: bool = True
    note: str = ""
    params: Mapping[str, Any] = attrs.field(factory=dict)
    values: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    origin: str = attrs.field(default="", eq=False)

    def active_on(self, day: dt.date) -> bool:
        """Whether the rule is enabled and in force on ``day``."""
        if not self.enabled:
            return False
        if self.effective_from is not None and day < self.effective_from:
            return False
        return not (self.effective_to is not None and day > self.effective_to)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A converted parameter value, or ``default``."""
        value = self.values.get(name)
        return default if value is None else value

    def cite(self) -> str:
        """The source, with the confidence level, as shown in findings."""
        return self.source


@attrs.frozen
class Policy:
    """A resolved payer policy (``extends`` applied, everything validated)."""

    payer_id: str | None
    name: str
    policy_version: str
    settings: Settings
    modifier_categories: Mapping[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    abstract: bool = False
    description: str = ""
    file: str = attrs.field(default="", eq=False)
    chain: tuple[str, ...] = attrs.field(default=(), eq=False)
    _by_kind: dict[str, tuple[Rule, ...]] = attrs.field(init=False, eq=False, repr=False)
    # kinds whose rules are all enabled and undated: in force on every day
    _undated: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    _by_id: dict[str, Rule] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_kind: dict[str, list[Rule]] = {}
        by_id: dict[str, Rule] = {}
        for rule in self.rules:
            by_kind.setdefault(rule.kind, []).append(rule)
            by_id.setdefault(rule.id, rule)  # the first rule with an id, as a search in order finds
        undated = frozenset(
            kind
            for kind, rules in by_kind.items()
            if all(r.enabled and r.effective_from is None and r.effective_to is None for r in rules)
        )
        object.__setattr__(self, "_by_kind", {k: tuple(v) for k, v in by_kind.items()})
        object.__setattr__(self, "_undated", undated)
        object.__setattr__(self, "_by_id", by_id)

    def rules_of(self, kind: str, day: dt.date | None = None) -> tuple[Rule, ...]:
        """The rules of ``kind`` (in force on ``day`` when given), in policy order."""
        rules = self._by_kind.get(kind, ())
        if day is None or kind in self._undated:
            return rules
        return tuple(r for r in rules if r.active_on(day))

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with ``rule_id``, or None."""
        return self._by_id.get(rule_id)

    def to_mapping(self) -> dict[str, Any]:
        """The resolved policy as TOML-ready data (no ``extends``)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if self.abstract:
            out["abstract"] = True
        if self.payer_id is not None:
            payer: dict[str, Any] = {"id": self.payer_id, "name": self.name, "policy_version": self.policy_version}
            if self.description:
                payer["description"] = self.description
            out["payer"] = payer
        s = self.settings
        settings: dict[str, Any] = {
            "unit_method": s.unit_method,
            "distinct_modifier_region": s.distinct_modifier_region,
            "distinct_modifier_time": s.distinct_modifier_time,
            "modifier_order": list(s.modifier_order),
            "max_modifiers_per_line": s.max_modifiers_per_line,
            "tie_break": s.tie_break,
        }
        if s.basis:
            settings["basis"] = {k: {"rule": b.rule, "source": b.source} for k, b in s.basis.items()}
        out["settings"] = settings
        out["modifier_categories"] = {k: list(v) for k, v in self.modifier_categories.items()}
        rules = []
        for r in self.rules:
            entry: dict[str, Any] = {"id": r.id, "kind": r.kind, "source": r.source, "confidence": r.confidence}
            if r.effective_from is not None:
                entry["effective_from"] = r.effective_from
            if r.effective_to is not None:
                entry["effective_to"] = r.effective_to
            if not r.enabled:
                entry["enabled"] = False
            if r.note:
                entry["note"] = r.note
            entry.update(r.params)
            rules.append(entry)
        out["rules"] = rules
        return out

    def to_toml(self) -> str:
        """The resolved policy as TOML text (written with tomli-w)."""
        return tomli_w.dumps(self.to_mapping())


SCHEMA_VERSION = 1
