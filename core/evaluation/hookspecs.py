"""Hook specifications: every way a plugin can take part in payerpolicy.

A plugin is a module (or object) with functions decorated by :data:`payerpolicy.hookimpl` and named
after the specs below. It is found through the entry-point group ``payerpolicy``::

    [project.entry-points.payerpolicy]
    acme_health = "acme_payerpolicy.plugin"

**Scope.** While the engine evaluates an encounter for payer *P*, it calls the hooks of the plugin
that registered *P* and of plugins that register no payer at all ("extension" plugins, which see
every payer and can read ``context.payer.id``). It never calls another payer plugin's hooks. The
registration hooks (``payerpolicy_payers``, ``payerpolicy_rule_kinds``) are called once, on every
plugin.

**Arguments are immutable values** (:class:`~payerpolicy.model.Encounter`,
:class:`~payerpolicy.model.ClaimLine`, :class:`~payerpolicy.kinds.Context`): a hook never sees the
engine. A hook asks for a change by returning :class:`~payerpolicy.kinds.Change` values, each naming
its rule id and source; the engine applies them and records each in the outcome's trace.

**Stability.** Hook names and arguments are public API. Arguments are added, never renamed or
removed; an implementation may accept any subset of a spec's arguments.

**Order.** Hooks that collect results run every implementation (newest plugin first, pluggy's
``tryfirst``/``trylast`` respected). ``firstresult`` hooks stop at the first implementation that
returns something other than None.
"""

# Hook specs are documentation with a signature: their bodies are empty on purpose.
# mypy: disable-error-code="empty-body"
from __future__ import annotations

from collections.abc import Iterable, Sequence

import pluggy

from .kinds import Change, CodeChoice, Context, RuleKind
from .model import ClaimLine, Payer, Service

__all__ = [
    "hookimpl",
    "hookspec",
    "payerpolicy_adjust_lines",
    "payerpolicy_choose_code",
    "payerpolicy_modifiers",
    "payerpolicy_order_lines",
    "payerpolicy_order_modifiers",
    "payerpolicy_payers",
    "payerpolicy_rule_kinds",
    "payerpolicy_screen_lines",
    "payerpolicy_unit_method",
]

PROJECT = "payerpolicy"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def payerpolicy_payers() -> Sequence[Payer]:
    """Declare the payers this plugin serves and their policy files.

    Called once when the plugin host starts, on every plugin. Return a sequence of
    :class:`~payerpolicy.model.Payer` records (the host fills in ``plugin``). A payer id claimed by
    two plugins is an error that names both.

    :returns: the payers, each with ``id``, ``name`` and ``policy`` (a path, or a
        ``(package, resource)`` pair for a TOML file shipped inside the plugin's distribution).

    Example::

        @hookimpl
        def payerpolicy_payers():
            return [Payer(id="acme", name="Acme Health", policy=("acme_plugin", "acme.toml"))]
    """


@hookspec
def payerpolicy_rule_kinds() -> Sequence[RuleKind]:
    """Register kinds of rules that policy files can use by name (``kind = "..."``).

    Called once when the plugin host starts, on every plugin. A rule kind declares its parameters
    (validated when a policy is loaded) and the function it runs in each phase it takes part in
    (``code``, ``screen``, ``modifiers``, ``adjust``, ``review``, ``claim``). Two plugins registering one
    kind name is an error.

    :returns: :class:`~payerpolicy.kinds.RuleKind` records.

    Example::

        @hookimpl
        def payerpolicy_rule_kinds():
            return [RuleKind(name="visit_cap", summary="...", params={"max": Param("int", True)},
                             apply={"adjust": apply_visit_cap})]
    """


@hookspec(firstresult=True)
def payerpolicy_choose_code(service: Service, index: int, context: Context) -> CodeChoice | None:
    """Choose the procedure code for one service of the encounter.

    Called once per entry of ``encounter.services``, before any line exists. The first
    implementation that returns a :class:`~payerpolicy.kinds.CodeChoice` decides; return None to
    let the next one (and finally the policy's ``code_by_technique`` rule) decide. A choice with
    ``code=None`` means "no line for this service"; its ``findings`` say why.

    :param service: the service as given (it may carry a ``code``, a ``technique`` or both).
    :param index: its position in ``encounter.services``.
    :param context: the encounter, payer, policy and code catalogue.

    Example (a legacy code set before 2014)::

        @hookimpl
        def payerpolicy_choose_code(service, index, context):
            if service.technique == "myofascial_release" and context.date_of_service.year < 2014:
                return CodeChoice("97250", rule="CAWC-03", source="8 CCR 9789.11")
    """


@hookspec
def payerpolicy_screen_lines(lines: tuple[ClaimLine, ...], context: Context) -> Iterable[Change]:
    """Bundle or deny lines before units are computed.

    Called once per evaluation after the policy's ``screen`` rules (code validity, same-region
    bundling with CMT, same-time conflicts, coverage). A line made ``not_billable`` here gives up
    its minutes before units are computed, so they cannot be re-assigned to another code
    (CORE-TIME-04).

    :param lines: every line so far (one per service or procedure; ``units`` still 0 for timed
        lines). ``Change.line`` indexes this tuple.
    :param context: the evaluation context.
    :returns: changes (status, code, findings).
    """


@hookspec(firstresult=True)
def payerpolicy_unit_method(context: Context) -> str | None:
    """Choose how timed minutes become units for this encounter.

    Called once per evaluation. Return ``"cms_total_time"`` or ``"ama_per_code"``; None keeps the
    policy's ``settings.unit_method``.

    :param context: the evaluation context.
    """


@hookspec
def payerpolicy_modifiers(lines: tuple[ClaimLine, ...], context: Context) -> Iterable[Change]:
    """Add or remove modifiers on lines.

    Called once per evaluation, after units and after the policy's ``modifiers`` rules (distinct
    service 59/XS/XU, 25 on E/M, therapy modifiers). Return changes with ``add_modifiers``,
    ``remove_modifiers`` or ``set_modifiers``. The engine then puts each line's modifiers in the
    policy's order and enforces the per-line limit (CORE-MOD-04/05).

    :param lines: every line, with units. ``Change.line`` indexes this tuple.
    :param context: the evaluation context.
    """


@hookspec(firstresult=True)
def payerpolicy_order_modifiers(line: ClaimLine, modifiers: tuple[str, ...], context: Context) -> Sequence[str] | None:
    """Put one line's modifiers in claim order, overriding the policy's category order.

    Called for every line on the claim that has two or more modifiers. Return the same modifiers
    in the order the payer wants (adding or dropping any is an error), or None for the policy's
    order.

    :param line: the line.
    :param modifiers: its modifiers, in the order they were added.
    :param context: the evaluation context.
    """


@hookspec
def payerpolicy_adjust_lines(lines: tuple[ClaimLine, ...], context: Context) -> Iterable[Change]:
    """Deny, cap or flag finished lines, and report findings.

    Called once per evaluation, after modifiers, with the policy's ``adjust`` rules (per-visit
    limits, visit caps, edit tables). Typical changes: ``status="expected_denial"`` with a finding,
    ``units=N`` to cap, or a finding alone (``line=None`` for the whole encounter).

    :param lines: every line, finished. ``Change.line`` indexes this tuple.
    :param context: the evaluation context.
    """


@hookspec(firstresult=True)
def payerpolicy_order_lines(lines: tuple[ClaimLine, ...], context: Context) -> Sequence[int] | None:
    """Put the lines in claim order.

    The default order is: E/M, evaluations, CMT, other procedures, then services in the order they
    were entered. Return a permutation of ``range(len(lines))`` (e.g. highest value first), or
    None for the default.

    :param lines: every line, finished.
    :param context: the evaluation context.
    """
