"""Dotted paths into encounter data (``care.phase``, ``services[1].minutes``).

Case files' ``[[variants]] set = {...}`` (:mod:`payerpolicy.testing`) and ``payerpolicy compare
--set PATH=VALUE`` both change an encounter with these paths, through :func:`set_path`.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["PathError", "parse_assignment", "parse_path", "set_path"]

_PART = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class PathError(ValueError):
    """A path that is not well formed or does not lead into the data.

    ``where`` is the part of the path that could not be followed (``services[9]``).
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


def parse_path(path: str) -> list[str | int]:
    """Split ``services[1].minutes`` into ``["services", 1, "minutes"]``; PathError if malformed."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PART.match(path, pos)
        if not m or (m.group(1) is not None and pos == 0 and path.startswith(".")):
            raise PathError(path, f"expected a path like care.phase or services[1].minutes, found {path!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or not isinstance(parts[0], str):
        raise PathError(path, f"expected a path like care.phase or services[1].minutes, found {path!r}")
    return parts


def _show(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted path such as ``services[1].minutes``.

    Missing tables on the way are created; ``None`` removes the key. An index must point at an
    existing array entry. Raises :class:`PathError` naming the part of the path that does not fit.
    """
    parts = parse_path(path)
    target: Any = data
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        here = _show(parts[: n + 1])
        if isinstance(part, int):
            if not isinstance(target, list):
                raise PathError(here, f"{_show(parts[:n])} is not an array")
            if part >= len(target):
                raise PathError(here, f"no such entry: {_show(parts[:n])} has {len(target)}")
            if last:
                target[part] = value
            else:
                target = target[part]
            continue
        if not isinstance(target, dict):
            raise PathError(here, f"{_show(parts[:n])} is not a table" if n else "the encounter is not a table")
        if last:
            if value is None:
                target.pop(part, None)
            else:
                target[part] = value
        else:
            if target.get(part) is None:
                target[part] = {}
            target = target[part]


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``PATH=VALUE``; the value is read as JSON when it is JSON (``23``, ``true``, ``"x"``, ``[1]``), else as text."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise PathError("", f"expected PATH=VALUE (for example care.phase=maintenance), found {text!r}")
    path = path.strip()
    parse_path(path)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return path, value
