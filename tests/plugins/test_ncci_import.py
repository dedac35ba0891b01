"""core/ncci_import.py: CMS's own PTP text files and MUE CSV into the compact tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from payerpolicy.ncci import NcciTableError, load_mue, load_ptp
from payerpolicy.ncci.importer import import_cms_files

D = dt.date

PTP_HEAD = (
    "CPT codes, descriptions and other data only are copyright the American Medical Association.\n"
    "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale\n"
    "\t\t\t\t*=no data\t0=not allowed 1=allowed 9=not applicable\t\n"
)
F1 = PTP_HEAD + (
    "97140\t97124\t\t20000101\t*\t0\tStandards of medical / surgical practice\n"
    "97140\t97530\t*\t19960101\t20191231\t1\tMutually exclusive procedures\n"
    "97140\t98940\t*\t19960101\t19990401\t9\tMutually exclusive procedures\n"
    "98940\t97140\t\t19990401\t*\t1\tStandards of medical / surgical practice\n"
)
F2 = PTP_HEAD + (
    "98940\t97112\t\t20000101\t20191231\t1\tStandards of medical / surgical practice\n"
    "98940\t97112\t\t20200101\t*\t1\tStandards of medical / surgical practice\n"
    "97110\t97112\t\t20300101\t*\t0\tNot yet in force\n"
)
MUE = (
    '"CPT codes and descriptions only are copyright American Medical Association."\n'
    '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"\n'
    '"97140","6","3 Date of Service Edit: Clinical","Clinical: Data"\n'
    '"98940","1","2 Date of Service Edit: Policy","Nature of Service/Procedure"\n'
    '"97110","4","1 Line Edit","Clinical: Data"\n'
)


def _files(tmp_path: Path, f1: str = F1, f2: str = F2, mue: str = MUE) -> tuple[list[Path], Path]:
    src = tmp_path / "cms"
    src.mkdir()
    (src / "ccipra-v301r0-f1.txt").write_text(f1)
    (src / "ccipra-v301r0-f2.txt").write_text(f2)
    (src / "MCR_MUE_PractitionerServices_Eff_07-01-2024.csv").write_text(mue)
    return [
        src / "ccipra-v301r0-f1.txt",
        src / "ccipra-v301r0-f2.txt",
    ], src / "MCR_MUE_PractitionerServices_Eff_07-01-2024.csv"


def test_import_writes_loadable_tables(tmp_path: Path) -> None:
    ptp_paths, mue_path = _files(tmp_path)
    out = tmp_path / "out"
    ptp_info, mue_info = import_cms_files(ptp_paths, mue_path, out, ptp_version="CMS practitioner PTP v301r0")
    assert sorted(p.name for p in out.iterdir()) == ["mue.tsv", "ptp.idx", "ptp.tsv"]
    assert ptp_info.rows == 7 and mue_info.rows == 3
    ptp = load_ptp(str(out / "ptp.tsv"))
    assert ptp.info.version == "CMS practitioner PTP v301r0"
    assert any("ccipra-v301r0-f1.txt sha256" in n for n in ptp.info.notes)
    # deleted row, reversed pair with indicator 9, duplicate key, row not yet in force
    assert ptp.edit_on("97530", "97140", D(2019, 12, 31)) is not None
    assert ptp.edit_on("97530", "97140", D(2020, 1, 1)) is None
    row = ptp.edit_on("97140", "98940", D(1998, 1, 1))
    assert row is None  # 98940/97140 starts 1999-04-01; the reversed row is indicator 9
    row = ptp.edit_on("97140", "98940", D(2025, 1, 1))
    assert row is not None and (row.column_1, row.indicator) == ("98940", 1)
    assert len(ptp.rows("98940", "97112")) == 2
    new = ptp.edit_on("98940", "97112", D(2020, 6, 1))
    assert new is not None and new.effective == D(2020, 1, 1)
    assert ptp.edit_on("97110", "97112", D(2025, 1, 1)) is None
    assert ptp.rows("97140", "97124")[0].rationale == "Standards of medical / surgical practice"
    mue = load_mue(str(out / "mue.tsv"))
    limit = mue.limit_on("97140", D(2024, 7, 1))
    assert limit is not None and (limit.value, limit.mai, limit.effective) == (6, 3, D(2024, 7, 1))
    assert mue.limit_on("97140", D(2024, 6, 30)) is None  # the file's effective date is recorded
    assert mue.limit_on("97110", D(2025, 1, 1)) is not None


@pytest.mark.parametrize(
    ("which", "bad", "match"),
    [
        ("f1", F1 + "97140\t97112\t\t2000-01-01\t*\t1\tx\n", r"f1\.txt:8: Effective Date: expected a date YYYYMMDD"),
        ("f1", F1 + "97140\t97112\t\t20000101\t*\t2\tx\n", r"f1\.txt:8: Modifier: expected 0, 1 or 9"),
        ("f2", F2 + "97140\t97112\t\t2000", r"f2\.txt:7: expected 7 tab-separated columns \(a truncated file\?\)"),
        ("f2", "97140\t97112\n", r"f2\.txt: no header line starting with 'Column 1'"),
        ("mue", MUE + '"97530","6"\n', r"\.csv:6: expected 4 columns"),
        ("mue", MUE + '"97530","six","3 x","y"\n', r"\.csv:6: MUE value: expected a whole number"),
        ("mue", MUE.splitlines()[0] + "\n", r"\.csv: no header line starting with 'HCPCS'"),
    ],
)
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path: Path, which: str, bad: str, match: str) -> None:
    texts = {"f1": F1, "f2": F2, "mue": MUE, which: bad}
    ptp_paths, mue_path = _files(tmp_path, texts["f1"], texts["f2"], texts["mue"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "ptp.tsv").write_text("previous import\n")
    with pytest.raises(NcciTableError, match=match):
        import_cms_files(ptp_paths, mue_path, out)
    assert sorted(p.name for p in out.iterdir()) == ["ptp.tsv"]
    assert (out / "ptp.tsv").read_text() == "previous import\n"


def test_cli_ncci_import(tmp_path: Path, capsys) -> None:
    from payerpolicy.cli import main

    ptp, mue = _files(tmp_path)
    out = tmp_path / "tables"
    assert main(["ncci", "import", "--ptp", *map(str, ptp), "--mue", str(mue), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ptp.tsv" in text and "mue.tsv" in text and f"PAYERPOLICY_NCCI_DIR={out}" in text
    assert (out / "ptp.tsv").is_file() and (out / "mue.tsv").is_file()


def test_cli_ncci_import_bad_file_is_exit_2(tmp_path: Path, capsys) -> None:
    from payerpolicy.cli import main

    ptp, mue = _files(tmp_path, mue="not,a\nvalid,mue\n")
    assert main(["ncci", "import", "--ptp", *map(str, ptp), "--mue", str(mue), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("payerpolicy: error: ") and str(mue) in err
    assert not (tmp_path / "o" / "ptp.tsv").exists()
