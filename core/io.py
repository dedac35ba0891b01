"""Reading encounters from files: JSON, TOML, or JSON on standard input (``-``)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from .errors import EncounterError
from .model import Encounter
from .vocab import CodeCatalogue

__all__ = ["encounter_from_data", "read_encounter", "read_encounter_data"]


def read_encounter_data(path: str) -> Any:
    """Read the raw data of an encounter file; errors name the file and the position."""
    if path == "-":
        name, text = "<stdin>", sys.stdin.read()
        suffix = ".json"
    else:
        name = path
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise EncounterError("", f"expected a .json or .toml encounter file, found {p.name!r}", name)
        try:
            text = p.read_text("utf-8-sig")
        except FileNotFoundError:
            raise EncounterError("", "no such file", name) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise EncounterError("", f"cannot read the file ({type(exc).__name__}: {exc})", name) from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EncounterError("", f"invalid TOML: {exc}", name) from None
        except (ValueError, RecursionError) as exc:
            raise EncounterError("", f"invalid TOML: the file cannot be read ({type(exc).__name__})", name) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EncounterError("", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", name) from None
    except (ValueError, RecursionError) as exc:
        raise EncounterError("", f"invalid JSON: the file cannot be read ({type(exc).__name__}: nesting or numbers too large)", name) from None


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
