"""core/ncci_synth.py: synthetic files in CMS's format that the importer reads and the tables load."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from payerpolicy.ncci import load_mue, load_ptp
from payerpolicy.ncci.importer import import_cms_files, read_cms_mue, read_cms_ptp
from payerpolicy.ncci.synth import write_synthetic_cms_files


def test_synthetic_files_import_load_and_look_up(tmp_path: Path) -> None:
    ptp_paths, mue_path = write_synthetic_cms_files(tmp_path / "cms", ptp_rows=2_000, mue_rows=150, seed=7)
    assert [p.name[-6:] for p in ptp_paths] == ["f1.txt", "f2.txt", "f3.txt", "f4.txt"]
    parts = [read_cms_ptp(p) for p in ptp_paths]
    rows = [r for part in parts for r in part]
    assert len(rows) == 2_000 and all(part for part in parts)
    # CMS's features are all there: pre-1996 rows, deleted rows, duplicate keys, reversed pairs, indicators
    keys = [(r[0], r[1]) for r in rows]
    assert len(set(keys)) < len(keys)
    assert any((b, a) in set(keys) for a, b in keys)
    assert any(r[3] is not None for r in rows) and any(r[3] is None for r in rows)
    assert {r[4] for r in rows} == {0, 1, 9}
    text = ptp_paths[0].read_text()
    assert text.startswith("SYNTHETIC TEST DATA") and "\t*\t19960101\t" in text
    assert len(read_cms_mue(mue_path)) == 150

    ptp_info, mue_info = import_cms_files(ptp_paths, mue_path, tmp_path / "tables")
    assert (ptp_info.rows, mue_info.rows) == (2_000, 150)
    ptp = load_ptp(ptp_info.file)
    col1, col2, effective, deletion, indicator, rationale = next(r for r in rows if r[4] != 9)
    day = effective or dt.date(2000, 1, 1)
    assert (col1, col2, effective, deletion, indicator, rationale) in [tuple(r) for r in ptp.rows(col1, col2)]
    found = ptp.edit_on(col2, col1, day)  # either direction
    assert found is not None and {found.column_1, found.column_2} == {col1, col2}
    mue = load_mue(mue_info.file)
    code = read_cms_mue(mue_path)[0][0]
    assert mue.limit_on(code, dt.date(2025, 1, 1)) is not None


def test_synthetic_files_are_deterministic(tmp_path: Path) -> None:
    a, am = write_synthetic_cms_files(tmp_path / "a", ptp_rows=500, mue_rows=50, seed=3)
    b, bm = write_synthetic_cms_files(tmp_path / "b", ptp_rows=500, mue_rows=50, seed=3)
    c, _ = write_synthetic_cms_files(tmp_path / "c", ptp_rows=500, mue_rows=50, seed=4)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b] and am.read_bytes() == bm.read_bytes()
    assert a[0].read_bytes() != c[0].read_bytes()
