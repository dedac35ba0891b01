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

CMS's deletion date is taken as the last day the edit applies, like the compact format's.
The full CMS files are licensed downloads: import your own copy, never commit it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .ncci import MUE_FILE, PTP_FILE, NcciTableError, TableInfo, ptp_index_path, write_ptp_index, write_table
from .vocab import CODE_PATTERN

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


def read_cms_ptp(path: str | Path) -> list[PtpValues]:
    """Read one CMS practitioner PTP text file; rows as (col1, col2, effective, deletion, indicator, rationale)."""
    path = Path(path)
    file = str(path)
    rows: list[PtpValues] = []
    seen_header = False
    try:
        text = path.read_text("utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        text = path.read_text("latin-1")
    except OSError as exc:
        raise NcciTableError(file, None, f"cannot read: {exc.strerror or exc}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if not seen_header:
            if re.sub(r"\s+", " ", fields[0]).lower().startswith(("column 1", "column1")):
                seen_header = True
            continue
        if not _is_code(fields[0]):
            if rows:
                raise NcciTableError(file, lineno, f"expected a row starting with a code, found {fields[0]!r}")
            continue  # the header's continuation lines
        if len(fields) < 7:
            raise NcciTableError(
                file, lineno, f"expected 7 tab-separated columns (a truncated file?), found {len(fields)}"
            )
        col1, col2 = fields[0].upper(), fields[1].upper()
        if not _is_code(col2):
            raise NcciTableError(file, lineno, f"Column 2: expected a code, found {fields[1]!r}")
        if fields[2] not in ("", "*"):
            raise NcciTableError(
                file, lineno, f"'*=in existence prior to 1996': expected * or nothing, found {fields[2]!r}"
            )
        effective = _ymd(fields[3], file, lineno, "Effective Date", star=False)
        deletion = _ymd(fields[4], file, lineno, "Deletion Date", star=True)
        if fields[5] not in ("0", "1", "9"):
            raise NcciTableError(file, lineno, f"Modifier: expected 0, 1 or 9, found {fields[5]!r}")
        rationale = " ".join(" ".join(fields[6:]).split())
        rows.append((col1, col2, effective, deletion, int(fields[5]), rationale))
    if not seen_header:
        raise NcciTableError(file, None, "no header line starting with 'Column 1' (is this a CMS PTP file?)")
    if not rows:
        raise NcciTableError(file, None, "no edit rows after the header")
    return rows


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
    ptp_rows: list[PtpValues] = []
    for p in ptp_files:
        ptp_rows.extend(read_cms_ptp(p))
    mue_rows = read_cms_mue(mue_file, mue_effective)
    ptp_notes = [f"input {p.name} sha256 {_sha256(p)}" for p in ptp_files]
    mue_notes = [f"input {mue_file.name} sha256 {_sha256(mue_file)}"]
    ptp_names = ", ".join(p.name for p in ptp_files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ncci-import-", dir=out))
    try:
        ptp_info = write_table(
            staging / PTP_FILE,
            "ptp",
            ptp_rows,
            source=f"CMS Medicare NCCI PTP edits, practitioner services: {ptp_names}",
            version=ptp_version or f"CMS practitioner PTP ({ptp_names})",
            notes=ptp_notes,
        )
        mue_info = write_table(
            staging / MUE_FILE,
            "mue",
            mue_rows,
            source=f"CMS Medicare NCCI MUE table, practitioner services: {mue_file.name}",
            version=mue_version or f"CMS practitioner MUE ({mue_file.name})",
            notes=mue_notes,
        )
        if index:
            os.replace(write_ptp_index(staging / PTP_FILE, ptp_rows), ptp_index_path(out / PTP_FILE))
        os.replace(staging / PTP_FILE, out / PTP_FILE)
        os.replace(staging / MUE_FILE, out / MUE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _moved(ptp_info, out / PTP_FILE), _moved(mue_info, out / MUE_FILE)


def _moved(info: TableInfo, path: Path) -> TableInfo:
    return TableInfo(str(path), info.table, info.source, info.version, info.sha256, info.rows, info.notes)
