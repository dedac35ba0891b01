"""What a new user ran into (issue 13), each pinned so it cannot come back.

Batch runs that fail before their first part, messages naming the right thing, modules that answer
``--help``, files made with the user's umask, X12 options implying the format.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import payerpolicy
import pytest
from payerpolicy import PayerPolicyError
from payerpolicy.batch import render_summary, run_batch
from payerpolicy.batch.synth import encounters
from payerpolicy.cli import main
from payerpolicy.evaluation.wording import a_or_an, count_range, plural
from payerpolicy.ncci import load_mue, load_ptp
from payerpolicy.ncci.importer import import_cms_files
from payerpolicy.ncci.synth import write_synthetic_cms_files

ROOT = Path(__file__).resolve().parents[2]


def _jsonl(path: Path, count: int = 5) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in encounters(count, seed=3)), encoding="utf-8")
    return path


def test_unreachable_scheduler_leaves_nothing_and_the_rerun_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"

    def unreachable(scheduler: object) -> tuple[object, bool]:
        # what payerpolicy.batch.dask._client raises once distributed gives up (20 s on a real address)
        raise PayerPolicyError(f"cannot reach the Dask scheduler at {scheduler}: Timed out trying to connect")

    monkeypatch.setattr("payerpolicy.batch.dask._client", unreachable)
    with pytest.raises(PayerPolicyError, match=r"^cannot reach the Dask scheduler at tcp://10\.0\.0\.1:8786"):
        run_batch(source, out, ["commercial"], scheduler="tcp://10.0.0.1:8786")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    monkeypatch.undo()
    result = run_batch(source, out, ["commercial"], workers=1)  # no --resume needed, nothing refused
    assert result.counts.read == 5 and result.counts.reconciled
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_a_run_stopped_after_a_part_still_keeps_it_for_resume(tmp_path: Path) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out.jsonl"

    def stop(result: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(source, out, ["commercial"], workers=1, chunk_size=2, on_chunk=stop)
    assert sorted(p.name for p in (tmp_path / "out.jsonl.partial").iterdir()) == ["part-000000.jsonl", "parts.jsonl", "state.json"]
    assert run_batch(source, out, ["commercial"], workers=1, chunk_size=2, resume=True).resumed_from == 2


def test_writing_parquet_without_pyarrow_says_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _jsonl(tmp_path / "in.jsonl")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(PayerPolicyError) as info:
        run_batch(source, tmp_path / "out.parquet", ["commercial"], workers=1)
    assert str(info.value) == (
        f"{tmp_path / 'out.parquet'}: writing Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_reading_parquet_without_pyarrow_says_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.parquet"
    run_batch(_jsonl(tmp_path / "in.jsonl"), tmp_path / "made.parquet", ["commercial"], workers=1)
    # any Parquet file will do: the reader stops at the missing library before it looks inside
    os.replace(tmp_path / "made.parquet", source)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(PayerPolicyError) as info:
        run_batch(source, tmp_path / "out.jsonl", ["commercial"], workers=1)
    assert str(info.value) == f"{source}: reading Parquet needs pyarrow, which is not installed: pip install 'payerpolicy[parquet]'"


@pytest.mark.parametrize("module", ["payerpolicy.ncci_synth", "payerpolicy.ncci.synth"])
def test_ncci_synth_module_prints_help(module: str) -> None:
    run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: python -m payerpolicy.ncci.synth [-h] --out DIR")
    assert "--ptp-rows" in run.stdout and "--mue-rows" in run.stdout and "--seed" in run.stdout


def test_ncci_synth_module_writes_files_the_importer_reads(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "payerpolicy.ncci_synth", "--out", str(tmp_path / "cms"), "--ptp-rows", "40", "--mue-rows", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    *ptp, mue = [Path(line) for line in run.stdout.splitlines()]
    assert [p.name for p in ptp] == [f"ccipra-v999r0-f{n}.txt" for n in range(1, 5)]
    ptp_info, mue_info = import_cms_files(ptp, mue, tmp_path / "tables")
    assert mue_info.rows == 5 and ptp_info.rows > 0


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_imported_tables_follow_the_umask(tmp_path: Path, umask: int) -> None:
    ptp, mue = write_synthetic_cms_files(tmp_path / "cms", ptp_rows=40, mue_rows=5, seed=1)
    old = os.umask(umask)
    try:
        import_cms_files(ptp, mue, tmp_path / "tables")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "tables").iterdir()}
    assert modes == dict.fromkeys(["ptp.tsv", "ptp.idx", "mue.tsv"], 0o666 & ~umask)
    load_ptp(str(tmp_path / "tables" / "ptp.tsv"))
    load_mue(str(tmp_path / "tables" / "mue.tsv"))


def _css_rules(page: str) -> list[tuple[list[str], str]]:
    css = page[page.index("<style>") + len("<style>") : page.index("</style>")]
    rules = []
    for block in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        selectors = [s.strip() for s in block[0].split(",")]
        rules.append((selectors, block[1]))
    return rules


def _background(rules: list[tuple[list[str], str]], selector: str) -> str:
    found = [body for selectors, body in rules if selector in selectors and "background" in body]
    assert len(found) == 1, f"{selector}: {found}"
    return re.search(r"background:\s*([^;]+);", found[0]).group(1).strip()


@pytest.mark.parametrize("what_if", [False, True])
def test_the_compare_legend_shows_the_cells_own_colours(what_if: bool, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", str(ROOT / "examples" / "dc_visit.json"), "--format", "html"]
    if what_if:
        argv += ["--set", "care.phase=maintenance"]
    assert main(argv) == 0
    page = capsys.readouterr().out
    rules = _css_rules(page)
    legend = page[page.index('<p class="legend" id="legend">') :].split("</p>", 1)[0]
    shown = re.findall(r'<span class="swatch ([a-z_]+)" data-legend="\1"', legend)
    assert shown == (["changed"] if what_if else ["differs"]) + ["expected_denial", "not_billable"]
    for css in shown:
        assert _background(rules, f".swatch.{css}") == _background(rules, f"td.{css}")
    # every shaded cell class on the page has its colour in the legend
    legend_colours = {_background(rules, f".swatch.{css}") for css in shown}
    cell_classes = {c for attr in re.findall(r'<td class="([^"]+)"', page) for c in attr.split()}
    shaded = {c for c in cell_classes if any(f"td.{c}" in sel and "background" in body for sel, body in rules)}
    assert shaded, "the example has shaded cells"
    assert {_background(rules, f"td.{c}") for c in shaded} <= legend_colours
    assert ("changed" in cell_classes) is what_if


def test_wording_counts_and_articles() -> None:
    assert [plural(n, "spinal region") for n in (0, 1, 2)] == ["0 spinal regions", "1 spinal region", "2 spinal regions"]
    assert plural(1, "unit") == "1 unit" and plural(3, "unit") == "3 units"
    assert count_range(1, 2, "spinal region") == "1-2 spinal regions" and count_range(5, 5, "spinal region") == "5 spinal regions"
    assert [a_or_an(t) for t in ("LMT", "DC", "PT", "OT", "OTA", "MD", "DO", "ATC", "PTA")] == [
        "an LMT", "a DC", "a PT", "an OT", "an OTA", "an MD", "a DO", "an ATC", "a PTA",
    ]  # fmt: skip


def _messages(encounter: dict, payer: str = "commercial") -> list[tuple[str, str]]:
    outcome = payerpolicy.check(payerpolicy.Encounter.from_mapping(encounter), payer)
    return [(f.code, f.message) for f in outcome.findings]


@pytest.mark.parametrize(
    ("code", "regions", "finding"),
    [
        (
            "98941",
            ["cervical"],
            (
                "CMT_LEVEL_UNSUPPORTED",
                "98941 is for 3-4 spinal regions but only 1 documented (cervical): a level above what the record"
                " supports is upcoding; billed as 98940, the level the documented regions support",
            ),
        ),
        (
            "98940",
            ["cervical", "thoracic", "lumbar"],
            (
                "CMT_LEVEL_MISMATCH",
                "98940 is for 1-2 spinal regions but 3 are documented (cervical, thoracic, lumbar); 3 spinal regions is 98941",
            ),
        ),
    ],
)
def test_cmt_level_message_counts_regions_in_english(code: str, regions: list[str], finding: tuple[str, str]) -> None:
    visit = {"date_of_service": "2025-03-12", "provider": {"type": "DC"}, "procedures": [{"code": code, "regions": regions}]}
    assert finding in _messages(visit)


def test_provider_restriction_says_what_to_do_and_an_lmt() -> None:
    visit = {"date_of_service": "2025-03-12", "provider": {"type": "LMT"}, "services": [{"code": "97110", "minutes": 30}]}
    assert (
        "PROVIDER_CODE_RESTRICTED",
        "97110 is on this payer's list of codes an LMT should not bill, so it is left off the claim. If a provider who may "
        "bill it performed the service, enter that provider; if your contract with this payer allows it, ask whoever "
        "maintains your payer policies to switch off rule CORE-PROV-01",
    ) in _messages(visit)


def test_no_message_tells_a_biller_to_edit_the_policy() -> None:
    sources = [*(ROOT / "core").rglob("*.py"), *(ROOT / "plugins").glob("*.py"), *(ROOT / "policies").glob("*.toml")]
    offending = [str(p.relative_to(ROOT)) for p in sources if re.search(r"override by editing|by editing the policy", p.read_text("utf-8"))]
    assert offending == []


def test_no_message_puts_a_before_a_provider_type_that_needs_an() -> None:
    # "a {provider}" in an f-string gives "a LMT", "a OT"; the wording helper picks the article
    sources = [*(ROOT / "core").rglob("*.py"), *(ROOT / "plugins").glob("*.py")]
    offending = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in sources
        for m in re.finditer(r"\ba \{[^}]*(?:provider|who)[^}]*\}", p.read_text("utf-8"))
    ]
    assert offending == []


def test_one_of_a_thing_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _jsonl(tmp_path / "in.jsonl", 1)
    result = run_batch(source, tmp_path / "out.jsonl", ["commercial"], workers=1)
    assert render_summary(result).splitlines()[0] == "summary — 1 encounter × 1 payer"
    assert main(["report", str(tmp_path / "out.jsonl"), "--out", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'r.html'}: 1 encounter, 1 outcome row, 0 error rows, payers commercial\n"
    assert ">1 encounter, 1 outcome for 1 payer, 0 error rows — from out.jsonl</p>" in (tmp_path / "r.html").read_text()
