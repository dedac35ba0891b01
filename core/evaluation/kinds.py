"""The vocabulary shared by rule kinds, hook implementations and the engine.

* :class:`Param` and :class:`RuleKind` declare a kind of rule: the parameters its TOML entries take
  and the function that applies it in one phase of the evaluation.
* :class:`Context` is what every rule and hook sees of one evaluation (immutable).
* :class:`Change` is what rules and hooks return: one change to one line (status, units, code,
  modifiers) and/or one finding, always with the rule id and source behind it. The engine is the
  only thing that applies changes, and it records every one in the outcome's trace.
* :class:`CodeChoice` is the answer of a code-choosing hook.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from .codeset import CodeSet, parse_code_item
from .model import SEVERITIES, STATUSES, ClaimLine, Encounter, Finding, Payer, Status
from .money import FeeBook, Payment, price_lines
from .vocab import CodeCatalogue, CodeInfo

if TYPE_CHECKING:
    from .rules import Policy, Rule

__all__ = [
    "PHASES",
    "Change",
    "CodeChoice",
    "Context",
    "Param",
    "RuleKind",
    "SameDayLine",
]


def _strs(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _findings(values: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(values)


#: The phases of an evaluation in which rule functions run, in order (the phases are described in the docs, page "Rules and phases").
PHASES = ("code", "screen", "modifiers", "adjust", "review", "claim")
#: Phases the engine carries out itself; a kind names them to mark the rules it reads there.
ENGINE_PHASES = ("merge", "units", "price")


@attrs.frozen
class Param:
    """One parameter of a rule kind, as written in a policy file's ``[[rules]]`` entry.

    ``type`` is one of: ``str``, ``int``, ``bool``, ``date``, ``code``, ``codes`` (codes and
    ranges), ``name`` / ``names`` (one / several of ``choices``), ``str_list``, ``table`` (string
    to string), ``code_map`` (code to code), ``code_names`` (code to list of names),
    ``code_ints`` (code to whole number).
    """

    type: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    doc: str = ""

    def convert(self, value: Any) -> tuple[Any, str | None]:
        """Return (converted value, None) or (None, what was expected)."""
        t = self.type
        if t == "str":
            return (value, None) if isinstance(value, str) else (None, "a string")
        if t == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            return (value, None) if ok else (None, "a whole number >= 0")
        if t == "bool":
            return (value, None) if isinstance(value, bool) else (None, "true or false")
        if t == "date":
            ok = isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            return (value, None) if ok else (None, "a TOML date like 2025-01-01")
        if t == "code":
            ok = isinstance(value, str) and parse_code_item(value) is not None and "-" not in value
            return (value, None) if ok else (None, 'a code like "97140"')
        if t == "codes":
            expected = 'an array of codes like "97140" or ranges like "98940-98942"'
            if not isinstance(value, list) or not all(parse_code_item(v) for v in value):
                return None, expected
            return CodeSet.of(value), None
        if t == "name":
            if isinstance(value, str) and (not self.choices or value in self.choices):
                return value, None
            return None, "one of " + ", ".join(self.choices)
        if t == "names":
            if isinstance(value, list) and all(
                isinstance(v, str) and (not self.choices or v in self.choices) for v in value
            ):
                return tuple(value), None
            return None, "an array of names from: " + ", ".join(self.choices)
        if t == "str_list":
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value), None
            return None, "an array of strings"
        if t == "table":
            if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
                return dict(value), None
            return None, "a table of string values"
        if t == "code_map":
            if isinstance(value, Mapping) and all(
                parse_code_item(k) and isinstance(v, str) and parse_code_item(v) for k, v in value.items()
            ):
                return dict(value), None
            return None, 'a table of code = "code"'
        if t == "code_names":
            if isinstance(value, Mapping) and all(
                parse_code_item(k)
                and isinstance(v, list)
                and all(isinstance(x, str) and (not self.choices or x in self.choices) for x in v)
                for k, v in value.items()
            ):
                return {k: tuple(v) for k, v in value.items()}, None
            return None, "a table of code = [names]" + (" from: " + ", ".join(self.choices) if self.choices else "")
        if t == "code_ints":
            if isinstance(value, Mapping) and all(
                parse_code_item(k) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()
            ):
                return dict(value), None
            return None, "a table of code = whole number"
        raise ValueError(f"unknown parameter type {t!r}")


#: A rule function: given the rule, a snapshot of the lines and the context, return changes.
RuleFunction = Callable[["Rule", tuple[ClaimLine, ...], "Context"], Iterable["Change"]]

#: Given a rule, the codes at least one of which must be on a line for the rule to change anything
#: (a :class:`~payerpolicy.codeset.CodeSet`, a set, anything with ``in``), or None: always run it.
TriggerFunction = Callable[["Rule"], Any]


@attrs.frozen
class RuleKind:
    """A kind of rule: named, with typed parameters, applied in one or more phases.

    ``apply`` maps a phase name (see :data:`PHASES`) to the function run in that phase. Plugins
    register new kinds through the ``payerpolicy_rule_kinds`` hook; policy files then use them by
    ``kind = "name"``.

    ``triggers`` (optional, a speed-up): given a rule of this kind, the codes at least one of
    which must be on some line (of any status) for the rule to change anything, or None when the
    rule must always run. The engine then skips the rule's functions on encounters with none of
    those codes. It must be exact: a rule it skips would have returned no change
    (tests/core/test_compiled.py runs every case file and thousands of synthetic encounters with
    and without skipping). Leave it None when in doubt.
    """

    name: str
    summary: str
    apply: Mapping[str, RuleFunction] = attrs.field()
    params: Mapping[str, Param] = attrs.field(factory=dict)
    plugin: str = ""
    triggers: TriggerFunction | None = None

    @apply.validator
    def _check_phases(self, _attr: Any, value: Mapping[str, RuleFunction]) -> None:
        unknown = [p for p in value if p not in PHASES + ENGINE_PHASES]
        if unknown:
            raise ValueError(f"rule kind {self.name!r}: unknown phase(s) {unknown}; phases are {', '.join(PHASES)}")


@attrs.frozen
class SameDayLine:
    """A line of another claim of the same patient, date of service and provider, already billed (added in 0.2.0).

    Claim history (docs/history.md) hands these to the evaluation so NCCI PTP pairs and MUE limits
    are applied across claims split over one date of service. ``encounter`` is the other claim's
    encounter id; ``regions`` is empty when that line recorded none. Read-only: rules change lines
    of the claim being evaluated, never these.
    """

    encounter: str
    code: str
    units: int
    modifiers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    regions: tuple[str, ...] = attrs.field(default=(), converter=_strs)


@attrs.frozen
class Context:
    """Everything a rule or hook may read about one evaluation. Immutable."""

    encounter: Encounter
    payer: Payer
    policy: Policy
    catalogue: CodeCatalogue
    #: What amounts are computed from (the practice's fee file, imported CMS data); None: no amounts.
    fees: FeeBook | None = None
    #: Lines of the same patient's earlier claims on the same date of service and provider, from claim
    #: history (added in 0.2.0; empty without history). Read-only: see :class:`SameDayLine`.
    same_day_lines: tuple[SameDayLine, ...] = ()

    def price(self, lines: tuple[ClaimLine, ...]) -> tuple[Decimal | None, ...]:
        """The expected allowed amount of each of ``lines`` under this payer's fee schedule (None: unknown)."""
        return tuple(p.allowed for p in price_lines(lines, self.payment, self.fees).lines)

    @property
    def payment(self) -> Payment:
        """The payer, policy and date of service lines are priced for."""
        return Payment(self.payer.id, self.policy, self.date_of_service)

    @property
    def date_of_service(self) -> dt.date:
        """The encounter's date of service."""
        return self.encounter.date_of_service

    def code_info(self, code: str) -> CodeInfo:
        """Catalogue entry of ``code`` (every code on a line is catalogued)."""
        return self.catalogue[code]

    def setting(self, name: str) -> Any:
        """The value of one of the policy's ``[settings]``."""
        return getattr(self.policy.settings, name)


@attrs.frozen
class Change:
    """One change to one line and/or one finding, with the rule and source behind it.

    ``line`` is the index of the line in the ``lines`` tuple the rule or hook was given (None for
    a finding about the whole encounter). Fields left at None/empty are not changed. A finding's
    empty ``rule``/``source``/``line`` are filled in from the change.
    """

    rule: str
    source: str
    line: int | None = None
    status: Status | None = attrs.field(default=None)
    units: int | None = None
    code: str | None = None
    add_modifiers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    remove_modifiers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    set_modifiers: tuple[str, ...] | None = None
    diagnosis_pointers: tuple[int, ...] | None = None
    claim_diagnoses: tuple[str, ...] | None = None
    finding: Finding | None = None
    reason: str = ""
    #: New direct minutes of the line (>= 0), before units are computed (added in 0.2).
    minutes: int | None = None

    @status.validator
    def _check_status(self, _attr: Any, value: str | None) -> None:
        if value is not None and value not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {value!r}")

    @classmethod
    def note(
        cls,
        rule: str,
        source: str,
        code: str,
        severity: str,
        message: str,
        *,
        line: int | None = None,
        status: Status | None = None,
    ) -> Change:
        """A finding (and optionally a status change) in one call."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        return cls(
            rule=rule,
            source=source,
            line=line,
            status=status,
            finding=Finding(code=code, severity=severity, message=message, rule=rule, source=source, line=line),  # type: ignore[arg-type]
            reason=message,
        )


@attrs.frozen
class CodeChoice:
    """The code chosen for a service, or None with findings that say why there is no line."""

    code: str | None
    rule: str
    source: str
    reason: str = ""
    findings: tuple[Finding, ...] = attrs.field(default=(), converter=_findings)
