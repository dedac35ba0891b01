"""payerpolicy: turn a therapy encounter into the claim lines each payer accepts, with reasons.

Embedding in a few lines::

    import payerpolicy

    encounter = payerpolicy.Encounter.from_mapping(data)        # encounter format v1
    outcome = payerpolicy.check(encounter, payer="commercial")
    print(outcome.to_json())                                     # outcome format v1
    by_payer = payerpolicy.compare(encounter)                    # every installed payer

``check`` and ``compare`` use a default :class:`Engine` built once per process from the installed
plugins; pass ``engine=`` to use your own (for example with extra plugins registered).

Claim history (docs/history.md): ``check(encounter, payer, history=store, record=True)`` derives
visit counts, prior massage visits and year-to-date therapy charges from the visits ``store``
(:class:`payerpolicy.history.SQLiteHistory`) holds for the encounter's ``patient``, and records
this visit; ``record=False`` (the default) is a what-if that never writes.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._aliases import ALIASES as _ALIASES
from ._aliases import install as _install_aliases
from ._version import __version__
from .evaluation.engine import Engine, PluginHookError
from .evaluation.errors import (
    EncounterError,
    PayerPolicyError,
    PluginConflictError,
    PolicyProblem,
    PolicyValidationError,
    UnknownPayerError,
)
from .evaluation.hookspecs import hookimpl, hookspec
from .evaluation.kinds import Change, CodeChoice, Context, Param, RuleKind, SameDayLine
from .evaluation.manager import PluginHost, make_plugin_manager
from .evaluation.model import (
    Care,
    ClaimLine,
    Encounter,
    Finding,
    Outcome,
    Payer,
    Procedure,
    Provider,
    Service,
    TraceEntry,
)
from .evaluation.policy import Policy, Rule, load_policy
from .history import HistoryStore, check_with_history

_install_aliases()

__all__ = [
    "Care",
    "Change",
    "ClaimLine",
    "CodeChoice",
    "Context",
    "Encounter",
    "EncounterError",
    "Engine",
    "Finding",
    "Outcome",
    "Param",
    "Payer",
    "PayerPolicyError",
    "PluginConflictError",
    "PluginHookError",
    "PluginHost",
    "Policy",
    "PolicyProblem",
    "PolicyValidationError",
    "Procedure",
    "Provider",
    "Rule",
    "RuleKind",
    "SameDayLine",
    "Service",
    "TraceEntry",
    "UnknownPayerError",
    "__version__",
    "check",
    "compare",
    "default_engine",
    "hookimpl",
    "hookspec",
    "load_policy",
    "make_plugin_manager",
]


@functools.cache
def default_engine() -> Engine:
    """The engine ``check`` and ``compare`` use: every installed plugin, built once per process."""
    return Engine()


def _encounter(encounter: Encounter | Mapping[str, Any]) -> Encounter:
    return encounter if isinstance(encounter, Encounter) else Encounter.from_mapping(encounter)


def check(
    encounter: Encounter | Mapping[str, Any],
    payer: str,
    *,
    engine: Engine | None = None,
    history: HistoryStore | None = None,
    record: bool = False,
) -> Outcome:
    """Evaluate one encounter (an :class:`Encounter` or format-v1 data) for one payer.

    With ``history`` (a :class:`~payerpolicy.history.HistoryStore`), the care counters the
    encounter leaves out are derived from the patient's recorded visits, and the trace says which
    value was used; ``record=True`` also records this visit (it needs ``patient`` and ``id``).
    """
    eng = engine or default_engine()
    if history is None:
        if record:
            raise PayerPolicyError("record=True needs a history store (history=...)")
        return eng.check(_encounter(encounter), payer)
    return check_with_history(eng, _encounter(encounter), payer, history, record=record)


def compare(
    encounter: Encounter | Mapping[str, Any],
    payers: Sequence[str] | None = None,
    *,
    engine: Engine | None = None,
) -> dict[str, Outcome]:
    """Evaluate one encounter for several payers (every installed payer by default)."""
    return (engine or default_engine()).compare(_encounter(encounter), payers)


def __getattr__(name: str) -> Any:
    """``payerpolicy.engine`` and the other modules of the flat 0.1 layout, as attributes (see ``_aliases``)."""
    if name in _ALIASES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
