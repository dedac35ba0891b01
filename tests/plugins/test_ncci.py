"""NCCI rule kinds (core/ncci.py): table format, PTP row selection, indicators 0/1/9, MUE MAI 1/2/3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import Encounter, Engine, PluginHost, load_policy
from payerpolicy.ncci import (
    ENV_DIR,
    NCCI_KINDS,
    NcciTableError,
    PtpRow,
    load_mue,
    load_ptp,
    parse_mue,
    parse_ptp,
    resolve_table,
    write_table,
)

D = dt.date
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost()


def _ptp(tmp_path: Path, rows: list[tuple[Any, ...]], name: str = "ptp.tsv") -> Path:
    path = tmp_path / name
    write_table(path, "ptp", rows, source="test rows", version="test PTP v1")
    return path


def _mue(tmp_path: Path, rows: list[tuple[Any, ...]], name: str = "mue.tsv") -> Path:
    path = tmp_path / name
    write_table(path, "mue", rows, source="test rows", version="test MUE v1")
    return path


def _engine(host: PluginHost, tmp_path: Path, ptp: Path | None = None, mue: Path | None = None) -> Engine:
    """The medicare payer with its NCCI rules pointed at test tables."""
    rules = []
    if ptp is not None:
        rules.append(f'[[rules]]\nid = "NCCI-01"\ntable = "{ptp}"\n')
    if mue is not None:
        rules.append(f'[[rules]]\nid = "NCCI-03"\ntable = "{mue}"\n')
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(
        'schema_version = 1\nextends = "medicare"\n[payer]\nid = "medicare"\nname = "Medicare (test tables)"\n'
        'policy_version = "test"\n' + "\n".join(rules)
    )
    policy = load_policy(overlay, host.kinds, resolver=host.resolve)
    return Engine(host.with_policy("medicare", policy))


def _pt(services: list[dict[str, Any]], day: str = "2025-04-01") -> Encounter:
    return Encounter.from_mapping({"date_of_service": day, "provider": {"type": "PT"}, "services": services})


def _lines(engine: Engine, enc: Encounter) -> list[str]:
    out = engine.check(enc, "medicare")
    return [
        f"{line.code} x{line.units} [{', '.join(line.modifiers)}]"
        + ("" if line.status == "billable" else f" {line.status}")
        for line in out.lines
    ]


def _codes(engine: Engine, enc: Encounter) -> list[str]:
    return sorted(f.code for f in engine.check(enc, "medicare").findings)


# --------------------------------------------------------------------------------------------
# Shipped curated subset


def test_kinds_are_registered_by_the_core(host: PluginHost) -> None:
    for kind in NCCI_KINDS:
        assert host.kinds[kind.name].plugin == "payerpolicy.ncci.kinds"


def test_curated_tables_are_exactly_the_rows_of_rules_md_8_1() -> None:
    ptp = load_ptp("builtin:ptp")
    mue = load_mue("builtin:mue")
    assert ptp.info.version == "CMS practitioner PTP v301r0 / 2024-07-01; curated subset"
    assert mue.info.version == "MUE practitioner 2024-07-01; curated subset"
    assert "curated rows" in ptp.info.source and "curated rows" in mue.info.source
    assert ptp.info.rows == 18 and mue.info.rows == 11
    assert [(r.indicator, r.deletion) for r in ptp.rows("98940", "97112")] == [(1, None), (1, D(2019, 12, 31))]
    assert ptp.rows("97140", "97124")[0].indicator == 0
    assert {c: (r[0].value, r[0].mai) for c, r in mue.codes.items()} == {
        "97124": (4, 3),
        "97140": (6, 3),
        "97110": (6, 3),
        "97530": (6, 3),
        "97112": (4, 3),
        "98940": (1, 2),
        "98941": (1, 2),
        "98942": (1, 2),
        "98943": (0, 3),
        "97010": (0, 3),
        "97014": (0, 3),
    }


def test_tables_load_once_per_process() -> None:
    assert load_ptp("builtin:ptp") is load_ptp("builtin:ptp")


# --------------------------------------------------------------------------------------------
# PTP row selection


def test_deleted_row_applies_through_its_deletion_date() -> None:
    ptp = load_ptp("builtin:ptp")
    row = ptp.edit_on("97530", "97140", D(2019, 12, 31))
    assert row is not None and (row.column_1, row.column_2, row.indicator) == ("97140", "97530", 1)
    assert ptp.edit_on("97530", "97140", D(2020, 1, 1)) is None


def test_reversed_pair_with_indicator_9_is_ignored() -> None:
    ptp = load_ptp("builtin:ptp")
    # 97140/98940 (indicator 9, deleted 1999-04-01) and 98940/97140 (indicator 1) are both in force in 1998.
    for day in (D(1998, 1, 1), D(2025, 1, 1)):
        row = ptp.edit_on("97140", "98940", day)
        assert row is not None and (row.column_1, row.column_2, row.indicator) == ("98940", "97140", 1)


def test_reversed_pair_latest_effective_wins(tmp_path: Path) -> None:
    table = load_ptp(
        str(
            _ptp(
                tmp_path,
                [("97110", "97112", D(2010, 1, 1), None, 1, "a"), ("97112", "97110", D(2020, 1, 1), None, 0, "b")],
            )
        )
    )
    assert table.edit_on("97110", "97112", D(2015, 1, 1)) == PtpRow("97110", "97112", D(2010, 1, 1), None, 1, "a")
    assert table.edit_on("97110", "97112", D(2021, 1, 1)) == PtpRow("97112", "97110", D(2020, 1, 1), None, 0, "b")


def test_duplicate_key_rows(tmp_path: Path) -> None:
    table = load_ptp(
        str(
            _ptp(
                tmp_path,
                [
                    ("97110", "97112", None, D(2019, 12, 31), 1, "old"),
                    ("97110", "97112", D(2020, 1, 1), None, 0, "new"),
                    ("97110", "97116", D(2020, 1, 1), None, 1, "same date, indicator 1"),
                    ("97110", "97116", D(2020, 1, 1), None, 0, "same date, indicator 0"),
                ],
            )
        )
    )
    assert len(table.rows("97110", "97112")) == 2
    old, new = table.edit_on("97110", "97112", D(2019, 6, 1)), table.edit_on("97110", "97112", D(2020, 6, 1))
    assert old is not None and old.rationale == "old"
    assert new is not None and new.rationale == "new"
    tie = table.edit_on("97110", "97116", D(2021, 1, 1))
    assert tie is not None and tie.indicator == 0  # same effective date: the strictest indicator


def test_row_not_yet_in_force(tmp_path: Path) -> None:
    table = load_ptp(str(_ptp(tmp_path, [("97110", "97112", D(2025, 1, 1), None, 0, "new edit")])))
    assert table.edit_on("97110", "97112", D(2024, 12, 31)) is None
    assert table.edit_on("97110", "97112", D(2025, 1, 1)) is not None


# --------------------------------------------------------------------------------------------
# Indicators through the engine


@pytest.fixture
def edits(host: PluginHost, tmp_path: Path) -> Engine:
    ptp = _ptp(
        tmp_path,
        [
            ("97110", "97112", None, None, 0, "Mutually exclusive procedures"),
            ("97110", "97530", None, None, 1, "Standards of medical/surgical practice"),
            ("97110", "97116", None, D(2019, 12, 31), 9, "Deleted edit"),
            ("97110", "97116", D(2020, 1, 1), None, 9, "Not applicable"),
        ],
    )
    return _engine(host, tmp_path, ptp=ptp)


def test_indicator_0_is_never_bypassed(edits: Engine) -> None:
    enc = _pt(
        [
            {"code": "97110", "minutes": 20, "start": "10:00", "end": "10:20", "regions": ["lumbar"]},
            {"code": "97112", "minutes": 20, "start": "10:20", "end": "10:40", "regions": ["lower_extremity"]},
        ]
    )
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97112 x0 [] not_billable"]
    (finding,) = edits.check(enc, "medicare").findings
    assert finding.code == "NCCI_PTP_DENIAL" and finding.rule == "NCCI-01"
    for part in ("97110/97112", "indicator 0", "Mutually exclusive procedures", "test PTP v1", "MCR-09"):
        assert part in finding.message


def test_indicator_0_denial_frees_the_minutes_before_units(edits: Engine) -> None:
    # 97110 22 + 97112 7: with 97112 counted the total (29) would give 97110 two units.
    enc = _pt([{"code": "97110", "minutes": 22}, {"code": "97112", "minutes": 7}])
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97112 x0 [] not_billable"]


def test_indicator_1_separate_time_blocks_take_the_time_modifier(edits: Engine) -> None:
    enc = _pt(
        [
            {"code": "97110", "minutes": 20, "start": "10:00", "end": "10:20"},
            {"code": "97530", "minutes": 15, "start": "10:20", "end": "10:35"},
        ]
    )
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97530 x1 [59, GP]"]


def test_indicator_1_different_region_takes_the_region_modifier(edits: Engine) -> None:
    enc = _pt(
        [
            {"code": "97110", "minutes": 20, "regions": ["lumbar"]},
            {"code": "97530", "minutes": 15, "regions": ["upper_extremity"]},
        ]
    )
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97530 x1 [XS, GP]"]


def test_indicator_1_without_a_distinct_service_is_denied(edits: Engine) -> None:
    enc = _pt(
        [
            {"code": "97110", "minutes": 20, "regions": ["lumbar"]},
            {"code": "97530", "minutes": 20, "regions": ["lumbar"]},
        ]
    )
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97530 x0 [] not_billable"]
    assert _codes(edits, enc) == ["NCCI_PTP_DENIAL"]


def test_indicator_1_uncertain_column_1_is_checked_after_units(edits: Engine) -> None:
    # 97110 has 10 minutes: under CMS total time it may get no unit, so the edit waits until units
    # are known; 97110 does get one here, so 97530 is denied in the adjust phase.
    enc = _pt([{"code": "97110", "minutes": 10}, {"code": "97530", "minutes": 20}])
    assert _lines(edits, enc) == ["97110 x1 [GP]", "97530 x0 [] not_billable"]
    assert _codes(edits, enc) == ["NCCI_PTP_DENIAL"]


def test_no_denial_when_column_1_is_not_billed(edits: Engine) -> None:
    # 97110 gets no unit (3 min against 97530's 15): the edit never applies.
    enc = _pt([{"code": "97110", "minutes": 3}, {"code": "97530", "minutes": 15}])
    assert _lines(edits, enc) == ["97110 x0 [] not_billable", "97530 x1 [GP]"]
    assert _codes(edits, enc) == ["TIMED_MINUTES_NOT_BILLED"]


def test_indicator_9_is_ignored(edits: Engine) -> None:
    for day in ("2019-06-01", "2025-04-01"):
        enc = _pt([{"code": "97110", "minutes": 20}, {"code": "97116", "minutes": 20}], day)
        assert _lines(edits, enc) == ["97110 x2 [GP]", "97116 x1 [GP]"] or _lines(edits, enc) == [
            "97110 x1 [GP]",
            "97116 x2 [GP]",
        ]
        assert _codes(edits, enc) == ["TIMED_UNIT_TIE"]


def test_chain_a_line_denied_does_not_deny_others(host: PluginHost, tmp_path: Path) -> None:
    ptp = _ptp(tmp_path, [("97110", "97112", None, None, 0, "x"), ("97112", "97530", None, None, 0, "y")])
    engine = _engine(host, tmp_path, ptp=ptp)
    enc = _pt([{"code": "97110", "minutes": 15}, {"code": "97112", "minutes": 15}, {"code": "97530", "minutes": 15}])
    # 97112 is denied by 97110, so it does not deny 97530.
    assert _lines(engine, enc) == ["97110 x1 [GP]", "97112 x0 [] not_billable", "97530 x1 [GP]"]


# --------------------------------------------------------------------------------------------
# MUE


@pytest.fixture
def limits(host: PluginHost, tmp_path: Path) -> Engine:
    mue = _mue(
        tmp_path,
        [
            ("97110", 2, 1, "Clinical: Data", None, None),
            ("97112", 2, 2, "CMS Policy", None, None),
            ("97530", 2, 3, "Clinical: Data", None, None),
            ("97116", 0, 2, "Nature of Service/Procedure", None, None),
            ("97140", 1, 3, "old value", None, D(2019, 12, 31)),
            ("97140", 6, 3, "new value", D(2020, 1, 1), None),
        ],
    )
    return _engine(host, tmp_path, mue=mue)


def test_mai_1_line_edit_flags_the_line(limits: Engine) -> None:
    enc = _pt([{"code": "97110", "minutes": 45}])
    assert _lines(limits, enc) == ["97110 x3 [GP] expected_denial"]
    (finding,) = limits.check(enc, "medicare").findings
    assert finding.code == "NCCI_MUE_EXCEEDED" and finding.severity == "expected_denial"
    for part in ("MUE of 2 per claim line", "MAI 1", "Clinical: Data", "test MUE v1", "MCR-09"):
        assert part in finding.message


def test_mai_2_absolute_caps_the_units(limits: Engine) -> None:
    enc = _pt([{"code": "97112", "minutes": 45}])
    assert _lines(limits, enc) == ["97112 x2 [GP]"]
    (finding,) = limits.check(enc, "medicare").findings
    assert finding.severity == "warning" and "MAI 2" in finding.message and "per date of service" in finding.message


def test_mai_2_with_mue_0_is_not_billable(limits: Engine) -> None:
    enc = _pt([{"code": "97116", "minutes": 15}])
    assert _lines(limits, enc) == ["97116 x0 [] not_billable"]
    assert _codes(limits, enc) == ["NCCI_MUE_EXCEEDED"]


def test_mai_3_clinical_flags_for_appeal(limits: Engine) -> None:
    enc = _pt([{"code": "97530", "minutes": 45}])
    assert _lines(limits, enc) == ["97530 x3 [GP] expected_denial"]
    (finding,) = limits.check(enc, "medicare").findings
    assert "MAI 3" in finding.message and "appeal" in finding.message


def test_mue_at_the_limit_is_fine(limits: Engine) -> None:
    enc = _pt([{"code": "97530", "minutes": 30}])
    assert _lines(limits, enc) == ["97530 x2 [GP]"]
    assert _codes(limits, enc) == []


def test_mue_row_in_force_on_the_date_of_service(limits: Engine) -> None:
    enc = [{"code": "97140", "minutes": 30}]
    assert _lines(limits, _pt(enc, "2019-06-01")) == ["97140 x2 [GP] expected_denial"]
    assert _lines(limits, _pt(enc, "2020-06-01")) == ["97140 x2 [GP]"]


# --------------------------------------------------------------------------------------------
# Table files


def test_environment_variable_points_builtin_at_a_full_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ptp(tmp_path, [("97110", "97112", None, None, 0, "x")])
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    assert resolve_table("builtin", "ptp") == str((tmp_path / "ptp.tsv").resolve())
    assert load_ptp(resolve_table("builtin", "ptp")).info.version == "test PTP v1"
    monkeypatch.delenv(ENV_DIR)
    assert resolve_table("builtin", "ptp") == "builtin:ptp"
    assert resolve_table(str(tmp_path), "mue") == str((tmp_path / "mue.tsv").resolve())


def test_a_table_directory_is_found_once_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    later = tmp_path / "later"
    monkeypatch.setenv(ENV_DIR, str(later))
    assert resolve_table("builtin", "ptp") == str(later.resolve())  # no directory yet: the path as named
    later.mkdir()
    _ptp(later, [("97110", "97112", None, None, 0, "x")])
    assert resolve_table("builtin", "ptp") == str((later / "ptp.tsv").resolve())
    assert resolve_table("builtin", "ptp") == str((later / "ptp.tsv").resolve())


def test_a_relative_table_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "tables").mkdir(parents=True)
        _ptp(tmp_path / name / "tables", [("97110", "97112", None, None, 0, "x")])
    for name in ("a", "b", "a"):
        monkeypatch.chdir(tmp_path / name)
        assert resolve_table("tables", "ptp") == str((tmp_path / name / "tables" / "ptp.tsv").resolve())


def test_write_table_leaves_no_temporary_file(tmp_path: Path) -> None:
    info = write_table(tmp_path / "ptp.tsv", "ptp", [("97110", "97112", None, None, 0, "x")], source="s", version="v")
    assert info.rows == 1 and len(info.sha256) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["ptp.tsv"]


def test_edited_table_fails_its_hash(tmp_path: Path) -> None:
    path = _ptp(tmp_path, [("97110", "97112", None, None, 0, "x")])
    text = path.read_text().replace("\t0\t", "\t1\t")
    with pytest.raises(NcciTableError, match=r"ptp\.tsv: the rows do not match the header's sha256"):
        parse_ptp(text, str(path))


def test_bad_rows_name_the_file_and_line(tmp_path: Path) -> None:
    path = _mue(tmp_path, [("97110", 2, 1, "", None, None)])
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("#") and not line.startswith("#sha256")]
    data = [lines[-2], "97110\t2\t7\t\t\t"]
    import hashlib

    digest = hashlib.sha256("".join(f"{line}\n" for line in data).encode()).hexdigest()
    bad = "\n".join([*header, f"#sha256\t{digest}", *data]) + "\n"
    with pytest.raises(NcciTableError, match=r"mue\.tsv:\d+: column 'mai': expected one of 1, 2, 3, found 7"):
        parse_mue(bad, str(path))
    with pytest.raises(NcciTableError, match="expected a ptp table"):
        parse_ptp(path.read_text(), str(path))
    with pytest.raises(NcciTableError, match="first line"):
        parse_ptp("column_1\tcolumn_2\n", "x.tsv")


def test_missing_table_file_is_a_clear_error(host: PluginHost, tmp_path: Path) -> None:
    engine = _engine(host, tmp_path, ptp=tmp_path / "nowhere.tsv")
    enc = _pt([{"code": "97110", "minutes": 20}])
    with pytest.raises(NcciTableError, match=r"nowhere\.tsv: cannot read the NCCI table"):
        engine.check(enc, "medicare")


@pytest.mark.parametrize("size", [0, 1, 1000, (1 << 20), (1 << 20) + 1])
def test_a_tables_digest_is_hashlibs_whichever_implementation_computes_it(size):
    import hashlib

    from payerpolicy.ncci.table import _sha256_hex

    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert _sha256_hex(data) == hashlib.sha256(data).hexdigest()
