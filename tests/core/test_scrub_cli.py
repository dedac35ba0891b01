"""`payerpolicy scrub`: a claim as billed (JSON or X12 837P) in; billed vs expected, repairs and edits out."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from payerpolicy.cli import main
from x12_validators import pyx12_errors

FIXTURES = Path(__file__).parents[1] / "fixtures" / "x12"

CLAIM = {
    "id": "CLM-1",
    "date_of_service": "2025-05-06",
    "provider": {"type": "DC"},
    "care": {"zelis": True},
    "diagnoses": ["M99.01", "M99.02", "M99.03", "M62.89"],
    "procedures": [
        {
            "code": "98941",
            "regions": ["cervical", "thoracic", "lumbar"],
            "diagnosis_pointers": [1, 2, 3],
            "billed": {"units": 1},
        }
    ],
    "services": [
        {
            "code": "97124",
            "minutes": 15,
            "regions": ["lower_extremity"],
            "necessity": ["tight_muscles_shortening_or_spasticity"],
            "diagnosis_pointers": [4],
            "billed": {"units": 2, "modifiers": ["GP", "59"]},
        }
    ],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_json_claim_lists_billed_expected_repairs_and_edits(tmp_path, capsys):
    file = tmp_path / "claim.json"
    file.write_text(json.dumps(CLAIM))
    code, out, err = run(capsys, "scrub", str(file), "--payer", "bcbsnc", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["scrub_version"] == 1 and doc["errors"] == []
    (claim,) = doc["claims"]
    assert claim["claim"] == "CLM-1" and list(claim["outcomes"]) == ["bcbsnc"]
    outcome = claim["outcomes"]["bcbsnc"]
    assert outcome["as_billed"] is True
    line = outcome["lines"][1]
    assert (line["code"], line["units"], line["modifiers"]) == ("97124", 1, ["59", "GP"])
    assert line["billed"] == {"units": 2, "modifiers": ["GP", "59"]}
    got = sorted((d["kind"], d["code"], d["billed"], d["expected"]) for d in outcome["differences"])
    assert got == [("edit", "UNITS_CHANGED", 2, 1), ("repair", "MODIFIER_ORDER", ["GP", "59"], ["59", "GP"])]
    assert (claim["repairs"], claim["edits"]) == (1, 1)
    for d in outcome["differences"]:
        assert d["rule"] and d["source"]


def test_the_table_shows_billed_beside_expected(tmp_path, capsys):
    file = tmp_path / "claim.json"
    file.write_text(json.dumps(CLAIM))
    code, out, _ = run(capsys, "scrub", str(file), "--payer", "bcbsnc")
    assert code == 0
    assert "97124 x2 [GP, 59]  ≠  97124 x1 [59, GP]" in out
    assert "repairs (a tool may apply):" in out and "edits (a person decides):" in out
    assert out.rstrip().endswith("1 claim checked, 1 repair, 1 edit, 0 unreadable")


def test_an_encounter_that_says_nothing_billed_is_bad_input(tmp_path, capsys):
    data = json.loads(json.dumps(CLAIM))
    for entry in (*data["procedures"], *data["services"]):
        del entry["billed"]
    file = tmp_path / "visit.json"
    file.write_text(json.dumps(data))
    code, out, err = run(capsys, "scrub", str(file))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "nothing in it says what was billed" in err and str(file) in err


def test_x12_out_needs_an_837p_in(tmp_path, capsys):
    file = tmp_path / "claim.json"
    file.write_text(json.dumps(CLAIM))
    code, _, err = run(capsys, "scrub", str(file), "--format", "x12")
    assert code == 2 and "--from x12" in err


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.x12")))
def test_every_837p_fixture_scrubs_clean_for_its_mapped_payer_or_names_each_edit(name, capsys):
    code, out, err = run(capsys, "scrub", str(FIXTURES / name), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["errors"] == [] and doc["claims"]
    for claim in doc["claims"]:
        assert claim["payer_source"] == "mapped" and len(claim["outcomes"]) == 1
        for outcome in claim["outcomes"].values():
            assert outcome["as_billed"] is True
            assert all(
                d["kind"] == "edit" for d in outcome["differences"]
            )  # the fixtures are billed as expected, bar edits


def test_x12_out_applies_repairs_only_and_keeps_every_other_byte(tmp_path, capsys):
    original = (FIXTURES / "bcbsnc_dc_rendering.x12").read_bytes()
    assert b"HC:97140:59*" in original
    billed = original.replace(b"HC:97140:59*", b"HC:97140:XS*")  # the plan wants 59: a repair
    file = tmp_path / "claims.x12"
    file.write_bytes(billed)
    code, out, err = run(capsys, "scrub", str(file), "--format", "json")
    assert code == 0, err
    diffs = [d for c in json.loads(out)["claims"] for o in c["outcomes"].values() for d in o["differences"]]
    assert [(d["kind"], d["code"], d["billed"], d["expected"]) for d in diffs] == [
        ("repair", "DISTINCT_MODIFIER_REPLACED", "XS", "59")
    ]
    done = subprocess.run(
        [sys.executable, "-m", "payerpolicy", "scrub", str(file), "--format", "x12"], capture_output=True, check=True
    )
    assert b"1 line repaired" in done.stderr
    assert done.stdout == original
    assert pyx12_errors(done.stdout.decode("ascii")) == []


def test_x12_out_leaves_edits_as_billed(tmp_path):
    original = (FIXTURES / "bcbsnc_dc_rendering.x12").read_bytes()
    billed = original.replace(b"HC:97140:59*", b"HC:97140*")  # 59 missing: asserts a distinct service, an edit
    file = tmp_path / "claims.x12"
    file.write_bytes(billed)
    done = subprocess.run(
        [sys.executable, "-m", "payerpolicy", "scrub", str(file), "--format", "x12"], capture_output=True, check=True
    )
    assert done.stdout == billed
    assert b"0 lines repaired" in done.stderr


def test_a_bad_claim_is_an_error_row_and_the_next_claims_are_checked(tmp_path, capsys):
    text = (FIXTURES / "multi_payer.x12").read_text("ascii")
    first_sv1 = text.index("SV1*HC:")
    end = text.index("*", first_sv1 + 7)
    broken = text[:first_sv1] + "SV1*HC:" + "ZZZZZ" + text[end:]  # a code that is not in the catalogue
    file = tmp_path / "claims.x12"
    file.write_text(broken)
    code, out, err = run(capsys, "scrub", str(file), "--format", "json")
    assert code == 2
    doc = json.loads(out)
    assert len(doc["errors"]) == 1 and doc["errors"][0]["position"] == 0
    assert [c["position"] for c in doc["claims"]] == list(range(1, 7))
    assert err.count("\n") == 1 and "SV1" in err


def test_an_unknown_payer_stops_before_any_work(tmp_path, capsys):
    code, out, err = run(capsys, "scrub", str(FIXTURES / "medicare_dc.x12"), "--payer", "nosuch")
    assert code == 2 and out == "" and "nosuch" in err


def test_a_fhir_claim_with_quantity_modifier_and_net_scrubs_like_its_json(tmp_path, capsys):
    from payerpolicy import Encounter
    from payerpolicy.formats.fhir import claim_from_encounter, dumps

    claim = claim_from_encounter(
        Encounter.from_mapping(
            {
                **CLAIM,
                "services": [
                    {**CLAIM["services"][0], "billed": {"units": 2, "modifiers": ["GP", "59"], "charge": "90.00"}}
                ],
            }
        )
    )
    item = claim["item"][1]
    assert item["quantity"] == {"value": 2}
    assert [m["coding"][0]["code"] for m in item["modifier"]] == ["GP", "59"]
    assert item["net"] == {"value": Decimal("90.00"), "currency": "USD"}
    fhir_file, json_file = tmp_path / "claim.fhir.json", tmp_path / "claim.json"
    fhir_file.write_text(dumps(claim))
    json_file.write_text(json.dumps(CLAIM))
    _, from_fhir, _ = run(capsys, "scrub", str(fhir_file), "--from", "fhir", "--payer", "bcbsnc", "--format", "json")
    _, from_json, _ = run(capsys, "scrub", str(json_file), "--payer", "bcbsnc", "--format", "json")
    diffs = [json.loads(doc)["claims"][0]["outcomes"]["bcbsnc"]["differences"] for doc in (from_fhir, from_json)]
    assert diffs[0] == diffs[1] and len(diffs[0]) == 2


def test_check_and_compare_read_one_claim_of_an_837p(capsys):
    multi = str(FIXTURES / "multi_payer.x12")
    code, out, err = run(capsys, "check", multi, "--from", "x12", "--payer", "medicare", "--format", "json")
    assert code == 2 and "holds 7 claims" in err and "--claim" in err
    code, out, err = run(capsys, "check", multi, "--from", "x12", "--claim", "MULTI-2", "--payer", "medicare", "--format", "json")
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["encounter"] == "MULTI-2" and outcome["as_billed"] is True
    by_number = run(capsys, "check", multi, "--from", "x12", "--claim", "2", "--payer", "medicare", "--format", "json")[1]
    assert json.loads(by_number) == outcome
    code, out, _ = run(capsys, "compare", str(FIXTURES / "medicare_dc.x12"), "--from", "x12", "--format", "json")
    assert code == 0 and len(json.loads(out)["outcomes"]) == 5
    code, out, _ = run(capsys, "explain", str(FIXTURES / "medicare_dc.x12"), "--from", "x12", "--payer", "medicare")
    assert code == 0 and "98940" in out
    code, _, err = run(capsys, "check", multi, "--from", "x12", "--claim", "NOPE", "--payer", "medicare")
    assert code == 2 and "no claim has that CLM01" in err
