"""Claim history: visits recorded per patient, and the counters later visits are evaluated with.

Rules such as California WC's 24-visit cap (CAWC-01), the massage audit trigger (CORE-UTIL-01),
Aetna's improvement clock (AET-02) and Medicare's KX threshold (MCR-07) read care fields that
depend on earlier visits. With an encounter's ``patient`` (and ``episode``) key, history derives
them when the encounter does not give them: ``visit_number``, ``prior_massage_visits``,
``ytd_therapy_charges``, ``episode_start`` and ``injury_date`` (docs/history.md).

Modules: ``store`` (the :class:`HistoryStore` interface, :class:`Visit`, :class:`SQLiteHistory`)
and ``counters`` (:func:`derive`, :func:`apply`, :func:`with_trace`, :class:`Tracker`). Layer:
above the evaluation core; used by the facade (``payerpolicy.check(..., history=)``), batch and
the HTTP service.
"""

from __future__ import annotations

import os
from typing import Any

from ..evaluation.errors import PayerPolicyError
from ..evaluation.model import Encounter, Outcome
from .counters import (
    HISTORY_RULE,
    HISTORY_SOURCE,
    Derived,
    Tracker,
    apply,
    claim_lines,
    derive,
    discipline_of,
    same_day_claims,
    technique_rule,
    with_trace,
)
from .store import SCHEMA_VERSION, HistoryStore, SQLiteHistory, Visit, VisitLine

__all__ = [
    "HISTORY_RULE",
    "HISTORY_SOURCE",
    "SCHEMA_VERSION",
    "Derived",
    "HistoryStore",
    "SQLiteHistory",
    "Tracker",
    "Visit",
    "VisitLine",
    "apply",
    "check_with_history",
    "claim_lines",
    "derive",
    "discipline_of",
    "history_label",
    "open_history",
    "same_day_claims",
    "technique_rule",
    "with_trace",
]


def open_history(spec: str | os.PathLike[str]) -> HistoryStore:
    """The store ``--history SPEC`` names: a ``postgresql://`` URL (extra ``payerpolicy[postgres]``) or a SQLite file."""
    if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresHistory

        return PostgresHistory(spec)
    return SQLiteHistory(spec)


def history_label(spec: str | os.PathLike[str]) -> str:
    """How ``spec`` is named in a batch run's state: the file's absolute path, or the URL without its password."""
    if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
        from .postgres import redact

        return redact(spec)
    from pathlib import Path

    return str(Path(spec).resolve())


def check_with_history(
    engine: Any, encounter: Encounter, payer: str, store: HistoryStore, *, record: bool = False, stop: Any = None
) -> Outcome:
    """Evaluate ``encounter`` for ``payer`` with counters from ``store``; ``record`` keeps the visit.

    Without a ``patient`` key history has nothing to say and the encounter is evaluated as given.
    ``record=True`` needs the encounter's ``id`` (history is kept by it) and writes the visit only
    after the evaluation succeeded; a what-if (``record=False``) never writes.
    """
    if record and (encounter.patient is None or encounter.id is None):
        missing = "patient" if encounter.patient is None else "id"
        raise PayerPolicyError(f"{missing}: required to record the visit in claim history")
    derived = None
    if encounter.patient is not None:
        day = encounter.date_of_service
        derived = derive(
            encounter, store.visits(encounter.patient), rule=technique_rule(engine, day), catalogue=engine.catalogue
        )
    evaluated = apply(encounter, derived)
    same_day, same_day_trace = same_day_claims(derived, payer)
    options: dict[str, Any] = {"same_day": same_day} if same_day else {}
    if stop is not None:
        options["stop"] = stop
    outcome = engine.evaluate(evaluated, payer, **options)
    if record and derived is not None and derived.visit is not None:
        store.record([derived.visit.with_claim(payer, claim_lines(outcome, payer))])
    return with_trace(outcome, derived, same_day_trace)
