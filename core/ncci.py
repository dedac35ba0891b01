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
in force on a day when ``effective <= day <= deletion`` (the deletion date is taken as the last day
the edit applies; no CMS file documentation found so far says whether it is the last day in effect
or the first day not in effect, so this reading is unconfirmed). A table is read once per process
(:func:`load_ptp` / :func:`load_mue`, cached by path): the shipped subset into dicts, a table file
into the index arrays below.

**Binary PTP index.** A full PTP table (2.6 million rows) is too big to parse per process, so the
importer (and :func:`write_ptp_index`, or ``payerpolicy ncci index <table>``, on any ``ptp.tsv``)
writes ``ptp.idx`` next to it; the text table stays the readable, curated source and the index is
derived from it. Format version 2: a magic line, the version, a JSON header (the table's
``#sha256``, its file size and modification time, the row count, the byte order, the code and
rationale lists, the SHA-256 of the arrays) and four arrays in native byte order. Codes are numbered;
rows are grouped by the lower code number of their pair (a counting sort, no sort over all rows):
``start`` is the offset table (code -> its slice of rows), ``pair`` holds the other code's number
times 2 plus the direction (sorted within a slice, rows of one key in file order), ``record`` one
64-bit word per row (effective day << 24 | deletion day << 2 | indicator code) and ``rationale``
the rationale numbers. A lookup is two dict lookups, one bisection of one slice (a few hundred
entries) and a look at the matching records; only the winning row becomes a :class:`PtpRow`. The
same selection rules apply as on the text form (in force on the day, indicator 9 ignored, latest
effective date, then indicator 0 before 1, then the row whose column 1 is the first code asked
for, then file order).

Trust: the index is used when it records this table's ``#sha256``, format version and byte order;
when the table file's size or modification time differ from the ones recorded (a copy), the rows
are hashed once more before the index is trusted, so rows edited behind the index fail with the
table's own "rows do not match the header's sha256" error. A stale index (other rows, an older
format version) is rebuilt from the text and rewritten (left alone if the directory is read-only);
a table without an index is parsed into the same arrays in memory (nothing written). An index that
is current but truncated or corrupt (bad magic, short arrays, arrays not matching their SHA-256)
raises :class:`NcciIndexError` naming the file. The shipped curated subset has no index (it is
parsed into dicts).

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
import itertools
import json
import os
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
        pairs = self.pairs
        if type(pairs) is _IndexedPairs:
            return pairs.edit_on(code_a, code_b, day)
        best: PtpRow | None = None
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


def _head(lines: Sequence[str], file: str, kind: str) -> tuple[dict[str, str], list[str], int]:
    """Check the format line, the ``#`` header and the column line; return (header, notes, column line index)."""
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
    return header, notes, n


def _check_digest(lines: list[str], n: int, header: Mapping[str, str], file: str) -> None:
    """The column line and rows (``lines[n:]``) must hash to the header's ``#sha256``."""
    data = "\n".join(lines[n:]) + "\n"  # one string: hashing 2.6 million lines one by one is slow
    if hashlib.sha256(data.encode("utf-8")).hexdigest() != header["sha256"]:
        raise NcciTableError(file, None, "the rows do not match the header's sha256 (file edited or truncated?)")


def _split(text: str, file: str, kind: str) -> tuple[dict[str, str], list[str], list[tuple[int, list[str]]]]:
    """Return (header, notes, [(line number, fields)]) and check format, columns and hash."""
    lines = text.splitlines()
    header, notes, n = _head(lines, file, kind)
    _check_digest(lines, n, header, file)
    width = len(_COLUMNS[kind])
    rows: list[tuple[int, list[str]]] = []
    for offset, line in enumerate(lines[n + 1 :], start=n + 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != width:
            raise NcciTableError(file, offset, f"expected {width} tab-separated fields, found {len(fields)}")
        rows.append((offset, fields))
    return header, notes, rows


def _parse_ptp_columns(text: str, file: str) -> tuple[dict[str, str], list[str], _Columns]:
    """Parse a PTP table in the compact format straight into columns (for the index): no row objects.

    Same checks and messages as :func:`parse_ptp`. Rows whose fields were all seen before take a
    fast path (six dict lookups); any other row is checked field by field.
    """
    lines = text.splitlines()
    header, notes, n = _head(lines, file, "ptp")
    _check_digest(lines, n, header, file)
    cols = _Columns()
    ids: dict[str, int] = {}
    effective: dict[str, int] = {}
    deletion: dict[str, int] = {}
    indicators = {"0": 0, "1": 1, "9": 9}
    rationales: dict[str, int] = {}
    a1, a2 = cols.column_1.append, cols.column_2.append
    ae, ad, ak, ar = cols.effective.append, cols.deletion.append, cols.indicator.append, cols.rationale.append
    for lineno, line in enumerate(itertools.islice(lines, n + 1, None), start=n + 2):
        try:
            f1, f2, f3, f4, f5, f6 = line.split("\t")
            c1, c2, e, d, k, r = ids[f1], ids[f2], effective[f3], deletion[f4], indicators[f5], rationales[f6]
        except (ValueError, KeyError):
            if not line.strip():
                continue
            f = line.split("\t")
            if len(f) != len(PTP_COLUMNS):
                raise NcciTableError(
                    file, lineno, f"expected {len(PTP_COLUMNS)} tab-separated fields, found {len(f)}"
                ) from None
            code_1, code_2 = f[0].strip(), f[1].strip()
            if not code_1 or not code_2:
                raise NcciTableError(file, lineno, "column 1 and column 2 must both hold a code") from None
            eff = _date(f[2], file, lineno, "effective")
            dele = _date(f[3], file, lineno, "deletion")
            k = _int(f[4], file, lineno, "indicator", (0, 1, 9))
            c1 = ids[f[0]] = cols.code(code_1)
            c2 = ids[f[1]] = cols.code(code_2)
            e = effective[f[2]] = eff.toordinal() if eff else 0
            d = deletion[f[3]] = dele.toordinal() if dele else _NO_DELETION
            r = rationales[f[5]] = cols.why(f[5].strip())
        a1(c1)
        a2(c2)
        ae(e)
        ad(d)
        ak(k)
        ar(r)
    return header, notes, cols


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
    columns = _COLUMNS[kind]
    data: list[str] = []
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a {kind} row has {len(columns)} values, found {len(row)}: {row!r}")
        data.append("\t".join(_cell(v) for v in row))
    block = ("".join(f"{line}\n" for line in data)).encode("utf-8")
    return _write_table_blocks(path, kind, [block], len(data), source=source, version=version, notes=notes)


def _write_table_blocks(
    path: str | Path,
    kind: str,
    blocks: Sequence[bytes],
    rows: int,
    *,
    source: str,
    version: str,
    notes: Sequence[str] = (),
) -> TableInfo:
    """Write a table whose ``rows`` rows come as blocks of UTF-8 lines, each line ending in a newline.

    The caller guarantees the cells hold no tabs or line breaks (the importer builds them that way).
    Atomic: a temporary file, then a rename.
    """
    path = Path(path)
    column_line = ("\t".join(_COLUMNS[kind]) + "\n").encode("utf-8")
    h = hashlib.sha256(column_line)
    for block in blocks:
        h.update(block)
    digest = h.hexdigest()
    head = [f"#{FORMAT}", f"#table\t{kind}", f"#source\t{_cell(source)}", f"#version\t{_cell(version)}"]
    head += [f"#note\t{_cell(n)}" for n in notes]
    head.append(f"#sha256\t{digest}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write("".join(f"{line}\n" for line in head).encode("utf-8"))
            out.write(column_line)
            for block in blocks:
                out.write(block)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return TableInfo(str(path), kind, source, version, digest, rows, tuple(notes))


# --------------------------------------------------------------------------------------------
# Binary PTP index

_INDEX_MAGIC = b"PPNCCIDX"
#: How to fix an unreadable index (the tail of every :class:`NcciIndexError` about one).
_REBUILD = "rebuild it with `payerpolicy ncci index <table>` or delete it"
#: Version 2: per-column-1 offset table (version 1 bisected one sorted array of 2.6 million keys).
_INDEX_VERSION = 2
_INDEX_PREAMBLE = struct.Struct("<8sII")  # magic, format version, JSON header length
#: The arrays of an index, in file order.
_INDEX_ARRAYS = ("start", "pair", "record", "rationale")
#: The deletion day stored for a row without a deletion date, so that a row is in force on ``day``
#: exactly when ``effective <= day <= deletion`` (effective 0 = no effective date); above the
#: ordinal of 9999-12-31 and within 22 bits.
_NO_DELETION = (1 << 22) - 1


def ptp_index_path(table_file: str | Path) -> Path:
    """Where the binary index of a PTP table file lives (``ptp.tsv`` -> ``ptp.idx``)."""
    return Path(table_file).with_suffix(PTP_INDEX_SUFFIX)


def _typecode(count: int) -> str:
    """The smallest unsigned array typecode that holds the numbers ``0 .. count - 1``."""
    return "B" if count <= 0x100 else "H" if count <= 0x10000 else "I"


class _Columns:
    """A PTP table as parallel columns in file order (what an import or a text parse builds).

    Codes and rationales are numbered in order of first appearance (``codes``, ``rationales``);
    days are ``date.toordinal()`` with effective 0 = none and deletion :data:`_NO_DELETION` = none.
    """

    __slots__ = (
        "code_ids",
        "codes",
        "column_1",
        "column_2",
        "deletion",
        "effective",
        "indicator",
        "rationale",
        "rationale_ids",
        "rationales",
    )

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.code_ids: dict[str, int] = {}
        self.rationales: list[str] = []
        self.rationale_ids: dict[str, int] = {}
        self.column_1: array[int] = array("I")
        self.column_2: array[int] = array("I")
        self.effective: array[int] = array("i")
        self.deletion: array[int] = array("i")
        self.indicator: array[int] = array("b")
        self.rationale: array[int] = array("I")

    def __len__(self) -> int:
        return len(self.column_1)

    def code(self, code: str) -> int:
        """The number of a code (numbered on first use)."""
        number = self.code_ids.get(code)
        if number is None:
            number = self.code_ids[code] = len(self.codes)
            self.codes.append(code)
        return number

    def why(self, rationale: str) -> int:
        """The number of a rationale text (numbered on first use)."""
        number = self.rationale_ids.get(rationale)
        if number is None:
            number = self.rationale_ids[rationale] = len(self.rationales)
            self.rationales.append(rationale)
        return number

    def add(self, row: Sequence[object]) -> None:
        """Append one row given as the values of :data:`PTP_COLUMNS` (dates as ``date`` or None)."""
        c1, c2, effective, deletion, indicator, rationale = row
        self.column_1.append(self.code(str(c1).strip()))
        self.column_2.append(self.code(str(c2).strip()))
        self.effective.append(effective.toordinal() if isinstance(effective, dt.date) else 0)
        self.deletion.append(deletion.toordinal() if isinstance(deletion, dt.date) else _NO_DELETION)
        self.indicator.append(int(str(indicator)))
        self.rationale.append(self.why(str(rationale).strip()))


class _Layout(NamedTuple):
    """The index form of a table: code and rationale lists and the arrays of :data:`_INDEX_ARRAYS`."""

    codes: list[str]
    rationales: list[str]
    arrays: dict[str, array[int]]


def _layout(cols: _Columns) -> _Layout:
    """Arrange the rows for lookups of a code pair in either direction, without sorting all rows.

    Rows are grouped by the lower code number of their pair (a counting sort: one bucket per code);
    ``start[c] .. start[c + 1]`` are the rows whose lower code number is ``c``, ordered by
    ``pair = other code number * 2 + direction`` (direction 1: the lower code is column 2), rows of
    one key in file order. Each bucket holds ``pair`` and the row number packed in one int and is
    sorted on its own (a few hundred rows). One bisection of the ``pair`` array within one slice
    finds both directions; the dates and indicator of a row are one 64-bit record (see
    :data:`_REC_EFFECTIVE`), so a lookup touches one place in memory per row.
    """
    n = len(cols)
    ncodes = len(cols.codes)
    shift = max(n, 1).bit_length()
    mask = (1 << shift) - 1
    buckets: list[list[int]] = [[] for _ in range(ncodes)]
    appends = [bucket.append for bucket in buckets]
    for r, c1, c2 in zip(range(n), cols.column_1, cols.column_2, strict=True):
        if c1 <= c2:
            appends[c1]((c2 << 1) << shift | r)
        else:
            appends[c2]((c1 << 1 | 1) << shift | r)
    start: array[int] = array("I", [0])
    order: list[int] = []
    for bucket in buckets:
        bucket.sort()
        order += bucket
        start.append(len(order))
    del buckets, appends
    pairs = array(_typecode(2 * ncodes), [v >> shift for v in order])
    rows = [v & mask for v in order]
    del order
    code = _REC_INDICATOR
    payload = [
        e << _REC_EFFECTIVE | d << _REC_DELETION | code[k]
        for e, d, k in zip(cols.effective, cols.deletion, cols.indicator, strict=True)
    ]
    records = array("Q", map(payload.__getitem__, rows))
    del payload
    rationale = array(_typecode(len(cols.rationales)), map(cols.rationale.__getitem__, rows))
    arrays = {"start": start, "pair": pairs, "record": records, "rationale": rationale}
    return _Layout(list(cols.codes), list(cols.rationales), arrays)


#: The fields of a row a lookup needs are one unsigned 64-bit record: ``effective << 24 | deletion << 2
#: | indicator code``; days are ``date.toordinal()`` in 22 bits (any date up to 9999-12-31; effective
#: 0 = none, deletion :data:`_NO_DELETION` = none), indicator codes 0, 1 and 2 (= indicator 9).
_REC_EFFECTIVE = 24
_REC_DELETION = 2
_REC_DAY = (1 << 22) - 1
_REC_INDICATOR = {0: 0, 1: 1, 9: 2}
_INDICATOR = (0, 1, 9)

#: ``PtpRow`` from a tuple of its values, without the keyword-argument handling of ``PtpRow(...)``.
_new_row = tuple.__new__
#: At most this many :class:`PtpRow` objects returned by lookups are kept for reuse (about 3 MB);
#: claims repeat the same code pairs, so the same rows win again and again.
_BUILT_ROWS = 16384


class _IndexedPairs(Mapping[tuple[str, str], tuple[PtpRow, ...]]):
    """The ``pairs`` mapping of a :class:`PtpTable` backed by the index arrays (rows built on demand).

    A lookup is two dict lookups (code -> number), the lower code's slice of rows from the offset
    table, and one bisection of that slice only (a few hundred records, not the whole table), which
    finds the rows of both directions of the pair.
    """

    __slots__ = (
        "_built",
        "_codes",
        "_count",
        "_days",
        "_ids",
        "_n",
        "pair",
        "rationale",
        "rationales",
        "record",
        "start",
    )

    def __init__(self, layout: _Layout) -> None:
        arrays = layout.arrays
        self._codes = tuple(layout.codes)
        self._ids = {code: n for n, code in enumerate(self._codes)}
        self.start = arrays["start"]
        self.pair = arrays["pair"]
        self.record = arrays["record"]
        self.rationale = arrays["rationale"]
        self.rationales = tuple(layout.rationales)
        self._n = len(self.record)
        self._count: int | None = None
        self._days: dict[int, dt.date | None] = {0: None, _NO_DELETION: None}
        self._built: dict[int, PtpRow] = {}  # rows returned by edit_on, by record number (bounded)

    def find(self, column_1: str, column_2: str) -> tuple[PtpRow, ...]:
        """Every row with this key, in file order."""
        c1, c2 = self._ids.get(column_1), self._ids.get(column_2)
        if c1 is None or c2 is None:
            return ()
        low, want = (c1, c2 << 1) if c1 <= c2 else (c2, c1 << 1 | 1)
        pair, hi = self.pair, self.start[low + 1]
        i = bisect_left(pair, want, self.start[low], hi)
        rows = []
        while i < hi and pair[i] == want:
            rows.append(self._row(c1, c2, i))
            i += 1
        return tuple(rows)

    def edit_on(self, code_a: str, code_b: str, day: dt.date) -> PtpRow | None:
        """:meth:`PtpTable.edit_on` on the records: only the winning row becomes a :class:`PtpRow`.

        Rank of a row in force (indicator 9 ignored): latest effective date, then the strictest
        indicator (0 before 1), then column 1 = ``code_a`` (the text form sees those rows first),
        then file order.
        """
        ids = self._ids
        a = ids.get(code_a)
        b = ids.get(code_b)
        if a is None or b is None:
            return None
        if a <= b:
            low, other, first = a, b << 1, 0  # rows with column 1 = code_a have direction ``first``
        else:
            low, other, first = b, a << 1, 1
        start = self.start
        lo, hi = start[low], start[low + 1]
        if lo == hi:
            return None
        pair = self.pair
        i = bisect_left(pair, other, lo, hi)
        last = other + 1  # the pair's rows in both directions: ``other`` and ``other + 1``
        if i == hi or pair[i] > last:
            return None
        record = self.record
        d = day.toordinal()
        best = -1
        rank = -1
        while i < hi and (p := pair[i]) <= last:
            v = record[i]
            k = v & 3
            e = v >> _REC_EFFECTIVE
            if k != 2 and e <= d <= (v >> _REC_DELETION & _REC_DAY):
                r = (e << 2) | (k == 0) << 1 | ((p & 1) == first)
                if r > rank:
                    best, rank = i, r
            i += 1
        if best < 0:
            return None
        row = self._built.get(best)
        if row is None:
            if len(self._built) >= _BUILT_ROWS:
                self._built.clear()
            if pair[best] & 1:
                row = self._built[best] = self._row(other >> 1, low, best)
            else:
                row = self._built[best] = self._row(low, other >> 1, best)
        return row

    def _row(self, c1: int, c2: int, k: int) -> PtpRow:
        v = self.record[k]
        days = self._days
        e, d = v >> _REC_EFFECTIVE, v >> _REC_DELETION & _REC_DAY
        effective = days[e] if e in days else days.setdefault(e, dt.date.fromordinal(e))
        deletion = days[d] if d in days else days.setdefault(d, dt.date.fromordinal(d))
        return _new_row(
            PtpRow,
            (
                self._codes[c1],
                self._codes[c2],
                effective,
                deletion,
                _INDICATOR[v & 3],
                self.rationales[self.rationale[k]],
            ),
        )

    def __getitem__(self, key: tuple[str, str]) -> tuple[PtpRow, ...]:
        rows = self.find(*key)
        if not rows:
            raise KeyError(key)
        return rows

    def __iter__(self) -> Iterator[tuple[str, str]]:
        codes, start, pair = self._codes, self.start, self.pair
        for low in range(len(codes)):
            previous = -1
            for k in range(start[low], start[low + 1]):
                p = pair[k]
                if p != previous:
                    previous = p
                    yield (codes[p >> 1], codes[low]) if p & 1 else (codes[low], codes[p >> 1])

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count


def _index_payload(arrays: Iterable[array[int]]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(memoryview(a))
    return h.hexdigest()


def _stat(file: str | Path) -> list[int]:
    """Size and modification time (ns) of a table file, as recorded in its index."""
    st = os.stat(file)
    return [st.st_size, st.st_mtime_ns]


def _write_index_file(path: Path, sha256: str, layout: _Layout, table_stat: list[int]) -> None:
    """Write an index (atomically: a temporary file, then a rename)."""
    arrays = [layout.arrays[name] for name in _INDEX_ARRAYS]
    header = {
        "format": "payerpolicy-ncci ptp index",
        "sha256": sha256,
        "table": table_stat,
        "rows": len(layout.arrays["record"]),
        "byteorder": sys.byteorder,
        "codes": layout.codes,
        "rationales": layout.rationales,
        "arrays": [[name, a.typecode, a.itemsize, len(a)] for name, a in zip(_INDEX_ARRAYS, arrays, strict=True)],
        "payload_sha256": _index_payload(arrays),
    }
    blob = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
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


def write_ptp_index(table_file: str | Path, rows: Iterable[Sequence[object]] | None = None) -> Path:
    """Write the binary index of a PTP table file next to it (``ptp.idx``), atomically; return its path.

    ``rows`` (the table's rows in file order, as given to :func:`write_table`) saves re-reading the
    table; without it the table is parsed (and checked against its ``#sha256``) first.
    """
    table_file = Path(table_file)
    path = ptp_index_path(table_file)
    with _no_gc():
        if rows is None:
            header, _, cols = _parse_ptp_columns(_read(str(table_file)), str(table_file))
        else:
            head = _ptp_header(str(table_file))
            if head is None:
                raise NcciTableError(str(table_file), None, "not a PTP table in the compact format")
            header = head[0]
            cols = _Columns()
            for row in rows:
                cols.add(row)
        _write_index_file(path, header["sha256"], _layout(cols), _stat(table_file))
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


def _rows_match(file: str, sha256: str) -> bool:
    """Whether the bytes after a table file's ``#`` header hash to ``sha256`` (file as written by us)."""
    try:
        data = Path(file).read_bytes()
    except OSError:
        return False
    pos = 0
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            return False
        pos = end + 1
    return hashlib.sha256(memoryview(data)[pos:]).hexdigest() == sha256


def _read_index(path: Path, sha256: str) -> tuple[_IndexedPairs, list[int]] | None:
    """The index at ``path`` and the table size/mtime it recorded; None when it is stale.

    Stale: built from rows not hashed ``sha256``, by another format version or on another byte order.
    Raises :class:`NcciIndexError` when the file is not an index or is truncated or corrupt.
    """
    file = str(path)
    try:
        f = path.open("rb")
    except OSError as exc:
        raise NcciIndexError(file, None, f"cannot read the PTP index: {exc.strerror or exc}") from None
    with f:
        preamble = f.read(_INDEX_PREAMBLE.size)
        if len(preamble) < _INDEX_PREAMBLE.size or not preamble.startswith(_INDEX_MAGIC):
            raise NcciIndexError(file, None, f"not a payerpolicy PTP index (bad magic or truncated); {_REBUILD}")
        _, version, size = _INDEX_PREAMBLE.unpack(preamble)
        if version != _INDEX_VERSION:
            return None  # another format version: stale, rebuilt by the caller
        blob = f.read(size)
        try:
            if len(blob) < size:
                raise ValueError("truncated header")
            header = json.loads(blob.decode("utf-8"))
            rows = int(header["rows"])
            specs = [(str(name), str(code), int(itemsize), int(n)) for name, code, itemsize, n in header["arrays"]]
            codes = [str(c) for c in header["codes"]]
            rationales = [str(r) for r in header["rationales"]]
            table_stat = [int(v) for v in header["table"]]
            recorded, payload, order = str(header["sha256"]), str(header["payload_sha256"]), header["byteorder"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NcciIndexError(file, None, f"corrupt PTP index header ({exc}); {_REBUILD}") from None
        if recorded != sha256 or order != sys.byteorder:
            return None  # built from other rows (stale) or on another machine
        expected = {"start": len(codes) + 1, "pair": rows, "record": rows, "rationale": rows}
        if [s[0] for s in specs] != list(_INDEX_ARRAYS) or any(n != expected[name] for name, _, _, n in specs):
            raise NcciIndexError(file, None, f"corrupt PTP index (unexpected arrays); {_REBUILD}")
        arrays: dict[str, array[int]] = {}
        for name, code, itemsize, n in specs:
            try:
                a: array[int] = array(code)
            except ValueError:
                raise NcciIndexError(file, None, f"corrupt PTP index (array type {code!r}); {_REBUILD}") from None
            if a.itemsize != itemsize:
                return None  # built where the C types have other sizes: rebuilt by the caller
            try:
                a.fromfile(f, n)
            except EOFError:
                raise NcciIndexError(file, None, f"truncated PTP index (array {name!r} is short); {_REBUILD}") from None
            arrays[name] = a
        if f.read(1):
            raise NcciIndexError(file, None, f"corrupt PTP index (bytes after the arrays); {_REBUILD}")
    if _index_payload(arrays.values()) != payload:
        raise NcciIndexError(file, None, f"corrupt PTP index (arrays do not match their SHA-256); {_REBUILD}")
    start = arrays["start"]
    if start[0] != 0 or start[-1] != rows:
        raise NcciIndexError(file, None, f"corrupt PTP index (offset table); {_REBUILD}")
    return _IndexedPairs(_Layout(codes, rationales, arrays)), table_stat


def _load_path(file: str) -> PtpTable:
    """A PTP table file through its index; the index is rebuilt when stale, built in memory when absent.

    The index is trusted when it records this table's ``#sha256`` and the file's current size and
    modification time; when only the size or time differ (a copy), the rows are hashed again first.
    """
    head = _ptp_header(file)
    index = ptp_index_path(file)
    rebuild = False
    if head is not None and index.is_file():
        header, notes = head
        found = _read_index(index, header["sha256"])
        if found is not None:
            pairs, table_stat = found
            if table_stat == _stat(file) or _rows_match(file, header["sha256"]):
                info = TableInfo(
                    file, "ptp", header["source"], header["version"], header["sha256"], pairs._n, tuple(notes)
                )
                return PtpTable(info, pairs)
        rebuild = True  # stale: built from other rows, by another version, or the rows were edited
    with _no_gc():
        header, notes, cols = _parse_ptp_columns(_read(file), _display(file))
        layout = _layout(cols)
        del cols
    if rebuild:
        with contextlib.suppress(OSError):  # a read-only directory: the table still loads from its text
            _write_index_file(index, header["sha256"], layout, _stat(file))
    pairs = _IndexedPairs(layout)
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
