"""The engine: one encounter and one payer in, one outcome out.

Phases, in order (the docs page on rules and phases explains each):

1. **lines** — one line per procedure; one per service, its code chosen by the
   ``payerpolicy_choose_code`` hook (the policy's ``code_by_technique`` rule by default);
2. **code** — code crosswalks;
3. **screen** — validity, time, coverage, same-time and same-region bundling; then the
   ``payerpolicy_screen_lines`` hook. Lines made not billable give up their minutes (CORE-TIME-04);
4. **merge** — one line per timed code per date of service (CORE-TIME-02);
5. **units** — CMS total time or AMA per code (CORE-TIME-20/30);
6. **modifiers** — policy rules, then the ``payerpolicy_modifiers`` hook; then each line's
   modifiers are put in order (CORE-MOD-04) and the four-modifier limit enforced (CORE-MOD-05);
7. **adjust** — limits, caps, edit tables; then the ``payerpolicy_adjust_lines`` hook;
8. **review** — documentation, necessity and utilization findings;
9. **claim** — claim-form limits; the lines are put in claim order.

Rules and hooks return :class:`~payerpolicy.kinds.Change` values; only the engine applies them, and
it records each change in the trace.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from .adjustments import adjustment_for
from .errors import PayerPolicyError, PluginHookError, one_line
from .kinds import Change, CodeChoice, Context, SameDayLine
from .manager import BUILTIN_MODULES, PluginHost, _short
from .model import SEVERITIES, STATUSES, Billed, ClaimLine, Encounter, Finding, Outcome, PayerRef, Status, TraceEntry
from .money import FeeBook, price_lines
from .pfs import fee_book_from_environment
from .policy import Policy, Rule
from .scrub import differences
from .units import units_ama_per_code, units_cms_total_time
from .vocab import CodeCatalogue, default_catalogue
from .wording import plural

__all__ = ["Engine", "EvaluationStopped", "PluginHookError"]

CORE = "payerpolicy"
_PROCEDURE_RANK = {"em": 0, "evaluation": 1, "cmt_spinal": 2, "cmt_extraspinal": 3}


#: Seconds one third-party hook or rule may take in the main thread (CLI, batch) before it is
#: stopped with a PLUGIN_FAILED finding; ``$PAYERPOLICY_HOOK_TIMEOUT`` overrides it, 0 turns it off.
DEFAULT_HOOK_TIMEOUT = 5.0
HOOK_TIMEOUT_ENV = "PAYERPOLICY_HOOK_TIMEOUT"


class EvaluationStopped(Exception):
    """An evaluation ended early because its caller's ``stop`` said so (not an error of the input)."""


class PluginTimeout(Exception):
    """A third-party hook or rule ran over the engine's per-plugin time limit."""


def _hook_timeout() -> float:
    raw = os.environ.get(HOOK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_HOOK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise PayerPolicyError(f"${HOOK_TIMEOUT_ENV}: expected a number of seconds (0: no limit), found {raw!r}") from None
    if not value >= 0:
        raise PayerPolicyError(f"${HOOK_TIMEOUT_ENV}: expected a number of seconds >= 0, found {raw!r}")
    return value


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise PluginTimeout in the block after ``seconds`` (main thread with SIGALRM only, else no limit)."""
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0  # someone else's timer is left alone
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise PluginTimeout(f"took longer than the limit of {seconds:g} s (${HOOK_TIMEOUT_ENV})")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _usable_finding(finding: Any) -> bool:
    return (
        isinstance(finding, Finding)
        and isinstance(finding.code, str)
        and bool(finding.code)
        and finding.severity in SEVERITIES
        and isinstance(finding.message, str)
        and all(isinstance(v, str) for v in (finding.rule, finding.source, finding.plugin))
    )


@attrs.frozen
class _Trigger:
    """The codes a rule acts on: catalogued ones as a frozenset, and the kind's own answer for others."""

    codes: frozenset[str]
    answer: Any

    def among(self, uncatalogued: frozenset[str]) -> bool:
        """Whether the kind's own answer names one of ``uncatalogued`` (line codes outside the catalogue)."""
        return any(code in self.answer for code in uncatalogued)


#: One rule of a compiled plan: the rule, its phase function, its plugin and its trigger codes (or None).
_PlanEntry = tuple[Rule, Any, str, "_Trigger | None"]


class _Unusable(Exception):
    """What a plugin returned cannot be used (the message says why)."""


class _Line:
    """A line while the engine works on it (mutable, private)."""

    __slots__ = (
        "_frozen",
        "billed",
        "code",
        "counted",
        "diagnosis_pointers",
        "entries",
        "minutes",
        "modifiers",
        "origin",
        "regions",
        "service",
        "status",
        "units",
    )

    def __init__(
        self,
        code: str,
        units: int,
        minutes: int | None,
        regions: tuple[str, ...],
        pointers: tuple[int, ...],
        service: int,
        origin: str,
    ) -> None:
        self.code = code
        self.units = units
        self.minutes = minutes
        self.regions = regions
        self.diagnosis_pointers = pointers
        self.service = service
        self.origin = origin
        self.modifiers: tuple[str, ...] = ()
        self.status: Status = "billable"
        self.billed: Billed | None = None
        self.counted: int | None = None  # units when the units phase ended (what a later cut or denial took)
        self.entries: list[tuple[str, int]] = [(origin, service)]
        self._frozen: ClaimLine | None = None

    #: A working line has no amounts yet (they are worked out after the claim phase).
    charge: Decimal | None = None
    allowed: Decimal | None = None

    @property
    def on_claim(self) -> bool:
        """Whether the line goes on the claim (billable or expected to be denied), as ``ClaimLine.on_claim``."""
        return self.status != "not_billable"

    def freeze(self) -> ClaimLine:
        """The line as a frozen ClaimLine; rebuilt only after the engine marked the line changed.

        Every change to a line's fields goes through the worksheet (``_Worksheet.touched``), which
        forgets the frozen copy of the lines it changed.
        """
        frozen = self._frozen
        if frozen is None:
            frozen = self._frozen = ClaimLine(
                self.code,
                self.units,
                self.modifiers,
                self.status,
                self.minutes,
                self.regions,
                self.diagnosis_pointers,
                self.service,
                self.origin,  # type: ignore[arg-type]
                self.billed,
            )
        return frozen


def _merge_billed(a: Billed | None, b: Billed | None) -> Billed | None:
    """What two billed entries merged into one line were billed: units and charges added, modifiers joined."""
    if a is None or b is None:
        return a or b
    units = None if a.units is None and b.units is None else (a.units or 0) + (b.units or 0)
    charge = None if a.charge is None and b.charge is None else (a.charge or Decimal(0)) + (b.charge or Decimal(0))
    return Billed(units, tuple(dict.fromkeys((*a.modifiers, *b.modifiers))), charge)


_SEVERITY_RANK = {"expected_denial": 0, "error": 1, "warning": 2, "info": 3}


def _causes(lines: Sequence[ClaimLine], findings: Sequence[Finding], trace: Sequence[TraceEntry]) -> list[str]:
    """The finding code each line's lost dollars are charged to (one pass over the trace).

    The finding of the rule that last changed the line's status (or cut its units), on the line,
    or for a line off the claim or denied anywhere in the outcome; ``(rule ID)`` when that rule
    left no finding; else the line's finding of highest severity; else ``NOT_PAID``.
    """
    status: dict[int, str] = {}
    cuts: dict[int, str] = {}
    for t in trace:
        if t.line is None:
            continue
        if t.field == "status":
            status[t.line] = t.rule
        elif t.field == "units" and isinstance(t.before, int) and isinstance(t.after, int) and t.after < t.before:
            cuts[t.line] = t.rule
    on_line: dict[int, list[Finding]] = {}
    for f in findings:
        if f.line is not None:
            on_line.setdefault(f.line, []).append(f)
    out = []
    for i, line in enumerate(lines):
        rule = status.get(i, cuts.get(i))
        mine = on_line.get(i, [])
        if rule is not None:
            found = next(
                (f.code for f in (*mine, *(findings if line.status != "billable" else ())) if f.rule == rule), None
            )
            out.append(found if found is not None else f"(rule {rule})")
        elif mine:
            out.append(min(mine, key=lambda f: _SEVERITY_RANK.get(f.severity, 9)).code)
        else:
            out.append("NOT_PAID")
    return out


class _Worksheet:
    """The lines, findings and trace of one evaluation."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.lines: list[_Line] = []
        self.findings: list[tuple[Finding, _Line | None]] = []
        self.trace: list[tuple[tuple[str, str, str, Any, Any, str, str], _Line | None]] = []
        self.diagnoses: tuple[str, ...] = ctx.encounter.diagnoses
        self._snapshot: tuple[ClaimLine, ...] | None = None
        self._codes: frozenset[str] | None = None
        self._uncatalogued: frozenset[str] = frozenset()

    def snapshot(self) -> tuple[ClaimLine, ...]:
        """The lines as frozen ClaimLines (what rules and hooks are given), rebuilt after a change."""
        if self._snapshot is None:
            self._snapshot = tuple(line.freeze() for line in self.lines)
        return self._snapshot

    def codes(self) -> frozenset[str]:
        """The codes on the lines now (what rules' trigger codes are matched against).

        Also sets ``_uncatalogued``: those of them the code catalogue does not hold (normally none).
        """
        codes = self._codes
        if codes is None:
            codes = self._codes = frozenset(line.code for line in self.lines)
            known = self.ctx.catalogue.codes
            self._uncatalogued = frozenset(code for code in codes if code not in known)
        return codes

    def touched(self, line: _Line | None = None) -> None:
        """Lines were added, dropped or changed (``line``: that one changed): snapshots are made again.

        Every change to a line is recorded in the trace, and :meth:`record` calls this: a line's
        frozen copy is never older than its last recorded change.
        """
        self._snapshot = None
        self._codes = None
        if line is not None:
            line._frozen = None

    def record(
        self,
        rule: str,
        plugin: str,
        line: _Line | None,
        field: str,
        before: Any,
        after: Any,
        source: str = "",
        reason: str = "",
    ) -> None:
        self.trace.append(((rule, plugin, field, before, after, source, reason), line))
        self.touched(line)

    def add_finding(self, finding: Finding, line: _Line | None) -> None:
        self.findings.append((finding, line))

    def apply(self, change: Change, plugin: str, lines: list[_Line]) -> None:
        """Apply one change to the lines of the snapshot it was computed from."""
        line: _Line | None = None
        if change.line is not None:
            if not 0 <= change.line < len(lines):
                raise PluginHookError(
                    plugin, change.rule, f"change names line {change.line}, but there are {len(lines)} lines"
                )
            line = lines[change.line]
        rule, source, reason = change.rule, change.source, change.reason
        if line is not None:
            if change.code is not None and change.code != line.code:
                if change.code not in self.ctx.catalogue:
                    raise PluginHookError(plugin, rule, f"code {change.code!r} is not in the code catalogue")
                self.record(rule, plugin, line, "code", line.code, change.code, source, reason)
                line.code = change.code
            if change.status is not None and change.status != line.status:
                self.record(rule, plugin, line, "status", line.status, change.status, source, reason)
                line.status = change.status
                if change.status == "not_billable" and line.units:
                    self.record(rule, plugin, line, "units", line.units, 0, source, "not billable")
                    line.units = 0
            if change.minutes is not None and change.minutes != line.minutes:
                if change.minutes < 0:
                    raise PluginHookError(plugin, rule, "minutes cannot be negative")
                self.record(rule, plugin, line, "minutes", line.minutes, change.minutes, source, reason)
                line.minutes = change.minutes
            if change.units is not None and change.units != line.units:
                if change.units < 0:
                    raise PluginHookError(plugin, rule, "units cannot be negative")
                self.record(rule, plugin, line, "units", line.units, change.units, source, reason)
                line.units = change.units
            if change.set_modifiers is not None or change.remove_modifiers or change.add_modifiers:
                before = line.modifiers
                modifiers = list(change.set_modifiers) if change.set_modifiers is not None else list(before)
                for m in change.remove_modifiers:
                    while m in modifiers:
                        modifiers.remove(m)
                for m in change.add_modifiers:
                    if m not in modifiers:
                        modifiers.append(m)
                if tuple(modifiers) != before:
                    line.modifiers = tuple(modifiers)
                    self.record(rule, plugin, line, "modifiers", before, line.modifiers, source, reason)
            if change.diagnosis_pointers is not None and change.diagnosis_pointers != line.diagnosis_pointers:
                self.record(
                    rule,
                    plugin,
                    line,
                    "diagnosis_pointers",
                    line.diagnosis_pointers,
                    change.diagnosis_pointers,
                    source,
                    reason,
                )
                line.diagnosis_pointers = change.diagnosis_pointers
        elif any(
            (
                change.code,
                change.status,
                change.units is not None,
                change.minutes is not None,
                change.add_modifiers,
                change.remove_modifiers,
                change.set_modifiers is not None,
                change.diagnosis_pointers is not None,
            )
        ):
            raise PluginHookError(plugin, rule, "a change to a line must name the line")
        if change.claim_diagnoses is not None and change.claim_diagnoses != self.diagnoses:
            self.record(rule, plugin, None, "diagnoses", self.diagnoses, change.claim_diagnoses, source, reason)
            self.diagnoses = change.claim_diagnoses
        if change.finding is not None:
            f = change.finding
            if not (f.rule and f.source and f.plugin):
                f = Finding(
                    f.code, f.severity, f.message, f.rule or rule, f.source or source, f.line, f.plugin or plugin
                )
            self.add_finding(f, line)


class Engine:
    """Evaluates encounters against installed payers' policies.

    :param host: the plugin host; by default one that loads every installed plugin.
    :param catalogue: the code catalogue; by default the shipped one.
    :param hook_timeout: seconds one third-party hook or rule may take before it is stopped with a
        ``PLUGIN_FAILED`` finding (main thread only: the CLI and batch workers; default
        ``$PAYERPOLICY_HOOK_TIMEOUT`` or 5; 0 turns the limit off).
    :param fees: what amounts are computed from (a fee file, imported CMS data); by default the
        fee book named by ``$PAYERPOLICY_FEES`` / ``$PAYERPOLICY_FEES_DIR`` (none when unset:
        outcomes carry no amounts).
    """

    def __init__(
        self,
        host: PluginHost | None = None,
        catalogue: CodeCatalogue | None = None,
        *,
        hook_timeout: float | None = None,
        compiled: bool = True,
        fees: FeeBook | None = None,
    ) -> None:
        self.host = host if host is not None else PluginHost()
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        #: Seconds a third-party hook or rule may take (main thread only; 0: no limit).
        self.hook_timeout = _hook_timeout() if hook_timeout is None else hook_timeout
        #: What amounts are computed from; an empty book gives outcomes without amounts.
        self.fees = fees if fees is not None else fee_book_from_environment()
        #: Skip a rule when none of its kind's trigger codes is on a line (``RuleKind.triggers``).
        #: ``compiled=False`` runs every rule: the reference the compiled plans are tested against.
        self.compiled = compiled
        self._plans: dict[str, tuple[Policy, dict[str, tuple[_PlanEntry, ...]]]] = {}
        # (payer, policy, phase, date segment) -> the plan's rules in force in that segment
        self._in_force: dict[tuple[str, int, str, int], tuple[_PlanEntry, ...]] = {}
        # policy id -> the dates where some rule comes into or goes out of force, sorted
        self._bounds: dict[int, tuple[Policy, list[dt.date]]] = {}
        # (policy id, date segment) -> (policy, unit methods in force, each method's rule and source)
        self._unit_plans: dict[tuple[int, int], tuple[Policy, frozenset[str], dict[str, tuple[Rule, str]]]] = {}
        # policy id -> (policy, modifier rank table, rank of a modifier in no category)
        self._ranks: dict[int, tuple[Policy, dict[str, tuple[int, int]], tuple[int, int]]] = {}

    def _segment(self, policy: Policy, day: dt.date) -> int:
        """Which stretch of dates ``day`` is in: between two dates where no rule changes, the same rules apply."""
        known = self._bounds.get(id(policy))
        if known is None or known[0] is not policy:
            edges = {r.effective_from for r in policy.rules if r.effective_from is not None}
            edges |= {r.effective_to + dt.timedelta(days=1) for r in policy.rules if r.effective_to is not None}
            known = (policy, sorted(edges))
            self._bounds[id(policy)] = known
        return bisect.bisect_right(known[1], day)

    def _plan_on(
        self, payer_id: str, policy: Policy, phase: str, day: dt.date, segment: int | None = None
    ) -> tuple[_PlanEntry, ...]:
        """The (rule, function, plugin) of ``phase`` in force on ``day``, worked out once per date segment.

        ``segment``: the segment of ``day`` when the caller already knows it.
        """
        key = (payer_id, id(policy), phase, self._segment(policy, day) if segment is None else segment)
        found = self._in_force.get(key)
        if found is None:
            found = tuple(entry for entry in self._plan(payer_id, policy, phase) if entry[0].active_on(day))
            self._in_force[key] = found
        return found

    def _plan(self, payer_id: str, policy: Policy, phase: str) -> tuple[_PlanEntry, ...]:
        """The (rule, function, plugin, trigger codes) of ``phase`` for a payer's policy, worked out once."""
        cached = self._plans.get(payer_id)
        if cached is None or cached[0] is not policy:
            self._in_force.clear()  # a policy replaced: its rules in force are worked out again
            kinds = self.host.kinds
            plans: dict[str, list[_PlanEntry]] = {}
            for rule in policy.rules:
                if not rule.enabled:
                    continue
                kind = kinds[rule.kind]
                plugin = CORE if kind.plugin in BUILTIN_MODULES else kind.plugin
                trigger = self._trigger(kind.triggers, rule) if self.compiled else None
                for name, function in kind.apply.items():
                    plans.setdefault(name, []).append((rule, function, plugin, trigger))
            cached = (policy, {name: tuple(entries) for name, entries in plans.items()})
            self._plans[payer_id] = cached
        return cached[1].get(phase, ())

    def _trigger(self, triggers: Any, rule: Rule) -> _Trigger | None:
        """A rule's trigger codes, or None (always run); a kind whose ``triggers`` fails always runs.

        The codes are expanded once, against the code catalogue, into a frozenset (a rule's code
        ranges are then one set test); a code on a line that is not in the catalogue is asked of
        the kind's own answer.
        """
        if triggers is None:
            return None
        try:
            found = triggers(rule)
            if found is None:
                return None
            "" in found  # noqa: B015 - it must answer ``in``
            return _Trigger(frozenset(code for code in self.catalogue.codes if code in found), found)
        except Exception:
            return None

    @property
    def payer_ids(self) -> tuple[str, ...]:
        """Installed payer ids, sorted."""
        return tuple(self.host.payers)

    def check(self, encounter: Encounter, payer: str) -> Outcome:
        """Evaluate ``encounter`` for one payer."""
        return self.evaluate(encounter, payer)

    def compare(
        self, encounter: Encounter, payers: Sequence[str] | None = None, *, stop: Callable[[], bool] | None = None
    ) -> dict[str, Outcome]:
        """Evaluate ``encounter`` for several payers.

        By default every installed payer, the generic ``commercial`` first (the reference column
        the others are compared with), then the rest by id. ``stop``: see :meth:`evaluate`.
        """
        ids = list(payers) if payers else sorted(self.payer_ids, key=lambda p: (p != "commercial", p))
        for pid in ids:
            self.host.payer(pid)  # unknown ids fail before any work
        if stop is None:  # (subclasses may override evaluate without ``stop``)
            return {pid: self.evaluate(encounter, pid) for pid in ids}
        return {pid: self.evaluate(encounter, pid, stop=stop) for pid in ids}

    # ---- evaluation

    def evaluate(
        self,
        encounter: Encounter,
        payer_id: str,
        *,
        stop: Callable[[], bool] | None = None,
        same_day: Sequence[SameDayLine] = (),
        trace: bool = True,
    ) -> Outcome:
        """Evaluate ``encounter`` for ``payer_id`` and return the outcome.

        ``stop`` is asked between phases; when it answers true the evaluation ends with
        :class:`EvaluationStopped` (the HTTP service uses it to end work whose time is up).
        ``same_day``: lines of the patient's earlier claims on the same date of service, from claim
        history (``Context.same_day_lines``); NCCI PTP and MUE edits count them, never change them.
        ``trace=False``: the outcome's ``trace`` is left empty and its entries are never built (a
        batch run without ``--trace``); lines, findings and amounts are the same.
        """
        if stop is not None:
            return self._evaluate_until(encounter, payer_id, stop, tuple(same_day), trace)
        return self._evaluate(encounter, payer_id, lambda phase: None, tuple(same_day), trace)

    def _evaluate_until(
        self,
        encounter: Encounter,
        payer_id: str,
        stop: Callable[[], bool],
        same_day: tuple[SameDayLine, ...],
        trace: bool = True,
    ) -> Outcome:
        def checkpoint(phase: str) -> None:
            if stop():
                raise EvaluationStopped(f"stopped before the {phase} phase")

        return self._evaluate(encounter, payer_id, checkpoint, same_day, trace)

    def _evaluate(
        self,
        encounter: Encounter,
        payer_id: str,
        checkpoint: Callable[[str], None],
        same_day: tuple[SameDayLine, ...] = (),
        trace: bool = True,
    ) -> Outcome:
        checkpoint("lines")
        payer = self.host.payer(payer_id)
        policy = self.host.policy(payer_id)
        ctx = Context(
            encounter=encounter,
            payer=payer,
            policy=policy,
            catalogue=self.catalogue,
            fees=None if self.fees.empty else self.fees,
            same_day_lines=same_day,
        )
        ws = _Worksheet(ctx)
        day = encounter.date_of_service
        segment = self._segment(policy, day)  # the same rules are in force all through the evaluation

        self._build_lines(ws, ctx, payer_id)
        checkpoint("code")
        self._run_phase(ws, ctx, "code", None, segment)
        checkpoint("screen")
        self._run_phase(ws, ctx, "screen", "payerpolicy_screen_lines", segment)
        checkpoint("merge")
        if policy.rules_of("merge_same_code", day):
            self._merge(ws, policy.rules_of("merge_same_code", day)[0])
        screened = {id(line) for line in ws.lines if line.status == "not_billable"}
        self._units(ws, ctx)
        for line in ws.lines:  # a line the unit method left at 0 units lost nothing; one screened out before, its own units
            line.counted = self._own_units(line) if id(line) in screened else line.units
        checkpoint("modifiers")
        self._run_phase(ws, ctx, "modifiers", "payerpolicy_modifiers", segment)
        self._finish_modifiers(ws, ctx, payer_id)
        checkpoint("adjust")
        self._run_phase(ws, ctx, "adjust", "payerpolicy_adjust_lines", segment)
        self._finish_modifiers(ws, ctx, payer_id)  # modifiers added while adjusting are ordered and limited too
        checkpoint("review")
        self._run_phase(ws, ctx, "review", None, segment)
        self._run_phase(ws, ctx, "claim", None, segment)
        return self._outcome(ws, ctx, payer_id, trace)

    def _own_units(self, line: _Line) -> int:
        """The units a line screened out before units were counted would have had on its own.

        Its units as billed, else for a timed code the 8-minute rule on its own minutes, else 1:
        what the finding that screened it out cost is valued at these units.
        """
        if line.billed is not None and line.billed.units:
            return line.billed.units
        if not self.catalogue[line.code].timed:
            return 1
        minutes = line.minutes or 0
        return minutes // 15 + (1 if minutes % 15 >= 8 else 0)

    def _price(
        self,
        ws: _Worksheet,
        ctx: Context,
        order: list[int],
        lines: tuple[ClaimLine, ...],
        findings: tuple[Finding, ...],
        trace: tuple[TraceEntry, ...],
    ) -> tuple[tuple[ClaimLine, ...], tuple[Finding, ...], tuple[TraceEntry, ...], dict[str, Any]]:
        """Charges and expected allowed amounts of the lines in claim order (the price phase), traced."""
        enc = ctx.encounter
        unit_charges: list[Decimal | None] = []
        counted: list[int] = []
        for old in order:
            line = ws.lines[old]
            counted.append(line.counted if line.counted is not None else line.units)
            charge = None
            for origin, index in line.entries:
                entry = enc.services[index] if origin == "services" else enc.procedures[index]
                if entry.unit_charge is not None:
                    charge = entry.unit_charge
                    break
            # the entry's own unit_charge, else the encounter's charge master for the line's final code
            unit_charges.append(charge if charge is not None else enc.charge_for(line.code))
        if ctx.fees is None and all(c is None for c in unit_charges) and all(
            line.billed is None or line.billed.charge is None for line in lines
        ):  # nothing to price: no fee book, no charge
            return lines, findings, trace, {"expected_total": None, "charge_total": None, "cost_by_finding": {}, "unpriced_lines": ()}
        # what a line's lost dollars are charged to matters only when there are amounts to lose
        causes = _causes(lines, findings, trace) if ctx.fees is not None else None
        pricing = price_lines(
            lines, ctx.payment, ctx.fees, findings=findings, counted=counted, unit_charges=unit_charges, causes=causes
        )
        priced = tuple(
            attrs.evolve(line, charge=p.charge, allowed=p.allowed) if (p.charge, p.allowed) != (None, None) else line
            for line, p in zip(lines, pricing.lines, strict=True)
        )
        steps = tuple(
            TraceEntry(s.rule, CORE, s.line, "allowed", s.before, s.after, s.source, s.reason) for s in pricing.steps
        )
        cost: dict[str, Decimal] = {}
        for p in pricing.lines:
            for code, value in p.lost.items():
                cost[code] = cost.get(code, Decimal(0)) + value
        known = [p.allowed for p in pricing.lines if p.allowed is not None]
        charges = [p.charge for p in pricing.lines if p.charge is not None]
        money: dict[str, Any] = {
            "expected_total": sum(known, Decimal("0.00")) if known else None,
            "charge_total": sum(charges, Decimal("0.00")) if charges else None,
            "cost_by_finding": cost,
            "unpriced_lines": tuple(i for i, (line, p) in enumerate(zip(lines, pricing.lines, strict=True)) if line.on_claim and p.allowed is None)
            if known
            else (),
        }
        extra = tuple(attrs.evolve(f, plugin=f.plugin or CORE) for f in pricing.findings)
        return priced, findings + extra, trace + steps, money

    def _failed(self, ws: _Worksheet, plugin: str, where: str, exc: Exception) -> None:
        """A third-party plugin raised: stop (strict) or skip it and say so in the outcome."""
        if self.host.strict or plugin == CORE:
            if isinstance(exc, PluginHookError):
                raise exc
            raise PluginHookError(plugin, where, f"{type(exc).__name__}: {exc}") from exc
        if isinstance(exc, PluginHookError):  # the plugin returned something the engine cannot use
            exc = _Unusable(str(exc).split(": ", 1)[-1])
        version = next((i.version for i in self.host.plugin_infos() if i.name == plugin), "")
        who = f"{plugin} {version}".strip()
        ws.add_finding(
            Finding(
                "PLUGIN_FAILED",
                "error",
                f"plugin {who} {'failed' if isinstance(exc, _Unusable) else 'raised ' + type(exc).__name__} in {where}:"
                f" {one_line(str(exc), 300)}; its contribution was skipped,"
                " so this outcome may be incomplete (run with --strict to stop instead)",
                rule="PLUGIN",
                source=f"plugin {who}",
                plugin=plugin,
            ),
            None,
        )

    def _invoke(self, plugin: str, function: Any, argnames: tuple[str, ...], ws: _Worksheet, hook: str, kwargs: Mapping[str, Any]) -> tuple[bool, Any]:
        """Call one implementation: ``(True, result)``, or ``(False, None)`` when it failed and was skipped.

        A generator's values are read inside the guard. The time limit is for third-party code; the
        builtin payers are part of payerpolicy. The library's own errors are bugs: they propagate.
        """
        try:
            if self.host.is_builtin(plugin):
                result = function(*[kwargs[a] for a in argnames])
                if isinstance(result, Iterator):  # a generator raises while it is read, not when called
                    result = list(result)
            else:
                with _time_limit(self.hook_timeout):
                    result = function(*[kwargs[a] for a in argnames])
                    if isinstance(result, Iterator):
                        result = list(result)
        except PayerPolicyError as exc:
            if plugin == CORE:
                raise
            self._failed(ws, plugin, hook, exc)  # a plugin's EncounterError is its fault, not the input's
            return False, None
        except Exception as exc:
            self._failed(ws, plugin, hook, exc)
            return False, None
        return True, result

    def _call(self, hook: str, payer_id: str, ws: _Worksheet, **kwargs: Any) -> Iterable[tuple[str, Any]]:
        """Call every implementation in scope, skipping (and reporting) the ones that fail."""
        for plugin, function, argnames in self.host.implementations(hook, payer_id):
            ok, result = self._invoke(plugin, function, argnames, ws, hook, kwargs)
            if ok:
                yield plugin, result

    def _first(
        self, hook: str, payer_id: str, ws: _Worksheet, check: Callable[[Any], str | None] | None = None, **kwargs: Any
    ) -> tuple[str, Any]:
        """The first non-None result; one ``check`` finds unusable is a plugin failure (the next one is asked)."""
        for plugin, function, argnames in self.host.implementations(hook, payer_id):
            ok, result = self._invoke(plugin, function, argnames, ws, hook, kwargs)
            if not ok or result is None:
                continue
            problem = check(result) if check is not None else None
            if problem is not None:
                self._failed(ws, plugin, hook, PluginHookError(plugin, hook, problem))
                continue
            return plugin, result
        return "", None

    def _check_choice(self, choice: Any) -> str | None:
        if not isinstance(choice, CodeChoice):
            return f"returned {_short(choice)}, expected a CodeChoice"
        if choice.code is not None and (not isinstance(choice.code, str) or choice.code not in self.catalogue):
            return f"chose code {_short(choice.code)}, which is not in the code catalogue"
        if not all(_usable_finding(f) for f in choice.findings):
            return "returned findings that are not Finding values with a code, a severity and a message"
        return None

    def _check_changes(self, result: Any, lines: list[_Line]) -> str | None:
        """Why ``result`` (a rule's or hook's changes) cannot be applied, or None: checked before any is applied."""
        if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
            return f"returned {_short(result)}, expected Change values"
        for change in result:
            if not isinstance(change, Change):
                return f"returned {_short(change)}, expected Change values"
            if change.line is not None and not (isinstance(change.line, int) and 0 <= change.line < len(lines)):
                return f"change names line {_short(change.line)}, but there are {len(lines)} lines"
            if change.code is not None and change.code not in self.catalogue:
                return f"code {_short(change.code)} is not in the code catalogue"
            if change.units is not None and (not isinstance(change.units, int) or change.units < 0):
                return "units must be a whole number >= 0"
            if change.status is not None and change.status not in STATUSES:
                return f"status {_short(change.status)} is not one of {', '.join(STATUSES)}"
            if change.finding is not None and not _usable_finding(change.finding):
                return f"finding {_short(change.finding)} is not a Finding with a code, a severity and a message"
        return None

    def _build_lines(self, ws: _Worksheet, ctx: Context, payer_id: str) -> None:
        enc = ctx.encounter
        for i, proc in enumerate(enc.procedures):
            pline = _Line(proc.code, 1, None, proc.regions, proc.diagnosis_pointers, i, "procedures")
            pline.billed = proc.billed
            ws.lines.append(pline)
        for i, service in enumerate(enc.services):
            plugin, choice = self._first(
                "payerpolicy_choose_code", payer_id, ws, self._check_choice, service=service, index=i, context=ctx
            )
            if not isinstance(choice, CodeChoice):
                raise PluginHookError(
                    plugin or "?", "payerpolicy_choose_code", f"returned {_short(choice)}, expected a CodeChoice"
                )
            line: _Line | None = None
            if choice.code is not None:
                timed = self.catalogue[choice.code].timed
                as_billed = service.billed.units if service.billed is not None and service.minutes is None else None
                line = _Line(
                    choice.code,
                    (as_billed or 0) if timed else 1,
                    service.minutes,
                    service.regions,
                    service.diagnosis_pointers,
                    i,
                    "services",
                )
                line.billed = service.billed
                ws.lines.append(line)
                if choice.code != service.code:
                    ws.record(
                        choice.rule, plugin, line, "code", service.code, choice.code, choice.source, choice.reason
                    )
            for f in choice.findings:
                ws.add_finding(
                    attrs.evolve(
                        f, rule=f.rule or choice.rule, source=f.source or choice.source, plugin=f.plugin or plugin
                    ),
                    line,
                )
        ws.touched()

    def _run_phase(self, ws: _Worksheet, ctx: Context, phase: str, hook: str | None, segment: int) -> None:
        plan = self._plan_on(ctx.payer.id, ctx.policy, phase, ctx.date_of_service, segment)
        for rule, function, plugin, trigger in plan:
            lines = ws.lines  # changes only mutate lines, never add, drop or reorder them
            if trigger is not None:
                codes = ws._codes
                if codes is None:
                    codes = ws.codes()
                unknown = ws._uncatalogued
                if trigger.codes.isdisjoint(codes) and not (unknown and trigger.among(unknown)):
                    continue  # none of the codes this rule acts on is on the encounter: it would change nothing
            if plugin == CORE:  # the builtin rule kinds: no time limit, their errors are bugs, no check
                # compiled: they read the working lines themselves (no frozen copies); the reference
                # engine gives them frozen ClaimLines, as third-party kinds always get
                view = tuple(lines) if self.compiled else ws.snapshot()
                for change in list(function(rule, view, ctx)):
                    ws.apply(change, CORE, lines)
                continue
            snapshot = ws._snapshot
            if snapshot is None:
                snapshot = ws.snapshot()
            where = f"rule {rule.id} ({rule.kind})"
            try:
                with contextlib.nullcontext() if self.host.is_builtin(plugin) else _time_limit(self.hook_timeout):
                    changes = list(function(rule, snapshot, ctx))
            except Exception as exc:
                self._failed(ws, plugin, where, exc)
                continue
            problem = self._check_changes(changes, lines)
            if problem is not None:
                self._failed(ws, plugin, where, PluginHookError(plugin, where, problem))
                continue
            for change in changes:
                ws.apply(change, plugin, lines)
        if hook is not None and self.host.implementations(hook, ctx.payer.id):
            lines = list(ws.lines)
            snapshot = ws.snapshot()
            for plugin, result in self._call(hook, ctx.payer.id, ws, lines=snapshot, context=ctx):
                if result is None:
                    continue
                problem = self._check_changes(result, lines)
                if problem is not None:
                    self._failed(ws, plugin, hook, PluginHookError(plugin, hook, problem))
                    continue
                for change in result:
                    ws.apply(change, plugin, lines)

    def _merge(self, ws: _Worksheet, rule: Rule) -> None:
        """One line per timed code per DOS: add the minutes of repeated codes (CORE-TIME-02)."""
        first: dict[str, _Line] = {}
        kept: list[_Line] = []
        merged: dict[int, _Line] = {}  # id of a merged line -> the line it went into
        for line in ws.lines:
            if line.origin != "services" or line.status == "not_billable" or not self.catalogue[line.code].timed:
                kept.append(line)
                continue
            into = first.get(line.code)
            if into is None:
                first[line.code] = line
                kept.append(line)
                continue
            why = f"services[{line.service}] is the same code on the same date of service: one line"
            if into.minutes is None and line.minutes is None:
                before = into.units
                into.units += line.units
                ws.record(
                    rule.id, CORE, into, "units", before, into.units, rule.source, why + ", units as billed added"
                )
            else:
                minutes_before = into.minutes
                into.minutes = (into.minutes or 0) + (line.minutes or 0)
                ws.record(
                    rule.id, CORE, into, "minutes", minutes_before, into.minutes, rule.source, why + ", minutes added"
                )
            into.billed = _merge_billed(into.billed, line.billed)
            into.entries.extend(line.entries)
            into.regions = tuple(dict.fromkeys((*into.regions, *line.regions)))
            into.diagnosis_pointers = tuple(dict.fromkeys((*into.diagnosis_pointers, *line.diagnosis_pointers)))
            joined = list(into.modifiers)
            for m in line.modifiers:
                if m not in joined:
                    joined.append(m)
            into.modifiers = tuple(joined)
            merged[id(line)] = into
        if merged:  # one pass over the trace and findings, however many lines were merged (n, not n²)
            ws.trace = [(t, merged.get(id(ref), ref) if ref is not None else None) for t, ref in ws.trace]
            ws.findings = [(f, merged.get(id(ref), ref) if ref is not None else None) for f, ref in ws.findings]
        ws.lines = kept
        ws.touched()

    def _unit_rules(self, policy: Policy, day: dt.date) -> tuple[frozenset[str], dict[str, tuple[Rule, str]]]:
        """The unit methods in force on ``day``, and each one's first rule and source (once per date segment)."""
        key = (id(policy), self._segment(policy, day))
        known = self._unit_plans.get(key)
        if known is None or known[0] is not policy:
            rules = policy.rules_of("timed_units", day)
            basis = policy.settings.basis_of("unit_method")
            why = f" — unit method for this payer: {basis.rule} ({basis.source})" if basis else ""
            by_method: dict[str, tuple[Rule, str]] = {}
            for rule in rules:
                by_method.setdefault(rule["method"], (rule, rule.source + why))
            known = (policy, frozenset(r["method"] for r in rules), by_method)
            self._unit_plans[key] = known
        return known[1], known[2]

    def _units(self, ws: _Worksheet, ctx: Context) -> None:
        policy = ctx.policy
        known, by_method = self._unit_rules(policy, ctx.date_of_service)

        def usable(method: Any) -> str | None:
            return None if isinstance(method, str) and method in known else f"returned unit method {_short(method)}; known: {', '.join(sorted(known))}"

        plugin, method = self._first("payerpolicy_unit_method", ctx.payer.id, ws, usable, context=ctx)
        method = method or policy.settings.unit_method
        if method not in by_method:
            raise PayerPolicyError(
                f"{policy.file}: no timed_units rule with method = {method!r} is in force on {ctx.date_of_service}"
            )
        rule, source = by_method[method]
        owner = plugin or CORE
        pool: dict[_Line, int] = {}
        for line in ws.lines:
            if line.status == "not_billable" or line.minutes is None or not self.catalogue[line.code].timed:
                continue
            if line.minutes == 0:
                ws.record(
                    rule.id, owner, line, "status", line.status, "not_billable", source, "no minutes of this service"
                )
                line.status = "not_billable"
                continue
            pool[line] = line.minutes
        if not pool:
            return
        result = units_cms_total_time(pool) if method == "cms_total_time" else units_ama_per_code(pool)
        total = sum(pool.values())
        for line, units in result.units.items():
            ws.record(
                rule.id,
                owner,
                line,
                "units",
                line.units,
                units,
                source,
                f"{method}: {line.minutes} min" + (f" of {total} timed min" if method == "cms_total_time" else ""),
            )
            line.units = units
            if units:
                continue
            ws.record(rule.id, owner, line, "status", line.status, "not_billable", source, "0 units")
            line.status = "not_billable"
            if method == "ama_per_code" or total < 8:
                ws.add_finding(
                    Finding(
                        "BELOW_MIN_TIME",
                        "warning",
                        f"{line.code}: {line.minutes} min is below the 8 minutes one unit needs"
                        + (" (the day's timed total is also below 8)" if method == "cms_total_time" else ""),
                        rule.id,
                        source,
                        plugin=owner,
                    ),
                    line,
                )
            elif line not in result.tied:
                ws.add_finding(
                    Finding(
                        "TIMED_MINUTES_NOT_BILLED",
                        "info",
                        f"{line.code}: {line.minutes} min performed but the day's {total} timed minutes allow {plural(sum(result.units.values()), 'unit')}, which went to codes with more minutes; keep the minutes in the note",
                        rule.id,
                        source,
                        plugin=owner,
                    ),
                    line,
                )
        if result.tied:
            codes = [line.code for line in result.tied]
            winners = [line.code for line in result.tied if result.units[line] > (line.minutes or 0) // 15]
            ws.add_finding(
                Finding(
                    "TIMED_UNIT_TIE",
                    "warning",
                    f"equal leftover minutes: {', '.join(codes)} are interchangeable for the last unit(s); given to {', '.join(winners)} by entry order — the clinician may choose",
                    rule.id,
                    source,
                    plugin=owner,
                ),
                None,
            )

    def _modifier_rank(self, policy: Policy) -> tuple[dict[str, tuple[int, int]], tuple[int, int]]:
        """Each modifier's place in the policy's modifier order, and the place of any other (once per policy)."""
        known = self._ranks.get(id(policy))
        if known is None or known[0] is not policy:
            settings = policy.settings
            rank: dict[str, tuple[int, int]] = {}
            for c, category in enumerate(settings.modifier_order):
                for m, mod in enumerate(policy.modifier_categories.get(category, ())):
                    rank.setdefault(mod, (c, m))
            known = (policy, rank, (len(settings.modifier_order), 0))
            self._ranks[id(policy)] = known
        return known[1], known[2]

    def _finish_modifiers(self, ws: _Worksheet, ctx: Context, payer_id: str) -> None:
        settings = ctx.policy.settings
        order_basis = settings.basis_of("modifier_order")
        limit_basis = settings.basis_of("max_modifiers_per_line")
        rank, other = self._modifier_rank(ctx.policy)
        lines = list(ws.lines)
        # what an order_modifiers hook is shown: the lines before this pass (only when one is in scope)
        snapshot = ws.snapshot() if self.host.implementations("payerpolicy_order_modifiers", payer_id) else None
        for idx, line in enumerate(lines):
            if line.status == "not_billable" or len(line.modifiers) < 2:
                pass
            else:
                before = line.modifiers

                def same_modifiers(custom: Any, before: tuple[str, ...] = before) -> str | None:
                    ok = isinstance(custom, list | tuple) and all(isinstance(m, str) for m in custom)
                    if ok and sorted(custom) == sorted(before):
                        return None
                    return f"returned {_short(custom)} for modifiers {list(before)}: reordering may not add or drop any"

                plugin, custom = (
                    self._first(
                        "payerpolicy_order_modifiers",
                        payer_id,
                        ws,
                        same_modifiers,
                        line=snapshot[idx],
                        modifiers=before,
                        context=ctx,
                    )
                    if snapshot is not None
                    else ("", None)
                )
                if custom is not None:
                    after = tuple(custom)
                    rule_id, source = "ORDER", f"modifier order of plugin {plugin}"
                else:
                    after = tuple(sorted(before, key=lambda m: (rank.get(m, other), before.index(m))))
                    plugin = CORE
                    rule_id = order_basis.rule if order_basis else "CORE-MOD-04"
                    source = order_basis.source if order_basis else "payerpolicy default modifier order"
                if after != before:
                    ws.record(rule_id, plugin, line, "modifiers", before, after, source, "modifier order")
                    line.modifiers = after
            if line.status != "not_billable" and len(line.modifiers) > settings.max_modifiers_per_line:
                rule_id = limit_basis.rule if limit_basis else "CORE-MOD-05"
                source = limit_basis.source if limit_basis else "CMS-1500 item 24D; X12 837P SV101"
                needed = line.modifiers
                ws.add_finding(
                    Finding(
                        "TOO_MANY_MODIFIERS",
                        "error",
                        f"{line.code} needs {len(needed)} modifiers ({', '.join(needed)}) but a claim line holds {settings.max_modifiers_per_line}; the line is not built rather than drop one silently",
                        rule_id,
                        source,
                        plugin=CORE,
                    ),
                    line,
                )
                ws.record(rule_id, CORE, line, "modifiers", needed, (), source, "too many modifiers")
                line.modifiers = ()
                ws.record(rule_id, CORE, line, "status", line.status, "not_billable", source, "too many modifiers")
                line.status = "not_billable"
                line.units = 0

    def _outcome(self, ws: _Worksheet, ctx: Context, payer_id: str, keep_trace: bool = True) -> Outcome:
        snapshot = ws.snapshot()

        def permutation(custom: Any) -> str | None:
            ok = isinstance(custom, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in custom)
            if ok and sorted(custom) == list(range(len(snapshot))):
                return None
            return f"returned {_short(custom)}, not a permutation of 0..{len(snapshot) - 1}"

        _, custom = self._first("payerpolicy_order_lines", payer_id, ws, permutation, lines=snapshot, context=ctx)
        if custom is not None:
            order = list(custom)
        else:

            def key(i: int) -> tuple[int, int, int]:
                line = ws.lines[i]
                if line.origin == "procedures":
                    return (0, _PROCEDURE_RANK.get(self.catalogue[line.code].category, 9), line.service)
                return (1, 0, line.service)

            order = sorted(range(len(ws.lines)), key=key)
        position = {id(ws.lines[old]): new for new, old in enumerate(order)}
        lines = tuple(snapshot[old] for old in order)

        def where(line: _Line | None) -> int | None:
            return None if line is None else position.get(id(line))

        # each finding at its line's place in claim order, with its denial terms (``with_adjustments``)
        found: list[Finding] = []
        for f, ref in ws.findings:
            at = where(ref)
            adjustment = f.adjustment
            if adjustment is None:
                entry = adjustment_for(f.code, payer_id)
                if entry is not None:
                    adjustment = entry.adjustment(lines[at] if at is not None and at < len(lines) else None)
            found.append(Finding(f.code, f.severity, f.message, f.rule, f.source, at, f.plugin, adjustment))
        findings = tuple(found)
        as_billed = ctx.encounter.as_billed
        # the trace is read by pricing (what lost dollars are charged to) and the claim-as-billed
        # differences; otherwise a caller that does not keep it never has its entries built
        trace = (
            tuple(
                TraceEntry(rule, plugin, where(ref), field, before, after, source, reason)
                for (rule, plugin, field, before, after, source, reason), ref in ws.trace
            )
            if keep_trace or as_billed or ctx.fees is not None
            else ()
        )
        policy: Policy = ctx.policy
        lines, findings, trace, money = self._price(ws, ctx, order, lines, findings, trace)
        outcome = Outcome(
            encounter=ctx.encounter.id,
            payer=PayerRef(id=payer_id, name=policy.name, policy_version=policy.policy_version),
            lines=lines,
            findings=findings,
            trace=trace,
            diagnoses=ws.diagnoses,
            **money,
        )
        if as_billed:
            outcome = attrs.evolve(
                outcome,
                as_billed=True,
                differences=differences(
                    ctx.encounter,
                    outcome,
                    ctx.catalogue,
                    entries=[ws.lines[old].entries for old in order],
                    max_modifiers=policy.settings.max_modifiers_per_line,
                ),
            )
        if not keep_trace and outcome.trace:
            outcome = attrs.evolve(outcome, trace=())
        return outcome
