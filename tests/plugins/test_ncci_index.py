"""core/ncci.py binary PTP index: same answers as the text parse, stale indexes ignored, corrupt ones named."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from payerpolicy.evaluation.errors import PayerPolicyError
from payerpolicy.ncci import (
    NcciIndexError,
    NcciTableError,
    load_ptp,
    parse_ptp,
    ptp_index_path,
    write_ptp_index,
    write_table,
)
from payerpolicy.ncci.importer import import_cms_files
from payerpolicy.ncci.synth import write_synthetic_cms_files

D = dt.date


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


def test_any_code_text_is_indexed(tmp_path: Path) -> None:
    path = tmp_path / "ptp.tsv"
    rows = [("9714", "97530", None, None, 1, "x"), ("97530", "0001F", None, None, 0, "y")]
    write_table(path, "ptp", rows, source="s", version="v")
    write_ptp_index(path)
    table = load_ptp(str(path))
    assert type(table.pairs).__name__ == "_IndexedPairs"
    assert table.edit_on("97530", "9714", dt.date(2024, 1, 1)) == rows[0]
    assert table.rows("97530", "0001F") == (rows[1],) and table.rows("0001F", "97530") == ()


def _index_header(index: Path) -> dict[str, object]:
    import json
    import struct

    magic, version, size = struct.unpack("<8sII", index.read_bytes()[:16])
    assert magic == b"PPNCCIDX"
    header: dict[str, object] = json.loads(index.read_bytes()[16 : 16 + size])
    header["version"] = version
    return header


def test_stale_index_is_rebuilt(imported: Path, tmp_path: Path) -> None:
    path = _copy(imported, tmp_path / "t")
    index = ptp_index_path(path)
    rows = [("97140", "97530", None, None, 0, "rewritten")]
    info = write_table(path, "ptp", rows, source="s", version="rewritten")  # the old ptp.idx is now stale
    assert _index_header(index)["sha256"] != info.sha256
    table = load_ptp(str(path))
    assert table.info.version == "rewritten" and table.rows("97140", "97530") == (rows[0],)
    assert table.edit_on("97530", "97140", dt.date(2024, 1, 1)) == rows[0]
    assert len(table.pairs) == 1 and table.info.rows == 1
    assert _index_header(index)["sha256"] == info.sha256  # rewritten for the new rows
    load_ptp.cache_clear()
    assert load_ptp(str(path)).rows("97140", "97530") == (rows[0],)


def test_index_of_an_older_format_version_is_rebuilt(imported: Path, tmp_path: Path) -> None:
    path = _copy(imported, tmp_path / "t")
    index = ptp_index_path(path)
    data = bytearray(index.read_bytes())
    data[8:12] = (1).to_bytes(4, "little")  # format version 1 (one sorted key array)
    index.write_bytes(bytes(data))
    text = parse_ptp(path.read_text("utf-8"), str(path))
    table = load_ptp(str(path))
    assert _index_header(index)["version"] == 2
    a, b = next(iter(text.pairs))
    assert table.rows(a, b) == text.pairs[(a, b)]


def test_table_edited_behind_its_index_is_refused(imported: Path, tmp_path: Path) -> None:
    path = _copy(imported, tmp_path / "t")
    lines = path.read_text("utf-8").splitlines(keepends=True)
    row = next(n for n, line in enumerate(lines) if "\t0\t" in line and not line.startswith("#"))
    lines[row] = lines[row].replace("\t0\t", "\t1\t")  # the index (and #sha256) still say 0
    path.write_text("".join(lines), "utf-8")
    with pytest.raises(NcciTableError, match="the rows do not match the header's sha256"):
        load_ptp(str(path))


def test_copied_table_and_index_load_through_the_index(imported: Path, tmp_path: Path) -> None:
    path = _copy(imported, tmp_path / "t")  # new mtimes: the rows are hashed once more, then trusted
    index = ptp_index_path(path)
    before = index.read_bytes()
    table = load_ptp(str(path))
    assert type(table.pairs).__name__ == "_IndexedPairs" and table.info.rows == 2_000
    assert index.read_bytes() == before


def test_table_without_index_loads_in_memory_and_writes_nothing(imported: Path, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    path = tmp_path / "t" / "ptp.tsv"
    path.write_bytes(imported.read_bytes())
    table = load_ptp(str(path))
    text = parse_ptp(path.read_text("utf-8"), str(path))
    assert dict(table.pairs) == dict(text.pairs)
    assert [p.name for p in path.parent.iterdir()] == ["ptp.tsv"]


def test_ties_between_a_pair_and_its_reverse_follow_the_text_form(tmp_path: Path) -> None:
    rows = [
        ("97110", "97112", D(2020, 1, 1), None, 1, "forward"),
        ("97112", "97110", D(2020, 1, 1), None, 1, "reverse"),
        ("97112", "97110", D(2020, 1, 1), D(2022, 12, 31), 1, "reverse, second row of the key"),
        ("97530", "97140", D(2020, 1, 1), None, 1, "lower code is column 2"),
        ("97140", "97530", D(2020, 1, 1), None, 0, "strict"),
    ]
    path = tmp_path / "ptp.tsv"
    write_table(path, "ptp", rows, source="s", version="v")
    text = parse_ptp(path.read_text("utf-8"), str(path))
    table = load_ptp(str(path))
    assert type(table.pairs).__name__ == "_IndexedPairs"
    day = D(2021, 1, 1)
    assert table.edit_on("97110", "97112", day) == text.edit_on("97110", "97112", day) == rows[0]
    assert table.edit_on("97112", "97110", day) == text.edit_on("97112", "97110", day) == rows[1]
    assert table.edit_on("97530", "97140", day) == text.edit_on("97530", "97140", day) == rows[4]
    assert table.rows("97112", "97110") == tuple(rows[1:3])


def test_random_pairs_match_the_text_table(tmp_path: Path) -> None:
    ptp_paths, mue_path = write_synthetic_cms_files(tmp_path / "cms", ptp_rows=30_000, mue_rows=400, seed=7)
    ptp_info, _ = import_cms_files(ptp_paths, mue_path, tmp_path / "tables")
    indexed = load_ptp(ptp_info.file)
    assert type(indexed.pairs).__name__ == "_IndexedPairs"
    text = parse_ptp(Path(ptp_info.file).read_text("utf-8"), ptp_info.file)
    rng = random.Random(3)
    keys = list(text.pairs)
    codes = sorted({c for k in keys for c in k})
    matched = 0
    for _ in range(5_000):
        a, b = rng.choice(keys) if rng.random() < 0.5 else (rng.choice(codes), rng.choice(codes))
        if rng.random() < 0.5:
            a, b = b, a
        day = dt.date.fromordinal(rng.randrange(dt.date(1995, 1, 1).toordinal(), dt.date(2026, 1, 1).toordinal()))
        expected = text.edit_on(a, b, day)
        assert indexed.edit_on(a, b, day) == expected, (a, b, day)
        assert indexed.rows(a, b) == text.rows(a, b)
        matched += expected is not None
    assert matched > 1_000  # the sample exercises hits, not only misses


def test_cli_rebuilds_the_index(imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from payerpolicy.cli import main

    path = _copy(imported, tmp_path / "t")
    index = ptp_index_path(path)
    index.write_bytes(b"NOTANIDX")
    with pytest.raises(NcciIndexError, match="payerpolicy ncci index"):
        load_ptp(str(path))
    assert main(["ncci", "index", str(path.parent)]) == 0
    assert f"{index}: 2000 rows indexed" in capsys.readouterr().out
    load_ptp.cache_clear()
    assert type(load_ptp(str(path)).pairs).__name__ == "_IndexedPairs"


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
