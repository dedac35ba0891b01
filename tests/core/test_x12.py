"""X12 837P: exact service lines per payer, and full interchanges that the pyx12 validator accepts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from payerpolicy import ClaimLine, Encounter, Engine, PayerPolicyError
from payerpolicy.cli import main
from payerpolicy.formats.io import read_encounter
from payerpolicy.formats.x12 import (
    Envelope,
    PayerSettings,
    envelope_from_mapping,
    interchange,
    load_envelope,
    service_line_segments,
    sv1_segment,
)
from x12_validators import pyx12_errors

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(ROOT / "tests" / "fixtures" / "fhir" / "claim_dc_visit.json")
DC = str(ROOT / "examples" / "dc_visit.json")
ENVELOPE = str(ROOT / "examples" / "x12" / "envelope.toml")
ENGINE = Engine()
CREATED = dt.datetime(2025, 3, 13, 9, 30)

#: The S42 visit's SV1 segments per payer (rules.md; the same lines as `payerpolicy compare`), zero charges.
SV1 = {
    "commercial": ["SV1*HC:98940*0*UN*1***1:2:3", "SV1*HC:97140:59*0*UN*1***4", "SV1*HC:97124:59*0*UN*1***5", "SV1*HC:97110*0*UN*1***5"],
    "aetna": ["SV1*HC:98940*0*UN*1***1:2:3", "SV1*HC:97140:59*0*UN*1***4", "SV1*HC:97124:59*0*UN*1***5", "SV1*HC:97110*0*UN*1***5"],
    "ca_wc": ["SV1*HC:98940*0*UN*1***1:2:3", "SV1*HC:97140:59*0*UN*1***4", "SV1*HC:97124:59*0*UN*1***5", "SV1*HC:97110*0*UN*1***5"],
    # BCBSNC: 97124 denied by the NCCI PTP edit with 97140 (BCNC-01): not on the claim.
    "bcbsnc": ["SV1*HC:98940*0*UN*1***1:2:3", "SV1*HC:97140:59*0*UN*1***4", "SV1*HC:97110*0*UN*1***5"],
    # Medicare: AT on active CMT; a DC's therapy lines billed non-covered with GP and GY; 97124 NCCI-denied.
    "medicare": ["SV1*HC:98940:AT*0*UN*1***1:2:3", "SV1*HC:97140:GP:GY*0*UN*1***4", "SV1*HC:97110:GP:GY*0*UN*1***5"],
}
SBR09 = {"commercial": "CI", "aetna": "CI", "ca_wc": "WC", "bcbsnc": "BL", "medicare": "MB"}


def _segments(text: str, tag: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip().startswith(tag + "*")]


@pytest.mark.parametrize("payer", sorted(SV1))
def test_fhir_claim_in_valid_837p_out(payer, tmp_path, capsys):
    """Done-when of issue 9: the fixture FHIR Claim goes in, a pyx12-valid 837P with the right SV1 lines comes out."""
    pytest.importorskip("fhir.resources", reason="needs payerpolicy[fhir]")
    envelope = tmp_path / "envelope.toml"
    envelope.write_text('[interchange]\ncreated = 2025-03-13T09:30:00\ncontrol_number = 42\n')
    assert main(["check", "--from", "fhir", FIXTURE, "--payer", payer, "--format", "x12", "--x12-envelope", str(envelope)]) == 0
    text = capsys.readouterr().out
    assert pyx12_errors(text) == []
    assert _segments(text, "SV1") == SV1[payer]
    assert _segments(text, "HI") == ["HI*ABK:M9901*ABF:M9902*ABF:M542*ABF:M25611*ABF:M62830"]
    assert _segments(text, "LX") == [f"LX*{n}" for n in range(1, len(SV1[payer]) + 1)]
    # DTP*454: the initial treatment date (care.episode_start) of a claim with spinal CMT, before HI.
    assert _segments(text, "DTP") == ["DTP*454*D8*20250224"] + ["DTP*472*D8*20250312"] * len(SV1[payer])
    assert _segments(text, "REF") == ["REF*EI*000000000"] + [f"REF*6R*S42-dc-visit-{n}" for n in range(1, len(SV1[payer]) + 1)]
    assert _segments(text, "NM1")[-1] == "NM1*82*1*PLACEHOLDER*RENDERING****XX*1234567893"
    assert "PRV*PE*PXC*111N00000X~" in text
    assert _segments(text, "SBR") == [f"SBR*P*18*******{SBR09[payer]}"]
    assert _segments(text, "CLM") == ["CLM*S42-dc-visit*0***11:B:1*Y*A*Y*Y"]
    lines = text.splitlines()
    assert lines[0].startswith("ISA*00*          *00*          *ZZ*PAYERPOLICY    *ZZ*RECEIVER       *250313*0930*^*00501*000000042*0*T*:~")
    assert lines[-3:] == [f"SE*{len(lines) - 4}*0042~", "GE*1*42~", "IEA*1*000000042~"]


def test_example_envelope_gives_charges_names_and_a_valid_interchange():
    encounter = read_encounter(DC)
    text = interchange(ENGINE.check(encounter, "medicare"), encounter, load_envelope(ENVELOPE))
    assert pyx12_errors(text) == []
    assert _segments(text, "SV1") == ["SV1*HC:98940:AT*45*UN*1***1:2:3", "SV1*HC:97140:GP:GY*38.5*UN*1***4", "SV1*HC:97110:GP:GY*40*UN*1***5"]
    assert _segments(text, "CLM") == ["CLM*S42-0001*123.5***11:B:1*Y*A*Y*Y"]
    assert _segments(text, "NM1")[-2:] == ["NM1*PR*2*EXAMPLE MAC*****PI*EXMAC", "NM1*82*1*EXAMPLE*DANA****XX*1234567893"]
    assert "PRV*BI*PXC*111N00000X~" in text
    assert "N4*RALEIGH*NC*276011234~" in text


def test_segments_only_output_is_the_service_line_part(capsys):
    assert main(["check", DC, "--payer", "commercial", "--format", "x12"]) == 0
    assert capsys.readouterr().out == (
        "HI*ABK:M9901*ABF:M9902*ABF:M542*ABF:M25611*ABF:M62830~\n"
        "LX*1~\nSV1*HC:98940*0*UN*1***1:2:3~\nDTP*472*D8*20250312~\n"
        "LX*2~\nSV1*HC:97140:59*0*UN*1***4~\nDTP*472*D8*20250312~\n"
        "LX*3~\nSV1*HC:97124:59*0*UN*1***5~\nDTP*472*D8*20250312~\n"
        "LX*4~\nSV1*HC:97110*0*UN*1***5~\nDTP*472*D8*20250312~\n"
    )


def test_units_and_four_modifiers_and_pointers():
    line = ClaimLine(code="97140", units=3, modifiers=("59", "GP", "KX", "CQ"), diagnosis_pointers=(2, 1, 4, 3))
    assert sv1_segment(line, Decimal("114.00")) == "SV1*HC:97140:59:GP:KX:CQ*114*UN*3***2:1:4:3"


def test_pt_visit_units_in_a_valid_interchange():
    encounter = read_encounter(str(ROOT / "examples" / "pt_visit.toml"))
    outcome = ENGINE.check(encounter, "medicare")
    text = interchange(outcome, encounter, Envelope(created=CREATED, payers={"medicare": PayerSettings(name="MAC", id="MAC01")}))
    assert pyx12_errors(text) == []
    assert _segments(text, "SV1") == ["SV1*HC:97112:GP*0*UN*2***2", "SV1*HC:97110:GP*0*UN*1***1"]
    assert _segments(text, "HI") == ["HI*ABK:M25511*ABF:R2689"]


def test_pyx12_catches_a_broken_interchange():
    """The validator is not a no-op: a wrong SE count and a bad unit code are errors."""
    encounter = read_encounter(DC)
    text = interchange(ENGINE.check(encounter, "commercial"), encounter, Envelope(created=CREATED))
    assert pyx12_errors(text) == []
    se = _segments(text, "SE")[0]
    count = int(se.split("*")[1])
    assert any("SE count" in m for m in pyx12_errors(text.replace(f"SE*{count}*", f"SE*{count - 1}*")))
    assert pyx12_errors(text.replace("*0*UN*1***4", "*0*XX*1***4"))


def test_lines_without_pointer_or_diagnosis_cannot_be_written():
    enc = Encounter.from_mapping({"date_of_service": "2025-01-02", "provider": {"type": "PT"}, "diagnoses": ["M54.50"],
                                  "services": [{"code": "97110", "minutes": 15}]})
    with pytest.raises(PayerPolicyError) as info:
        service_line_segments(ENGINE.check(enc, "commercial"), enc.date_of_service)
    assert str(info.value) == (
        "cannot write the 837P: line 1 (97110) of the commercial outcome has no diagnosis pointer; SV107 needs one "
        "(add diagnosis_pointers to services[0] of the encounter)"
    )
    enc = Encounter.from_mapping({"date_of_service": "2025-01-02", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 15}]})
    with pytest.raises(PayerPolicyError, match="the claim has no diagnosis; HI needs a principal diagnosis"):
        service_line_segments(ENGINE.check(enc, "commercial"), enc.date_of_service)


def test_envelope_errors_name_file_table_and_key(tmp_path, capsys):
    bad = tmp_path / "env.toml"
    bad.write_text('[billing_provider]\nzip = "27601"\n')
    assert main(["check", DC, "--payer", "commercial", "--format", "x12", "--x12-envelope", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f'payerpolicy: error: {bad}: billing_provider.zip: expected 9 digits (ZIP+4; the 837P requires it for the billing provider), found "27601"\n'
    )
    with pytest.raises(PayerPolicyError) as info:
        envelope_from_mapping({"payers": {"medicare": {"filing": "MB"}}}, file="e.json")
    assert str(info.value) == 'e.json: payers.medicare.filing: expected one of the keys name, id, filing_indicator, found "filing"'
    with pytest.raises(PayerPolicyError) as info:
        envelope_from_mapping({"charges": {"97140": 38.5}}, file="e.json")
    assert str(info.value) == 'e.json: charges.97140: expected an amount in dollars as a string like "45.00", found 38.5'


def test_x12_options_imply_format_x12(capsys):
    assert main(["check", DC, "--payer", "commercial", "--x12", "interchange"]) == 0
    implied = capsys.readouterr().out
    assert main(["check", DC, "--payer", "commercial", "--format", "x12", "--x12", "interchange"]) == 0
    assert implied == capsys.readouterr().out
    assert implied.startswith("ISA*")
    assert main(["check", DC, "--payer", "commercial", "--x12-envelope", ENVELOPE]) == 0
    assert capsys.readouterr().out.startswith("ISA*")
    assert main(["check", DC, "--payer", "commercial", "--x12", "lines"]) == 0
    assert capsys.readouterr().out.startswith("HI*")


def test_x12_options_conflict_with_another_format(capsys):
    assert main(["check", DC, "--payer", "commercial", "--format", "json", "--x12", "interchange"]) == 2
    assert capsys.readouterr().err == "payerpolicy: error: --x12 and --x12-envelope go with --format x12, not --format json\n"
