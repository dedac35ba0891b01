"""NCCI edits as rule kinds any payer can load: procedure-to-procedure pairs and MUE limits.

Rule kinds (registered through ``payerpolicy_rule_kinds`` like every other kind):

``ncci_ptp``
    CMS procedure-to-procedure edits (rules.md §8, NCCI-01/02). When both codes of an edit in
    force on the date of service are on the claim, the column-2 line is denied (status
    ``not_billable``, finding ``NCCI_PTP_DENIAL`` naming the pair, the modifier indicator, the CMS
    rationale and the table version) unless the indicator is 1 and a distinct-service modifier is
    justified: a different region documented on both lines (``settings.distinct_modifier_region``)
    or separate time blocks (``settings.distinct_modifier_time``). Indicator 0 is never bypassed;
    indicator 9 (not applicable) is ignored.

    Phases: **screen** denies column-2 lines before units are computed, so their minutes are not
    counted (CORE-TIME-04), when the column-1 line is sure to be billed; **modifiers** adds the
    distinct-service modifier on the column-2 line of a justified indicator-1 pair; **adjust** is a
    safety net for pairs still on the claim and not justified (a column-1 line whose units were
    uncertain before units were computed, or lines changed by a hook after screening).

``ncci_mue``
    Medically unlikely edits (NCCI-03): units above the MUE in force on the date of service. MAI 1
    is a claim-line edit, MAI 2 an absolute per-date-of-service edit, MAI 3 a clinical
    per-date-of-service edit. MAIs listed in the rule's ``cap_mai`` (default MAI 2) cap the units
    at the MUE (a line with MUE 0 is not billable); the others leave the units and flag the lines
    as expected denials. Phase: **adjust**.

**Tables are data.** Each table is one tab-separated file (format ``payerpolicy-ncci 1``) whose
``#`` header records the source, the version and the SHA-256 of the data rows::

    #payerpolicy-ncci 1
    #table<TAB>ptp
    #source<TAB>CMS Medicare NCCI practitioner PTP edits ...
    #version<TAB>CMS practitioner PTP v301r0 / 2024-07-01; curated subset
    #sha256<TAB>(hex digest of the column line and rows, each ending in a newline)
    column_1<TAB>column_2<TAB>effective<TAB>deletion<TAB>indicator<TAB>rationale
    98940<TAB>97140<TAB><TAB><TAB>1<TAB>Standards of medical/surgical practice

    code<TAB>mue<TAB>mai<TAB>rationale<TAB>effective<TAB>deletion      (the MUE table's columns)

Dates are ISO (``2019-12-31``) or empty (no data: in force from the start / not deleted). A row is
in force on a day when ``effective <= day <= deletion`` (the deletion date is the last day the
edit applies). A table is read once per process (:func:`load_ptp` / :func:`load_mue`, cached by
path) into dicts; rule functions only do dict lookups.

**Binary PTP index.** A full PTP table (2.6 million rows) is too big to parse per process, so
:func:`write_ptp_index` (called by the importer, usable on any ``ptp.tsv``) writes ``ptp.idx`` next
to it: a magic line, a format version, a JSON header (the table's ``#sha256``, the row count, the
rationale strings, the byte order) and parallel arrays in native byte order — sorted ``uint64`` code
pair keys (each 5-character code read in base 36; key = column 1 << 32 | column 2), ``int32``
effective and deletion days (``date.toordinal``, 0 = none), ``int8`` indicators and rationale
numbers — plus the SHA-256 of those arrays. :func:`load_ptp` reads the arrays in one pass and looks
rows up by bisection, building :class:`PtpRow` objects only for the key asked for, then applies the
same selection rules. The index is used only when its recorded hash equals the table header's
``#sha256``, its format version and byte order match; otherwise (a stale index, e.g. after the table
was rewritten) it is ignored and the text is parsed. An index that matches but is truncated or
corrupt (bad magic, short arrays, arrays not matching their SHA-256) raises :class:`NcciIndexError`
naming the index file: rebuild it with :func:`write_ptp_index` or delete it. The shipped curated
subset has no index (it is small enough to parse).

Which table: the rule's ``table`` parameter, a path to a file or to a directory holding
``ptp.tsv`` / ``mue.tsv``; ``"builtin"`` (the default) means ``$PAYERPOLICY_NCCI_DIR`` when that
environment variable is set, else the curated subset shipped in ``payerpolicy/policies/ncci/``
(exactly the rows of rules.md §8.1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import hashlib
import json
import os
import re
import struct
import sys
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import attrs

from .errors import PayerPolicyError
from .hookspecs import hookimpl
from .kinds import Change, Context, Param, RuleKind
from .model import ClaimLine, Finding, Status
from .policy import Rule

__all__ = [
    "ENV_DIR",
    "FORMAT",
    "MUE_COLUMNS",
    "MUE_FILE",
    "NCCI_KINDS",
    "PTP_COLUMNS",
    "PTP_FILE",
    "PTP_INDEX_SUFFIX",
    "MueRow",
    "MueTable",
    "NcciIndexError",
    "NcciTableError",
    "PtpRow",
    "PtpTable",
    "TableInfo",
    "apply_mue",
    "load_mue",
    "load_ptp",
    "mue_table_for",
    "payerpolicy_rule_kinds",
    "ptp_index_path",
    "ptp_table_for",
    "resolve_table",
    "write_ptp_index",
    "write_table",
]

FORMAT = "payerpolicy-ncci 1"
#: Environment variable naming a directory with a full import (``ptp.tsv`` and ``mue.tsv``).
ENV_DIR = "PAYERPOLICY_NCCI_DIR"
PTP_FILE = "ptp.tsv"
#: The binary index of a PTP table sits next to it with this suffix (``ptp.tsv`` -> ``ptp.idx``).
PTP_INDEX_SUFFIX = ".idx"
MUE_FILE = "mue.tsv"
PTP_COLUMNS = ("column_1", "column_2", "effective", "deletion", "indicator", "rationale")
MUE_COLUMNS = ("code", "mue", "mai", "rationale", "effective", "deletion")
_COLUMNS = {"ptp": PTP_COLUMNS, "mue": MUE_COLUMNS}
_FILES = {"ptp": PTP_FILE, "mue": MUE_FILE}
#: Header keys every table carries (besides the format line).
_REQUIRED_HEADER = ("table", "source", "version", "sha256")
#: Distinct-service modifiers: a line carrying one of these was bypassed on purpose.
DISTINCT_MODIFIERS = ("59", "XE", "XS", "XP", "XU")
_MAI_MEANING = {
    1: "claim-line edit: units above it are payable only on separate lines with a modifier that shows distinct services",
    2: "absolute date-of-service edit (policy): units above it are never paid, not even on appeal",
    3: "date-of-service edit (clinical): units above it are paid only on appeal with records showing medical necessity",
}


class NcciTableError(PayerPolicyError):
    """An NCCI table that cannot be read: the message names the file and line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class NcciIndexError(NcciTableError):
    """A binary PTP index that matches its table but cannot be read (truncated, corrupt) or built."""


# --------------------------------------------------------------------------------------------
# Rows and tables


class PtpRow(NamedTuple):
    """One procedure-to-procedure edit row."""

    column_1: str
    column_2: str
    effective: dt.date | None
    deletion: dt.date | None
    indicator: int
    rationale: str

    def in_force(self, day: dt.date) -> bool:
        """Whether the row applies on ``day`` (effective date through deletion date, inclusive)."""
        if self.effective is not None and day < self.effective:
            return False
        return self.deletion is None or day <= self.deletion


class MueRow(NamedTuple):
    """One medically-unlikely-edit row: the most units of a code per line or date of service."""

    code: str
    value: int
    mai: int
    rationale: str
    effective: dt.date | None
    deletion: dt.date | None

    def in_force(self, day: dt.date) -> bool:
        """Whether the row applies on ``day`` (effective date through deletion date, inclusive)."""
        if self.effective is not None and day < self.effective:
            return False
        return self.deletion is None or day <= self.deletion


@attrs.frozen
class TableInfo:
    """Where a table came from: file, kind, source, version, SHA-256 of its rows, row count."""

    file: str
    table: str
    source: str
    version: str
    sha256: str
    rows: int
    notes: tuple[str, ...] = ()


def _rank(row: PtpRow) -> tuple[dt.date, int]:
    """Sort key among rows in force: latest effective date first, then the strictest indicator."""
    return (row.effective or dt.date.min, -row.indicator)


@attrs.frozen(eq=False)
class PtpTable:
    """PTP edits keyed by (column 1, column 2); every key holds all its rows (duplicates kept)."""

    info: TableInfo
    pairs: Mapping[tuple[str, str], tuple[PtpRow, ...]]

    def rows(self, column_1: str, column_2: str) -> tuple[PtpRow, ...]:
        """Every row with this key, in file order (no date filter)."""
        pairs = self.pairs
        if type(pairs) is _IndexedPairs:
            return pairs.find(column_1, column_2)
        return pairs.get((column_1, column_2), ())

    def edit_on(self, code_a: str, code_b: str, day: dt.date) -> PtpRow | None:
        """The edit between two codes in force on ``day``, in either direction, or None.

        Rows not in force on ``day`` and rows with indicator 9 (not applicable) are ignored. When
        several rows remain (a duplicate key, or an edit and its reversed pair), the one with the
        latest effective date wins, then the strictest indicator (0 before 1).
        """
        best: PtpRow | None = None
        pairs = self.pairs
        if type(pairs) is _IndexedPairs:
            found = pairs.find(code_a, code_b) + pairs.find(code_b, code_a)
        else:
            found = (*pairs.get((code_a, code_b), ()), *pairs.get((code_b, code_a), ()))
        for row in found:
            if row.indicator == 9 or not row.in_force(day):
                continue
            if best is None or _rank(row) > _rank(best):
                best = row
        return best


@attrs.frozen(eq=False)
class MueTable:
    """MUE rows keyed by code."""

    info: TableInfo
    codes: Mapping[str, tuple[MueRow, ...]]

    def limit_on(self, code: str, day: dt.date) -> MueRow | None:
        """The MUE of ``code`` in force on ``day`` (latest effective date wins), or None."""
        best: MueRow | None = None
        for row in self.codes.get(code, ()):
            if row.in_force(day) and (
                best is None or (row.effective or dt.date.min) >= (best.effective or dt.date.min)
            ):
                best = row
        return best


# --------------------------------------------------------------------------------------------
# Reading and writing the compact format


def _digest(data_lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in data_lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


@functools.lru_cache(maxsize=65536)
def _iso(text: str) -> dt.date:
    """``date.fromisoformat``, cached: a full table holds few distinct dates, so rows share them."""
    return dt.date.fromisoformat(text)


def _date(text: str, file: str, lineno: int, column: str) -> dt.date | None:
    text = text.strip()
    if not text or text == "*":
        return None
    try:
        return _iso(text)
    except ValueError:
        raise NcciTableError(
            file, lineno, f"column {column!r}: expected an ISO date like 2019-12-31 or nothing, found {text!r}"
        ) from None


def _int(text: str, file: str, lineno: int, column: str, allowed: Sequence[int] | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise NcciTableError(file, lineno, f"column {column!r}: expected a whole number, found {text!r}") from None
    if value < 0 or (allowed is not None and value not in allowed):
        expected = "one of " + ", ".join(map(str, allowed)) if allowed is not None else "a whole number >= 0"
        raise NcciTableError(file, lineno, f"column {column!r}: expected {expected}, found {value}")
    return value


def _split(text: str, file: str, kind: str) -> tuple[dict[str, str], list[str], list[tuple[int, list[str]]]]:
    """Return (header, notes, [(line number, fields)]) and check format, columns and hash."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != f"#{FORMAT}":
        raise NcciTableError(file, 1, f"expected the first line to be '#{FORMAT}'")
    header: dict[str, str] = {}
    notes: list[str] = []
    n = 1
    while n < len(lines) and lines[n].startswith("#"):
        key, _, value = lines[n][1:].partition("\t")
        if key == "note":
            notes.append(value)
        else:
            header[key] = value
        n += 1
    for key in _REQUIRED_HEADER:
        if not header.get(key):
            raise NcciTableError(file, None, f"header line '#{key}<TAB>...' is missing")
    if header["table"] != kind:
        raise NcciTableError(file, None, f"expected a {kind} table, found a {header['table']!r} table")
    expected_columns = _COLUMNS[kind]
    if n >= len(lines):
        raise NcciTableError(
            file, n + 1, "expected the column line " + "\t".join(expected_columns) + ", found the end of the file"
        )
    columns = tuple(lines[n].split("\t"))
    if columns != expected_columns:
        raise NcciTableError(
            file, n + 1, "expected the columns " + ", ".join(expected_columns) + "; found " + ", ".join(columns)
        )
    data = lines[n:]
    if _digest(data) != header["sha256"]:
        raise NcciTableError(file, None, "the rows do not match the header's sha256 (file edited or truncated?)")
    rows: list[tuple[int, list[str]]] = []
    for offset, line in enumerate(lines[n + 1 :], start=n + 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(expected_columns):
            raise NcciTableError(
                file, offset, f"expected {len(expected_columns)} tab-separated fields, found {len(fields)}"
            )
        rows.append((offset, fields))
    return header, notes, rows


def parse_ptp(text: str, file: str) -> PtpTable:
    """Parse a PTP table in the compact format (see the module docstring)."""
    header, notes, rows = _split(text, file, "ptp")
    pairs: dict[tuple[str, str], list[PtpRow]] = {}
    for lineno, f in rows:
        c1, c2 = f[0].strip(), f[1].strip()
        if not c1 or not c2:
            raise NcciTableError(file, lineno, "column 1 and column 2 must both hold a code")
        row = PtpRow(
            c1,
            c2,
            _date(f[2], file, lineno, "effective"),
            _date(f[3], file, lineno, "deletion"),
            _int(f[4], file, lineno, "indicator", (0, 1, 9)),
            f[5].strip(),
        )
        pairs.setdefault((c1, c2), []).append(row)
    info = TableInfo(file, "ptp", header["source"], header["version"], header["sha256"], len(rows), tuple(notes))
    return PtpTable(info, {k: tuple(v) for k, v in pairs.items()})


def parse_mue(text: str, file: str) -> MueTable:
    """Parse an MUE table in the compact format (see the module docstring)."""
    header, notes, rows = _split(text, file, "mue")
    codes: dict[str, list[MueRow]] = {}
    for lineno, f in rows:
        code = f[0].strip()
        if not code:
            raise NcciTableError(file, lineno, "column 'code' is empty")
        row = MueRow(
            code,
            _int(f[1], file, lineno, "mue"),
            _int(f[2], file, lineno, "mai", (1, 2, 3)),
            f[3].strip(),
            _date(f[4], file, lineno, "effective"),
            _date(f[5], file, lineno, "deletion"),
        )
        codes.setdefault(code, []).append(row)
    info = TableInfo(file, "mue", header["source"], header["version"], header["sha256"], len(rows), tuple(notes))
    return MueTable(info, {k: tuple(v) for k, v in codes.items()})


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"a table cell may not hold tabs or line breaks: {text!r}")
    return text


def write_table(
    path: str | Path,
    kind: str,
    rows: Iterable[Sequence[object]],
    *,
    source: str,
    version: str,
    notes: Sequence[str] = (),
) -> TableInfo:
    """Write a table in the compact format, atomically (a temporary file, then a rename).

    ``kind`` is ``"ptp"`` or ``"mue"``; each row gives the values of :data:`PTP_COLUMNS` or
    :data:`MUE_COLUMNS` in order (dates as :class:`datetime.date` or None).
    """
    if kind not in _COLUMNS:
        raise ValueError(f"kind must be 'ptp' or 'mue', not {kind!r}")
    path = Path(path)
    columns = _COLUMNS[kind]
    data = ["\t".join(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a {kind} row has {len(columns)} values, found {len(row)}: {row!r}")
        data.append("\t".join(_cell(v) for v in row))
    digest = _digest(data)
    head = [f"#{FORMAT}", f"#table\t{kind}", f"#source\t{_cell(source)}", f"#version\t{_cell(version)}"]
    head += [f"#note\t{_cell(n)}" for n in notes]
    head.append(f"#sha256\t{digest}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for line in (*head, *data):
                out.write(line)
                out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return TableInfo(str(path), kind, source, version, digest, len(data) - 1, tuple(notes))


# --------------------------------------------------------------------------------------------
# Binary PTP index

_INDEX_MAGIC = b"PPNCCIDX"
_INDEX_VERSION = 1
_INDEX_PREAMBLE = struct.Struct("<8sII")  # magic, format version, JSON header length
#: The parallel arrays, in file order: (name, typecode, item size).
_INDEX_ARRAYS = (("keys", "Q", 8), ("effective", "i", 4), ("deletion", "i", 4), ("indicator", "b", 1))
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEXABLE = re.compile(r"[0-9A-Z]{5}").fullmatch


def ptp_index_path(table_file: str | Path) -> Path:
    """Where the binary index of a PTP table file lives (``ptp.tsv`` -> ``ptp.idx``)."""
    return Path(table_file).with_suffix(PTP_INDEX_SUFFIX)


def _code_number(code: str) -> int:
    """A 5-character code (digits, capital letters) as a number below 36**5; -1 for any other text."""
    return int(code, 36) if _INDEXABLE(code) else -1


def _code_text(number: int) -> str:
    """The inverse of :func:`_code_number`."""
    out = []
    for _ in range(5):
        number, digit = divmod(number, 36)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


#: ``PtpRow`` from a tuple of its values, without the keyword-argument handling of ``PtpRow(...)``.
_new_row = tuple.__new__
#: :func:`_code_number` for lookups: claims repeat a few thousand codes at most.
_cached_number = functools.lru_cache(maxsize=65536)(_code_number)


@functools.lru_cache(maxsize=65536)
def _from_day(day: int) -> dt.date | None:
    return dt.date.fromordinal(day) if day else None


class _IndexedPairs(Mapping[tuple[str, str], tuple[PtpRow, ...]]):
    """The ``pairs`` mapping of a :class:`PtpTable` backed by the index arrays (rows built on demand)."""

    __slots__ = ("_count", "_keys", "_n", "deletion", "effective", "indicator", "rationale", "rationales")

    def __init__(self, arrays: Mapping[str, array[int]], rationales: Sequence[str]) -> None:
        self._keys = arrays["keys"]
        self.effective = arrays["effective"]
        self.deletion = arrays["deletion"]
        self.indicator = arrays["indicator"]
        self.rationale = arrays["rationale"]
        self.rationales = tuple(rationales)
        self._n = len(self._keys)
        self._count: int | None = None

    def find(self, column_1: str, column_2: str) -> tuple[PtpRow, ...]:
        """Every row with this key, in file order."""
        n1, n2 = _cached_number(column_1), _cached_number(column_2)
        if n1 < 0 or n2 < 0:
            return ()
        key = n1 << 32 | n2
        keys = self._keys
        i = bisect_left(keys, key)
        n = self._n
        if i == n or keys[i] != key:
            return ()
        j = i + 1
        if j == n or keys[j] != key:
            return (self._row(column_1, column_2, i),)
        while j < n and keys[j] == key:
            j += 1
        return tuple(self._row(column_1, column_2, k) for k in range(i, j))

    def _row(self, column_1: str, column_2: str, k: int) -> PtpRow:
        return _new_row(
            PtpRow,
            (
                column_1,
                column_2,
                _from_day(self.effective[k]),
                _from_day(self.deletion[k]),
                self.indicator[k],
                self.rationales[self.rationale[k]],
            ),
        )

    def __getitem__(self, key: tuple[str, str]) -> tuple[PtpRow, ...]:
        rows = self.find(*key)
        if not rows:
            raise KeyError(key)
        return rows

    def __iter__(self) -> Iterator[tuple[str, str]]:
        previous = -1
        for key in self._keys:
            if key != previous:
                previous = key
                yield _code_text(key >> 32), _code_text(key & 0xFFFFFFFF)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count


def _index_payload(arrays: Sequence[array[int]]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(memoryview(a))
    return h.hexdigest()


def _write_index(path: Path, sha256: str, rows: Iterable[Sequence[object]]) -> int:
    """Write the index of ``rows`` (PTP column values, file order) for the table whose hash is ``sha256``."""
    keys: array[int] = array("Q")
    effective: array[int] = array("i")
    deletion: array[int] = array("i")
    indicator: array[int] = array("b")
    numbers: list[int] = []
    texts: dict[str, int] = {}
    for row in rows:
        c1, c2, eff, dele, ind, why = row
        n1, n2 = _code_number(str(c1).strip()), _code_number(str(c2).strip())
        if n1 < 0 or n2 < 0:
            bad = c1 if n1 < 0 else c2
            raise NcciIndexError(
                str(path), None, f"cannot index the code {bad!r}: 5 digits or capital letters expected"
            )
        keys.append(n1 << 32 | n2)
        effective.append(eff.toordinal() if isinstance(eff, dt.date) else 0)
        deletion.append(dele.toordinal() if isinstance(dele, dt.date) else 0)
        indicator.append(int(str(ind)))
        numbers.append(texts.setdefault(str(why).strip(), len(texts)))
    rat_type = "B" if len(texts) <= 0x100 else "H"
    if len(texts) > 0x10000:
        raise NcciIndexError(str(path), None, f"too many distinct rationales to index ({len(texts):,})")
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: rows of a key stay in file order
    arrays = [array(a.typecode, [a[i] for i in order]) for a in (keys, effective, deletion, indicator)]
    arrays.append(array(rat_type, [numbers[i] for i in order]))
    header = {
        "sha256": sha256,
        "rows": len(keys),
        "byteorder": sys.byteorder,
        "arrays": [[name, code, size] for name, code, size in _INDEX_ARRAYS]
        + [["rationale", rat_type, 2 if rat_type == "H" else 1]],
        "rationales": list(texts),
        "payload_sha256": _index_payload(arrays),
    }
    blob = json.dumps(header, ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_INDEX_PREAMBLE.pack(_INDEX_MAGIC, _INDEX_VERSION, len(blob)))
            out.write(blob)
            for a in arrays:
                a.tofile(out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(keys)


def write_ptp_index(table_file: str | Path, rows: Iterable[Sequence[object]] | None = None) -> Path:
    """Write the binary index of a PTP table file next to it (``ptp.idx``), atomically; return its path.

    ``rows`` (the table's rows in file order, as given to :func:`write_table`) saves re-reading the
    table; without it the table is parsed (and checked) first. Raises :class:`NcciIndexError` when a
    code is not 5 digits or capital letters.
    """
    table_file = Path(table_file)
    if rows is None:
        with _no_gc():
            table = parse_ptp(_read(str(table_file)), str(table_file))
        return _write_indexed(table_file, table.info.sha256, (r for group in table.pairs.values() for r in group))
    header = _ptp_header(str(table_file))
    if header is None:
        raise NcciTableError(str(table_file), None, "not a PTP table in the compact format")
    return _write_indexed(table_file, header[0]["sha256"], rows)


def _write_indexed(table_file: Path, sha256: str, rows: Iterable[Sequence[object]]) -> Path:
    path = ptp_index_path(table_file)
    with _no_gc():
        _write_index(path, sha256, rows)
    return path


def _ptp_header(file: str) -> tuple[dict[str, str], list[str]] | None:
    """The ``#`` header of a PTP table file (keys, notes), or None when it does not look like one."""
    header: dict[str, str] = {}
    notes: list[str] = []
    try:
        with open(file, encoding="utf-8") as f:
            if f.readline().rstrip("\r\n").strip() != f"#{FORMAT}":
                return None
            for line in f:
                if not line.startswith("#"):
                    break
                key, _, value = line[1:].rstrip("\r\n").partition("\t")
                if key == "note":
                    notes.append(value)
                else:
                    header[key] = value
    except (OSError, UnicodeDecodeError):
        return None
    if header.get("table") != "ptp" or not all(header.get(k) for k in _REQUIRED_HEADER):
        return None
    return header, notes


def _read_index(path: Path, sha256: str) -> _IndexedPairs | None:
    """The index at ``path`` when it was built from the rows hashed ``sha256``; None when absent or stale."""
    file = str(path)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NcciIndexError(file, None, f"cannot read the PTP index: {exc.strerror or exc}") from None
    with f:
        preamble = f.read(_INDEX_PREAMBLE.size)
        if len(preamble) < _INDEX_PREAMBLE.size or not preamble.startswith(_INDEX_MAGIC):
            raise NcciIndexError(
                file, None, "not a payerpolicy PTP index (bad magic or truncated); rebuild or delete it"
            )
        _, version, size = _INDEX_PREAMBLE.unpack(preamble)
        if version != _INDEX_VERSION:
            return None  # another format version: ignored, like a stale index
        blob = f.read(size)
        try:
            if len(blob) < size:
                raise ValueError("truncated header")
            header = json.loads(blob.decode("utf-8"))
            rows = int(header["rows"])
            specs = [(str(name), str(code), int(itemsize)) for name, code, itemsize in header["arrays"]]
            rationales = [str(r) for r in header["rationales"]]
            recorded, payload, order = str(header["sha256"]), str(header["payload_sha256"]), header["byteorder"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NcciIndexError(file, None, f"corrupt PTP index header ({exc}); rebuild or delete it") from None
        if recorded != sha256 or order != sys.byteorder:
            return None  # built from other rows (stale) or on another machine
        arrays: dict[str, array[int]] = {}
        for name, code, itemsize in specs:
            a: array[int] = array(code)
            if a.itemsize != itemsize:
                return None
            try:
                a.fromfile(f, rows)
            except EOFError:
                raise NcciIndexError(
                    file, None, f"truncated PTP index (array {name!r} is short); rebuild or delete it"
                ) from None
            arrays[name] = a
        if f.read(1):
            raise NcciIndexError(file, None, "corrupt PTP index (bytes after the arrays); rebuild or delete it")
    if set(arrays) != {"keys", "effective", "deletion", "indicator", "rationale"}:
        raise NcciIndexError(file, None, "corrupt PTP index (unexpected arrays); rebuild or delete it")
    if _index_payload(list(arrays.values())) != payload:
        raise NcciIndexError(file, None, "corrupt PTP index (arrays do not match their SHA-256); rebuild or delete it")
    return _IndexedPairs(arrays, rationales)


def _load_indexed(file: str) -> PtpTable | None:
    """The PTP table through its binary index, or None when there is no usable (current) index."""
    index = ptp_index_path(file)
    if not index.is_file():
        return None
    head = _ptp_header(file)
    if head is None:
        return None
    header, notes = head
    pairs = _read_index(index, header["sha256"])
    if pairs is None:
        return None
    info = TableInfo(file, "ptp", header["source"], header["version"], header["sha256"], pairs._n, tuple(notes))
    return PtpTable(info, pairs)


# --------------------------------------------------------------------------------------------
# Finding and loading tables (once per process)


def resolve_table(table: str, kind: str) -> str:
    """The file a rule's ``table`` parameter names: ``builtin:<kind>`` or a filesystem path.

    ``"builtin"`` means ``$PAYERPOLICY_NCCI_DIR`` when set, else the shipped curated subset. A
    directory means the ``ptp.tsv`` / ``mue.tsv`` inside it. Relative paths are taken from the
    current working directory.
    """
    if table == "builtin":
        env = os.environ.get(ENV_DIR, "").strip()
        if not env:
            return f"builtin:{kind}"
        table = env
    path = Path(table).expanduser()
    if path.is_dir():
        path = path / _FILES[kind]
    return str(path.resolve())


def _read(file: str) -> str:
    if file.startswith("builtin:"):
        name = _FILES[file.split(":", 1)[1]]
        try:
            return resources.files("payerpolicy.policies").joinpath("ncci", name).read_text("utf-8")
        except (OSError, ModuleNotFoundError) as exc:
            raise NcciTableError(
                f"payerpolicy/policies/ncci/{name}", None, f"cannot read the shipped table: {exc}"
            ) from None
    try:
        return Path(file).read_text("utf-8")
    except OSError as exc:
        raise NcciTableError(file, None, f"cannot read the NCCI table: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise NcciTableError(file, None, f"not UTF-8 text: {exc}") from None


def _display(file: str) -> str:
    return f"payerpolicy/policies/ncci/{_FILES[file.split(':', 1)[1]]}" if file.startswith("builtin:") else file


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a table is parsed.

    Parsing allocates millions of acyclic tuples; the collections they trigger would otherwise cost
    more than the parsing itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.cache
def load_ptp(file: str) -> PtpTable:
    """Load a PTP table (``builtin:ptp`` or a path), once per process.

    A path with a current binary index next to it (``ptp.idx``, see :func:`write_ptp_index`) is
    loaded through the index; otherwise the text is parsed.
    """
    if not file.startswith("builtin:"):
        table = _load_indexed(file)
        if table is not None:
            return table
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


# --------------------------------------------------------------------------------------------
# PTP rule kind


def _on_claim(lines: tuple[ClaimLine, ...]) -> list[tuple[int, ClaimLine]]:
    return [(i, line) for i, line in enumerate(lines) if line.on_claim]


def _times(line: ClaimLine, ctx: Context) -> tuple[dt.time, dt.time] | None:
    if line.origin != "services":
        return None
    service = ctx.encounter.services[line.service]
    if service.start is None or service.end is None:
        return None
    return service.start, service.end


def distinct(a: ClaimLine, b: ClaimLine, ctx: Context) -> str | None:
    """Why two lines are distinct services: ``"region"``, ``"time"`` or None.

    ``region``: both lines record regions and they share none. ``time``: both come from services
    with a start and an end, and the blocks do not overlap.
    """
    if a.regions and b.regions and not set(a.regions) & set(b.regions):
        return "region"
    ta, tb = _times(a, ctx), _times(b, ctx)
    if ta is not None and tb is not None and not (ta[0] < tb[1] and tb[0] < ta[1]):
        return "time"
    return None


class _Edit(NamedTuple):
    col1: int
    col2: int
    row: PtpRow
    why: str | None


def _certain(line: ClaimLine, ctx: Context) -> bool:
    """Before units: whether a line is sure to be billed with at least one unit."""
    if line.origin != "services" or not ctx.code_info(line.code).timed:
        return True
    minutes = line.minutes or 0
    threshold = 8 if ctx.policy.settings.unit_method == "ama_per_code" else 15
    return minutes >= threshold


def _edits(table: PtpTable, lines: tuple[ClaimLine, ...], ctx: Context) -> list[_Edit]:
    day = ctx.date_of_service
    claim = _on_claim(lines)
    out: list[_Edit] = []
    for n, (i, a) in enumerate(claim):
        for j, b in claim[n + 1 :]:
            if a.code == b.code:
                continue
            row = table.edit_on(a.code, b.code, day)
            if row is None:
                continue
            col1, col2 = (i, j) if row.column_1 == a.code else (j, i)
            why = distinct(lines[col1], lines[col2], ctx) if row.indicator == 1 else None
            out.append(_Edit(col1, col2, row, why))
    return out


def _denials(edits: list[_Edit], usable: set[int]) -> list[_Edit]:
    """Which unjustified edits deny their column-2 line, resolving chains (A denies B denies C).

    A line denied by one edit does not deny others. An edit waits while its column-1 line is the
    column 2 of another pending edit; cycles are broken in claim order.
    """
    pending = [e for e in edits if e.why is None and e.col1 in usable]
    denied: set[int] = set()
    done: list[_Edit] = []
    while True:
        pending = [e for e in pending if e.col1 not in denied and e.col2 not in denied]
        if not pending:
            return done
        targets = {e.col2 for e in pending}
        ready = [e for e in pending if e.col1 not in targets] or pending[:1]
        edit = ready[0]
        denied.add(edit.col2)
        done.append(edit)


def _ptp_message(rule: Rule, table: PtpTable, edit: _Edit, lines: tuple[ClaimLine, ...], ctx: Context) -> str:
    row = edit.row
    col1, col2 = lines[edit.col1], lines[edit.col2]
    if row.indicator == 0:
        why = "modifier indicator 0: no modifier bypasses this edit"
    else:
        why = (
            "modifier indicator 1, but no distinct service is documented (no different region recorded on both lines,"
            " no separate time blocks), so no distinct-service modifier is justified"
        )
    dates = []
    if row.effective is not None:
        dates.append(f"effective {row.effective}")
    if row.deletion is not None:
        dates.append(f"deletion date {row.deletion}")
    in_force = f" ({', '.join(dates)})" if dates else ""
    liability = rule.get("liability_note")
    return (
        f"{col2.code} is column 2 of NCCI PTP edit {row.column_1}/{row.column_2}{in_force} with {col1.code} on the same date"
        f" of service; {why}; CMS rationale: {row.rationale or 'not given'}; table: {table.info.version}."
        f" {col2.code} is not billed" + (f". {liability}" if liability else "")
    )


def screen_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Deny column-2 lines of unjustified edits whose column-1 line is sure to be billed (before units)."""
    table = ptp_table_for(rule)
    usable = {i for i, line in _on_claim(lines) if _certain(line, ctx)}
    yield from _deny(rule, table, _denials(_edits(table, lines, ctx), usable), lines, ctx)


def adjust_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Safety net after units: deny column-2 lines of unjustified edits still on the claim."""
    table = ptp_table_for(rule)
    usable = {i for i, line in _on_claim(lines) if line.units > 0}
    yield from _deny(rule, table, _denials(_edits(table, lines, ctx), usable), lines, ctx)


def _deny(
    rule: Rule, table: PtpTable, edits: list[_Edit], lines: tuple[ClaimLine, ...], ctx: Context
) -> Iterator[Change]:
    for edit in edits:
        message = _ptp_message(rule, table, edit, lines, ctx)
        yield Change(
            rule.id,
            rule.source,
            line=edit.col2,
            status="not_billable",
            set_modifiers=(),
            finding=Finding("NCCI_PTP_DENIAL", "warning", message, rule.id, rule.source, edit.col2),
            reason=message,
        )


def modifiers_ptp(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """The distinct-service modifier on the column-2 line of each justified indicator-1 edit."""
    table = ptp_table_for(rule)
    settings = ctx.policy.settings
    for edit in _edits(table, lines, ctx):
        if edit.why is None:
            continue
        line = lines[edit.col2]
        if line.units == 0 and ctx.code_info(line.code).timed:
            continue
        if any(m in line.modifiers for m in DISTINCT_MODIFIERS):
            continue  # already bypassed (e.g. by the same-region rule CORE-SAME-01): nothing to add
        modifier = settings.distinct_modifier_region if edit.why == "region" else settings.distinct_modifier_time
        basis = "a different region documented" if edit.why == "region" else "separate time blocks documented"
        row = edit.row
        yield Change(
            rule.id,
            rule.source,
            line=edit.col2,
            add_modifiers=(modifier,),
            reason=f"NCCI PTP edit {row.column_1}/{row.column_2} (modifier indicator 1; {row.rationale}; table: {table.info.version}):"
            f" {basis}, so the column-2 code takes {modifier}",
        )


# --------------------------------------------------------------------------------------------
# MUE rule kind


def apply_mue(rule: Rule, lines: tuple[ClaimLine, ...], ctx: Context) -> Iterable[Change]:
    """Units above the MUE in force on the date of service, handled per MAI."""
    table = mue_table_for(rule)
    day = ctx.date_of_service
    cap = {int(m) for m in rule["cap_mai"]}
    liability = rule.get("liability_note")
    by_code: dict[str, list[tuple[int, ClaimLine]]] = {}
    for i, line in _on_claim(lines):
        by_code.setdefault(line.code, []).append((i, line))
    for code, group in by_code.items():
        limit = table.limit_on(code, day)
        if limit is None:
            continue
        if limit.mai == 1:
            over = [[(i, line)] for i, line in group if line.units > limit.value]
            scope = "claim line"
        else:
            over = [group] if sum(line.units for _, line in group) > limit.value else []
            scope = "date of service"
        for lines_over in over:
            yield from _mue_changes(rule, table, limit, lines_over, scope, limit.mai in cap, liability)


def _mue_changes(
    rule: Rule,
    table: MueTable,
    limit: MueRow,
    group: list[tuple[int, ClaimLine]],
    scope: str,
    cap: bool,
    liability: str | None,
) -> Iterator[Change]:
    total = sum(line.units for _, line in group)
    code = group[0][1].code
    head = (
        f"{code} x{total}: above the MUE of {limit.value} per {scope} (MAI {limit.mai}, {_MAI_MEANING[limit.mai]};"
        f" rationale: {limit.rationale or 'not given'}; table: {table.info.version})"
    )
    tail = f". {liability}" if liability else ""
    if cap:
        left = limit.value
        first = True
        for i, line in group:
            keep = min(line.units, left)
            left -= keep
            status: Status | None = "not_billable" if keep == 0 else None
            what = f"capped at {limit.value} unit(s)" if limit.value else "not billable (MUE 0)"
            finding = (
                Finding("NCCI_MUE_EXCEEDED", "warning", f"{head}: {what}{tail}", rule.id, rule.source, i)
                if first
                else None
            )
            first = False
            yield Change(
                rule.id,
                rule.source,
                line=i,
                units=keep,
                status=status,
                set_modifiers=() if keep == 0 else None,
                finding=finding,
                reason=f"MUE {limit.value}",
            )
        return
    first = True
    for i, _line in group:
        finding = (
            Finding(
                "NCCI_MUE_EXCEEDED",
                "expected_denial",
                f"{head}: expected to be denied as billed{tail}",
                rule.id,
                rule.source,
                i,
            )
            if first
            else None
        )
        first = False
        yield Change(
            rule.id, rule.source, line=i, status="expected_denial", finding=finding, reason=f"above MUE {limit.value}"
        )


# --------------------------------------------------------------------------------------------
# Registry

_TABLE = Param(
    "str",
    default="builtin",
    doc='"builtin" ($PAYERPOLICY_NCCI_DIR if set, else the shipped curated subset), or a path to a table file or a directory',
)
_LIABILITY = Param("str", doc="sentence appended to every finding (e.g. who may be billed for a denied service)")

NCCI_KINDS: tuple[RuleKind, ...] = (
    RuleKind(
        "ncci_ptp",
        "NCCI procedure-to-procedure edits: the column-2 code of a pair in force on the date of service is denied unless "
        "the modifier indicator is 1 and a distinct region or time block justifies the distinct-service modifier (NCCI-01/02).",
        apply={"screen": screen_ptp, "modifiers": modifiers_ptp, "adjust": adjust_ptp},
        params={"table": _TABLE, "liability_note": _LIABILITY},
    ),
    RuleKind(
        "ncci_mue",
        "NCCI medically unlikely edits: units above the MUE in force on the date of service, per MAI (NCCI-03).",
        apply={"adjust": apply_mue},
        params={
            "table": _TABLE,
            "liability_note": _LIABILITY,
            "cap_mai": Param(
                "names",
                default=("2",),
                choices=("1", "2", "3"),
                doc="MAIs whose excess units are removed (capped at the MUE); lines over other MAIs are flagged as expected denials",
            ),
        },
    ),
)


@hookimpl
def payerpolicy_rule_kinds() -> tuple[RuleKind, ...]:
    """Register the NCCI rule kinds ``ncci_ptp`` and ``ncci_mue``."""
    return NCCI_KINDS
