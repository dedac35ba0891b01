"""Reading encounters from files: JSON, TOML, or JSON on standard input (``-``)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ..evaluation.errors import EncounterError
from ..evaluation.model import Encounter
from ..evaluation.text import check_text, decode_utf8, loads_json
from ..evaluation.vocab import CodeCatalogue

__all__ = ["encounter_from_data", "parse_json", "read_encounter", "read_encounter_data", "read_text"]


def _plain(path: str) -> bool:
    """Whether ``path`` is already the text of ``pathlib.Path(path)`` (no ``.`` or empty parts, no ``/`` on Windows).

    Such a path names the same file for ``open`` as for pathlib, and its last part is its name:
    the usual encounter path is read without importing pathlib (a cold ``payerpolicy check``).
    """
    if not path or (os.altsep is not None and os.altsep in path):
        return False
    parts = path.split(os.sep)
    return parts[0] != "." and all(part not in ("", ".") for part in parts[1:])


def _suffix(path: str) -> str:
    """``pathlib.Path(path).suffix``."""
    if not _plain(path):
        from pathlib import Path

        return Path(path).suffix
    name = path.rsplit(os.sep, 1)[-1]
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _read_bytes(path: str) -> bytes:
    """``pathlib.Path(path).read_bytes()``."""
    if not _plain(path):
        from pathlib import Path

        return Path(path).read_bytes()
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> tuple[str, str]:
    """The name to show in errors and the text of ``path`` (``-``: standard input); errors name the file."""
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # a text stream without bytes under it (tests, embedding)
            text = sys.stdin.read()
            check_text(text)
            return "<stdin>", text
        return "<stdin>", decode_utf8(buffer.read(), "<stdin>")
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        raise EncounterError("", "no such file", path) from None
    except OSError as exc:
        raise EncounterError("", f"cannot read the file ({type(exc).__name__}: {exc.strerror or exc})", path) from None
    return path, decode_utf8(data, path)


def parse_json(text: str | bytes, name: str, *, one_line: bool = False, parse_float: Any = None) -> Any:
    """Parse JSON text; a mistake is an EncounterError naming ``name`` and the position.

    ``one_line``: the text is one line of a JSON Lines file, so the position is a column only.
    ``parse_float`` (e.g. ``Decimal``) reads numbers with a fraction or exponent exactly.
    """
    if isinstance(text, bytes | bytearray):
        text = decode_utf8(bytes(text), name)
    try:
        data = loads_json(text, parse_float=parse_float)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
        raise EncounterError("", f"invalid JSON at {where}: {exc.msg}", name) from None
    except (ValueError, RecursionError) as exc:
        raise EncounterError("", f"invalid JSON: the file cannot be read ({type(exc).__name__}: nesting or numbers too large)", name) from None
    try:
        check_text(data)
    except EncounterError as exc:
        raise exc.with_file(name) from None
    return data


def read_encounter_data(path: str) -> Any:
    """Read the raw data of an encounter file; errors name the file and the position."""
    suffix = ".json" if path == "-" else _suffix(path).lower()
    if suffix not in (".json", ".toml"):
        from pathlib import Path

        raise EncounterError("", f"expected a .json or .toml encounter file, found {Path(path).name!r}", path)
    name, text = read_text(path)
    if suffix == ".toml":
        import tomllib  # only for TOML encounters (the policy files are parsed once, see evaluation/tomlcache.py)

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EncounterError("", f"invalid TOML: {exc}", name) from None
        except (ValueError, RecursionError) as exc:
            raise EncounterError("", f"invalid TOML: the file cannot be read ({type(exc).__name__})", name) from None
        try:
            check_text(data)
        except EncounterError as exc:
            raise exc.with_file(name) from None
        return data
    return parse_json(text, name)


def read_encounter(path: str, *, catalogue: CodeCatalogue | None = None) -> Encounter:
    """Read and validate an encounter file (format v1)."""
    return encounter_from_data(read_encounter_data(path), path, catalogue=catalogue)


def encounter_from_data(data: Any, path: str, *, catalogue: CodeCatalogue | None = None) -> Encounter:
    """Validate data read by :func:`read_encounter_data` from ``path``; errors name the file."""
    name = "<stdin>" if path == "-" else path
    try:
        return Encounter.from_mapping(data, catalogue=catalogue)
    except EncounterError as exc:
        raise exc.with_file(name) from None
