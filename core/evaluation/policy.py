"""Payer policy files: TOML data that says which rules apply, with their sources and dates.

A policy file (schema version 1) has:

* ``schema_version = 1`` and optionally ``extends = "core"`` (a shipped policy by name, or a
  path relative to the file);
* ``[payer]`` with ``id``, ``name`` and ``policy_version`` (not in an ``abstract = true`` base);
* ``[settings]``: unit method, distinct-service modifiers, modifier order and limit, tie-break,
  and ``[settings.basis.NAME]`` giving the rule id and source behind each setting's value;
* ``[modifier_categories]``: the modifiers in each category named by ``settings.modifier_order``;
* ``[[rules]]``: each with a stable ``id``, a ``kind`` (a registered :class:`RuleKind`), a
  ``source``, a ``confidence`` (H/M/L), optional ``effective_from``/``effective_to`` dates,
  ``enabled``, ``note``, and the kind's parameters.

:func:`load_policy` validates everything and raises :class:`PolicyValidationError` listing every
problem at once. :meth:`Policy.to_toml` writes the resolved policy back (``extends`` flattened);
loading that text gives an equal policy.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import PolicyProblem, PolicyValidationError
from .kinds import RuleKind
from .rules import SCHEMA_VERSION, Basis, Policy, Rule, Settings
from .shipped import package_file, package_has_file, read_package_text
from .tomlcache import load_toml

# pathlib and difflib are imported where a policy path is followed or a problem worded: the
# shipped policies of a cold `payerpolicy check` need neither.
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "SCHEMA_VERSION",
    "UNIT_METHODS",
    "Basis",
    "Policy",
    "PolicySource",
    "Rule",
    "Settings",
    "load_policy",
    "load_policy_text",
]

UNIT_METHODS = ("cms_total_time", "ama_per_code")
TIE_BREAKS = ("entry_order",)
CONFIDENCE = ("H", "M", "L")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_PAYER_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_COMMON_RULE_KEYS = ("id", "kind", "source", "confidence", "effective_from", "effective_to", "enabled", "note")
_SETTING_KEYS = (
    "unit_method",
    "distinct_modifier_region",
    "distinct_modifier_time",
    "modifier_order",
    "max_modifiers_per_line",
    "tie_break",
)

#: Where a policy comes from: a filesystem path, or (package, resource name) inside a wheel.
if TYPE_CHECKING:
    PolicySource: TypeAlias = str | Path | tuple[str, str]


def __getattr__(name: str) -> Any:
    """``PolicySource`` and ``Resolver`` at run time (made on first use: importing this module needs no pathlib)."""
    if name in ("PolicySource", "Resolver"):
        from pathlib import Path

        source = str | Path | tuple[str, str]
        return source if name == "PolicySource" else Callable[[str], source | None]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Loading


#: Largest policy file read, in bytes (the shipped ones are a few tens of kilobytes).
MAX_POLICY_BYTES = 1024 * 1024
#: Most files in one ``extends`` chain (the shipped chains are two or three long).
MAX_EXTENDS_DEPTH = 16


#: Directories (separated by ``os.pathsep``) where ``extends`` paths may lead besides the
#: extending file's own directory: a plugin's shared policy folder, a site's common base.
POLICY_DIRS_ENV = "PAYERPOLICY_POLICY_DIRS"


def policy_dirs() -> list[Path]:
    """The directories of ``$PAYERPOLICY_POLICY_DIRS``, resolved."""
    from pathlib import Path

    out = []
    for item in os.environ.get(POLICY_DIRS_ENV, "").split(os.pathsep):
        if item.strip():
            try:
                out.append(Path(item.strip()).resolve())
            except (OSError, RuntimeError, ValueError):  # pragma: no cover - an unusable entry is skipped
                continue
    return out


def _read_source(source: PolicySource) -> tuple[str, str, Path | None]:
    """Return (display name, text, directory for relative extends).

    A path must name a regular file (not a directory, device, FIFO or socket) of at most
    :data:`MAX_POLICY_BYTES`, in UTF-8; anything else raises ``OSError`` with the reason.
    """
    if isinstance(source, tuple):
        package, name = source
        text = read_package_text(package, name)
        return f"{package.replace('.', '/')}/{name}", text, None
    path, _ = _check_path(source)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO swapped in never blocks
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped between the two looks
            raise OSError("not a regular file")
        data = f.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise OSError(f"larger than the limit of {MAX_POLICY_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OSError(f"not UTF-8 text (byte {exc.start + 1})") from None
    return str(source), text, path.resolve().parent


def _check_path(source: str | Path) -> tuple[Path, os.stat_result]:
    """The path of a policy file and its ``os.stat``; ``OSError`` unless a regular file of bounded size."""
    from pathlib import Path

    path = Path(source)
    if "\0" in str(source):
        raise OSError("the path holds a NUL character")
    info = os.stat(path)  # follows links: what counts is the file read
    if not stat.S_ISREG(info.st_mode):
        raise OSError("not a regular file")
    if info.st_size > MAX_POLICY_BYTES:
        raise OSError(f"larger than the limit of {MAX_POLICY_BYTES} bytes ({info.st_size} bytes)")
    return path, info


def read_policy_text(path: str | Path) -> str:
    """Read a policy or catalogue file the way the loader does: a regular UTF-8 file of bounded size.

    Raises ``OSError`` naming the reason (not a regular file, too large, not UTF-8).
    """
    return _read_source(path)[1]


def _shipped(name: str) -> tuple[str, str]:
    return ("payerpolicy.policies", f"{name}.toml")


class _Text(str):
    """A description of what was found (shown as is, not quoted like a value)."""


class _Problems:
    def __init__(self) -> None:
        self.items: list[PolicyProblem] = []

    def add(self, file: str, path: str, expected: str, found: Any) -> None:
        self.items.append(PolicyProblem(file, path, expected, _found(found)))


def _found(value: Any) -> str:
    if isinstance(value, _Text):
        return str(value)
    if isinstance(value, str):
        return repr(value) if value else "an empty string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if value is None:
        return "nothing (the key is missing)"
    return type(value).__name__


def _parse(source: PolicySource, problems: _Problems) -> tuple[str, dict[str, Any] | None, Path | None]:
    try:
        cached = _parse_cached(source)
        if cached is not None:
            return cached
        name, text, directory = _read_source(source)
    except (OSError, ModuleNotFoundError, ValueError) as exc:
        shown = f"{source[0].replace('.', '/')}/{source[1]}" if isinstance(source, tuple) else str(source)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.add(shown, "(file)", "a readable policy file", _Text(f"{type(exc).__name__}: {reason}"))
        return shown, None, None
    return name, _parse_text(name, text, problems), directory


def _parse_cached(source: PolicySource) -> tuple[str, dict[str, Any], Path | None] | None:
    """(display name, data, directory) through the parsed-TOML cache (:mod:`.tomlcache`); None: parse as usual.

    Only a file on disk that parses is answered here; whatever cannot be read or parsed goes the
    usual way, which reports it.
    """
    if isinstance(source, tuple):
        package, name = source
        file = package_file(package, name)
        if file is None:
            return None
        display, info, directory = f"{package.replace('.', '/')}/{name}", os.stat(file), None
    else:
        path, info = _check_path(source)
        file, display, directory = str(path), str(source), path.resolve().parent
    try:
        return display, load_toml(file, info, lambda: _read_source(source)[1]), directory
    except (ValueError, RecursionError):  # not TOML: _parse_text reports it
        return None


def _parse_text(name: str, text: str, problems: _Problems) -> dict[str, Any] | None:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.add(name, "(file)", "valid TOML", _Text(f"a syntax error: {exc}"))
    except (ValueError, RecursionError) as exc:
        problems.add(name, "(file)", "valid TOML", _Text(f"a file that cannot be read as TOML ({type(exc).__name__})"))
    return None


if TYPE_CHECKING:
    Resolver: TypeAlias = Callable[[str], PolicySource | None]


def load_policy(
    source: PolicySource,
    kinds: Mapping[str, RuleKind],
    *,
    resolver: Resolver | None = None,
) -> Policy:
    """Load, resolve (``extends``) and validate a policy file.

    ``kinds`` are the registered rule kinds. ``resolver`` maps an ``extends`` name that is not a
    path to a policy source (the plugin host uses it to resolve payer ids); shipped policies in
    ``payerpolicy.policies`` are found without it.
    Raises :class:`PolicyValidationError` listing every problem.
    """
    problems = _Problems()
    return _finish(_load_layers(source, problems, resolver, seen=()), kinds, problems)


def load_policy_text(text: str, kinds: Mapping[str, RuleKind], *, name: str = "<policy>") -> Policy:
    """Load a policy from TOML text (no ``extends`` relative paths). Used for round-trip checks."""
    problems = _Problems()
    data = _parse_text(name, text, problems)
    layers: list[tuple[str, dict[str, Any]]] = []
    if data is not None:
        if "extends" in data:
            parent = _resolve_extends(data["extends"], None, None, name, problems)
            if parent is not None:
                layers = _load_layers(parent, problems, None, ())
        layers.append((name, data))
    return _finish(layers, kinds, problems)


def _finish(layers: list[tuple[str, dict[str, Any]]], kinds: Mapping[str, RuleKind], problems: _Problems) -> Policy:
    if problems.items:
        raise PolicyValidationError(problems.items)
    policy = _build(layers, kinds, problems)
    if problems.items or policy is None:
        raise PolicyValidationError(problems.items)
    return policy


def _resolve_extends(
    value: Any, directory: Path | None, resolver: Resolver | None, file: str, problems: _Problems
) -> PolicySource | None:
    if not isinstance(value, str) or not value:
        problems.add(file, "extends", "the name of a policy or a relative path to a .toml file", value)
        return None
    if value.endswith(".toml") or "/" in value or "\\" in value:
        from pathlib import Path

        if directory is None:
            problems.add(file, "extends", "a policy name (paths are relative to a file on disk)", value)
            return None
        if "\0" in value or Path(value).is_absolute():
            problems.add(file, "extends", "a relative path to a .toml file (not an absolute path)", value)
            return None
        target = directory / value
        try:
            real = target.resolve()
        except (OSError, RuntimeError, ValueError):
            problems.add(file, "extends", "a path that can be resolved", value)
            return None
        roots = [directory, *policy_dirs()]
        if not any(real.parent == root or root in real.parents for root in roots):
            problems.add(
                file,
                "extends",
                f"a file beside this one (in {directory} or below) or in a directory of ${POLICY_DIRS_ENV}",
                value,
            )
            return None
        return target
    if resolver is not None:
        resolved = resolver(value)
        if resolved is not None:
            return resolved
    try:
        if package_has_file("payerpolicy.policies", f"{value}.toml"):
            return _shipped(value)
    except ModuleNotFoundError:  # pragma: no cover - package data always present when installed
        pass
    problems.add(file, "extends", "the name of a shipped policy or installed payer, or a path", value)
    return None


def _load_layers(
    source: PolicySource, problems: _Problems, resolver: Resolver | None, seen: tuple[str, ...]
) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(source, tuple):
        ident = "/".join(source)
    else:
        from pathlib import Path

        ident = str(Path(source).resolve())
    if ident in seen:
        problems.add(str(source), "extends", "a chain of policies without a cycle", _Text(" -> ".join((*seen, ident))))
        return []
    if len(seen) >= MAX_EXTENDS_DEPTH:
        problems.add(
            str(source), "extends", f"a chain of at most {MAX_EXTENDS_DEPTH} policy files", _Text(f"a chain of more than {len(seen)}")
        )
        return []
    name, data, directory = _parse(source, problems)
    if data is None:
        return []
    layers: list[tuple[str, dict[str, Any]]] = []
    if "extends" in data:
        parent = _resolve_extends(data["extends"], directory, resolver, name, problems)
        if parent is not None:
            layers = _load_layers(parent, problems, resolver, (*seen, ident))
    layers.append((name, data))
    return layers


def _build(
    layers: list[tuple[str, dict[str, Any]]], kinds: Mapping[str, RuleKind], problems: _Problems
) -> Policy | None:
    settings_raw: dict[str, tuple[str, Any]] = {}
    basis_raw: dict[str, tuple[str, Any]] = {}
    categories: dict[str, tuple[str, Any]] = {}
    rules_raw: dict[str, tuple[str, dict[str, Any], int]] = {}
    order: list[str] = []
    payer: tuple[str, Any] | None = None
    abstract = False

    known_top = ("schema_version", "extends", "abstract", "payer", "settings", "modifier_categories", "rules")
    for file, data in layers:
        for key in data:
            if key not in known_top:
                problems.add(
                    file, key, "one of the top-level keys " + ", ".join(known_top), _Text(f"unknown key {key!r}")
                )
        if data.get("schema_version") != SCHEMA_VERSION:
            problems.add(file, "schema_version", f"{SCHEMA_VERSION}", data.get("schema_version"))
        abstract = data.get("abstract", False) is True
        if "abstract" in data and not isinstance(data["abstract"], bool):
            problems.add(file, "abstract", "true or false", data["abstract"])
        if "payer" in data:
            payer = (file, data["payer"])
        elif file == layers[-1][0]:
            payer = None
        settings = data.get("settings", {})
        if not isinstance(settings, Mapping):
            problems.add(file, "settings", "a table", settings)
            settings = {}
        for key, value in settings.items():
            if key == "basis":
                if not isinstance(value, Mapping):
                    problems.add(file, "settings.basis", "a table of {rule, source} tables", value)
                    continue
                for bkey, bvalue in value.items():
                    basis_raw[bkey] = (file, bvalue)
            elif key in _SETTING_KEYS:
                settings_raw[key] = (file, value)
            else:
                problems.add(
                    file,
                    f"settings.{key}",
                    "one of the keys " + ", ".join((*_SETTING_KEYS, "basis")),
                    _Text(f"unknown key {key!r}"),
                )
        cats = data.get("modifier_categories", {})
        if not isinstance(cats, Mapping):
            problems.add(file, "modifier_categories", "a table of category = [modifiers]", cats)
            cats = {}
        for key, value in cats.items():
            categories[key] = (file, value)
        rule_entries = data.get("rules", [])
        if not isinstance(rule_entries, list):
            problems.add(file, "rules", "an array of tables ([[rules]])", rule_entries)
            rule_entries = []
        for i, entry in enumerate(rule_entries):
            where = f"rules[{i}]"
            if not isinstance(entry, Mapping):
                problems.add(file, where, "a table", entry)
                continue
            rid = entry.get("id")
            if not isinstance(rid, str) or not _RULE_ID.match(rid):
                problems.add(file, f"{where}.id", 'a rule id like "CORE-SAME-01"', rid)
                continue
            if rid in rules_raw and rules_raw[rid][0] == file:
                problems.add(file, f"{where}.id", "a rule id used once per file", _Text(f"{rid!r} again"))
                continue
            if rid in rules_raw:
                merged = {**rules_raw[rid][1], **entry}
                rules_raw[rid] = (file, merged, i)
            else:
                rules_raw[rid] = (file, dict(entry), i)
                order.append(rid)

    last_file = layers[-1][0]

    # [payer]
    payer_id: str | None = None
    name = policy_version = description = ""
    if payer is None:
        if not abstract:
            problems.add(
                last_file, "payer", "a [payer] table with id, name and policy_version (or abstract = true)", None
            )
    else:
        pfile, ptable = payer
        if not isinstance(ptable, Mapping):
            problems.add(pfile, "payer", "a table", ptable)
        else:
            for key in ptable:
                if key not in ("id", "name", "policy_version", "description"):
                    problems.add(
                        pfile,
                        f"payer.{key}",
                        "one of the keys id, name, policy_version, description",
                        _Text(f"unknown key {key!r}"),
                    )
            pid = ptable.get("id")
            if not isinstance(pid, str) or not _PAYER_ID.match(pid):
                problems.add(pfile, "payer.id", 'a lower-case payer id like "medicare"', pid)
            else:
                payer_id = pid
            for key in ("name", "policy_version"):
                if not isinstance(ptable.get(key), str) or not ptable.get(key):
                    problems.add(pfile, f"payer.{key}", "a non-empty string", ptable.get(key))
            name = str(ptable.get("name", ""))
            policy_version = str(ptable.get("policy_version", ""))
            description = str(ptable.get("description", ""))

    # [modifier_categories]
    cat_values: dict[str, tuple[str, ...]] = {}
    for key, (file, value) in categories.items():
        if not isinstance(value, list) or not all(isinstance(m, str) and re.match(r"^[A-Z0-9]{2}$", m) for m in value):
            problems.add(file, f"modifier_categories.{key}", 'an array of two-character modifiers like "59"', value)
        else:
            cat_values[key] = tuple(value)

    # [settings]
    def setting(key: str, check: Callable[[Any], bool], expected: str) -> Any:
        if key not in settings_raw:
            problems.add(last_file, f"settings.{key}", expected, None)
            return None
        file, value = settings_raw[key]
        if not check(value):
            problems.add(file, f"settings.{key}", expected, value)
            return None
        return value

    mod = re.compile(r"^[A-Z0-9]{2}$")
    unit_method = setting("unit_method", lambda v: v in UNIT_METHODS, "one of " + ", ".join(UNIT_METHODS))
    region_mod = setting(
        "distinct_modifier_region", lambda v: isinstance(v, str) and bool(mod.match(v)), 'a modifier like "59" or "XS"'
    )
    time_mod = setting(
        "distinct_modifier_time", lambda v: isinstance(v, str) and bool(mod.match(v)), 'a modifier like "59" or "XU"'
    )
    if "modifier_order" in settings_raw and isinstance(settings_raw["modifier_order"][1], list):
        order_file, order_value = settings_raw["modifier_order"]
        for n, category in enumerate(order_value):
            if not isinstance(category, str) or category not in cat_values:
                problems.add(
                    order_file,
                    f"settings.modifier_order[{n}]",
                    "a category defined in [modifier_categories] (" + ", ".join(cat_values) + ")",
                    category,
                )
    mod_order = setting(
        "modifier_order",
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "an array of category names defined in [modifier_categories] (" + ", ".join(cat_values) + ")",
    )
    max_mods = setting(
        "max_modifiers_per_line",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4,
        "a whole number from 1 to 4 (CMS-1500 and 837P hold four modifiers)",
    )
    tie_break = setting("tie_break", lambda v: v in TIE_BREAKS, "one of " + ", ".join(TIE_BREAKS))
    basis: dict[str, Basis] = {}
    for key, (file, value) in basis_raw.items():
        if key not in _SETTING_KEYS:
            problems.add(
                file,
                f"settings.basis.{key}",
                "the name of a setting (" + ", ".join(_SETTING_KEYS) + ")",
                _Text(f"unknown key {key!r}"),
            )
        elif (
            not isinstance(value, Mapping)
            or not isinstance(value.get("rule"), str)
            or not isinstance(value.get("source"), str)
            or not value.get("source")
            or set(value) - {"rule", "source"}
        ):
            problems.add(file, f"settings.basis.{key}", "a table with keys rule and source (non-empty strings)", value)
        else:
            basis[key] = Basis(rule=value["rule"], source=value["source"])

    # [[rules]]
    rules: list[Rule] = []
    for rid in order:
        file, entry, index = rules_raw[rid]
        where = f"rules[{index}] ({rid})"
        kind_name = entry.get("kind")
        kind = kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            import difflib

            close = difflib.get_close_matches(str(kind_name), sorted(kinds), n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            problems.add(
                file,
                f"{where}.kind",
                f"a registered rule kind ({hint}{len(kinds)} are installed: `payerpolicy plugins` lists them)",
                kind_name,
            )
            continue
        source = entry.get("source")
        if not isinstance(source, str) or not source.strip():
            problems.add(file, f"{where}.source", "a non-empty string naming the document behind the rule", source)
        confidence = entry.get("confidence", "M")
        if confidence not in CONFIDENCE:
            problems.add(file, f"{where}.confidence", "one of H, M, L", confidence)
        dates = {}
        for key in ("effective_from", "effective_to"):
            value = entry.get(key)
            if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
                problems.add(file, f"{where}.{key}", "a TOML date like 2021-07-28", value)
                value = None
            dates[key] = value
        if dates["effective_from"] and dates["effective_to"] and dates["effective_from"] > dates["effective_to"]:
            problems.add(
                file,
                f"{where}.effective_to",
                f"a date on or after effective_from {dates['effective_from']}",
                dates["effective_to"],
            )
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.add(file, f"{where}.enabled", "true or false", enabled)
            enabled = True
        note = entry.get("note", "")
        if not isinstance(note, str):
            problems.add(file, f"{where}.note", "a string", note)
            note = ""
        params: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if key in _COMMON_RULE_KEYS:
                continue
            spec = kind.params.get(key)
            if spec is None:
                known = ", ".join((*_COMMON_RULE_KEYS, *kind.params))
                problems.add(
                    file, f"{where}.{key}", f"a key of kind {kind.name!r} ({known})", _Text(f"unknown key {key!r}")
                )
                continue
            converted, expected = spec.convert(value)
            if expected is not None:
                problems.add(file, f"{where}.{key}", expected, value)
                continue
            params[key] = value
            values[key] = converted
        for key, spec in kind.params.items():
            if key not in values:
                if spec.required and key not in entry:
                    problems.add(
                        file, f"{where}.{key}", f"a value ({spec.type}) — required by kind {kind.name!r}", None
                    )
                values[key] = spec.default
        rules.append(
            Rule(
                id=rid,
                kind=kind.name,
                source=str(source or ""),
                confidence=str(confidence),
                effective_from=dates["effective_from"],
                effective_to=dates["effective_to"],
                enabled=enabled,
                note=note,
                params=params,
                values=values,
                origin=file,
            )
        )

    if (
        not abstract
        and unit_method is not None
        and not any(r.kind == "timed_units" and r.params.get("method") == unit_method and r.enabled for r in rules)
    ):
        file, _ = settings_raw["unit_method"]
        problems.add(
            file,
            "settings.unit_method",
            f"a [[rules]] entry of kind 'timed_units' with method = {unit_method!r}",
            _Text("none"),
        )
    if problems.items:
        return None
    assert unit_method is not None and region_mod is not None and time_mod is not None
    return Policy(
        payer_id=payer_id,
        name=name,
        policy_version=policy_version,
        description=description,
        settings=Settings(
            unit_method=unit_method,
            distinct_modifier_region=region_mod,
            distinct_modifier_time=time_mod,
            modifier_order=tuple(mod_order),
            max_modifiers_per_line=max_mods,
            tie_break=tie_break,
            basis=basis,
        ),
        modifier_categories=cat_values,
        rules=tuple(rules),
        abstract=abstract,
        file=last_file,
        chain=tuple(f for f, _ in layers),
    )
