"""X12 837P in: fixtures pyx12 accepts read to exact encounters, payers and errors; the writer's output read back; SV1 rewrites."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payerpolicy import Encounter, Engine, PayerPolicyError
from payerpolicy.formats.io import read_encounter
from payerpolicy.formats.x12 import (
    ClaimInput,
    Envelope,
    PayerSettings,
    interchange,
    interchange_of_claims,
    production_problems,
)
from payerpolicy.formats.x12_in import (
    TAXONOMY_PROVIDER_TYPES,
    ClaimError,
    ClaimRecord,
    LineChange,
    LineRef,
    PayerMap,
    PayerRule,
    X12Error,
    load_payer_map,
    payer_map_from_mapping,
    provider_type_for_taxonomy,
    read_837p,
    read_837p_file,
    rewrite_lines,
    to_encounter,
)
from payerpolicy.formats.x12_synth import interchange_text, synthetic_837p, synthetic_claims
from x12_validators import pyx12_errors

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "x12"
ENGINE = Engine()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read(data: bytes | str, **kw: Any) -> list[ClaimRecord | ClaimError]:
    return list(read_837p(data.encode("latin-1") if isinstance(data, str) else data, source="claims.x12", **kw))


def lines_of(record: ClaimRecord) -> list[tuple[str, int, list[str], list[int], str]]:
    """(code, units, modifiers, pointers, charge) of each claim line, in claim order."""
    out = []
    for ref in record.lines:
        entry = record.encounter[ref.origin][ref.entry]
        out.append((entry["code"], entry["billed"]["units"], entry["billed"]["modifiers"], entry["diagnosis_pointers"], entry["billed"]["charge"]))
    return out


def without_billed(mapping: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(mapping))
    for key in ("services", "procedures"):
        for entry in data.get(key, []):
            del entry["billed"]
    return data


S42_DX = ["M99.01", "M99.02", "M54.2", "M25.611", "M62.830"]
S42_COMMERCIAL = [("98940", 1, [], [1, 2, 3], "45.00"), ("97140", 1, ["59"], [4], "38.50"), ("97124", 1, ["59"], [5], "36.00"), ("97110", 1, [], [5], "40.00")]
S42_MEDICARE = [("98940", 1, ["AT"], [1, 2, 3], "45.00"), ("97140", 1, ["GP", "GY"], [4], "38.50"), ("97110", 1, ["GP", "GY"], [5], "40.00")]
S42_BCBSNC = [("98940", 1, [], [1, 2, 3], "45.00"), ("97140", 1, ["59"], [4], "38.50"), ("97110", 1, [], [5], "40.00")]
PT_AETNA = [("97112", 2, [], [2], "84.00"), ("97110", 1, [], [1], "40.00")]
PT_MEDICARE = [("97112", 2, ["GP"], [2], "84.00"), ("97110", 1, ["GP"], [1], "40.00")]

#: fixture -> per claim: (claim id, payer, provider type, NPI, SBR09, lines, diagnoses, date)
EXPECTED = {
    "commercial_dc.x12": [("S42-COMMERCIAL", "commercial", "DC", "1234567893", "CI", S42_COMMERCIAL, S42_DX, "2025-03-12")],
    "medicare_dc.x12": [("S42-MEDICARE", "medicare", "DC", "1234567893", "MB", S42_MEDICARE, S42_DX, "2025-03-12")],
    "bcbsnc_dc_rendering.x12": [("S42-BCBSNC", "bcbsnc", "DC", "3333333334", "BL", S42_BCBSNC, S42_DX, "2025-03-12")],
    "aetna_pt_two_claims.x12": [
        ("PT-AETNA-1", "aetna", "PT", "2222222228", "CI", PT_AETNA, ["M25.511", "R26.89"], "2025-03-12"),
        ("PT-AETNA-2", "aetna", "PT", "2222222228", "CI", PT_AETNA, ["M25.511", "R26.89"], "2025-03-14"),
    ],
    "ca_wc_dc.x12": [("S42-CAWC", "ca_wc", "DC", "1234567802", "WC", S42_COMMERCIAL, S42_DX, "2025-03-12")],
    "multi_payer.x12": [
        ("MULTI-1", "commercial", "DC", "1234567893", "CI", S42_COMMERCIAL, S42_DX, "2025-03-12"),
        ("MULTI-2", "medicare", "DC", "1234567893", "MB", S42_MEDICARE, S42_DX, "2025-03-12"),
        ("MULTI-3", "medicare", "PT", "4444444440", "MB", PT_MEDICARE, ["M25.511", "R26.89"], "2025-03-12"),
        ("MULTI-4", "bcbsnc", "DC", "1234567893", "BL", S42_BCBSNC, S42_DX, "2025-03-12"),
        ("MULTI-5", "aetna", "PT", "2222222228", "CI", PT_AETNA, ["M25.511", "R26.89"], "2025-03-12"),
        ("MULTI-6", "ca_wc", "DC", "3333333334", "WC", S42_COMMERCIAL, S42_DX, "2025-03-12"),
        ("MULTI-7", "commercial", "DC", "1234567893", "CI", [("99213", 1, ["25"], [1], "95.00"), ("98940", 1, [], [1, 2], "45.00")], ["M54.50", "M99.03"], "2025-03-12"),
    ],
}


# ---------------------------------------------------------------------------------------------
# Fixtures: pyx12 accepts them, they read to exact claims


def test_the_fixtures_are_the_expected_ones():
    assert sorted(p.name for p in FIXTURES.glob("*.x12")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pyx12_accepts_every_fixture(name):
    assert pyx12_errors(fixture(name).decode("ascii")) == []


def test_pyx12_is_not_a_no_op_on_the_fixtures():
    text = fixture("multi_payer.x12").decode("ascii")
    assert pyx12_errors(text.replace("SE*108*0001~", "SE*107*0001~"))  # second interchange's count
    assert pyx12_errors(text.replace("SV1*HC:97112*84*UN*2***2~", "SV1*HC:97112*84*XX*2***2~"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_reads_to_the_exact_claims(name):
    records = read(fixture(name))
    got = []
    for position, record in enumerate(records):
        assert isinstance(record, ClaimRecord), record
        assert record.position == position
        enc = record.encounter
        assert enc["id"] == record.claim_id
        got.append((record.claim_id, record.payer, enc["provider"]["type"], enc["provider"]["npi"], record.filing_indicator,
                    lines_of(record), enc["diagnoses"], enc["date_of_service"]))
        # valid encounter format v1 apart from the additive `billed` field
        Encounter.from_mapping(without_billed(enc))
    assert got == EXPECTED[name]


def test_the_fixtures_cover_every_builtin_payer():
    payers = {r.payer for name in EXPECTED for r in read(fixture(name)) if isinstance(r, ClaimRecord)}
    assert payers == set(ENGINE.payer_ids) == {"commercial", "medicare", "bcbsnc", "aetna", "ca_wc"}


def test_claim_record_of_a_multi_transaction_file():
    records = read(fixture("multi_payer.x12"))
    third = records[2]
    assert isinstance(third, ClaimRecord)
    # MULTI-3 is the first claim of the second transaction set of the first interchange
    assert (third.transaction, third.segment) == ("0002", 19)
    assert third.payer_name == "PLACEHOLDER MEDICARE CONTRACTOR"
    assert third.payer_identifier == "MACPLACEHOLDER"
    assert third.lines == (LineRef(0, "services", 0, 24, "1"), LineRef(1, "services", 1, 27, "2"))
    # MULTI-4: a dependant (2000C) under a BL subscriber without SBR02
    fourth = records[3]
    assert isinstance(fourth, ClaimRecord)
    assert (fourth.transaction, fourth.segment, fourth.payer) == ("0001", 24, "bcbsnc")
    # MULTI-6: workers' comp, billing provider in Nevada, service facility (2310C) in California
    assert records[5].payer == "ca_wc"  # type: ignore[union-attr]


def test_cmt_em_and_evaluations_are_procedures_the_rest_services():
    record = read(fixture("multi_payer.x12"))[6]
    assert isinstance(record, ClaimRecord)
    assert record.encounter["procedures"] == [
        {"code": "99213", "billed": {"units": 1, "modifiers": ["25"], "charge": "95.00"}, "diagnosis_pointers": [1], "separately_identifiable": True},
        {"code": "98940", "billed": {"units": 1, "modifiers": [], "charge": "45.00"}, "diagnosis_pointers": [1, 2]},
    ]
    assert "services" not in record.encounter
    dc = read(fixture("commercial_dc.x12"))[0]
    assert isinstance(dc, ClaimRecord)
    assert [e["code"] for e in dc.encounter["procedures"]] == ["98940"]
    assert [e["code"] for e in dc.encounter["services"]] == ["97140", "97124", "97110"]
    assert all("minutes" not in e for e in dc.encounter["services"])
    assert [(r.line, r.origin, r.entry, r.segment) for r in dc.lines] == [
        (0, "procedures", 0, 22), (1, "services", 0, 25), (2, "services", 1, 28), (3, "services", 2, 31)
    ]


def test_other_delimiters_and_crlf_read_the_same():
    text = fixture("commercial_dc.x12").decode("ascii")
    other = text.replace("*", "|").replace(":", ">").replace("^", "!").replace("~\n", "\r\n")
    assert other[105] == "\r"  # the segment terminator is CR, followed by LF
    base, changed = read(text), read(other)
    assert isinstance(changed[0], ClaimRecord)
    assert changed[0].encounter == base[0].encounter  # type: ignore[union-attr]
    assert read(text.replace("~\n", "~"))[0] == base[0]  # one line
    assert read(text.replace("~\n", "~\r\n"))[0] == base[0]


# ---------------------------------------------------------------------------------------------
# The project's own 837P read back


@pytest.mark.parametrize("payer", ["commercial", "medicare", "bcbsnc", "aetna", "ca_wc"])
@pytest.mark.parametrize("visit", ["dc_visit.json", "pt_visit.toml"])
def test_the_writers_interchange_reads_back_to_the_same_lines(payer, visit):
    encounter = read_encounter(str(ROOT / "examples" / visit))
    outcome = ENGINE.check(encounter, payer)
    envelope = Envelope(created=dt.datetime(2025, 3, 13, 9, 30), billing_state="CA" if payer == "ca_wc" else "NC",
                        billing_taxonomy={"DC": "111N00000X", "PT": "225100000X"}[encounter.provider.type],
                        payers={p: PayerSettings(id="60054") for p in ("aetna",)})
    text = interchange(outcome, encounter, envelope)
    (record,) = read(text)
    assert isinstance(record, ClaimRecord), record
    expected = [(line.code, line.units, list(line.modifiers), list(line.diagnosis_pointers), "0.00") for line in outcome.claim_lines]
    assert lines_of(record) == expected
    assert record.encounter["diagnoses"] == list(outcome.diagnoses)
    assert record.encounter["date_of_service"] == encounter.date_of_service.isoformat()
    assert record.encounter["provider"]["type"] == encounter.provider.type
    assert record.encounter["id"] == encounter.id
    assert record.payer == payer  # the default payer map gives the payer back
    if payer == "ca_wc":  # with the billing provider in NC, the payer name (the plugin's) still says California
        (record,) = read(interchange(outcome, encounter, attrs.evolve(envelope, billing_state="NC")))
        assert record.payer == "ca_wc"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# The patient key (claim history): the subscriber's member id


def test_the_patient_key_is_the_subscriber_member_id():
    keys = {name: [r.encounter.get("patient") for r in read(fixture(name)) if isinstance(r, ClaimRecord)] for name in EXPECTED}
    assert keys["aetna_pt_two_claims.x12"] == ["PLACEHOLDER0002", "PLACEHOLDER0002"]  # one member, two dates
    # PLACEHOLDER0001 is the writer's placeholder: no key, so files written without one are not one patient
    assert keys["commercial_dc.x12"] == keys["medicare_dc.x12"] == keys["ca_wc_dc.x12"] == [None]
    # MULTI-4 is a dependant (2000C): the member id and a hash of the dependant's name and birth date
    dependant = hashlib.sha256(b"PLACEHOLDER\x1fDEPENDANT\x1f20100101").hexdigest()[:16]
    assert dependant == "215daa7980bb3553"
    assert keys["multi_payer.x12"] == [
        "PLACEHOLDER0011", "PLACEHOLDER0012", "PLACEHOLDER0012", f"PLACEHOLDER0013/{dependant}",
        "PLACEHOLDER0014", "PLACEHOLDER0015", "PLACEHOLDER0016",
    ]
    text = fixture("multi_payer.x12").decode("ascii")
    # another dependant of the same subscriber has another key; case and spacing of the name do not matter
    other = read(text.replace("NM1*QC*1*PLACEHOLDER*DEPENDANT~", "NM1*QC*1*PLACEHOLDER*SECOND~"))[3]
    same = read(text.replace("NM1*QC*1*PLACEHOLDER*DEPENDANT~", "NM1*QC*1*Placeholder*Dependant  ~"))[3]
    assert other.encounter["patient"].startswith("PLACEHOLDER0013/")  # type: ignore[union-attr]
    assert other.encounter["patient"] != keys["multi_payer.x12"][3]  # type: ignore[union-attr]
    assert same.encounter["patient"] == keys["multi_payer.x12"][3]  # type: ignore[union-attr]
    # a subscriber identified otherwise than by a member id (NM108 not MI) gives no key
    two = fixture("aetna_pt_two_claims.x12").decode("ascii").replace("****MI*PLACEHOLDER0002", "****II*PLACEHOLDER0002")
    assert [r.encounter.get("patient") for r in read(two)] == [None, None]  # type: ignore[union-attr]
    # no fixture has a property and casualty claim number: no episode
    assert all("episode" not in r.encounter for name in EXPECTED for r in read(fixture(name)) if isinstance(r, ClaimRecord))


def _with_casualty_claim(number: str) -> str:
    """aetna_pt_two_claims.x12 with REF*Y4 (property and casualty claim number) in the subscriber loop 2010BA."""
    text = fixture("aetna_pt_two_claims.x12").decode("ascii")
    text = text.replace("DMG*D8*19700101*U~\n", f"DMG*D8*19700101*U~\nREF*Y4*{number}~\n", 1)
    return text.replace("SE*35*0001~", "SE*36*0001~")


def test_the_episode_key_is_the_property_and_casualty_claim_number():
    text = _with_casualty_claim("99A123456")
    assert pyx12_errors(text) == []
    assert [(r.encounter["patient"], r.encounter["episode"]) for r in read(text)] == [  # type: ignore[union-attr]
        ("PLACEHOLDER0002", "99A123456"), ("PLACEHOLDER0002", "99A123456")
    ]
    # "UNKNOWN" (allowed by some workers' compensation jurisdictions) names no injury
    assert ["episode" in r.encounter for r in read(_with_casualty_claim("UNKNOWN"))] == [False, False]  # type: ignore[union-attr]
    # a dependant's own number (2010CA) is theirs
    multi = fixture("multi_payer.x12").decode("ascii")
    dependant = multi.replace("DMG*D8*20100101*U~\n", "DMG*D8*20100101*U~\nREF*Y4*WC7~\n", 1).replace("SE*108*0001~", "SE*109*0001~")
    assert "SE*109*0001~" in dependant
    assert pyx12_errors(dependant) == []
    assert [r.encounter.get("episode") for r in read(dependant)][:5] == [None, None, None, "WC7", None]  # type: ignore[union-attr]


def test_the_writer_writes_the_patient_key_as_the_member_id_and_the_reader_reads_it_back():
    visit = read_encounter(str(ROOT / "examples" / "pt_visit.toml"))
    envelope = Envelope(created=dt.datetime(2025, 3, 13, 9, 30), billing_taxonomy="225100000X")
    claims = []
    for n, key in enumerate(["W123456789", "mbr-42.a", "clinic/42", None]):
        encounter = attrs.evolve(visit, id=f"V-{n}", patient=key)
        claims.append(ClaimInput(ENGINE.check(encounter, "commercial"), encounter))
    text = interchange_of_claims(claims, envelope)
    assert pyx12_errors(text) == []
    assert [seg.split("*")[-1] for seg in text.split("~\n") if seg.startswith("NM1*IL")] == [
        "W123456789", "mbr-42.a", "PLACEHOLDER0001", "PLACEHOLDER0001"
    ]
    back = read(text)
    assert [r.encounter.get("patient") for r in back] == ["W123456789", "mbr-42.a", None, None]  # type: ignore[union-attr]
    # a member id the envelope sets wins (it names the subscriber of every claim)
    explicit = interchange_of_claims(claims[:1], attrs.evolve(envelope, subscriber_member_id="ENV0000001"))
    assert [r.encounter.get("patient") for r in read(explicit)] == ["ENV0000001"]  # type: ignore[union-attr]
    # production still needs the envelope's member id: a patient key may be a pseudonym
    assert "subscriber.member_id" in production_problems(claims[:1], envelope)


# ---------------------------------------------------------------------------------------------
# A synthetic file with 1,000 claims


def test_synthetic_837p_is_deterministic_and_reads_whole():
    data = synthetic_837p(1000, seed=7)
    assert data == synthetic_837p(1000, seed=7)
    assert data != synthetic_837p(1000, seed=8)
    records = read(data)
    assert [r.position for r in records] == list(range(1000))
    assert all(isinstance(r, ClaimRecord) for r in records)
    assert [r.claim_id for r in records] == [f"SYN{n:06d}" for n in range(1000)]
    assert {r.payer for r in records} == set(ENGINE.payer_ids)  # type: ignore[union-attr]
    assert data.count(b"ISA*") == 4 and data.count(b"~\nST*") == 12
    for record in records[:200]:
        Encounter.from_mapping(without_billed(record.encounter))  # type: ignore[union-attr]


def test_pyx12_accepts_synthetic_claims():
    # 300 claims: two interchanges, four transaction sets (the 1,000 take pyx12 several seconds)
    data = synthetic_837p(300, seed=7)
    assert (data.count(b"ISA*"), data.count(b"~\nST*")) == (2, 4)
    assert pyx12_errors(data.decode("ascii")) == []


# ---------------------------------------------------------------------------------------------
# Envelope problems: one X12Error naming the segment and element


def _envelope_error(data: bytes | str) -> str:
    with pytest.raises(X12Error) as info:
        read(data)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, PayerPolicyError)
    return message


COMMERCIAL = fixture("commercial_dc.x12").decode("ascii")


def test_missing_segment_terminator():
    # a terminator dropped in a file with one segment per line: the segment runs into the next line
    assert _envelope_error(COMMERCIAL.replace("SV1*HC:97140:59*38.5*UN*1***4~", "SV1*HC:97140:59*38.5*UN*1***4")) == (
        "claims.x12: SV1 segment 25 of transaction set 0001: missing segment terminator '~': the segment runs on past a line break into 'DTP'"
    )
    # no terminators at all: the ISA's 106th character is not a terminator
    assert _envelope_error(COMMERCIAL.replace("~", "").replace("\n", "")) == (
        "claims.x12: ISA segment 1 of the file, ISA16: missing segment terminator after ISA16: expected a terminator (such as '~'), found 'G'"
    )
    # (a line break right after ISA16 is the terminator: a valid file)
    assert read(COMMERCIAL.replace("~", "")) == read(COMMERCIAL)
    # the last one
    assert _envelope_error(COMMERCIAL.rstrip().removesuffix("~")) == (
        "claims.x12: IEA segment 37 of the file: missing segment terminator '~' at the end of the file"
    )
    # one line, one terminator missing: the SE count is wrong and says why
    one_line = COMMERCIAL.replace("~\n", "~").replace("DTP*472*D8*20250312~LX*2~", "DTP*472*D8*20250312LX*2~")
    assert _envelope_error(one_line) == (
        "claims.x12: SE segment 32 of transaction set 0001, SE01: expected 32 (the segments from ST to SE), found '33' (is a segment terminator missing?)"
    )


def test_wrong_version():
    assert _envelope_error(COMMERCIAL.replace("*X*005010X222A1~", "*X*005010X223A2~")) == (
        "claims.x12: GS segment 2 of the file, GS08: expected version 005010X222A1 (837P, professional claim), found '005010X223A2' (an 837I, institutional claim)"
    )
    assert _envelope_error(COMMERCIAL.replace("ST*837*0001*005010X222A1~", "ST*837*0001*005010X222~")) == (
        "claims.x12: ST segment 1 of transaction set 0001, ST03: expected version 005010X222A1 (837P, professional claim), found '005010X222' (the 837P without its addenda A1)"
    )
    assert _envelope_error(COMMERCIAL.replace("*^*00501*", "*^*00401*")) == (
        "claims.x12: ISA segment 1 of the file, ISA12: expected interchange version 00501 (5010), found '00401'"
    )


def test_non_ascii_bytes():
    data = COMMERCIAL.replace("PLACEHOLDER COMMERCIAL PLAN", "PLACEHOLDER COMMERCIAL PLAN É").encode("utf-8")
    assert _envelope_error(data) == (
        "claims.x12: NM1 segment 18 of transaction set 0001, NM103: byte 0xC3 (not ASCII) at offset 730: an 837P holds only X12 characters (ASCII letters, digits, spaces and punctuation)"
    )
    assert "byte 0x07 (a control character)" in _envelope_error(COMMERCIAL.replace("HC:97110", "HC:\x0797110"))


def test_other_envelope_problems():
    assert _envelope_error(b"") == "claims.x12: expected an X12 interchange starting with ISA, found an empty file"
    assert _envelope_error("GS*HC~") == "claims.x12: segment 1 of the file: expected an interchange starting with ISA, found 'GS*'"
    short = COMMERCIAL.replace("*ZZ*RECEIVER       *", "*ZZ*RECEIVER*", 1)
    assert _envelope_error(short) == (
        "claims.x12: ISA segment 1 of the file, ISA08: expected 15 characters in ISA08, found 8 (the ISA has fixed-width elements; its length must be 106)"
    )
    assert _envelope_error(COMMERCIAL.replace("SE*33*0001~", "SE*34*0001~")) == (
        "claims.x12: SE segment 33 of transaction set 0001, SE01: expected 33 (the segments from ST to SE), found '34' (is a segment terminator missing?)"
    )
    assert _envelope_error(COMMERCIAL.replace("SE*33*0001~", "SE*33*0002~")) == (
        "claims.x12: SE segment 33 of transaction set 0001, SE02: expected the transaction set control number '0001' of ST02, found '0002'"
    )
    assert _envelope_error(COMMERCIAL.replace("GE*1*101~", "GE*2*101~")) == (
        "claims.x12: GE segment 36 of the file, GE01: expected 1 (the transaction sets in the group), found '2'"
    )
    assert _envelope_error(COMMERCIAL.replace("IEA*1*000000101~", "IEA*1*000000102~")) == (
        "claims.x12: IEA segment 37 of the file, IEA02: expected the interchange control number '000000101' of ISA13, found '000000102'"
    )
    assert _envelope_error(COMMERCIAL.replace("HL*2*1*22*0~", "HL*2*9*22*0~")) == (
        "claims.x12: HL segment 12 of transaction set 0001, HL02: expected the HL01 of an earlier billing provider level (HL03 20), found '9'"
    )
    assert _envelope_error(b"\xef\xbb\xbf" + COMMERCIAL.encode("ascii")) == (
        "claims.x12: segment 1 of the file: expected an interchange starting with ISA, found a UTF-8 byte order mark (bytes EF BB BF); an 837P holds only X12 characters"
    )
    assert _envelope_error(COMMERCIAL.encode("utf-16")).endswith("found bytes FF FE 49; an 837P holds only X12 characters")
    assert _envelope_error(COMMERCIAL.replace("LX*2~", "lx*2~")) == (
        "claims.x12: segment 24 of transaction set 0001: expected a segment id (2 or 3 capital letters or digits), found 'lx'"
    )
    assert _envelope_error(COMMERCIAL + "junk~") == "claims.x12: segment 38 of the file: expected an interchange starting with ISA, found 'jun'"


# ---------------------------------------------------------------------------------------------
# Claim problems: a ClaimError for that claim, the next claims still read


def _claim_error(text: str, position: int = 0) -> ClaimError:
    result = read(text)[position]
    assert isinstance(result, ClaimError), result
    return result


def test_sv1_with_no_code():
    error = _claim_error(COMMERCIAL.replace("SV1*HC:97140:59*", "SV1*HC*"))
    assert error == ClaimError(0, "S42-COMMERCIAL", 25, "SV1", "SV101-2", "expected a procedure code after HC, found nothing", "0001")
    assert str(error) == "claim 1 (S42-COMMERCIAL): SV1 segment 25 of transaction set 0001, SV101-2: expected a procedure code after HC, found nothing"


def test_a_claim_with_no_lines():
    text = re.sub(r"LX\*1~.*?(?=SE\*)", "", COMMERCIAL, flags=re.DOTALL).replace("SE*33*", "SE*21*")
    assert _claim_error(text) == ClaimError(0, "S42-COMMERCIAL", 19, "CLM", None, "the claim has no service lines (2400 LX with SV1)", "0001")


def test_unknown_taxonomy():
    error = _claim_error(COMMERCIAL.replace("PRV*BI*PXC*111N00000X~", "PRV*BI*PXC*235Z00000X~"))
    assert (error.segment, error.segment_id, error.element) == (7, "PRV", "PRV03")
    assert error.message.startswith("taxonomy 235Z00000X is not one payerpolicy maps to a provider type")
    # a rendering provider's taxonomy decides over the billing provider's (a group: 261QR0400X is no provider type)
    rendering = fixture("bcbsnc_dc_rendering.x12").decode("ascii")
    error = _claim_error(rendering.replace("PRV*PE*PXC*111N00000X~", "PRV*PE*PXC*1223G0001X~"))
    assert (error.claim_id, error.segment, error.segment_id, error.element) == ("S42-BCBSNC", 22, "PRV", "PRV03")


@pytest.mark.parametrize(
    ("old", "new", "segment", "element", "message"),
    [
        ("SV1*HC:97140:59*38.5*UN*1***4", "SV1*HC:97140:59*38.5*UN*0***4", 25, "SV104", "expected whole units from 1 to 9999, found '0'"),
        ("SV1*HC:97140:59*38.5*UN*1***4", "SV1*HC:97140:59*38.5*UN*1.5***4", 25, "SV104", "expected whole units from 1 to 9999, found '1.5'"),
        ("SV1*HC:97140:59*38.5*UN*1***4", "SV1*HC:97140:59*38.5*UN*10000***4", 25, "SV104", "expected whole units from 1 to 9999, found '10000'"),
        ("SV1*HC:97140:59*38.5*UN*1***4", "SV1*HC:97140:59*38.5*MJ*1***4", 25, "SV103", "expected UN (units), found 'MJ' (minutes are for anesthesia)"),
        ("SV1*HC:97140:59*", "SV1*HC:99999:59*", 25, "SV101-2", "code 99999 is not in payerpolicy's code catalogue (policies/codes.toml)"),
        ("SV1*HC:97140:59*", "SV1*HC:9714:59*", 25, "SV101-2", "expected a 5-character CPT or HCPCS code, found '9714'"),
        ("SV1*HC:97140:59*", "SV1*ER:97140:59*", 25, "SV101-1", "expected HC (a CPT or HCPCS code), found 'ER'"),
        ("SV1*HC:97140:59*", "SV1*HC:97140::59*", 25, "SV101-3", "expected a 2-character modifier, found nothing"),
        ("SV1*HC:97140:59*38.5*", "SV1*HC:97140:59*-1*", 25, "SV102", "expected the line charge in dollars such as 120.00, found '-1'"),
        ("UN*1***4~", "UN*1***7~", 25, "SV107-1", "points to diagnosis 7 but the claim's HI lists 5"),
        ("UN*1***4~", "UN*1~", 25, "SV107-1", "expected a diagnosis pointer (a position in HI, 1 to 12), found nothing"),
        ("UN*1***4~", "UN*1***4:X~", 25, "SV107-2", "expected a diagnosis pointer from 1 to 12, found 'X'"),
        ("LX*2~\nSV1*HC:97140:59*38.5*UN*1***4~\nDTP*472*D8*20250312~", "LX*2~\nSV1*HC:97140:59*38.5*UN*1***4~\nDTP*472*D8*20250313~",
         26, "DTP03", "expected the claim's one date of service 20250312, found 20250313; payerpolicy checks one visit per claim (send each date as its own claim)"),
        ("DTP*472*D8*20250312~\nLX*2~", "DTP*472*D8*20250230~\nLX*2~", 23, "DTP03", "expected a date CCYYMMDD, found '20250230'"),
        ("DTP*472*D8*20250312~\nLX*2~", "DTP*472*RD8*20250312-20250314~\nLX*2~", 23, "DTP03",
         "expected one date of service per line, found the range '20250312-20250314'; payerpolicy checks one date per claim"),
        ("DTP*472*D8*20250312~\nLX*2~", "DTP*471*D8*20250312~\nLX*2~", 22, None, "line 1 has no date of service (DTP*472)"),
        ("HI*ABK:M9901*", "HI*BK:7231*", 20, "HI01-1", "expected an ICD-10-CM diagnosis (ABK, ABF), found the ICD-9 qualifier 'BK'"),
        ("HI*ABK:M9901*", "HI*ABK:M9*", 20, "HI01-2", "expected an ICD-10-CM code such as M5450, found 'M9'"),
        ("CLM*S42-COMMERCIAL*", "CLM**", 19, "CLM01", "expected the claim id (patient control number), found nothing"),
        ("NM1*85*2*PLACEHOLDER CHIROPRACTIC*****XX*1234567893", "NM1*85*2*PLACEHOLDER CHIROPRACTIC*****XX*123", 8, "NM109", "expected a 10-digit NPI, found '123'"),
        ("PRV*BI*PXC*111N00000X~\n", "", 18, None, "no provider taxonomy: expected PRV*PE*PXC in 2310B (rendering provider) or PRV*BI*PXC in 2000A (billing provider)"),
    ],
)
def test_claim_problems_name_the_segment_and_element(old, new, segment, element, message):
    assert old in COMMERCIAL
    text = COMMERCIAL.replace(old, new, 1)
    if old.startswith("PRV"):
        text = text.replace("SE*33*", "SE*32*")
    error = _claim_error(text)
    assert (error.segment, error.element, error.message) == (segment, element, message)


def test_a_bad_claim_in_the_middle_the_claims_after_it_still_read():
    text = fixture("multi_payer.x12").decode("ascii")
    # MULTI-4 (claim 4, second interchange) loses its first code; MULTI-5 gets an unknown taxonomy
    broken = text.replace("CLM*MULTI-4*123.5***11:B:1*Y*A*Y*Y~\nHI*ABK:M9901*ABF:M9902*ABF:M542*ABF:M25611*ABF:M62830~\nLX*1~\nSV1*HC:98940*",
                          "CLM*MULTI-4*123.5***11:B:1*Y*A*Y*Y~\nHI*ABK:M9901*ABF:M9902*ABF:M542*ABF:M25611*ABF:M62830~\nLX*1~\nSV1*HC*")
    broken = broken.replace("PRV*BI*PXC*225100000X~", "PRV*BI*PXC*390200000X~")
    records = read(broken)
    assert [type(r).__name__ for r in records] == ["ClaimRecord"] * 3 + ["ClaimError"] * 2 + ["ClaimRecord"] * 2
    assert records[3] == ClaimError(3, "MULTI-4", 27, "SV1", "SV101-2", "expected a procedure code after HC, found nothing", "0001")
    assert (records[4].position, records[4].claim_id, records[4].segment, records[4].element) == (4, "MULTI-5", 36, "PRV03")  # type: ignore[union-attr]
    assert [(r.position, r.claim_id) for r in records[5:]] == [(5, "MULTI-6"), (6, "MULTI-7")]
    assert records[5:] == read(text)[5:]


def test_a_line_rendered_by_another_provider_type_is_an_error():
    rendering = fixture("bcbsnc_dc_rendering.x12").decode("ascii")
    text = rendering.replace("SV1*HC:97110*40*UN*1***5~\nDTP*472*D8*20250312~",
                             "SV1*HC:97110*40*UN*1***5~\nDTP*472*D8*20250312~\nNM1*82*1*OTHER*THERAPIST****XX*4444444440~\nPRV*PE*PXC*225100000X~")
    text = text.replace("SE*32*", "SE*34*")
    error = _claim_error(text)
    assert (error.segment, error.segment_id, error.element) == (32, "NM1", None)
    assert error.message.startswith("line 3 names another rendering provider (2420A: PT 4444444440) than the claim (DC 3333333334)")
    same = text.replace("NM1*82*1*OTHER*THERAPIST****XX*4444444440~\nPRV*PE*PXC*225100000X~",
                        "NM1*82*1*PLACEHOLDER*CHIROPRACTOR****XX*3333333334~\nPRV*PE*PXC*111N00000X~")
    assert isinstance(read(same)[0], ClaimRecord)


def test_other_payer_loops_do_not_change_the_payer_or_the_provider():
    # a 2320 other subscriber (SBR) with 2330B payer and 2330 rendering provider entries
    extra = "SBR*S*18*******MB~\nOI***Y***Y~\nNM1*IL*1*PLACEHOLDER*OTHER****MI*OTHER0001~\nNM1*PR*2*OTHER PAYER*****PI*OTHERPAYER~\nNM1*82*1~\n"
    text = COMMERCIAL.replace("LX*1~", extra + "LX*1~", 1).replace("SE*33*", "SE*38*")
    (record,) = read(text)
    assert isinstance(record, ClaimRecord)
    assert (record.payer, record.payer_name, record.encounter["provider"]) == ("commercial", "PLACEHOLDER COMMERCIAL PLAN", {"type": "DC", "npi": "1234567893"})


# ---------------------------------------------------------------------------------------------
# Taxonomy table and payer map


@pytest.mark.parametrize(
    ("code", "ptype"),
    [
        ("111N00000X", "DC"), ("111NS0005X", "DC"), ("225100000X", "PT"), ("2251X0800X", "PT"), ("225200000X", "PTA"),
        ("225X00000X", "OT"), ("225XH1200X", "OT"), ("224Z00000X", "OTA"), ("225700000X", "LMT"), ("2255A2300X", "ATC"),
        ("207Q00000X", "MD"), ("208100000X", "MD"), ("2255R0406X", None), ("261QR0400X", None), ("363L00000X", None),
    ],
)
def test_taxonomy_table(code, ptype):
    assert provider_type_for_taxonomy(code) == ptype


def test_the_taxonomy_table_gives_only_provider_types_of_the_format():
    from payerpolicy.evaluation.vocab import PROVIDER_TYPES

    assert set(TAXONOMY_PROVIDER_TYPES.values()) <= set(PROVIDER_TYPES)


@pytest.mark.parametrize(
    ("payer_id", "name", "filing", "state", "payer"),
    [
        ("60054", "ANY NAME", "CI", "NC", "aetna"),
        ("60054", "ANY NAME", "12", "TX", "aetna"),
        ("X", "AETNA BETTER HEALTH", "HM", "NC", "aetna"),
        ("X", "PALMETTO GBA", "MB", "NC", "medicare"),
        ("X", "PLACEHOLDER WC CARRIER", "WC", "CA", "ca_wc"),
        ("X", "PLACEHOLDER WC CARRIER", "WC", "NV", None),
        ("X", "STATE COMPENSATION INSURANCE FUND", "WC", "NV", "ca_wc"),
        ("X", "CALIFORNIA WORKERS' COMPENSATION (DWC OMFS)", "WC", None, "ca_wc"),
        ("X", "CALIFORNIA PLACEHOLDER PLAN", "CI", "NV", "commercial"),
        ("X", "BLUE CROSS BLUE SHIELD OF NORTH CAROLINA", "12", "NC", "bcbsnc"),
        ("X", "BCBSNC", "BL", "NC", "bcbsnc"),
        ("X", "BLUE CROSS OF NC", "BL", "NC", "bcbsnc"),
        ("X", "BLUE CROSS BLUE SHIELD OF TEXAS", "BL", "TX", "commercial"),
        ("X", "BLUE SHIELD INC", "BL", "NC", "commercial"),
        ("X", "UNITED HEALTHCARE", "CI", "NC", "commercial"),
        ("X", "PLACEHOLDER MEDICAID", "MC", "NC", None),
        (None, None, None, None, None),
    ],
)
def test_the_shipped_payer_map(payer_id, name, filing, state, payer):
    assert load_payer_map().resolve(payer_id, name, filing, state) == payer


def test_a_user_payer_map_replaces_the_shipped_one(tmp_path):
    path = tmp_path / "payers.toml"
    path.write_text('[[rule]]\npayer = "bcbsnc"\npayer_ids = ["commplaceholder"]\nnote = "our clearinghouse"\n')
    payers = load_payer_map(path)
    assert payers == PayerMap((PayerRule("bcbsnc", payer_ids=("COMMPLACEHOLDER",), note="our clearinghouse"),), str(path))
    (record,) = read(COMMERCIAL, payer_map=payers)
    assert record.payer == "bcbsnc"  # type: ignore[union-attr]
    (record,) = read(COMMERCIAL, payer_map=PayerMap())
    assert record.payer is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"payer": []}, "f.toml: payer: expected only [[rule]] tables, found 'payer'"),
        ({"rule": [{"payer": "Medicare", "filing_indicators": ["MB"]}]}, "f.toml: rule[0].payer: expected a payer id such as \"medicare\" (lower-case letters, digits, _), found 'Medicare'"),
        ({"rule": [{"payer": "medicare"}]}, "f.toml: rule[0]: expected at least one of payer_ids, names, filing_indicators, states, found 'none'"),
        ({"rule": [{"payer": "medicare", "filing": ["MB"]}]}, "f.toml: rule[0].filing: expected one of the keys payer, payer_ids, names, filing_indicators, states, note, found 'filing'"),
        ({"rule": [{"payer": "aetna", "names": ["(AETNA"]}]}, "f.toml: rule[0].names[0]: expected a regular expression (missing ), unterminated subpattern at position 0), found '(AETNA'"),
        ({"rule": [{"payer": "ca_wc", "states": ["California"]}]}, "f.toml: rule[0].states[0]: expected a 2-letter state code such as \"CA\", found 'California'"),
        ({"rule": [{"payer": "ca_wc", "filing_indicators": "WC"}]}, "f.toml: rule[0].filing_indicators: expected a non-empty list of a 2-character claim filing indicator (SBR09) such as \"MB\", found 'WC'"),
    ],
)
def test_payer_map_errors_name_the_rule_and_key(data, message):
    with pytest.raises(PayerPolicyError) as info:
        payer_map_from_mapping(data, file="f.toml")
    assert str(info.value) == message


def test_payer_map_file_errors(tmp_path):
    with pytest.raises(PayerPolicyError, match=r"nope.toml: no such file$"):
        load_payer_map(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]\n")
    with pytest.raises(PayerPolicyError, match=r"bad.toml: invalid TOML: "):
        load_payer_map(bad)


# ---------------------------------------------------------------------------------------------
# rewrite_lines


def _differing_lines(a: bytes, b: bytes) -> list[tuple[str, str]]:
    left, right = a.decode("ascii").splitlines(), b.decode("ascii").splitlines()
    assert len(left) == len(right)
    return [(x, y) for x, y in zip(left, right, strict=True) if x != y]


def test_rewrite_lines_changes_only_those_sv1_elements():
    data = fixture("multi_payer.x12")
    changes = {
        (1, 1): LineChange(modifiers=("GY", "GP")),  # MULTI-2 line 2: modifier order
        (3, 1): LineChange(modifiers=("XS",)),  # MULTI-4 line 2: 59 -> XS
        (6, 1): LineChange(diagnosis_pointers=(2, 1)),  # MULTI-7 line 2: pointer order
        (4, 0): LineChange(modifiers=("GP",), diagnosis_pointers=(1, 2)),
    }
    out = rewrite_lines(data, changes)
    assert _differing_lines(data, out) == [
        ("SV1*HC:97140:GP:GY*38.5*UN*1***4~", "SV1*HC:97140:GY:GP*38.5*UN*1***4~"),
        ("SV1*HC:97140:59*38.5*UN*1***4~", "SV1*HC:97140:XS*38.5*UN*1***4~"),
        ("SV1*HC:97112*84*UN*2***2~", "SV1*HC:97112:GP*84*UN*2***1:2~"),
        ("SV1*HC:98940*45*UN*1***1:2~", "SV1*HC:98940*45*UN*1***2:1~"),
    ]
    assert pyx12_errors(out.decode("ascii")) == []
    records = read(out)
    assert lines_of(records[1])[1][2] == ["GY", "GP"]  # type: ignore[arg-type]
    assert lines_of(records[6])[1][3] == [2, 1]  # type: ignore[arg-type]
    assert rewrite_lines(data, {}) == data


def test_rewrite_lines_keeps_other_elements_and_line_endings():
    text = COMMERCIAL.replace("~\n", "~\r\n").replace("SV1*HC:97140:59*38.5*UN*1***4~", "SV1*HC:97140:59:GP:KX:CQ:MANUAL THERAPY*38.5*UN*1***4**Y~")
    out = rewrite_lines(text.encode("ascii"), {(0, 1): LineChange(modifiers=("GP",), diagnosis_pointers=(3,)), (0, 3): LineChange(modifiers=("GP",))})
    assert out.decode("ascii") == text.replace("SV1*HC:97140:59:GP:KX:CQ:MANUAL THERAPY*38.5*UN*1***4**Y~", "SV1*HC:97140:GP::::MANUAL THERAPY*38.5*UN*1***3**Y~").replace(
        "SV1*HC:97110*40*UN*1***5~", "SV1*HC:97110:GP*40*UN*1***5~")
    short = COMMERCIAL.replace("SV1*HC:97110*40*UN*1***5~", "SV1*HC:97110*40*UN*1~")
    assert b"SV1*HC:97110*40*UN*1***2~" in rewrite_lines(short.encode("ascii"), {(0, 3): LineChange(diagnosis_pointers=(2,))})


@pytest.mark.parametrize(
    ("key", "change", "message"),
    [
        ((1, 0), LineChange(modifiers=("59",)), "cannot rewrite claim 1, line 0: the file has 1 claims"),
        ((0, 4), LineChange(modifiers=("59",)), "cannot rewrite claim 0, line 4: the claim has no SV1 for that line (4 lines)"),
        ((0, 0), LineChange(modifiers=("59", "GP", "XS", "KX", "GY")), "cannot rewrite claim 0, line 0: SV101 takes at most 4 modifiers, found 5"),
        ((0, 0), LineChange(modifiers=("5*",)), "cannot rewrite claim 0, line 0: expected 2-character modifiers, found '5*'"),
        ((0, 0), LineChange(diagnosis_pointers=()), "cannot rewrite claim 0, line 0: SV107 takes 1 to 4 diagnosis pointers, found 0"),
        ((0, 0), LineChange(diagnosis_pointers=(13,)), "cannot rewrite claim 0, line 0: expected diagnosis pointers from 1 to 12, found 13"),
        ((0, 0), LineChange(diagnosis_pointers=(1, 6)), "cannot rewrite claim 0, line 0: a diagnosis pointer points past the claim's 5 diagnoses"),
    ],
)
def test_rewrite_lines_refuses_what_it_cannot_write(key, change, message):
    with pytest.raises(PayerPolicyError) as info:
        rewrite_lines(COMMERCIAL.encode("ascii"), {key: change})
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# Properties over synthetic files

SYNTH = synthetic_837p(60, seed=3, claims_per_interchange=25, claims_per_transaction=10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_synthetic_claim_reads_back_as_drawn(seed):
    drawn = synthetic_claims(80, seed=seed)
    records = read(interchange_text(drawn, claims_per_transaction=30))
    assert len(records) == len(drawn)
    for claim, record in zip(drawn, records, strict=True):
        assert isinstance(record, ClaimRecord), record
        assert record.claim_id == claim.claim_id
        assert record.encounter["date_of_service"] == claim.date_of_service.isoformat()
        assert record.encounter["diagnoses"] == list(claim.diagnoses)
        assert lines_of(record) == [(x.code, x.units, list(x.modifiers), list(x.pointers), f"{x.charge:.2f}") for x in claim.lines]
        provider = claim.rendering or claim.billing
        assert record.encounter["provider"]["npi"] == provider.npi
        assert (record.payer_name, record.payer_identifier, record.filing_indicator) == (claim.payer_name, claim.payer_id, claim.filing_indicator)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_rewrite_lines_changes_exactly_the_lines_asked(data):
    records = [r for r in read(SYNTH) if isinstance(r, ClaimRecord)]
    keys = data.draw(st.sets(st.sampled_from([(r.position, ref.line) for r in records for ref in r.lines]), max_size=8))
    modifier = st.sampled_from(["59", "XS", "GP", "GO", "KX", "CQ", "GY", "AT", "25"])
    changes = {}
    for position, line in keys:
        n_dx = len(records[position].encounter["diagnoses"])
        changes[(position, line)] = LineChange(
            modifiers=data.draw(st.none() | st.lists(modifier, max_size=4).map(tuple)),
            diagnosis_pointers=data.draw(st.none() | st.lists(st.integers(1, n_dx), min_size=1, max_size=4).map(tuple)),
        )
    out = rewrite_lines(SYNTH, changes)
    after = read(out)
    changed_sv1 = 0
    for before, new in zip(records, after, strict=True):
        assert isinstance(new, ClaimRecord)
        for line, (old_line, new_line) in enumerate(zip(lines_of(before), lines_of(new), strict=True)):
            change = changes.get((before.position, line))
            code, units, modifiers, pointers, charge = old_line
            if change is not None:
                modifiers = list(change.modifiers) if change.modifiers is not None else modifiers
                pointers = list(change.diagnosis_pointers) if change.diagnosis_pointers is not None else pointers
            assert new_line == (code, units, modifiers, pointers, charge)
            changed_sv1 += new_line != old_line
    differing = _differing_lines(SYNTH, out)
    assert len(differing) == changed_sv1
    assert all(a.startswith("SV1*") and b.startswith("SV1*") for a, b in differing)


# ---------------------------------------------------------------------------------------------
# Files and encounters


def test_read_837p_file(tmp_path, monkeypatch):
    path = tmp_path / "claims.x12"
    path.write_bytes(fixture("multi_payer.x12"))
    assert list(read_837p_file(str(path))) == read(fixture("multi_payer.x12"))
    with pytest.raises(PayerPolicyError, match=r"nope.x12: no such file$"):
        read_837p_file(str(tmp_path / "nope.x12"))
    (tmp_path / "bad.x12").write_bytes(b"")
    with pytest.raises(X12Error, match=r"/bad.x12: expected an X12 interchange starting with ISA, found an empty file$"):
        read_837p_file(str(tmp_path / "bad.x12"))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(fixture("commercial_dc.x12"))))
    assert list(read_837p_file("-")) == read(fixture("commercial_dc.x12"))


def test_to_encounter_names_the_line_the_encounter_format_refuses():
    record = read(fixture("commercial_dc.x12"))[0]
    assert isinstance(record, ClaimRecord)
    plain = attrs.evolve(record, encounter=without_billed(record.encounter))
    encounter = to_encounter(plain)
    assert isinstance(encounter, Encounter)
    assert [s.code for s in encounter.services] == ["97140", "97124", "97110"]
    bad = without_billed(record.encounter)
    bad["services"][1]["diagnosis_pointers"] = [0]
    error = to_encounter(attrs.evolve(record, encounter=bad))
    assert error == ClaimError(0, "S42-COMMERCIAL", 28, "SV1", None,
                               "the encounter format refuses services[1].diagnosis_pointers[0]: expected a whole number >= 1, found 0", "0001")
    bad = without_billed(record.encounter)
    bad["date_of_service"] = "2025-02-30"
    error = to_encounter(attrs.evolve(record, encounter=bad))
    assert (error.segment, error.segment_id) == (19, "CLM")  # type: ignore[union-attr]
