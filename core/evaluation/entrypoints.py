"""The entry points of one group, found by reading ``entry_points.txt`` files directly.

``importlib.metadata.entry_points(group=...)`` does the same, but importing it pulls in the
``email`` package and it parses every installed distribution's METADATA: about a quarter of a cold
``payerpolicy check``. Here the ``*.dist-info`` and ``*.egg-info`` directories of each ``sys.path``
directory are read in importlib.metadata's order (directories in ``sys.path`` order, entries in
``os.listdir`` order, the first distribution of a normalized name wins), and only the
distributions that declare the group have their ``Name`` and ``Version`` read. Where plain
directories are not the whole story (a zip file or an ``.egg`` on ``sys.path``, or another
distribution finder on ``sys.meta_path``) importlib.metadata answers instead, so a plugin installed
any way pip or a packager can install it is found.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["EntryPoint", "entry_points"]


class EntryPoint:
    """One entry point: ``name = value`` in ``group``, and the distribution that declares it.

    :param distribution: the distribution's ``Name`` (None when not known).
    :param version: the distribution's ``Version`` ("" when not known).
    """

    __slots__ = ("distribution", "group", "name", "value", "version")

    def __init__(self, name: str, value: str, group: str, distribution: str | None = None, version: str = "") -> None:
        self.name = name
        self.value = value
        self.group = group
        self.distribution = distribution
        self.version = version

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntryPoint):
            return NotImplemented
        return (self.name, self.value, self.group, self.distribution, self.version) == (
            other.name,
            other.value,
            other.group,
            other.distribution,
            other.version,
        )

    __hash__ = None  # type: ignore[assignment]

    def load(self) -> Any:
        """Import the module of ``module:attr.path [extras]`` and return the named object (the module without ``:``)."""
        text = self.value.strip()
        if text.endswith("]") and "[" in text:  # extras: nothing to load
            text = text[: text.rindex("[")].rstrip()
        module, _, attr = text.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in attr.strip().split("."):
            if part:
                obj = getattr(obj, part)
        return obj


def _normalize(name: str) -> str:
    """PEP 503 normalization with ``_`` (importlib.metadata's ``Prepared.normalize``)."""
    out = []
    run = False
    for ch in name.lower():
        if ch in "-_.":
            if not run:
                out.append("_")
            run = True
        else:
            out.append(ch)
            run = False
    return "".join(out)


def _pairs(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of ``group`` in an entry_points.txt (importlib.metadata's reading of it)."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section == group:
            name, sep, value = line.partition("=")
            if sep:
                yield name.strip(), value.strip()


def _headers(directory: str) -> tuple[str | None, str]:
    """``Name`` and ``Version`` from the head of a distribution's METADATA (or PKG-INFO)."""
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, file), encoding="utf-8") as f:
                found: dict[str, str] = {}
                for line in f:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version") and key not in found:
                        found[key] = value.strip()
                        if len(found) == 2:
                            break
                return found.get("Name"), found.get("Version", "")
        except (OSError, UnicodeDecodeError):
            continue
    return None, ""


def _plain() -> bool:
    """Whether reading the directories of ``sys.path`` finds every distribution importlib.metadata would."""
    import importlib.machinery

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            return False
    for entry in sys.path:
        root = entry or "."
        if os.path.basename(root).lower().endswith(".egg") or os.path.isfile(root):
            return False
    return True


def _from_metadata(group: str) -> list[EntryPoint]:
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        found.append(
            EntryPoint(ep.name, ep.value, group, dist.metadata["Name"] if dist is not None else None, (dist.version or "") if dist is not None else "")
        )
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group`` of the installed distributions, in importlib.metadata's order."""
    if not _plain():
        return _from_metadata(group)
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except OSError:
            continue
        for child in children:
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            key = _normalize(low.rpartition(".")[0].partition("-")[0])
            if key in seen:
                continue
            seen.add(key)
            directory = os.path.join(root, child)
            try:
                with open(os.path.join(directory, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if f"[{group}]" not in text:
                continue
            pairs = list(_pairs(text, group))
            if pairs:
                name, version = _headers(directory)
                found.extend(EntryPoint(n, v, group, name, version) for n, v in pairs)
    return found
