"""Counters derived from claim history: visit number, prior massage visits, year-to-date charges, episode start.

For one encounter with a ``patient`` key, :func:`derive` reads the patient's recorded visits that
come before it (date of service, then encounter id; the encounter's own id never counts) and works
out the care fields the rules need. A value the encounter gives always wins; every counter gets a
trace entry (rule ``HISTORY``) saying which value was used and where it came from. Each visit
stores the values it was evaluated with, so a count a caller gave once carries forward.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..evaluation.kinds import SameDayLine
from ..evaluation.model import Encounter, Outcome, TraceEntry
from ..evaluation.rules import Rule
from ..evaluation.vocab import CodeCatalogue, default_catalogue
from .store import HistoryStore, Visit, VisitLine

__all__ = [
    "HISTORY_RULE",
    "HISTORY_SOURCE",
    "MASSAGE_CODES",
    "Derived",
    "Tracker",
    "apply",
    "claim_lines",
    "derive",
    "discipline_of",
    "same_day_claims",
    "technique_rule",
    "with_trace",
]

#: The ``rule`` of the trace entries history writes.
HISTORY_RULE = "HISTORY"
#: Their ``source``.
HISTORY_SOURCE = "claim history (visits recorded in the payerpolicy history store)"
#: Codes whose presence makes a visit a massage visit (CORE-UTIL-01 counts them).
MASSAGE_CODES = frozenset({"97124"})

_DISCIPLINES = {
    "DC": "chiropractic",
    "PT": "physical therapy",
    "PTA": "physical therapy",
    "OT": "occupational therapy",
    "OTA": "occupational therapy",
}
_OT = ("OT", "OTA")
_ZERO = Decimal(0)


def discipline_of(provider_type: str) -> str:
    """The discipline visits are counted in: chiropractic, physical therapy, occupational therapy, or the provider type."""
    return _DISCIPLINES.get(provider_type, provider_type)


@attrs.frozen
class Derived:
    """What history says about one encounter: care values to use, the trace, and the visit to record.

    ``care`` holds ``(field, value)`` pairs for :func:`apply` (only fields the encounter left
    out); ``visit`` is None when the encounter has no ``id`` (it cannot be recorded idempotently).
    ``same_day`` are the patient's earlier visits on the same date of service with the same
    provider (:func:`same_day_claims` turns their claim lines into the evaluation's same-day lines).
    """

    care: tuple[tuple[str, Any], ...]
    trace: tuple[TraceEntry, ...]
    visit: Visit | None
    same_day: tuple[Visit, ...] = ()


def technique_rule(engine: Any, day: dt.date) -> Rule | None:
    """The code-by-technique rule (CORE-INT-01) of the generic payer in force on ``day``, to tell massage visits."""
    ids = list(engine.payer_ids)
    if not ids:
        return None
    policy = engine.host.policy("commercial" if "commercial" in ids else ids[0])
    rules = policy.rules_of("code_by_technique", day)
    return rules[0] if rules else None


def _service_code(code: str | None, technique: str | None, intent: Sequence[str], rule: Rule | None) -> str | None:
    if code is not None or technique is None or rule is None:
        return code
    target = rule["techniques"].get(technique)
    if target != "by_intent":
        return str(target) if target is not None else None
    hits = [c for c, intents in rule["intent_codes"].items() if set(intents) & set(intent)]
    return str(hits[0]) if len(hits) == 1 else None


def _is_therapy(code: str | None, technique: str | None, catalogue: CodeCatalogue) -> bool:
    if code is None:
        return technique is not None and technique != "manipulation"
    info = catalogue.get(code)
    return info is not None and (info.is_physical_medicine or info.category == "evaluation")


def _facts(encounter: Encounter, rule: Rule | None, catalogue: CodeCatalogue) -> tuple[bool, Decimal, Decimal]:
    """Whether massage was billed, and the billed therapy charges (PT+SLP, OT) of ``encounter``."""
    massage = False
    pt_slp = ot = _ZERO
    ot_provider = encounter.provider.type in _OT
    entries: list[tuple[str | None, str | None, Any]] = []
    for s in encounter.services:
        entries.append((_service_code(s.code, s.technique, s.intent, rule), s.technique, s.billed))
    for p in encounter.procedures:
        entries.append((p.code, None, p.billed))
    for code, technique, billed in entries:
        massage = massage or code in MASSAGE_CODES
        if billed is None or billed.charge is None or not _is_therapy(code, technique, catalogue):
            continue
        mods = billed.modifiers
        is_ot = "GO" in mods or (ot_provider and "GP" not in mods and "GN" not in mods)
        if is_ot:
            ot += billed.charge
        else:
            pt_slp += billed.charge
    return massage, pt_slp, ot


def _latest(visits: Iterable[Visit]) -> Visit | None:
    return max(visits, key=lambda v: v.order, default=None)


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _entry(field: str, given: Any, used: Any, reason: str) -> TraceEntry:
    def plain(value: Any) -> Any:
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    return TraceEntry(HISTORY_RULE, "payerpolicy", None, f"care.{field}", plain(given), plain(used), HISTORY_SOURCE, reason)


def derive(
    encounter: Encounter,
    recorded: Iterable[Visit],
    *,
    rule: Rule | None = None,
    catalogue: CodeCatalogue | None = None,
) -> Derived:
    """The history-derived care values of ``encounter`` from the patient's ``recorded`` visits.

    ``rule`` is the code-by-technique rule used to tell whether a technique-only service is
    massage (:func:`technique_rule`). The encounter must have a ``patient``.
    """
    if encounter.patient is None:
        raise ValueError("derive needs an encounter with a patient key")
    catalogue = catalogue or default_catalogue()
    care = encounter.care
    ident = encounter.id or ""
    day = encounter.date_of_service
    episode = encounter.episode or ""
    discipline = discipline_of(encounter.provider.type)
    here = (day, ident)
    prior = [v for v in recorded if v.encounter != ident and v.order < here]
    npi = encounter.provider.npi
    same_day = tuple(
        sorted(
            (v for v in prior if v.date == day and _same_provider(v, npi, discipline)),
            key=lambda v: v.order,
        )
    )
    in_episode = [v for v in prior if v.episode == episode]
    massage, pt_slp, ot = _facts(encounter, rule, catalogue)
    values: list[tuple[str, Any]] = []
    trace: list[TraceEntry] = []

    def use(field: str, derived: Any, reason: str) -> Any:
        given = getattr(care, field)
        if given is not None:
            shown = derived.isoformat() if isinstance(derived, dt.date) else (_money(derived) if isinstance(derived, Decimal) else derived)
            trace.append(_entry(field, given, given, f"given in the encounter (claim history would give {shown})"))
            return given
        if derived is None:
            return None
        values.append((field, derived))
        trace.append(_entry(field, None, derived, f"from claim history: {reason}"))
        return derived

    last = _latest(v for v in in_episode if v.discipline == discipline)
    number = use(
        "visit_number",
        last.visit_number + 1 if last else 1,
        f"the last {discipline} visit of this episode recorded before this one ({last.encounter}, {last.date}) was visit {last.visit_number}"
        if last
        else f"no earlier {discipline} visit of this episode is recorded",
    )
    last_ep = _latest(in_episode)
    prior_massage = use(
        "prior_massage_visits",
        last_ep.prior_massage_visits + int(last_ep.massage) if last_ep else 0,
        (
            f"{last_ep.prior_massage_visits} massage visit(s) before {last_ep.encounter} ({last_ep.date})"
            f"{', which had massage' if last_ep.massage else ', which had none'}"
        )
        if last_ep
        else "no earlier visit of this episode is recorded",
    )
    start = use(
        "episode_start",
        (last_ep.episode_start or last_ep.date) if last_ep else day,
        f"day {(day - (last_ep.episode_start or last_ep.date)).days} of the episode; its first recorded visit or given start"
        if last_ep
        else "no earlier visit of this episode is recorded: it starts with this visit",
    )
    injury = use(
        "injury_date",
        last_ep.injury_date if last_ep else None,
        f"the injury date recorded with {last_ep.encounter} ({last_ep.date})" if last_ep else "",
    )
    last_year = _latest(v for v in prior if v.date.year == day.year)
    ytd = {
        "pt_slp": last_year.ytd_pt_slp + last_year.pt_slp_charges if last_year else _ZERO,
        "ot": last_year.ytd_ot + last_year.ot_charges if last_year else _ZERO,
    }
    bucket = "ot" if encounter.provider.type in _OT else "pt_slp"
    label = "OT" if bucket == "ot" else "PT and speech-language pathology"
    ytd[bucket] = use(
        "ytd_therapy_charges",
        ytd[bucket],
        (
            f"{_money(ytd[bucket])} of billed {label} therapy charges recorded in {day.year} before this visit"
            f" (through {last_year.encounter}, {last_year.date})"
        )
        if last_year
        else f"no billed therapy charges recorded in {day.year} before this visit",
    )
    visit = None
    if encounter.id is not None:
        visit = Visit(
            encounter=encounter.id,
            patient=encounter.patient,
            episode=episode,
            date=day,
            discipline=discipline,
            massage=massage,
            visit_number=number,
            prior_massage_visits=prior_massage,
            ytd_pt_slp=ytd["pt_slp"],
            ytd_ot=ytd["ot"],
            pt_slp_charges=pt_slp,
            ot_charges=ot,
            episode_start=start,
            injury_date=injury,
            npi=npi,
        )
    else:
        trace.append(
            TraceEntry(
                HISTORY_RULE, "payerpolicy", None, "id", None, None, HISTORY_SOURCE,
                "the encounter has no id: its counters come from history, but it is not recorded (history is kept by encounter id)",
            )
        )  # fmt: skip
    return Derived(tuple(values), tuple(trace), visit, same_day)


def _same_provider(visit: Visit, npi: str | None, discipline: str) -> bool:
    """Whether ``visit`` was furnished by the same provider: the same NPI when both have one, else the same discipline."""
    if visit.npi is not None and npi is not None:
        return visit.npi == npi
    return visit.discipline == discipline


def claim_lines(outcome: Outcome, payer: str) -> tuple[VisitLine, ...]:
    """The lines of ``outcome`` that go on the claim (billable or expected to be denied, with units), to record."""
    return tuple(
        VisitLine(payer, line.code, line.units, line.modifiers, line.regions, line.status)
        for line in outcome.lines
        if line.on_claim and line.units > 0
    )


def _listing(lines: Sequence[VisitLine]) -> str:
    return ", ".join(
        f"{line.code} x{line.units}" + (f" [{' '.join(line.modifiers)}]" if line.modifiers else "") for line in lines
    ) or "no lines on the claim"


def same_day_claims(
    derived: Derived | None,
    payer: str,
    evaluated: Mapping[str, Mapping[str, tuple[VisitLine, ...]]] | None = None,
) -> tuple[tuple[SameDayLine, ...], tuple[TraceEntry, ...]]:
    """The lines of the patient's earlier same-day claims for ``payer``, and the trace entries saying which.

    ``evaluated`` (encounter id -> payer -> lines) overrides what the store recorded, for visits
    evaluated in the same batch chunk but not yet recorded. A same-day visit with no lines for
    ``payer`` is named in the trace and not checked against.
    """
    if derived is None or not derived.same_day:
        return (), ()
    found: list[SameDayLine] = []
    trace: list[TraceEntry] = []
    for visit in derived.same_day:
        fresh = (evaluated or {}).get(visit.encounter)
        lines = fresh.get(payer) if fresh is not None else visit.lines_for(payer)
        if lines is None:
            trace.append(
                TraceEntry(
                    HISTORY_RULE, "payerpolicy", None, "same_day_lines", None, None, HISTORY_SOURCE,
                    f"same patient, date of service and provider: {visit.encounter} is recorded without its claim lines"
                    f" for {payer} (evaluated for another payer, or recorded before claim lines were kept), so this"
                    " claim is not checked against it for NCCI pairs and MUE limits",
                )
            )  # fmt: skip
            continue
        found.extend(SameDayLine(visit.encounter, line.code, line.units, line.modifiers, line.regions) for line in lines)
        trace.append(
            TraceEntry(
                HISTORY_RULE, "payerpolicy", None, "same_day_lines", None, visit.encounter, HISTORY_SOURCE,
                f"same patient, date of service and provider: {visit.encounter} was billed earlier ({_listing(lines)});"
                " NCCI procedure-to-procedure pairs and MUE limits count its lines with this claim's",
            )
        )  # fmt: skip
    return tuple(found), tuple(trace)


def apply(encounter: Encounter, derived: Derived | None) -> Encounter:
    """``encounter`` with the history-derived care values filled in (the given ones untouched)."""
    if derived is None or not derived.care:
        return encounter
    return attrs.evolve(encounter, care=attrs.evolve(encounter.care, **dict(derived.care)))


def with_trace(outcome: Outcome, derived: Derived | None, extra: Sequence[TraceEntry] = ()) -> Outcome:
    """``outcome`` with history's trace entries first (the counters', then ``extra``: the same-day claims')."""
    entries = (derived.trace if derived is not None else ()) + tuple(extra)
    if not entries:
        return outcome
    return attrs.evolve(outcome, trace=entries + outcome.trace)


class Tracker:
    """Derives counters for encounters met in order (per patient, by date), for a batch run.

    Keeps the visits of the current patient in memory: the recorded ones, read once when the
    patient's first encounter comes, plus those derived since (recorded later, when their results
    are committed). So memory holds one patient's visits, however long the run.
    """

    def __init__(self, store: HistoryStore, engine: Any) -> None:
        self.store = store
        self.engine = engine
        self.patient: str | None = None
        self.visits: dict[str, Visit] = {}
        self._rules: dict[dt.date, Rule | None] = {}

    def derive(self, encounter: Encounter) -> Derived | None:
        """The counters of ``encounter`` (None without a patient key); its visit joins those in memory."""
        if encounter.patient is None:
            return None
        if encounter.patient != self.patient:
            self.patient = encounter.patient
            self.visits = {v.encounter: v for v in self.store.visits(encounter.patient)}
        day = encounter.date_of_service
        if day not in self._rules:
            if len(self._rules) > 4096:
                self._rules.clear()
            self._rules[day] = technique_rule(self.engine, day)
        derived = derive(encounter, self.visits.values(), rule=self._rules[day], catalogue=self.engine.catalogue)
        if derived.visit is not None:
            self.visits[derived.visit.encounter] = derived.visit
        return derived
