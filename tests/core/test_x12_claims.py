"""837P out for a clearinghouse (issue 17): rendering provider, dates, charges, many claims, two validators."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine, PayerPolicyError
from payerpolicy.cli import main
from payerpolicy.formats.io import read_encounter
from payerpolicy.formats.taxonomy import TAXONOMY_PROVIDER_TYPES, taxonomy_for_provider_type
from payerpolicy.formats.x12 import (
    ClaimInput,
    Envelope,
    envelope_from_mapping,
    interchange,
    interchange_of_claims,
    line_charge,
    load_envelope,
)
from payerpolicy.formats.x12_in import read_837p
from payerpolicy.kit.testing import load_cases
from x12_validators import linuxforhealth_results, pyx12_errors

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Engine()
PAYERS = ("aetna", "bcbsnc", "ca_wc", "commercial", "medicare")
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".json", ".toml"))
CREATED = dt.datetime(2025, 3, 13, 9, 30)
ENV = Envelope(created=CREATED)


def _segments(text: str, tag: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip().startswith(tag + "*")]


def _claims(text: str) -> list[str]:
    """The text of each claim: from its CLM to the next CLM or SE."""
    return re.findall(r"(CLM\*.*?)(?=HL\*|SE\*)", text, flags=re.S)


def test_done_when_batch_writes_one_valid_interchange_per_payer(tmp_path, capsys):
    out = tmp_path / "month.x12"
    assert main(["batch", str(ROOT / "examples" / "month.jsonl"), "--out", str(out), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    files = {payer: tmp_path / f"month.{payer}.x12" for payer in PAYERS}
    texts = {payer: path.read_text() for payer, path in files.items()}
    rows = [json.loads(line) for line in (tmp_path / "month.x12.jsonl").read_text().splitlines()]
    for payer, text in texts.items():
        expected = [r["encounter"] for r in rows if r["payer"] == payer and any(
            line["status"] != "not_billable" for line in r["outcome"]["lines"])]
        assert f"{files[payer]}: {len(expected)} claims" in err
        assert pyx12_errors(text) == [], payer
        assert [c.split("*")[1] for c in _segments(text, "CLM")] == expected
        # Each claim: its billable and expected-denial lines only, a rendering provider, no zero charge.
        assert len(_segments(text, "NM1*82")) == len(expected)
        assert not [s for s in _segments(text, "SV1") if s.split("*")[2] in ("0", "")]
    results = linuxforhealth_results(texts, tmp_path)
    assert {payer: r["ok"] for payer, r in results.items()} == dict.fromkeys(PAYERS, True), results
    assert {payer: r["claims"] for payer, r in results.items()} == {p: len(_segments(t, "CLM")) for p, t in texts.items()}
    # Unique interchange control numbers across the files.
    assert len({_segments(t, "ISA")[0].split("*")[13] for t in texts.values()}) == len(PAYERS)
    # Medicare chiropractic claims (98940-98942) carry DTP*454 = the encounter's episode_start.
    starts = {v["id"]: v["care"].get("episode_start") for v in map(json.loads, (ROOT / "examples" / "month.jsonl").read_text().splitlines())}
    xrays = {v["id"]: v["care"].get("last_xray") for v in map(json.loads, (ROOT / "examples" / "month.jsonl").read_text().splitlines())}
    cmt = 0
    for claim in _claims(texts["medicare"]):
        cid = claim.split("*")[1]
        if re.search(r"SV1\*HC:9894[012]", claim):
            cmt += 1
            assert f"DTP*454*D8*{starts[cid].replace('-', '')}~" in claim
            if xrays[cid]:
                assert f"DTP*455*D8*{xrays[cid].replace('-', '')}~" in claim
        else:
            assert "DTP*454" not in claim
    assert cmt >= 10


@pytest.mark.parametrize("payer", PAYERS)
def test_every_example_for_every_payer_passes_both_validators(payer, tmp_path):
    texts = {}
    for path in EXAMPLES:
        encounter = read_encounter(str(path))
        texts[path.name] = interchange(ENGINE.check(encounter, payer), encounter, ENV)
        assert pyx12_errors(texts[path.name]) == [], path.name
    assert {k: v["ok"] for k, v in linuxforhealth_results(texts, tmp_path).items()} == dict.fromkeys(texts, True)


def test_every_case_files_outcome_passes_both_validators(tmp_path):
    """All case outcomes that go on a claim, one interchange per payer, claim ids C1, C2, ..."""
    by_payer: dict[str, list[ClaimInput]] = {}
    for n, case in enumerate(load_cases(ROOT / "tests" / "cases")):
        if case.payer not in PAYERS:
            continue
        encounter = Encounter.from_mapping(case.encounter)
        outcome = ENGINE.check(encounter, case.payer)
        lines = outcome.claim_lines
        if not lines or not outcome.diagnoses or any(not line.diagnosis_pointers for line in lines):
            continue  # an outcome the writer refuses with a clear error (tested in test_x12.py)
        by_payer.setdefault(case.payer, []).append(ClaimInput(outcome, encounter, f"C{n}"))
    texts = {payer: interchange_of_claims(claims, ENV) for payer, claims in by_payer.items()}
    assert sorted(texts) == list(PAYERS)
    assert sum(len(c) for c in by_payer.values()) >= 100
    for payer, text in texts.items():
        assert pyx12_errors(text) == [], payer
    results = linuxforhealth_results(texts, tmp_path)
    assert {p: (r["ok"], r.get("claims")) for p, r in results.items()} == {
        p: (True, len(by_payer[p])) for p in texts
    }, results


def test_patient_who_is_not_the_subscriber_gets_a_2000c_loop_that_reads_back(tmp_path):
    env = envelope_from_mapping(
        {
            "interchange": {"created": "2025-03-13T09:30:00"},
            "patient": {"relationship": "19", "last_name": "DOE", "first_name": "SAM", "birth_date": "2012-04-01", "gender": "M"},
        }
    )
    encounter = read_encounter(str(ROOT / "examples" / "dc_visit.json"))
    text = interchange(ENGINE.check(encounter, "bcbsnc"), encounter, env)
    assert _segments(text, "HL") == ["HL*1**20*1", "HL*2*1*22*1", "HL*3*2*23*0"]
    assert _segments(text, "SBR") == ["SBR*P********BL"]
    assert "PAT*19~\nNM1*QC*1*DOE*SAM~" in text
    assert "DMG*D8*20120401*M~" in text
    assert pyx12_errors(text) == []
    assert linuxforhealth_results({"dependant": text}, tmp_path)["dependant"]["ok"]
    [record] = list(read_837p(text.encode(), source="dependant.x12"))
    assert record.payer == "bcbsnc" and record.encounter["provider"] == {"type": "DC", "npi": "1234567893"}


@pytest.mark.parametrize("ptype", ["DC", "PT", "PTA", "OT", "OTA", "LMT", "ATC"])
def test_rendering_taxonomy_comes_from_the_shared_table_and_reads_back(ptype):
    """Writer and reader agree: the PRV*PE code written for a provider type reads back as that type."""
    taxonomy = taxonomy_for_provider_type(ptype)
    assert taxonomy is not None and (taxonomy in TAXONOMY_PROVIDER_TYPES or f"{taxonomy[:4]}*" in TAXONOMY_PROVIDER_TYPES)
    encounter = Encounter.from_mapping(
        {"id": "T-1", "date_of_service": "2025-03-12", "provider": {"type": ptype, "npi": "1000000004"},
         "diagnoses": ["M54.50"],
         "services": [{"code": "97124" if ptype == "LMT" else "97110", "minutes": 15, "diagnosis_pointers": [1],
                       "regions": ["lumbar"], "intent": ["spasm"], "necessity": ["tight_muscles_shortening_or_spasticity"]}]}
    )
    outcome = next(o for o in (ENGINE.check(encounter, p) for p in PAYERS) if o.claim_lines)
    text = interchange(outcome, encounter, ENV)
    assert f"NM1*82*1*PLACEHOLDER*RENDERING****XX*1000000004~\nPRV*PE*PXC*{taxonomy}~" in text
    [record] = list(read_837p(text.encode(), source="t.x12"))
    assert record.encounter["provider"] == {"type": ptype, "npi": "1000000004"}


def test_physician_has_no_single_taxonomy_so_prv_is_left_out_unless_the_envelope_gives_it():
    assert taxonomy_for_provider_type("MD") is None and taxonomy_for_provider_type("DO") is None
    encounter = Encounter.from_mapping(
        {"date_of_service": "2025-03-12", "provider": {"type": "MD", "npi": "1000000004"}, "diagnoses": ["M54.50"],
         "services": [{"code": "97110", "minutes": 15, "diagnosis_pointers": [1]}]}
    )
    outcome = ENGINE.check(encounter, "commercial")
    assert "PRV*PE" not in interchange(outcome, encounter, ENV)
    env = envelope_from_mapping({"rendering_providers": {"1000000004": {"last_name": "SMITH", "first_name": "ANN", "taxonomy": "208100000X"}}})
    text = interchange(outcome, encounter, env)
    assert "NM1*82*1*SMITH*ANN****XX*1000000004~\nPRV*PE*PXC*208100000X~" in text


def test_no_2310b_when_the_rendering_provider_is_the_billing_provider():
    encounter = read_encounter(str(ROOT / "examples" / "dc_visit.json"))
    env = envelope_from_mapping({"billing_provider": {"npi": "1234567893"}})
    text = interchange(ENGINE.check(encounter, "commercial"), encounter, env)
    assert "NM1*82" not in text and "PRV*PE" not in text
    assert pyx12_errors(text) == []


def test_line_charge_billed_then_encounter_then_envelope_then_zero():
    encounter = Encounter.from_mapping(
        {"date_of_service": "2025-03-12", "provider": {"type": "PT"}, "diagnoses": ["M54.50"],
         "charges": {"97110": "40.00"},
         "services": [{"code": "97110", "minutes": 38, "diagnosis_pointers": [1]},
                      {"code": "97112", "minutes": 15, "diagnosis_pointers": [1], "billed": {"units": 1, "charge": "52.25"}},
                      {"code": "97530", "minutes": 15, "diagnosis_pointers": [1]},
                      {"code": "97116", "minutes": 15, "diagnosis_pointers": [1]}]}
    )
    outcome = ENGINE.check(encounter, "commercial")
    env = Envelope(created=CREATED, charges={"97530": Decimal("50.00"), "97110": Decimal("1.00")})
    charges = {line.code: line_charge(line, encounter, env) for line in outcome.claim_lines}
    assert charges == {"97110": Decimal("120.00"), "97112": Decimal("52.25"), "97530": Decimal("50.00"), "97116": Decimal(0)}
    text = interchange(outcome, encounter, env)
    assert _segments(text, "CLM")[0].split("*")[2] == "222.25"


def test_production_interchange_with_placeholders_or_zero_charges_is_refused(tmp_path, capsys):
    encounter = read_encounter(str(ROOT / "examples" / "dc_visit.json"))
    outcome = ENGINE.check(encounter, "medicare")
    with pytest.raises(PayerPolicyError) as info:
        interchange(outcome, encounter, Envelope(usage="P"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot write a production 837P (ISA15 = P): placeholder or missing values: interchange.sender_id; ")
    # The complete example envelope, switched to production: only the sample NPI and zero-charge gaps remain.
    env = load_envelope(str(ROOT / "examples" / "x12" / "envelope.toml"))
    import attrs

    prod = attrs.evolve(env, usage="P", charges={})
    with pytest.raises(PayerPolicyError) as info:
        interchange(outcome, encounter, prod)
    assert str(info.value) == (
        "cannot write a production 837P (ISA15 = P): placeholder or missing values: "
        "claim S42-0001: provider.npi (the encounter's rendering NPI); "
        "claim S42-0001 line 1 (98940): charge 0 (give charges in the encounter or the envelope); "
        "claim S42-0001 line 2 (97140): charge 0 (give charges in the encounter or the envelope); "
        "claim S42-0001 line 3 (97110): charge 0 (give charges in the encounter or the envelope)"
    )
    # Everything real: accepted, and ISA15 is P. A Medicare CMT claim without the initial treatment date is not.
    real = encounter.to_mapping() | {"provider": {"type": "DC", "npi": "1999999984"}}
    enc = Encounter.from_mapping(real)
    good = attrs.evolve(env, usage="P", rendering_providers=envelope_from_mapping(
        {"rendering_providers": {"1999999984": {"last_name": "ROE", "first_name": "ALEX"}}}).rendering_providers)
    text = interchange(ENGINE.check(enc, "medicare"), enc, good)
    assert _segments(text, "ISA")[0].split("*")[15] == "P"
    no_start = Encounter.from_mapping(real | {"care": {k: v for k, v in real["care"].items() if k != "episode_start"}})
    with pytest.raises(PayerPolicyError, match=r"care.episode_start \(DTP\*454, initial treatment date"):
        interchange(ENGINE.check(no_start, "medicare"), no_start, good)
    # From the command line: one line, exit 2.
    bad = tmp_path / "prod.toml"
    bad.write_text('[interchange]\nusage = "P"\n')
    assert main(["check", str(ROOT / "examples" / "dc_visit.json"), "--payer", "medicare", "--x12-envelope", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("payerpolicy: error: cannot write a production 837P (ISA15 = P)") and err.count("\n") == 1


def test_one_interchange_is_for_one_payer_with_unique_claim_ids():
    encounter = read_encounter(str(ROOT / "examples" / "dc_visit.json"))
    a, b = ENGINE.check(encounter, "medicare"), ENGINE.check(encounter, "aetna")
    with pytest.raises(PayerPolicyError, match="one interchange is for one payer, found aetna, medicare"):
        interchange_of_claims([ClaimInput(a, encounter), ClaimInput(b, encounter)], ENV)
    with pytest.raises(PayerPolicyError, match=r"claim id S42-dc-visit \(CLM01\) is used by two claims"):
        interchange_of_claims([ClaimInput(a, encounter), ClaimInput(a, encounter)], ENV)


def test_batch_envelope_option_needs_x12_output(tmp_path, capsys):
    assert main(["batch", str(ROOT / "examples" / "month.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                 "--x12-envelope", str(ROOT / "examples" / "x12" / "envelope.toml")]) == 2
    assert capsys.readouterr().err == "payerpolicy: error: --x12-envelope goes with --out *.x12 (837P files)\n"


def test_writer_and_reader_agree_on_every_claim_of_the_month(tmp_path):
    """Differential: each written claim reads back (x12_in) as its encounter's date, provider, dates and billed lines."""
    from payerpolicy.batch.claims_x12 import claims_from_batch, write_837p_files

    rows = tmp_path / "rows.jsonl"
    assert main(["batch", str(ROOT / "examples" / "month.jsonl"), "--out", str(rows), "--workers", "1"]) == 0
    written = write_837p_files(ROOT / "examples" / "month.jsonl", rows, tmp_path / "m.x12", ENV)
    batch = claims_from_batch(ROOT / "examples" / "month.jsonl", rows)
    assert [p.name for p, _ in written] == [f"m.{payer}.x12" for payer in PAYERS]
    for path, _ in written:
        payer = path.name.split(".")[1]
        records = list(read_837p(path.read_bytes(), source=path.name))
        claims = batch.claims[payer]
        assert len(records) == len(claims)
        for record, claim in zip(records, claims, strict=True):
            enc, outcome = claim.encounter, claim.outcome
            assert record.claim_id == claim.claim_id
            assert record.encounter["date_of_service"] == enc.date_of_service.isoformat()
            assert record.encounter["provider"] == {"type": enc.provider.type, "npi": "1234567893"}
            assert record.encounter["diagnoses"] == list(outcome.diagnoses)
            cmt = any(line.code in ("98940", "98941", "98942") for line in outcome.claim_lines)
            care = record.encounter.get("care", {})
            assert care.get("episode_start") == (enc.care.episode_start.isoformat() if cmt else None)
            assert care.get("last_xray") == (enc.care.last_xray.isoformat() if cmt and enc.care.last_xray else None)
            billed = [
                (entry["code"], entry["billed"]["units"], entry["billed"]["modifiers"], entry["billed"]["charge"])
                for ref in record.lines
                for entry in [record.encounter[ref.origin][ref.entry]]
            ]
            assert billed == [
                (line.code, line.units, list(line.modifiers), str(line_charge(line, enc, ENV).quantize(Decimal("0.01"))))
                for line in outcome.claim_lines
            ]


def test_service_lines_output_uses_the_encounters_charges(tmp_path, capsys):
    first = json.loads((ROOT / "examples" / "month.jsonl").read_text().splitlines()[0])
    path = tmp_path / "m1.json"
    path.write_text(json.dumps(first))
    assert main(["check", str(path), "--payer", "medicare", "--format", "x12"]) == 0
    assert _segments(capsys.readouterr().out, "SV1") == ["SV1*HC:98941:AT*70*UN*1***1", "SV1*HC:97140:GP:GX:GY*45*UN*1***2"]
