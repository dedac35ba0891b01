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
from typing import TYPE_CHECKING, Any

from ._aliases import ALIASES as _ALIASES
from ._aliases import install as _install_aliases
from ._version import __version__

if TYPE_CHECKING:
    from .evaluation.engine import Engine as Engine
    from .evaluation.engine import PluginHookError as PluginHookError
    from .evaluation.errors import EncounterError as EncounterError
    from .evaluation.errors import PayerPolicyError as PayerPolicyError
    from .evaluation.errors import PluginConflictError as PluginConflictError
    from .evaluation.errors import PolicyProblem as PolicyProblem
    from .evaluation.errors import PolicyValidationError as PolicyValidationError
    from .evaluation.errors import UnknownPayerError as UnknownPayerError
    from .evaluation.hookspecs import hookimpl as hookimpl
    from .evaluation.hookspecs import hookspec as hookspec
    from .evaluation.kinds import Change as Change
    from .evaluation.kinds import CodeChoice as CodeChoice
    from .evaluation.kinds import Context as Context
    from .evaluation.kinds import Param as Param
    from .evaluation.kinds import RuleKind as RuleKind
    from .evaluation.kinds import SameDayLine as SameDayLine
    from .evaluation.manager import PluginHost as PluginHost
    from .evaluation.manager import make_plugin_manager as make_plugin_manager
    from .evaluation.model import Care as Care
    from .evaluation.model import ClaimLine as ClaimLine
    from .evaluation.model import Encounter as Encounter
    from .evaluation.model import Finding as Finding
    from .evaluation.model import Outcome as Outcome
    from .evaluation.model import Payer as Payer
    from .evaluation.model import Procedure as Procedure
    from .evaluation.model import Provider as Provider
    from .evaluation.model import Service as Service
    from .evaluation.model import TraceEntry as TraceEntry
    from .evaluation.policy import Policy as Policy
    from .evaluation.policy import Rule as Rule
    from .evaluation.policy import load_policy as load_policy
    from .history import HistoryStore as HistoryStore

#: Public name -> the module (under ``payerpolicy.``) that defines it. Imported on first use (PEP 562):
#: ``import payerpolicy`` stays cheap, and a command loads only the layers it needs.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("Engine", "PluginHookError"), "evaluation.engine"),
    **dict.fromkeys(
        (
            "EncounterError",
            "PayerPolicyError",
            "PluginConflictError",
            "PolicyProblem",
            "PolicyValidationError",
            "UnknownPayerError",
        ),
        "evaluation.errors",
    ),
    **dict.fromkeys(("hookimpl", "hookspec"), "evaluation.hookspecs"),
    **dict.fromkeys(("Change", "CodeChoice", "Context", "Param", "RuleKind", "SameDayLine"), "evaluation.kinds"),
    **dict.fromkeys(("PluginHost", "make_plugin_manager"), "evaluation.manager"),
    **dict.fromkeys(
        ("Care", "ClaimLine", "Encounter", "Finding", "Outcome", "Payer", "Procedure", "Provider", "Service", "TraceEntry"),
        "evaluation.model",
    ),
    **dict.fromkeys(("Policy", "Rule", "load_policy"), "evaluation.policy"),
    **dict.fromkeys(("HistoryStore", "check_with_history"), "history"),
}

#: The subpackages, as attributes of the package even before they are imported.
_SUBPACKAGES = ("batch", "cli", "evaluation", "formats", "history", "kit", "ncci", "plugins", "policies", "service", "views")

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
    from .evaluation.engine import Engine

    return Engine()


def _encounter(encounter: Encounter | Mapping[str, Any]) -> Encounter:
    from .evaluation.model import Encounter

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
            from .evaluation.errors import PayerPolicyError

            raise PayerPolicyError("record=True needs a history store (history=...)")
        return eng.check(_encounter(encounter), payer)
    from .history import check_with_history

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
    """The public names (imported on first use), the subpackages and the 0.1 module paths (``_aliases``)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name in _ALIASES or name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the public ones not imported yet."""
    return sorted({*globals(), *_LAZY})
