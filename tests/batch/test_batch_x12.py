"""`payerpolicy batch` on an X12 837P: one row per claim x payer, bad claims as error rows, repairs and edits counted by rule."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.cli import main
from payerpolicy.formats.x12_synth import synthetic_837p

FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"
PAYERS = ["aetna", "bcbsnc", "ca_wc", "commercial", "medicare"]


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("x12") / "claims.x12"
    path.write_bytes(synthetic_837p(1000, seed=7))
    return path


def test_a_thousand_claims_give_one_row_per_claim_and_payer_and_reconcile(thousand: Path, tmp_path: Path) -> None:
    result = run_batch(thousand, tmp_path / "out.jsonl", PAYERS, workers=2, chunk_size=250)
    assert result.counts.reconciled
    assert (result.counts.read, result.counts.valid, result.counts.invalid) == (1000, 1000, 0)
    rows = list(read_rows(tmp_path / "out.jsonl"))
    assert len(rows) == 5000
    per_claim = collections.Counter(r["record"] for r in rows)
    assert set(per_claim.values()) == {5} and sorted(per_claim) == list(range(1000))
    # The counts by rule add up to the differences in the rows, payer by payer.
    for payer in PAYERS:
        repairs = collections.Counter(
            d["rule"] for r in rows if r["payer"] == payer for d in r["outcome"]["differences"] if d["kind"] == "repair"
        )
        edits = collections.Counter(
            d["rule"] for r in rows if r["payer"] == payer for d in r["outcome"]["differences"] if d["kind"] == "edit"
        )
        assert result.stats[payer].repairs == repairs
        assert result.stats[payer].edits == edits
        assert all(r["outcome"]["as_billed"] for r in rows if r["payer"] == payer)
    assert sum(result.stats["medicare"].repairs.values()) > 0  # Medicare's GP/GO/CQ on therapy lines


def test_the_summary_lists_repairs_and_edits_by_rule(thousand: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(thousand), "--out", str(tmp_path / "o.jsonl"), "--payers", "medicare", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    medicare = summary["payers"]["medicare"]
    assert medicare["repairs"] and medicare["edits"]
    assert summary["counts"]["reconciled"] is True
    assert main(["batch", str(thousand), "--out", str(tmp_path / "t.jsonl"), "--payers", "medicare", "--summary"]) == 0
    assert "repairs (a tool may apply), by rule" in capsys.readouterr().out


def test_a_bad_claim_is_an_error_row_and_the_claims_after_it_are_evaluated(tmp_path: Path) -> None:
    text = (FIXTURES / "multi_payer.x12").read_text("ascii")
    first = text.index("SV1*HC:")
    end = text.index("*", first + 7)
    path = tmp_path / "claims.x12"
    path.write_text(text[:first] + "SV1*HC:ZZZZZ" + text[end:])
    result = run_batch(path, tmp_path / "out.jsonl", ["commercial"], workers=1)
    assert result.counts.reconciled
    assert (result.counts.read, result.counts.valid, result.counts.invalid) == (7, 6, 1)
    rows = list(read_rows(tmp_path / "out.jsonl"))
    (bad,) = [r for r in rows if r["error"]]
    assert bad["record"] == 0 and bad["error"]["field"].startswith("SV1 segment")
    assert [r["record"] for r in rows if r["outcome"]] == list(range(1, 7))


def test_an_837p_envelope_that_cannot_be_read_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "claims.x12"
    path.write_bytes((FIXTURES / "medicare_dc.x12").read_bytes().replace(b"005010X222A1", b"005010X223A2"))
    assert main(["batch", str(path), "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "claims.x12" in err
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_history_counts_a_members_second_claim_from_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """aetna_pt_two_claims.x12: one member (2010BA NM109 PLACEHOLDER0002), PT claims on 03-12 and 03-14.

    The 837P carries no visit number; with ``--history`` the member id is the patient key, so the
    second claim is visit 2 of the PT discipline, counted from the first.
    """
    fixture = str(FIXTURES / "aetna_pt_two_claims.x12")
    out = tmp_path / "out.jsonl"
    args = ["batch", fixture, "--payers", "aetna", "--trace", "--history", str(tmp_path / "h.db"), "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()

    def visit_numbers(path: Path) -> dict[str, tuple[object, object, str]]:
        found = {}
        for row in read_rows(path):
            assert row["error"] is None, row
            (entry,) = [t for t in row["outcome"]["trace"] if t["rule"] == "HISTORY" and t["field"] == "care.visit_number"]
            found[row["encounter"]] = (entry["before"], entry["after"], entry["reason"])
        return found

    numbers = visit_numbers(out)
    assert [numbers[i][:2] for i in ("PT-AETNA-1", "PT-AETNA-2")] == [(None, 1), (None, 2)]
    assert "PT-AETNA-1" in numbers["PT-AETNA-2"][2] and "2025-03-12" in numbers["PT-AETNA-2"][2]
    # run again on the same history file: the visits are not counted twice
    assert main([*args[:-1], str(tmp_path / "again.jsonl")]) == 0
    assert visit_numbers(tmp_path / "again.jsonl") == numbers
    # without --history there is nothing to count from
    assert main(["batch", fixture, "--payers", "aetna", "--trace", "--out", str(tmp_path / "plain.jsonl")]) == 0
    assert all(t["rule"] != "HISTORY" for r in read_rows(tmp_path / "plain.jsonl") for t in r["outcome"]["trace"])
