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
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from . import hookspecs
from .entrypoints import entry_points
from .errors import PayerPolicyError, PluginConflictError, UnknownPayerError, one_line
from .kinds import RuleKind
from .model import Payer
from .policy import Policy, load_policy

if TYPE_CHECKING:
    from .policy import PolicySource

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


_ABSENT = object()


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, quicker to pass over the many names of a module that are not hook implementations.

    Registering a module, pluggy looks at each name in ``dir(module)`` with
    ``inspect.getattr_static`` (a few microseconds each; the rule library and the plugins have
    hundreds of names, imports among them). A name whose value in the module is not a function or
    method, or is a plain function without the ``payerpolicy_impl`` marker, cannot be a hook
    implementation, so it is answered None at once; every other name goes to pluggy as before.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        """None for a module's name that cannot be a hook implementation; otherwise pluggy's answer."""
        if isinstance(plugin, ModuleType):
            value = plugin.__dict__.get(name, _ABSENT)
            if value is not _ABSENT and not isinstance(value, staticmethod | classmethod | MethodType):
                if not isinstance(value, FunctionType):
                    return None
                marks = value.__dict__
                if self.project_name + "_impl" not in marks and "__func__" not in marks:
                    return None
        return super().parse_hookimpl_opts(plugin, name)


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh pluggy manager with payerpolicy's hook specs added and nothing registered."""
    pm = _PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


HookFunction = Callable[..., Any]
_PAYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _usable_payer(payer: Any) -> bool:
    """A Payer record with an id, a name and a policy source of the right types."""
    if not isinstance(payer, Payer) or not isinstance(payer.id, str) or not _PAYER_ID.match(payer.id):
        return False
    if not isinstance(payer.name, str) or not isinstance(payer.description, str):
        return False
    policy = payer.policy
    if isinstance(policy, str):
        return bool(policy)
    return isinstance(policy, tuple) and len(policy) == 2 and all(isinstance(p, str) and p for p in policy)


def _short(value: Any) -> str:
    """A short, one-line description of a value a plugin returned."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = f"<{type(value).__name__}>"
    return one_line(text, 80)



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
        self._builtin_payers: set[str] = set()  # entry points of the payerpolicy distribution itself
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
            try:
                self._register(plugin, name)
            except PluginConflictError as exc:
                if strict:
                    raise
                self.infos.append(PluginInfo(name, "", _module_name(plugin), error=str(exc)))
                continue
            self.infos.append(PluginInfo(name, "", _module_name(plugin)))
        self._check_hooks(strict)
        self.payers, self.kinds = self._collect(strict)
        self._policies: dict[str, Policy] = {}
        self._check_plugin_policies(strict)
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
            raise PluginConflictError(f"plugin {name!r} cannot be registered: {one_line(str(exc))}", [name]) from None

    def _load_entry_points(self, block: set[str], strict: bool) -> None:
        eps = sorted(entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name)
        for ep in eps:
            version = ep.version
            if ep.distribution == "payerpolicy":
                self._builtin_payers.add(ep.name)
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
                        f"plugin {ep.name!r} ({version}) failed to load: {type(exc).__name__}: {one_line(str(exc), 300)}",
                        [ep.name],
                    ) from exc
                self.infos.append(
                    PluginInfo(ep.name, version, ep.value, error=f"{type(exc).__name__}: {one_line(str(exc), 300)}")
                )
                continue
            self.infos.append(PluginInfo(ep.name, version, ep.value))

    def _check_hooks(self, strict: bool) -> None:
        """Hooks that are not payerpolicy hooks (misspelled?): stop (strict) or leave the plugin out."""
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
                hooks = re.findall(r"unknown hook '(\w+)'", str(exc)) or ["?"]
                error = PluginConflictError(
                    f"plugin {name!r} implements {', '.join(hooks)}, which is not a payerpolicy hook (misspelled?)", [name]
                )
                if strict or name in BUILTIN_MODULES:
                    raise error from None
                self._leave_out(name, str(error))

    def _leave_out(self, name: str, error: str) -> None:
        """Unregister a plugin that failed at registration and say why in its :class:`PluginInfo`."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        for i, info in enumerate(self.infos):
            if info.name == name:
                self.infos[i] = attrs.evolve(info, error=one_line(error))
                return
        self.infos.append(PluginInfo(name, "", name, error=one_line(error)))  # pragma: no cover - always listed

    def _builtin(self, name: str) -> bool:
        return name in BUILTIN_MODULES or name in self._builtin_payers

    def is_builtin(self, name: str) -> bool:
        """Whether plugin ``name`` ships with payerpolicy (the rule library or a builtin payer)."""
        return name == "payerpolicy" or self._builtin(name)

    def _collect(self, strict: bool) -> tuple[dict[str, Payer], dict[str, RuleKind]]:
        """Payers and rule kinds of every plugin; a plugin that fails here is left out (or, strict, stops)."""
        while True:
            failed: dict[str, PayerPolicyError] = {}
            payers = self._collect_payers(failed)
            kinds = self._collect_kinds(failed)
            if not failed:
                return payers, kinds
            for name, error in failed.items():
                if strict or name in BUILTIN_MODULES:
                    raise error
                self._leave_out(name, str(error))

    def _check_plugin_policies(self, strict: bool) -> None:
        """Load the policy of every third-party payer now, leaving out a plugin whose policy cannot be used.

        Then it fails here, not in every ``compare`` later (builtin policies load on first use).
        """
        while True:
            bad: dict[str, str] = {}
            for pid, payer in self.payers.items():
                if self._builtin(payer.plugin) or payer.plugin in bad:
                    continue
                try:
                    self.policy(pid)
                except PayerPolicyError as exc:
                    if strict:
                        raise
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    more = len(str(exc).splitlines()) - 1
                    bad[payer.plugin] = f"the policy of payer {pid!r} cannot be used: {first}" + (
                        f" (and {more} more problems; see payerpolicy policy check)" if more > 0 else ""
                    )
            if not bad:
                return
            for name, error in bad.items():
                self._leave_out(name, error)
            self.payers, self.kinds = self._collect(False)
            self._policies = {pid: p for pid, p in self._policies.items() if pid in self.payers}

    def _registration(self, impl: Any, hook: str, failed: dict[str, PayerPolicyError]) -> list[Any]:
        try:
            result = impl.function()
            if result is None:
                return []
            if isinstance(result, str | bytes) or not isinstance(result, Iterable):
                raise TypeError(f"returned {_short(result)}, expected a list")
            return list(result)
        except Exception as exc:
            failed.setdefault(
                impl.plugin_name,
                PluginConflictError(
                    f"plugin {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {one_line(str(exc), 300)}",
                    [impl.plugin_name],
                ),
            )
            return []

    def _collect_payers(self, failed: dict[str, PayerPolicyError]) -> dict[str, Payer]:
        payers: dict[str, Payer] = {}
        impls = self.pm.hook.payerpolicy_payers.get_hookimpls()
        # The builtin payers first: a third-party plugin cannot take a builtin payer id away.
        impls = sorted(impls, key=lambda impl: not self._builtin(impl.plugin_name))
        for impl in impls:
            mine: dict[str, Payer] = {}
            for payer in self._registration(impl, "payerpolicy_payers", failed):
                if not _usable_payer(payer):
                    failed.setdefault(
                        impl.plugin_name,
                        PluginConflictError(
                            f"plugin {impl.plugin_name!r} returned {_short(payer)} from payerpolicy_payers;"
                            " expected Payer records with an id of lower case letters, digits and _, a name and a policy file",
                            [impl.plugin_name],
                        ),
                    )
                    break
                if payer.id in payers or payer.id in mine:
                    other = payers[payer.id].plugin if payer.id in payers else impl.plugin_name
                    failed.setdefault(
                        impl.plugin_name,
                        PluginConflictError(
                            f"payer id {payer.id!r} is claimed by two plugins: {other!r} and {impl.plugin_name!r}",
                            [other, impl.plugin_name],
                        ),
                    )
                    break
                mine[payer.id] = attrs.evolve(payer, plugin=impl.plugin_name)
            if impl.plugin_name not in failed:
                payers.update(mine)
        return dict(sorted(payers.items()))

    def _collect_kinds(self, failed: dict[str, PayerPolicyError]) -> dict[str, RuleKind]:
        kinds: dict[str, RuleKind] = {}
        for impl in self.pm.hook.payerpolicy_rule_kinds.get_hookimpls():
            mine: dict[str, RuleKind] = {}
            for kind in self._registration(impl, "payerpolicy_rule_kinds", failed):
                problem = None
                if not isinstance(kind, RuleKind):
                    problem = f"plugin {impl.plugin_name!r} returned {_short(kind)} from payerpolicy_rule_kinds; expected RuleKind records"
                elif not all(callable(f) for f in kind.apply.values()):
                    problem = f"plugin {impl.plugin_name!r}: rule kind {kind.name!r} names a phase function that cannot be called"
                elif kind.name in kinds or kind.name in mine:
                    other = kinds[kind.name].plugin if kind.name in kinds else impl.plugin_name
                    problem = f"rule kind {kind.name!r} is registered by two plugins: {other!r} and {impl.plugin_name!r}"
                if problem is not None:
                    failed.setdefault(impl.plugin_name, PluginConflictError(problem, [impl.plugin_name]))
                    break
                mine[kind.name] = attrs.evolve(kind, plugin=impl.plugin_name)
            if impl.plugin_name not in failed:
                kinds.update(mine)
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
