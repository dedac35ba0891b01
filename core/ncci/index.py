"""The binary PTP index beside a table file: offset table per code, packed rows, rebuilt when stale."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import attrs

if TYPE_CHECKING:
    from pathlib import Path

from .table import (
    _REQUIRED_HEADER,
    FORMAT,
    PTP_COLUMNS,
    PTP_INDEX_SUFFIX,
    NcciIndexError,
    NcciTableError,
    PtpRow,
    TableInfo,
    _check_digest,
    _date,
    _display,
    _head,
    _int,
    _no_gc,
    _read,
    _split,
    _temporary,
)

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
    from pathlib import Path

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
    import hashlib  # imported where a table of one's own is indexed or checked (not for the shipped ones)

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
    from pathlib import Path

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
    fd, tmp = _temporary(path)
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
    from pathlib import Path

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
    from pathlib import Path

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
    import hashlib

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


def _rank(row: PtpRow) -> tuple[dt.date, int]:
    """Sort key among rows in force: latest effective date first, then the strictest indicator."""
    return (row.effective or dt.date.min, -row.indicator)


@attrs.frozen(eq=False)
class PtpTable:
    """PTP edits keyed by (column 1, column 2); every key holds all its rows (duplicates kept)."""

    info: TableInfo
    pairs: Mapping[tuple[str, str], tuple[PtpRow, ...]]
    _codes: frozenset[str] | None = attrs.field(init=False, default=None, repr=False)

    def codes(self) -> frozenset[str]:
        """Every code in column 1 or column 2 of some row: a pair of codes not both in it has no edit.

        Worked out on first use and kept (a table does not change once loaded).
        """
        codes = self._codes
        if codes is None:
            pairs = self.pairs
            if type(pairs) is _IndexedPairs:
                codes = frozenset(pairs._codes)
            else:
                codes = frozenset(code for pair in pairs for code in pair)
            object.__setattr__(self, "_codes", codes)
        return codes

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
