"""Import CMS's own NCCI files into the compact tables the ``ncci_ptp`` / ``ncci_mue`` kinds load.

:func:`import_cms_files` reads

* the practitioner **PTP** files as CMS publishes them (one or more parts, f1-f4): tab-delimited
  text with copyright/header lines first, then rows ``Column 1, Column 2, *=in existence prior to
  1996, Effective Date (YYYYMMDD), Deletion Date (YYYYMMDD or * = no data), Modifier (0/1/9), PTP
  Edit Rationale``;
* the practitioner **MUE** CSV: header lines, then ``HCPCS/CPT Code, Practitioner Services MUE
  Values, MUE Adjudication Indicator ("2 Date of Service Edit: Policy"), MUE Rationale``;

and writes ``ptp.tsv`` and ``mue.tsv`` (format ``payerpolicy-ncci 1``, see :mod:`payerpolicy.ncci`)
and, with ``index=True``, the PTP table's binary index ``ptp.idx`` (:func:`payerpolicy.ncci.write_ptp_index`)
into ``out_dir``, recording the source file names, their SHA-256 and a version. Everything is read
and checked first; the two tables are then written to a temporary directory and moved into place,
so a bad input leaves nothing half-written. Errors name the file and line.

CMS's deletion date is taken as the last day the edit applies, like the compact format's (unconfirmed:
no CMS file documentation found says whether it is the last day in effect or the first day not in effect).

Speed: each distinct code, date and rationale text is checked once and remembered, so most rows cost
one ``split`` and a few dict lookups, and go straight into the index columns (no object per row);
the index groups rows by code with a counting sort (see :func:`payerpolicy.ncci._layout`).
The full CMS files are licensed downloads: import your own copy, never commit it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..evaluation.vocab import CODE_PATTERN
from .index import _NO_DELETION, _Columns, _layout, _stat, _write_index_file, ptp_index_path
from .table import MUE_FILE, PTP_FILE, NcciTableError, TableInfo, _no_gc, _write_table_blocks, write_table

__all__ = ["import_cms_files", "read_cms_mue", "read_cms_ptp"]

PtpValues = tuple[str, str, dt.date | None, dt.date | None, int, str]
MueValues = tuple[str, int, int, str, dt.date | None, dt.date | None]

_MUE_DATE = re.compile(r"(\d{2})[-_](\d{2})[-_](\d{4})")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ymd(text: str, file: str, lineno: int, column: str, *, star: bool) -> dt.date | None:
    text = text.strip()
    if star and text in ("*", ""):
        return None
    if len(text) == 8 and text.isdigit():
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    expected = "a date YYYYMMDD" + (" or *" if star else "")
    raise NcciTableError(file, lineno, f"{column}: expected {expected}, found {text!r}")


def _is_code(text: str) -> bool:
    return bool(CODE_PATTERN.match(text.strip().upper()))


class _PtpReader:
    """Reads CMS PTP files into index columns and the compact table's text, in one pass per file.

    Codes, dates, rationales are validated once per distinct raw field and remembered, so a row
    whose fields were all seen before costs a ``split`` and seven dict lookups (no objects per row).
    Any other line (header lines, a new code or date, a bad row) goes through :meth:`_check`, which
    validates it field by field and names the file and line of bad input.
    """

    def __init__(self) -> None:
        self.cols = _Columns()
        self.ids: dict[str, int] = {}
        self.effective: dict[str, tuple[int, str]] = {}
        self.deletion: dict[str, tuple[int, str]] = {}
        self.rationales: dict[str, tuple[int, str]] = {}

    def read(self, path: Path) -> bytes:
        """Add one CMS PTP file's rows; return them as compact-table lines (UTF-8, each ending in a newline)."""
        file = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise NcciTableError(file, None, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        del raw
        lines = text.splitlines()
        del text
        first = next((n for n, line in enumerate(lines) if _is_header(line)), None)
        if first is None:
            raise NcciTableError(file, None, "no header line starting with 'Column 1' (is this a CMS PTP file?)")
        cols = self.cols
        codes = cols.codes
        before = len(cols)
        ids, effective, deletion, rationales = self.ids, self.effective, self.deletion, self.rationales
        a1, a2 = cols.column_1.append, cols.column_2.append
        ae, ad, ak, ar = cols.effective.append, cols.deletion.append, cols.indicator.append, cols.rationale.append
        out: list[str] = []
        o = out.append
        for lineno, line in enumerate(itertools.islice(lines, first + 1, None), start=first + 2):
            try:
                f1, f2, f3, f4, f5, f6, f7 = line.split("\t")
                c1, c2 = ids[f1], ids[f2]
                _PRIOR[f3]
                (e, e_iso), (d, d_iso), k, (r, why) = effective[f4], deletion[f5], _MODIFIER[f6], rationales[f7]
            except (ValueError, KeyError):
                row = self._check(line, file, lineno, len(cols) > before)
                if row is None:
                    continue
                c1, c2, e, e_iso, d, d_iso, k, r, why = row
            a1(c1)
            a2(c2)
            ae(e)
            ad(d)
            ak(k)
            ar(r)
            o(f"{codes[c1]}\t{codes[c2]}\t{e_iso}\t{d_iso}\t{k}\t{why}\n")
        if len(cols) == before:
            raise NcciTableError(file, None, "no edit rows after the header")
        return "".join(out).encode("utf-8")

    def _check(
        self, line: str, file: str, lineno: int, rows_seen: bool
    ) -> tuple[int, int, int, str, int, str, int, int, str] | None:
        """Validate one line field by field; None for a line to skip (blank, header continuation)."""
        if not line.strip():
            return None
        raw = line.split("\t")
        fields = [f.strip() for f in raw]
        if not _is_code(fields[0]):
            if rows_seen:
                raise NcciTableError(file, lineno, f"expected a row starting with a code, found {fields[0]!r}")
            return None  # the header's continuation lines
        if len(fields) < 7:
            raise NcciTableError(
                file, lineno, f"expected 7 tab-separated columns (a truncated file?), found {len(fields)}"
            )
        if not _is_code(fields[1]):
            raise NcciTableError(file, lineno, f"Column 2: expected a code, found {fields[1]!r}")
        if fields[2] not in ("", "*"):
            raise NcciTableError(
                file, lineno, f"'*=in existence prior to 1996': expected * or nothing, found {fields[2]!r}"
            )
        eff = _ymd(fields[3], file, lineno, "Effective Date", star=False)
        dele = _ymd(fields[4], file, lineno, "Deletion Date", star=True)
        if fields[5] not in ("0", "1", "9"):
            raise NcciTableError(file, lineno, f"Modifier: expected 0, 1 or 9, found {fields[5]!r}")
        why = " ".join(" ".join(fields[6:]).split())
        cols = self.cols
        c1 = self.ids[raw[0]] = cols.code(fields[0].upper())
        c2 = self.ids[raw[1]] = cols.code(fields[1].upper())
        assert eff is not None  # star=False
        e, e_iso = self.effective[raw[3]] = (eff.toordinal(), eff.isoformat())
        d, d_iso = self.deletion[raw[4]] = (dele.toordinal(), dele.isoformat()) if dele else (_NO_DELETION, "")
        r = cols.why(why)
        if len(raw) == 7:
            self.rationales[raw[6]] = (r, why)
        return c1, c2, e, e_iso, d, d_iso, int(fields[5]), r, why

    def rows(self) -> list[PtpValues]:
        """Every row read so far as (col1, col2, effective, deletion, indicator, rationale)."""
        cols = self.cols
        codes, rationales = cols.codes, cols.rationales

        def day(n: int) -> dt.date | None:
            return None if n in (0, _NO_DELETION) else dt.date.fromordinal(n)

        return [
            (codes[c1], codes[c2], day(e), day(d), k, rationales[r])
            for c1, c2, e, d, k, r in zip(
                cols.column_1, cols.column_2, cols.effective, cols.deletion, cols.indicator, cols.rationale, strict=True
            )
        ]


_PRIOR = {"": None, "*": None}
_MODIFIER = {"0": 0, "1": 1, "9": 9}


def _is_header(line: str) -> bool:
    first = line.split("\t", 1)[0]
    return re.sub(r"\s+", " ", first.strip()).lower().startswith(("column 1", "column1"))


def read_cms_ptp(path: str | Path) -> list[PtpValues]:
    """Read one CMS practitioner PTP text file; rows as (col1, col2, effective, deletion, indicator, rationale)."""
    reader = _PtpReader()
    reader.read(Path(path))
    return reader.rows()


def read_cms_mue(path: str | Path, effective: dt.date | None = None) -> list[MueValues]:
    """Read the CMS practitioner MUE CSV; rows as (code, mue, mai, rationale, effective, deletion).

    ``effective`` defaults to the date in the file name (``..._Eff_07-01-2024.csv``), if any.
    """
    path = Path(path)
    file = str(path)
    if effective is None:
        m = _MUE_DATE.search(path.name)
        if m:
            try:
                effective = dt.date(int(m[3]), int(m[1]), int(m[2]))
            except ValueError:
                effective = None
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text("latin-1")
    except OSError as exc:
        raise NcciTableError(file, None, f"cannot read: {exc.strerror or exc}") from None
    rows: list[MueValues] = []
    seen_header = False
    reader = csv.reader(text.splitlines())
    for fields in reader:
        lineno = reader.line_num
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if not seen_header:
            if fields[0].upper().startswith("HCPCS"):
                seen_header = True
            continue
        if len(fields) < 4:
            raise NcciTableError(file, lineno, f"expected 4 columns (a truncated file?), found {len(fields)}")
        if not _is_code(fields[0]):
            raise NcciTableError(file, lineno, f"HCPCS/CPT Code: expected a code, found {fields[0]!r}")
        if not fields[1].isdigit():
            raise NcciTableError(file, lineno, f"MUE value: expected a whole number, found {fields[1]!r}")
        mai = fields[2][:1]
        if mai not in ("1", "2", "3"):
            raise NcciTableError(
                file, lineno, f"MUE Adjudication Indicator: expected 1, 2 or 3 first, found {fields[2]!r}"
            )
        rows.append((fields[0].upper(), int(fields[1]), int(mai), fields[3], effective, None))
    if not seen_header:
        raise NcciTableError(file, None, "no header line starting with 'HCPCS' (is this a CMS MUE file?)")
    if not rows:
        raise NcciTableError(file, None, "no MUE rows after the header")
    return rows


def import_cms_files(
    ptp_paths: Sequence[str | Path],
    mue_path: str | Path,
    out_dir: str | Path,
    *,
    ptp_version: str | None = None,
    mue_version: str | None = None,
    mue_effective: dt.date | None = None,
    index: bool = True,
) -> tuple[TableInfo, TableInfo]:
    """Import CMS practitioner PTP files (f1-f4) and the MUE CSV into ``out_dir``.

    Writes ``ptp.tsv`` and ``mue.tsv`` (and with ``index=True`` the PTP table's binary index
    ``ptp.idx``, which makes :func:`~payerpolicy.ncci.load_ptp` fast on a full table) atomically (all
    checked and written to a staging directory first, then moved into place) and
    returns their :class:`~payerpolicy.ncci.TableInfo`. Versions default to the file names.
    Raises :class:`~payerpolicy.ncci.NcciTableError` naming the file and line of bad input.
    """
    if not ptp_paths:
        raise ValueError("give at least one CMS PTP file")
    ptp_files = [Path(p) for p in ptp_paths]
    mue_file = Path(mue_path)
    reader = _PtpReader()
    with _no_gc():  # millions of short-lived strings: the cyclic collector would only slow this down
        blocks = [reader.read(p) for p in ptp_files]
    mue_rows = read_cms_mue(mue_file, mue_effective)
    ptp_notes = [f"input {p.name} sha256 {_sha256(p)}" for p in ptp_files]
    mue_notes = [f"input {mue_file.name} sha256 {_sha256(mue_file)}"]
    ptp_names = ", ".join(p.name for p in ptp_files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ncci-import-", dir=out))
    try:
        ptp_info = _write_table_blocks(
            staging / PTP_FILE,
            "ptp",
            blocks,
            len(reader.cols),
            source=f"CMS Medicare NCCI PTP edits, practitioner services: {ptp_names}",
            version=ptp_version or f"CMS practitioner PTP ({ptp_names})",
            notes=ptp_notes,
        )
        del blocks
        mue_info = write_table(
            staging / MUE_FILE,
            "mue",
            mue_rows,
            source=f"CMS Medicare NCCI MUE table, practitioner services: {mue_file.name}",
            version=mue_version or f"CMS practitioner MUE ({mue_file.name})",
            notes=mue_notes,
        )
        if index:
            staged_index = ptp_index_path(staging / PTP_FILE)
            with _no_gc():
                layout = _layout(reader.cols)
            # the index records the table file's size and mtime; a rename keeps both
            _write_index_file(staged_index, ptp_info.sha256, layout, _stat(staging / PTP_FILE))
            del layout
            os.replace(staged_index, ptp_index_path(out / PTP_FILE))
        os.replace(staging / PTP_FILE, out / PTP_FILE)
        os.replace(staging / MUE_FILE, out / MUE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _moved(ptp_info, out / PTP_FILE), _moved(mue_info, out / MUE_FILE)


def _moved(info: TableInfo, path: Path) -> TableInfo:
    return TableInfo(str(path), info.table, info.source, info.version, info.sha256, info.rows, info.notes)
