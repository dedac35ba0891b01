"""payerpolicy: turn a therapy encounter into the claim lines each payer accepts, with reasons.

Embedding in a few lines::

    import payerpolicy

    encounter = payerpolicy.Encounter.from_mapping(data)        # encounter format v1
    outcome = payerpolicy.check(encounter, payer="commercial")
    print(outcome.to_json())                                     # outcome format v1
    by_payer = payerpolicy.compare(encounter)                    # every installed payer

``check`` and ``compare`` use a default :class:`Engine` built once per process from the installed
plugins; pass ``engine=`` to use your own (for example with extra plugins registered).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from .engine import Engine, PluginHookError
from .errors import (
    EncounterError,
    PayerPolicyError,
    PluginConflictError,
    PolicyProblem,
    PolicyValidationError,
    UnknownPayerError,
)
from .hookspecs import hookimpl, hookspec
from .kinds import Change, CodeChoice, Context, Param, RuleKind
from .manager import PluginHost, make_plugin_manager
from .model import (
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
from .policy import Policy, Rule, load_policy

__version__ = "0.1.0"

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


def check(encounter: Encounter | Mapping[str, Any], payer: str, *, engine: Engine | None = None) -> Outcome:
    """Evaluate one encounter (an :class:`Encounter` or format-v1 data) for one payer."""
    return (engine or default_engine()).check(_encounter(encounter), payer)


def compare(
    encounter: Encounter | Mapping[str, Any],
    payers: Sequence[str] | None = None,
    *,
    engine: Engine | None = None,
) -> dict[str, Outcome]:
    """Evaluate one encounter for several payers (every installed payer by default)."""
    return (engine or default_engine()).compare(_encounter(encounter), payers)
