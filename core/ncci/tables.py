"""Finding and loading NCCI tables: builtin, $PAYERPOLICY_NCCI_DIR, or a path named by a rule."""

from __future__ import annotations

import functools
import os

from ..evaluation.policy import Rule
from .index import PtpTable, _load_path, parse_ptp
from .table import _FILES, ENV_DIR, MueTable, _display, _no_gc, _read, parse_mue

# --------------------------------------------------------------------------------------------
# Finding and loading tables (once per process)


def resolve_table(table: str, kind: str) -> str:
    """The file a rule's ``table`` parameter names: ``builtin:<kind>`` or a filesystem path.

    ``"builtin"`` means ``$PAYERPOLICY_NCCI_DIR`` when set, else the shipped curated subset. A
    directory means the ``ptp.tsv`` / ``mue.tsv`` inside it. Relative paths are taken from the
    current working directory.

    The rule kinds ask this on every evaluation; a path that names an existing file is resolved
    once per (path, kind, working directory) and kept, as the table it names is loaded once.
    """
    if table == "builtin":
        env = os.environ.get(ENV_DIR, "").strip()
        if not env:
            return f"builtin:{kind}"
        table = env
    key = (table, kind, None if os.path.isabs(table) else os.getcwd())
    found = _RESOLVED.get(key)
    if found is None:
        from pathlib import Path  # a table of one's own (the shipped ones need no pathlib)

        path = Path(table).expanduser()
        if path.is_dir():
            path = path / _FILES[kind]
        found = str(path.resolve())
        if os.path.isfile(found):  # a missing file is looked for again next time
            if len(_RESOLVED) >= 256:
                _RESOLVED.clear()
            _RESOLVED[key] = found
    return found


#: (path as named, kind, working directory for a relative path) -> the resolved file.
_RESOLVED: dict[tuple[str, str, str | None], str] = {}


@functools.cache
def load_ptp(file: str) -> PtpTable:
    """Load a PTP table (``builtin:ptp`` or a path), once per process.

    A path loads through its binary index (``ptp.idx``, see :func:`write_ptp_index`) when that is
    current; a stale index (other rows, other format version) is rebuilt from the text and
    rewritten; without an index the text is parsed into the same arrays in memory.
    """
    if not file.startswith("builtin:"):
        return _load_path(file)
    with _no_gc():
        return parse_ptp(_read(file), _display(file))


@functools.cache
def load_mue(file: str) -> MueTable:
    """Load an MUE table (``builtin:mue`` or a path), once per process."""
    with _no_gc():
        return parse_mue(_read(file), _display(file))


def ptp_table_for(rule: Rule) -> PtpTable:
    """The PTP table a ``ncci_ptp`` rule names."""
    return load_ptp(resolve_table(rule["table"], "ptp"))


def mue_table_for(rule: Rule) -> MueTable:
    """The MUE table a ``ncci_mue`` rule names."""
    return load_mue(resolve_table(rule["table"], "mue"))
