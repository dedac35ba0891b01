"""CMS physician fee schedule data: read CMS's own relative value (PPRRVU) and GPCI files, write and load an import.

``payerpolicy fees import --rvu PPRRVU25_JAN.csv --gpci GPCI2025.csv --out DIR`` reads the CSV
files of CMS's quarterly "PFS Relative Value Files" bundle (RVUyyA…D) and writes ``DIR/<year>/``:
``rvu.tsv`` (code, modifier, status, work, non-facility PE, facility PE, MP RVUs, multiple
procedure indicator), ``gpci.tsv`` (locality, name, work, PE and MP GPCI) and ``manifest.toml``
(year, version, the files' names and SHA-256). Point ``$PAYERPOLICY_FEES_DIR`` (or ``--fees-dir``)
at ``DIR``; several years may sit side by side.

CMS's header names drift by year (``NON-FAC PE RVU`` / ``NON-FAC PE``, a header split over two
rows), so columns are found by their words, and the header row is the one that starts with
``HCPCS`` after the copyright lines.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

# csv, tomllib, tomli_w and pathlib are imported by the functions that read or write CMS files: a
# cold `payerpolicy check` without --fees-dir never does.
from .errors import PayerPolicyError
from .money import FEES_DIR_ENV, FEES_FILE_ENV, LOCALITY_ENV, FeeBook, Gpci, PfsData, RvuRow, file_sha256, load_fee_file

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ImportInfo",
    "fee_book",
    "fee_book_from_environment",
    "import_pfs_files",
    "load_pfs_dir",
    "parse_gpci",
    "parse_pprrvu",
]

MANIFEST = "manifest.toml"
_MAX_BYTES = 64 * 1024 * 1024


class ImportInfo:
    """What one import wrote: the directory, year, version, row counts and the source files' SHA-256."""

    def __init__(self, directory: Path, year: int, version: str, rvus: int, gpcis: int, sha256: Mapping[str, str]) -> None:
        self.directory = directory
        self.year = year
        self.version = version
        self.rvus = rvus
        self.gpcis = gpcis
        self.sha256 = dict(sha256)


def _read(path: str | Path) -> str:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise PayerPolicyError(f"{path}: not a readable file")
    if p.stat().st_size > _MAX_BYTES:
        raise PayerPolicyError(f"{path}: larger than the limit of {_MAX_BYTES} bytes")
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # CMS files are plain ASCII; a stray byte is read, not refused


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Z0-9]+", text.upper().replace("NON-FAC", "NONFAC").replace("NON FAC", "NONFAC")))


def _header(rows: list[list[str]], first: Callable[[list[str]], bool], name: str) -> tuple[int, list[str]]:
    for n, row in enumerate(rows):
        if row and first(row):
            names = [c.strip() for c in row]
            if n > 0 and len(rows[n - 1]) >= len(row) and sum(1 for c in rows[n - 1] if c.strip()) > 2:
                above = rows[n - 1]
                names = [f"{above[k].strip()} {c}".strip() for k, c in enumerate(names)]
            return n, names
    raise PayerPolicyError(f"{name}: no header row found (expected CMS's column names)")


def _find(names: Sequence[str], name: str, what: str, need: set[str], avoid: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    for k, column in enumerate(names):
        words = _words(column)
        if need <= words and not (avoid & words):
            return k
    raise PayerPolicyError(f"{name}: no column for {what} (looked for the words {' '.join(sorted(need))}); columns: {', '.join(names)}")


def _number(text: str, name: str, line: int, what: str) -> Decimal:
    raw = text.strip() or "0"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise PayerPolicyError(f"{name}: row {line}: {what}: expected a number, found {raw[:20]!r}") from None
    if not value.is_finite() or value < 0:
        raise PayerPolicyError(f"{name}: row {line}: {what}: expected a number >= 0, found {raw[:20]!r}")
    return value


def parse_pprrvu(text: str, name: str = "PPRRVU") -> dict[tuple[str, str], RvuRow]:
    """Rows of a CMS PPRRVU CSV keyed by (HCPCS, modifier)."""
    import csv

    rows = list(csv.reader(io.StringIO(text)))
    start, names = _header(rows, lambda r: r[0].strip().upper() == "HCPCS", name)
    col = {
        "code": 0,
        "mod": _find(names, name, "MOD", {"MOD"}),
        "status": _find(names, name, "STATUS CODE", {"STATUS"}),
        "work": _find(names, name, "WORK RVU", {"WORK"}, {"GPCI"}),
        "pe_nf": _find(names, name, "NON-FAC PE RVU", {"NONFAC", "PE"}, {"NA", "INDICATOR", "TOTAL"}),
        "pe_f": _find(names, name, "FACILITY PE RVU", {"FACILITY", "PE"}, {"NONFAC", "NA", "INDICATOR", "TOTAL"}),
        "mp": _find(names, name, "MP RVU", {"MP"}, {"GPCI"}),
    }
    try:
        mult = _find(names, name, "MULT PROC", {"MULT", "PROC"})
    except PayerPolicyError:
        mult = -1
    out: dict[tuple[str, str], RvuRow] = {}
    for n, row in enumerate(rows[start + 1 :], start=start + 2):
        if not row or not row[0].strip() or len(row) <= max(col.values()):
            continue
        code = row[0].strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{5}", code):
            continue
        mod = row[col["mod"]].strip().upper()
        out[(code, mod)] = RvuRow(
            code,
            mod,
            row[col["status"]].strip().upper(),
            _number(row[col["work"]], name, n, "WORK RVU"),
            _number(row[col["pe_nf"]], name, n, "NON-FAC PE RVU"),
            _number(row[col["pe_f"]], name, n, "FACILITY PE RVU"),
            _number(row[col["mp"]], name, n, "MP RVU"),
            row[mult].strip() if 0 <= mult < len(row) else "",
        )
    if not out:
        raise PayerPolicyError(f"{name}: no rows with a 5-character HCPCS code under the header")
    return out


def parse_gpci(text: str, name: str = "GPCI") -> dict[str, Gpci]:
    """Localities of a CMS GPCI CSV (Addendum E), keyed ``MAC-LOCALITY`` like ``01112-05``."""
    import csv

    rows = list(csv.reader(io.StringIO(text)))

    def is_header(r: list[str]) -> bool:
        words = _words(" ".join(r))
        return "LOCALITY" in words and "GPCI" in words

    start, names = _header(rows, is_header, name)
    mac = _find(names, name, "MAC", {"MAC"}) if any("MAC" in _words(c) for c in names) else _find(names, name, "carrier", {"CARRIER"})
    col = {
        "loc": _find(names, name, "Locality Number", {"LOCALITY", "NUMBER"}),
        "name": _find(names, name, "Locality Name", {"LOCALITY", "NAME"}),
        "work": _find(names, name, "PW GPCI", {"PW", "GPCI"}, {"WITHOUT"}),
        "pe": _find(names, name, "PE GPCI", {"PE", "GPCI"}),
        "mp": _find(names, name, "MP GPCI", {"MP", "GPCI"}),
    }
    out: dict[str, Gpci] = {}
    for n, row in enumerate(rows[start + 1 :], start=start + 2):
        if len(row) <= max([mac, *col.values()]) or not row[mac].strip() or not row[col["loc"]].strip():
            continue
        key = f"{row[mac].strip()}-{row[col['loc']].strip().zfill(2)}"
        try:
            out[key] = Gpci(
                key,
                row[col["name"]].strip(),
                _number(row[col["work"]], name, n, "PW GPCI"),
                _number(row[col["pe"]], name, n, "PE GPCI"),
                _number(row[col["mp"]], name, n, "MP GPCI"),
            )
        except PayerPolicyError:
            continue  # footnote rows under the table
    if not out:
        raise PayerPolicyError(f"{name}: no locality rows under the header")
    return out


def _year_of(name: str) -> int | None:
    m = re.search(r"PPRRVU(\d{2})(?!\d)", name.upper()) or re.search(r"PPRRVU(20\d{2})", name.upper())
    if not m:
        return None
    y = int(m[1])
    return y if y > 1000 else 2000 + y


def import_pfs_files(
    rvu: str | Path, gpci: str | Path, out: str | Path, *, year: int | None = None, version: str | None = None
) -> ImportInfo:
    """Read CMS's PPRRVU and GPCI CSV files and write ``out/<year>/`` (rvu.tsv, gpci.tsv, manifest.toml)."""
    import csv
    from pathlib import Path

    import tomli_w

    rvu_name, gpci_name = Path(rvu).name, Path(gpci).name
    year = year or _year_of(rvu_name)
    if year is None:
        raise PayerPolicyError(f"{rvu}: cannot tell the year from the file name (PPRRVUyy_...); give --year")
    rvus = parse_pprrvu(_read(rvu), str(rvu))
    gpcis = parse_gpci(_read(gpci), str(gpci))
    version = version or Path(rvu).stem
    target = Path(out) / str(year)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "rvu.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["hcpcs", "mod", "status", "work", "pe_nonfacility", "pe_facility", "mp", "mult_proc"])
        for r in sorted(rvus.values(), key=lambda r: (r.code, r.modifier)):
            w.writerow([r.code, r.modifier, r.status, r.work, r.pe_nonfacility, r.pe_facility, r.mp, r.mult_proc])
    with open(target / "gpci.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["locality", "name", "work", "pe", "mp"])
        for g in sorted(gpcis.values(), key=lambda g: g.locality):
            w.writerow([g.locality, g.name, g.work, g.pe, g.mp])
    sha = {rvu_name: file_sha256(rvu), gpci_name: file_sha256(gpci)}
    manifest = {
        "year": year,
        "version": version,
        "source": "CMS PFS Relative Value Files (cms.gov/medicare/payment/fee-schedules/physician/pfs-relative-value-files)",
        "imported": dt.date.today().isoformat(),
        "files": [{"name": k, "sha256": v} for k, v in sha.items()],
    }
    (target / MANIFEST).write_text(tomli_w.dumps(manifest), encoding="utf-8")
    return ImportInfo(target, year, version, len(rvus), len(gpcis), sha)


def _load_year(directory: Path) -> PfsData:
    import csv
    import tomllib

    try:
        manifest = tomllib.loads((directory / MANIFEST).read_text("utf-8"))
        year, version = int(manifest["year"]), str(manifest["version"])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise PayerPolicyError(f"{directory / MANIFEST}: not a manifest written by payerpolicy fees import ({exc})") from None
    rvus: dict[tuple[str, str], RvuRow] = {}
    gpcis: dict[str, Gpci] = {}
    try:
        with open(directory / "rvu.tsv", encoding="utf-8") as f:
            for row in list(csv.reader(f, delimiter="\t"))[1:]:
                work, pe_nf, pe_f, mp = (Decimal(x) for x in row[3:7])
                rvus[(row[0], row[1])] = RvuRow(row[0], row[1], row[2], work, pe_nf, pe_f, mp, row[7])
        with open(directory / "gpci.tsv", encoding="utf-8") as f:
            for row in list(csv.reader(f, delimiter="\t"))[1:]:
                gpcis[row[0]] = Gpci(row[0], row[1], Decimal(row[2]), Decimal(row[3]), Decimal(row[4]))
    except (OSError, IndexError, InvalidOperation, TypeError) as exc:
        raise PayerPolicyError(f"{directory}: an import of payerpolicy fees import cannot be read ({type(exc).__name__}); import again") from None
    sha = {str(f.get("name")): str(f.get("sha256")) for f in manifest.get("files", []) if isinstance(f, dict)}
    return PfsData(year, version, str(manifest.get("source", "CMS")), rvus, gpcis, sha)


def load_pfs_dir(directory: str | Path) -> Iterator[tuple[int, PfsData]]:
    """The imported years under ``directory`` (``directory/<year>/manifest.toml``, or ``directory`` itself)."""
    from pathlib import Path

    root = Path(directory)
    if not root.is_dir():
        raise PayerPolicyError(f"{directory}: not a directory written by payerpolicy fees import")
    candidates = [root] if (root / MANIFEST).is_file() else sorted(p for p in root.iterdir() if (p / MANIFEST).is_file())
    if not candidates:
        raise PayerPolicyError(f"{directory}: no {MANIFEST} found (run payerpolicy fees import --out {directory})")
    for path in candidates:
        data = _load_year(path)
        yield data.year, data


def fee_book(file: str | None, directory: str | None, locality: str | None) -> FeeBook:
    """Read a fee file and/or an imported CMS directory into one fee book (bad input: exit 2 errors)."""
    rows = load_fee_file(file) if file else ()
    pfs = dict(load_pfs_dir(directory)) if directory else {}
    if locality is not None:
        if not pfs:
            raise PayerPolicyError(f"Medicare locality {locality!r}: no CMS GPCI data imported (payerpolicy fees import)")
        if not any(locality in data.gpcis for data in pfs.values()):
            known = sorted({k for data in pfs.values() for k in data.gpcis})
            more = " …" if len(known) > 12 else ""
            raise PayerPolicyError(
                f"Medicare locality {locality!r} is not in the imported GPCI file; known: {', '.join(known[:12])}{more}"
            )
    return FeeBook(tuple(rows), file or "", pfs, locality)


def fee_book_from_environment() -> FeeBook:
    """The fee book of ``$PAYERPOLICY_FEES``, ``$PAYERPOLICY_FEES_DIR`` and ``$PAYERPOLICY_MEDICARE_LOCALITY`` (empty when unset)."""
    file = os.environ.get(FEES_FILE_ENV, "").strip() or None
    directory = os.environ.get(FEES_DIR_ENV, "").strip() or None
    locality = os.environ.get(LOCALITY_ENV, "").strip() or None
    return fee_book(file, directory, locality)
