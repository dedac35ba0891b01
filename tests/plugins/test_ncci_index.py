"""core/ncci.py binary PTP index: same answers as the text parse, stale indexes ignored, corrupt ones named."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from payerpolicy.errors import PayerPolicyError
from payerpolicy.ncci import (
    NcciIndexError,
    NcciTableError,
    load_ptp,
    parse_ptp,
    ptp_index_path,
    write_ptp_index,
    write_table,
)
from payerpolicy.ncci_import import import_cms_files
from payerpolicy.ncci_synth import write_synthetic_cms_files


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ncci-index")
    ptp_paths, mue_path = write_synthetic_cms_files(root / "cms", ptp_rows=2_000, mue_rows=50, seed=11)
    ptp_info, _ = import_cms_files(ptp_paths, mue_path, root / "tables", index=True)
    return Path(ptp_info.file)


def _copy(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for p in (src, ptp_index_path(src)):
        (dst_dir / p.name).write_bytes(p.read_bytes())
    return dst_dir / src.name


def test_importer_writes_the_index_and_load_uses_it(imported: Path) -> None:
    assert ptp_index_path(imported).name == "ptp.idx" and ptp_index_path(imported).is_file()
    table = load_ptp(str(imported))
    assert type(table.pairs).__name__ == "_IndexedPairs"
    text = parse_ptp(imported.read_text("utf-8"), str(imported))
    assert table.info == text.info


def test_index_matches_text_parse_for_every_pair(imported: Path) -> None:
    indexed = load_ptp(str(imported))
    text = parse_ptp(imported.read_text("utf-8"), str(imported))
    assert len(indexed.pairs) == len(text.pairs)
    assert set(indexed.pairs) == set(text.pairs)
    for (a, b), rows in text.pairs.items():
        assert indexed.rows(a, b) == rows
        assert indexed.pairs[(a, b)] == rows
    days = sorted({d for rows in text.pairs.values() for r in rows for d in (r.effective, r.deletion) if d})
    probes = [dt.date(1990, 1, 1), dt.date(2030, 1, 1)]
    for d in days:
        probes += [d - dt.timedelta(days=1), d, d + dt.timedelta(days=1)]
    rng = random.Random(5)
    codes = sorted({c for k in text.pairs for c in k})
    keys = list(text.pairs)
    for a, b in keys:
        for day in rng.sample(probes, min(12, len(probes))):
            assert indexed.edit_on(a, b, day) == text.edit_on(a, b, day), (a, b, day)
            assert indexed.edit_on(b, a, day) == text.edit_on(b, a, day), (b, a, day)
    for _ in range(3_000):
        a, b, day = rng.choice(codes), rng.choice(codes), rng.choice(probes)
        assert indexed.edit_on(a, b, day) == text.edit_on(a, b, day)
    for a, b in [("9714", "97140"), ("97140 ", "97112"), ("abcde", "97112"), ("", "")]:
        assert indexed.rows(a, b) == () and indexed.edit_on(a, b, dt.date(2024, 1, 1)) is None
    with pytest.raises(KeyError):
        indexed.pairs[("00000", "00000")]


def test_write_ptp_index_on_any_table(tmp_path: Path) -> None:
    rows = [
        ("97140", "97530", dt.date(2020, 1, 1), None, 1, "Mutually exclusive procedures"),
        ("97140", "97530", dt.date(2022, 1, 1), dt.date(2023, 12, 31), 0, "Standards of practice"),
        ("97530", "97140", None, None, 9, "Misuse of column two code"),
        ("G0283", "97014", None, None, 0, "HCPCS/CPT procedure code definition"),
    ]
    path = tmp_path / "ptp.tsv"
    write_table(path, "ptp", rows, source="test rows", version="test PTP v1")
    text = parse_ptp(path.read_text("utf-8"), str(path))
    index = write_ptp_index(path)
    assert index == tmp_path / "ptp.idx"
    table = load_ptp(str(path))
    assert type(table.pairs).__name__ == "_IndexedPairs"
    assert dict(table.pairs) == dict(text.pairs)
    for day in (dt.date(2019, 6, 1), dt.date(2021, 6, 1), dt.date(2022, 6, 1), dt.date(2024, 6, 1)):
        assert table.edit_on("97530", "97140", day) == text.edit_on("97530", "97140", day)
    assert table.edit_on("97014", "G0283", dt.date(2024, 1, 1)) == rows[3]


def test_codes_that_cannot_be_indexed_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ptp.tsv"
    write_table(path, "ptp", [("9714", "97530", None, None, 1, "x")], source="s", version="v")
    with pytest.raises(NcciIndexError, match="9714"):
        write_ptp_index(path)
    assert not ptp_index_path(path).exists()


def test_stale_index_is_ignored(imported: Path, tmp_path: Path) -> None:
    path = _copy(imported, tmp_path / "t")
    rows = [("97140", "97530", None, None, 0, "rewritten")]
    write_table(path, "ptp", rows, source="s", version="rewritten")  # the old ptp.idx is now stale
    table = load_ptp(str(path))
    assert type(table.pairs).__name__ != "_IndexedPairs"
    assert table.info.version == "rewritten" and table.rows("97140", "97530")[0].rationale == "rewritten"


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[:10], "bad magic or truncated"),
        (lambda b: b"NOTANIDX" + b[8:], "bad magic"),
        (lambda b: b[:-3], "truncated PTP index"),
        (lambda b: b + b"\0", "bytes after the arrays"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "do not match their SHA-256"),
        (lambda b: b[:16] + b"X" + b[17:], "corrupt PTP index header"),
    ],
)
def test_corrupt_index_raises_naming_the_file(imported: Path, tmp_path: Path, damage: object, match: str) -> None:
    path = _copy(imported, tmp_path / "t")
    index = ptp_index_path(path)
    index.write_bytes(damage(index.read_bytes()))  # type: ignore[operator]
    with pytest.raises(NcciIndexError, match=match) as exc:
        load_ptp(str(path))
    assert str(index) in str(exc.value)
    assert isinstance(exc.value, NcciTableError) and isinstance(exc.value, PayerPolicyError)


def test_builtin_table_has_no_index_and_still_loads() -> None:
    table = load_ptp("builtin:ptp")
    assert type(table.pairs).__name__ != "_IndexedPairs" and table.info.rows > 0
