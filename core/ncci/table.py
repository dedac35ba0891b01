"""The NCCI table file format (``payerpolicy-ncci 1``): row types, parsing with checks, writing."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import attrs

if TYPE_CHECKING:
    from pathlib import Path

from ..evaluation.collector import collector_paused
from ..evaluation.errors import PayerPolicyError
from ..evaluation.shipped import read_package_text

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


@attrs.frozen(eq=False)
class MueTable:
    """MUE rows keyed by code."""

    info: TableInfo
    codes: Mapping[str, tuple[MueRow, ...]]

    def limit_on(self, code: str, day: dt.date) -> MueRow | None:
        """The MUE of ``code`` in force on ``day`` (latest effective date wins), or None."""
        rows = self.codes.get(code)
        if not rows:
            return None
        best: MueRow | None = None
        for row in rows:
            effective, deletion = row.effective, row.deletion
            if (effective is not None and day < effective) or (deletion is not None and day > deletion):
                continue  # not in force on ``day`` (MueRow.in_force)
            if best is None or (effective or dt.date.min) >= (best.effective or dt.date.min):
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


#: Up to this many bytes, SHA-256 is computed by the interpreter's own module, not OpenSSL's.
_SMALL = 1 << 20


def _sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data``, hex: the same digest from either implementation.

    For a small table (the shipped ones are a few kilobytes) the interpreter's own SHA-256
    (``_sha256``; ``_sha2`` from Python 3.12) answers, which spares a cold ``payerpolicy check``
    loading OpenSSL through :mod:`hashlib` (~2 ms); a large one, or an interpreter without that
    module, goes through :mod:`hashlib` (OpenSSL is several times faster on big inputs).
    """
    if len(data) <= _SMALL:
        for name in ("_sha256", "_sha2"):
            try:
                module = __import__(name)
            except ImportError:
                continue
            sha256 = getattr(module, "sha256", None)
            if sha256 is not None:
                return str(sha256(data).hexdigest())
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _check_digest(lines: list[str], n: int, header: Mapping[str, str], file: str) -> None:
    """The column line and rows (``lines[n:]``) must hash to the header's ``#sha256``."""
    data = "\n".join(lines[n:]) + "\n"  # one string: hashing 2.6 million lines one by one is slow
    if _sha256_hex(data.encode("utf-8")) != header["sha256"]:
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
    import hashlib
    from pathlib import Path

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
    fd, tmp = _temporary(path)
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


def _temporary(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` with the mode ``open()`` would give it (0666 less the umask).

    ``mkstemp`` makes its files 0600; renamed into place, a table would be unreadable to the other
    users of a shared ``$PAYERPOLICY_NCCI_DIR``.
    """
    import tempfile  # only when writing (a cold `payerpolicy check` never does)

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0o022)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


def _read(file: str) -> str:
    if file.startswith("builtin:"):
        name = _FILES[file.split(":", 1)[1]]
        try:
            return read_package_text("payerpolicy.policies", "ncci", name)
        except (OSError, ModuleNotFoundError) as exc:
            raise NcciTableError(
                f"payerpolicy/policies/ncci/{name}", None, f"cannot read the shipped table: {exc}"
            ) from None
    from pathlib import Path  # a table of one's own (the shipped ones are read without pathlib)

    try:
        return Path(file).read_text("utf-8")
    except OSError as exc:
        raise NcciTableError(file, None, f"cannot read the NCCI table: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise NcciTableError(file, None, f"not UTF-8 text: {exc}") from None


def _display(file: str) -> str:
    return f"payerpolicy/policies/ncci/{_FILES[file.split(':', 1)[1]]}" if file.startswith("builtin:") else file


#: Parsing allocates millions of acyclic tuples: the collections they would trigger cost more than the parsing.
_no_gc = collector_paused
