r"""Text read from users and plugins: valid Unicode only, and messages that stay on one line.

Every string payerpolicy reads (JSON, TOML, X12, HTTP bodies, standard input) must be valid
Unicode text: a lone surrogate (``"\ud800"`` in JSON) or bytes that are not UTF-8 are bad input
naming the field. Error messages echo a value through :func:`excerpt`, so they stay one short line
whatever the input holds: control characters, line and paragraph separators and lone surrogates
are written as escapes, and long values are cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import MESSAGE_LIMIT, EncounterError, one_line

__all__ = [
    "EXCERPT_LIMIT",
    "MESSAGE_LIMIT",
    "DuplicateKeyObject",
    "check_text",
    "decode_utf8",
    "excerpt",
    "loads_json",
    "one_line",
]

#: Characters of a bad value an error message echoes.
EXCERPT_LIMIT = 40

_SURROGATE = re.compile("[\ud800-\udfff]")


def excerpt(value: str, limit: int = EXCERPT_LIMIT) -> str:
    """A short, one-line, quoted excerpt of ``value`` for an error message."""
    cut = value if len(value) <= limit else value[:limit]
    shown = json.dumps(cut, ensure_ascii=False)
    shown = one_line(shown, limit=10 * limit)
    if len(value) > limit:
        shown = shown[:-1] + f'…" ({len(value)} characters)'
    return shown


def decode_utf8(data: bytes, name: str, *, field: str = "") -> str:
    """Decode ``data`` (an optional BOM is dropped) as strict UTF-8; bad bytes are an EncounterError naming ``name``."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EncounterError(
            field,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (byte {exc.start + 1}) cannot be decoded;"
            " save the text as UTF-8",
            name,
        ) from None


class DuplicateKeyObject(dict[str, Any]):
    """A JSON object in which a key appeared more than once (``duplicate`` names the first one)."""

    duplicate: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            marked = DuplicateKeyObject(pairs)
            marked.duplicate = key
            return marked
        out[key] = value
    return out


def loads_json(text: str | bytes, *, parse_float: Any = None) -> Any:
    """``json.loads`` that marks objects with a repeated key (see :func:`check_text`).

    Bytes must be UTF-8 (decoded strictly; ``UnicodeDecodeError`` otherwise). ``parse_float``
    (e.g. ``Decimal``, for FHIR money) is passed to ``json.loads``.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8-sig")
    return json.loads(text, object_pairs_hook=_pairs, parse_float=parse_float)


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_text(data: Any, path: str = "") -> None:
    """Raise EncounterError naming the field of a string that is not valid Unicode, or of a key given twice.

    Not valid Unicode: a lone surrogate. A key given twice: an object read by :func:`loads_json`.

    ``path`` is the field path of ``data`` itself ("" for a whole encounter).
    """
    if not _suspect(data):
        return  # the usual case: one quick pass, no field paths built
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            _check_string(value, where)
        elif isinstance(value, Mapping):
            if isinstance(value, DuplicateKeyObject):
                key = value.duplicate
                _check_string(key, _where(where, "<key>"))
                raise EncounterError(
                    _where(where, key),
                    "this key is given twice in one object; give each field once (which value was meant is unknown)",
                )
            items = list(value.items())
            for key, item in reversed(items):
                name = key if isinstance(key, str) else str(key)
                _check_string(name, _where(where, "<key>"))
                stack.append((_where(where, name), item))
        elif isinstance(value, list | tuple):
            for i in range(len(value) - 1, -1, -1):
                stack.append((f"{where}[{i}]", value[i]))


def _suspect(data: Any) -> bool:
    """Whether :func:`check_text` may find a problem in ``data`` (then it walks again, naming the field).

    Plain JSON values are checked by exact type (ASCII text cannot hold a surrogate); anything
    else — an object with a repeated key, a tuple, another mapping — is left to the naming walk.
    """
    search = _SURROGATE.search
    stack = [data]
    pop, extend = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is str:
            if not value.isascii() and search(value) is not None:
                return True
        elif kind is dict:
            for key in value:
                if type(key) is not str or (not key.isascii() and search(key) is not None):
                    return True
            extend(value.values())
        elif kind is list:
            extend(value)
        elif kind not in _SCALARS and isinstance(value, str | Mapping | list | tuple):
            return True  # a subclass, a tuple, another mapping: the naming walk decides
    return False


_SCALARS = frozenset({int, float, bool, type(None)})


def _check_string(value: str, where: str) -> None:
    bad = _SURROGATE.search(value)
    if bad is None:
        return
    raise EncounterError(
        where or "encounter",
        f"not valid Unicode text: a lone surrogate U+{ord(bad.group()):04X} at character {bad.start() + 1}"
        f" of {excerpt(value)}",
    )
