"""The plugin host: finds plugins, collects payers and rule kinds, loads policies, calls hooks.

There is no module-global plugin manager: build a :class:`PluginHost` (or use
:func:`make_plugin_manager` for the bare pluggy manager). Builtin rule kinds are registered like any
plugin; builtin payers come through the ``payerpolicy`` entry-point group like third-party ones.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from types import ModuleType
from typing import Any, cast

import attrs
import pluggy

from . import hookspecs
from .errors import PluginConflictError, PluginHookError, UnknownPayerError
from .kinds import RuleKind
from .model import Payer
from .policy import Policy, PolicySource, load_policy

__all__ = ["ENTRY_POINT_GROUP", "PluginHost", "PluginInfo", "make_plugin_manager"]

ENTRY_POINT_GROUP = "payerpolicy"
#: Comma-separated plugin names (entry-point names) not to load.
BLOCK_ENV = "PAYERPOLICY_BLOCK_PLUGINS"

#: Modules always registered: the core rule-kind library.
BUILTIN_MODULES = ("payerpolicy.evaluation.library", "payerpolicy.ncci.kinds")


@attrs.frozen
class PluginInfo:
    """What the host knows of one plugin: name, distribution version, payers, load error."""

    name: str
    version: str
    module: str
    payers: tuple[str, ...] = ()
    error: str | None = None
    blocked: bool = False


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh pluggy manager with payerpolicy's hook specs added and nothing registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


HookFunction = Callable[..., Any]


class PluginHost:
    """Loads plugins and serves payers, rule kinds, policies and scoped hook calls.

    :param plugins: extra plugin objects/modules to register (tests, embedding tools).
    :param entry_points: load plugins from the ``payerpolicy`` entry-point group.
    :param strict: stop on a plugin that fails to load, or that raises in a hook or rule, instead
        of skipping it (a skipped hook or rule is reported as a ``PLUGIN_FAILED`` finding).
    :param blocked: plugin names not to load (added to ``$PAYERPOLICY_BLOCK_PLUGINS``).
    """

    def __init__(
        self,
        plugins: Iterable[object] = (),
        *,
        entry_points: bool = True,
        strict: bool = False,
        blocked: Iterable[str] = (),
    ) -> None:
        self.pm = make_plugin_manager()
        self.strict = strict
        self.infos: list[PluginInfo] = []
        block = {b.strip() for b in os.environ.get(BLOCK_ENV, "").split(",") if b.strip()} | set(blocked)
        for name in BUILTIN_MODULES:
            self.pm.register(importlib.import_module(name), name=name)
        if entry_points:
            self._load_entry_points(block, strict)
        for plugin in plugins:
            base = getattr(plugin, "__name__", None) or type(plugin).__name__
            if base in block:
                self.infos.append(PluginInfo(base, "", base, blocked=True))
                continue
            name, n = base, 1
            while self.pm.has_plugin(name):
                n += 1
                name = f"{base}#{n}"
            self._register(plugin, name)
            self.infos.append(PluginInfo(name, "", _module_name(plugin)))
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
            hooks = re.findall(r"unknown hook '(\w+)'", str(exc)) or ["?"]
            raise PluginConflictError(
                f"plugin {name!r} implements {', '.join(hooks)}, which is not a payerpolicy hook (misspelled?)", [name]
            ) from None
        self.payers = self._collect_payers()
        self.kinds = self._collect_kinds()
        self._policies: dict[str, Policy] = {}
        self._hook_cache: dict[tuple[str, str], tuple[tuple[str, HookFunction, tuple[str, ...]], ...]] = {}
        plugin_payers: dict[str, list[str]] = {}
        for payer in self.payers.values():
            plugin_payers.setdefault(payer.plugin, []).append(payer.id)
        self.infos = [attrs.evolve(i, payers=tuple(plugin_payers.get(i.name, ()))) for i in self.infos]

    # ---- loading

    def _register(self, plugin: object, name: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginConflictError(f"plugin {name!r} cannot be registered: {exc}", [name]) from None

    def _load_entry_points(self, block: set[str], strict: bool) -> None:
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        for ep in eps:
            version = ep.dist.version if ep.dist is not None else ""
            if ep.name in block:
                self.infos.append(PluginInfo(ep.name, version, ep.value, blocked=True))
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self._register(plugin, ep.name)
            except Exception as exc:
                if strict:
                    raise PluginConflictError(
                        f"plugin {ep.name!r} ({version}) failed to load: {type(exc).__name__}: {exc}", [ep.name]
                    ) from exc
                self.infos.append(PluginInfo(ep.name, version, ep.value, error=f"{type(exc).__name__}: {exc}"))
                continue
            self.infos.append(PluginInfo(ep.name, version, ep.value))

    @staticmethod
    def _registration(impl: Any, hook: str) -> Any:
        try:
            return impl.function() or ()
        except Exception as exc:
            raise PluginHookError(impl.plugin_name, hook, f"{type(exc).__name__}: {exc}") from exc

    def _collect_payers(self) -> dict[str, Payer]:
        payers: dict[str, Payer] = {}
        for impl in self.pm.hook.payerpolicy_payers.get_hookimpls():
            payers_of_plugin = cast(Iterable[Any], self._registration(impl, "payerpolicy_payers"))
            for payer in payers_of_plugin:
                if not isinstance(payer, Payer):
                    raise PluginConflictError(
                        f"plugin {impl.plugin_name!r} returned {payer!r} from payerpolicy_payers; expected Payer records",
                        [impl.plugin_name],
                    )
                if payer.id in payers:
                    other = payers[payer.id].plugin
                    raise PluginConflictError(
                        f"payer id {payer.id!r} is claimed by two plugins: {other!r} and {impl.plugin_name!r}",
                        [other, impl.plugin_name],
                    )
                payers[payer.id] = attrs.evolve(payer, plugin=impl.plugin_name)
        return dict(sorted(payers.items()))

    def _collect_kinds(self) -> dict[str, RuleKind]:
        kinds: dict[str, RuleKind] = {}
        for impl in self.pm.hook.payerpolicy_rule_kinds.get_hookimpls():
            kinds_of_plugin = cast(Iterable[RuleKind], self._registration(impl, "payerpolicy_rule_kinds"))
            for kind in kinds_of_plugin:
                if kind.name in kinds:
                    raise PluginConflictError(
                        f"rule kind {kind.name!r} is registered by two plugins: {kinds[kind.name].plugin!r} and {impl.plugin_name!r}",
                        [kinds[kind.name].plugin, impl.plugin_name],
                    )
                kinds[kind.name] = attrs.evolve(kind, plugin=impl.plugin_name)
        return kinds

    # ---- payers and policies

    def payer(self, payer_id: str) -> Payer:
        """The payer with ``payer_id``; :class:`UnknownPayerError` lists the installed ones."""
        try:
            return self.payers[payer_id]
        except KeyError:
            raise UnknownPayerError(payer_id, list(self.payers)) from None

    def resolve(self, name: str) -> PolicySource | None:
        """Resolve an ``extends`` name that is an installed payer id to its policy source."""
        payer = self.payers.get(name)
        return payer.policy if payer is not None else None

    def policy(self, payer_id: str) -> Policy:
        """The validated policy of ``payer_id`` (loaded once per host)."""
        if payer_id not in self._policies:
            payer = self.payer(payer_id)
            policy = load_policy(payer.policy, self.kinds, resolver=self.resolve)
            if policy.payer_id != payer_id:
                raise PluginConflictError(
                    f"plugin {payer.plugin!r} registers payer {payer_id!r} with a policy for {policy.payer_id!r} ({policy.file})",
                    [payer.plugin],
                )
            self._policies[payer_id] = policy
        return self._policies[payer_id]

    def with_policy(self, payer_id: str, policy: Policy) -> PluginHost:
        """A host like this one whose ``payer_id`` uses ``policy`` (same plugins and hooks)."""
        self.payer(payer_id)
        other = copy.copy(self)
        other._policies = {**self._policies, payer_id: policy}
        return other

    def load_policy(self, source: PolicySource) -> Policy:
        """Load any policy file with this host's rule kinds and payer resolver."""
        return load_policy(source, self.kinds, resolver=self.resolve)

    # ---- hooks

    def implementations(self, hook_name: str, payer_id: str) -> tuple[tuple[str, HookFunction, tuple[str, ...]], ...]:
        """The (plugin name, function, argument names) of ``hook_name`` in scope for a payer.

        In scope: the plugin that registered the payer, plugins that register no payer, and the
        builtin library. Call order: pluggy's (newest first, tryfirst/trylast respected).
        """
        key = (hook_name, payer_id)
        cached = self._hook_cache.get(key)
        if cached is not None:
            return cached
        owner = self.payers[payer_id].plugin
        payer_plugins = {p.plugin for p in self.payers.values()}
        caller = getattr(self.pm.hook, hook_name)
        impls = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            if impl.plugin_name in payer_plugins and impl.plugin_name != owner:
                continue
            name = "payerpolicy" if impl.plugin_name in BUILTIN_MODULES else impl.plugin_name
            impls.append((name, impl.function, tuple(impl.argnames)))
        result = tuple(impls)
        self._hook_cache[key] = result
        return result

    def plugin_infos(self) -> Sequence[PluginInfo]:
        """What loaded, what did not, and which payers each plugin serves."""
        return list(self.infos)

    def policies(self) -> Mapping[str, Policy]:
        """The policy of every installed payer."""
        return {pid: self.policy(pid) for pid in self.payers}


def _module_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return type(plugin).__module__
