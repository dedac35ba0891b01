"""FHIR R4 interchange: encounter <-> Claim round trips, outcome Claim/ClaimResponse, bad FHIR input."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

pytest.importorskip("fhir.resources", reason="needs payerpolicy[fhir]")

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.claimresponse import ClaimResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from payerpolicy import Encounter, EncounterError, Engine
from payerpolicy.evaluation.vocab import DOCUMENTATION_ELEMENTS, INTENTS, NECESSITY_CONDITIONS, REGIONS
from payerpolicy.formats.fhir import (
    STRUCTURE_DEFINITION,
    claim_from_encounter,
    claim_from_outcome,
    claim_response_from_outcome,
    dumps,
    encounter_from_claim,
    outcome_bundle,
    read_fhir_encounter,
)
from payerpolicy.formats.io import read_encounter
from payerpolicy.kit.testing import load_cases

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "fhir" / "claim_dc_visit.json"
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".json", ".toml"))
CASES = load_cases(ROOT / "tests" / "cases")
ENGINE = Engine()


def _round_trip(encounter: Encounter) -> Encounter:
    text = dumps(claim_from_encounter(encounter))  # through JSON text, as another tool would read it
    return encounter_from_claim(json.loads(text))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_round_trips(path):
    encounter = read_encounter(str(path))
    assert _round_trip(encounter) == encounter


@pytest.mark.parametrize("case", CASES, ids=[f"{c.payer}/{c.id}" for c in CASES])
def test_every_case_encounter_round_trips(case):
    encounter = Encounter.from_mapping(case.encounter)
    assert _round_trip(encounter) == encounter


def test_fixture_claim_is_the_dc_visit_example():
    """Another tool's Claim: timestamps, foreign extensions and references other than the patient are
    ignored; the CMT item has no entry extension (a CMT code is a procedure), the exercise minutes come
    as a UCUM quantity. ``Claim.patient`` (``Patient/example-patient``) is the patient key."""
    example = read_encounter(str(ROOT / "examples" / "dc_visit.json"))
    assert read_fhir_encounter(str(FIXTURE)) == attrs.evolve(example, patient="example-patient")


def test_claim_carries_codes_pointers_date_and_extensions():
    claim = claim_from_encounter(read_encounter(str(ROOT / "examples" / "dc_visit.json")))
    Claim.model_validate(claim)
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]] == [
        "M99.01", "M99.02", "M54.2", "M25.611", "M62.830"
    ]
    cmt, myofascial = claim["item"][0], claim["item"][1]
    assert cmt["productOrService"] == {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "98940"}]}
    assert cmt["diagnosisSequence"] == [1, 2, 3]
    assert cmt["servicedDate"] == "2025-03-12"
    # A service given only by technique: the technique code system, and the technique extension.
    assert myofascial["productOrService"]["coding"] == [
        {"system": "https://payerpolicy.dev/fhir/CodeSystem/technique", "code": "myofascial_release"}
    ]
    assert {"url": STRUCTURE_DEFINITION + "minutes", "valueUnsignedInt": 18} in myofascial["extension"]
    assert {"url": STRUCTURE_DEFINITION + "regions", "valueCode": "upper_extremity"} in myofascial["extension"]
    assert {"url": STRUCTURE_DEFINITION + "intent", "valueCode": "range_of_motion"} in myofascial["extension"]
    assert claim["provider"] == {
        "extension": [{"url": STRUCTURE_DEFINITION + "provider-type", "valueCode": "DC"}],
        "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
    }
    assert claim["accident"] == {"date": "2025-02-20"}


def test_hcpcs_code_uses_the_hcpcs_system():
    enc = Encounter.from_mapping(
        {"date_of_service": "2025-01-02", "provider": {"type": "PT"}, "services": [{"code": "G0283", "minutes": 15}]}
    )
    item = claim_from_encounter(enc)["item"][0]
    assert item["productOrService"]["coding"][0]["system"] == "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    assert _round_trip(enc) == enc


def test_empty_documentation_is_not_unknown_documentation():
    base = {"date_of_service": "2025-01-02", "provider": {"type": "PT"}, "services": [{"code": "97110", "minutes": 15}]}
    empty = Encounter.from_mapping({**base, "documentation": []})
    absent = Encounter.from_mapping(base)
    assert _round_trip(empty).documentation == ()
    assert _round_trip(absent).documentation is None


def test_money_and_times_round_trip():
    enc = Encounter.from_mapping(
        {
            "id": "x 1/2",
            "date_of_service": "2025-01-02",
            "provider": {"type": "PT"},
            "care": {"ytd_therapy_charges": "2450.25", "abn": "signed", "written_authorization": False},
            "services": [{"code": "97110", "minutes": 15, "start": "09:00", "end": "09:20"}],
        }
    )
    back = _round_trip(enc)
    assert back == enc
    assert back.care.ytd_therapy_charges == Decimal("2450.25")
    assert back.services[0].start == dt.time(9, 0)


def test_money_is_written_as_exact_decimals_and_charges_and_xray_round_trip():
    """FHIR decimals keep their digits: 38.50 is written 38.50 (a float would give 38.5)."""
    enc = Encounter.from_mapping(
        {
            "date_of_service": "2025-01-02",
            "provider": {"type": "DC"},
            "care": {"ytd_therapy_charges": "12345678901234.50", "last_xray": "2024-12-20"},
            "charges": {"98940": "45.00", "97110": "38.50"},
            "procedures": [{"code": "98940", "billed": {"charge": "45.10"}}],
        }
    )
    text = dumps(claim_from_encounter(enc))
    assert '"value": 12345678901234.50' in text
    assert '"url": "97110",\n          "valueMoney": {\n            "value": 38.50' in text
    assert '"net": {\n        "value": 45.10' in text
    back = encounter_from_claim(json.loads(text))
    assert back == enc
    assert back.charges == (("98940", Decimal("45.00")), ("97110", Decimal("38.50")))
    assert back.care.last_xray == dt.date(2024, 12, 20)


# --------------------------------------------------------------------------------------------
# Every field, generated


@st.composite
def encounters(draw):
    n_dx = draw(st.integers(0, 4))
    diagnoses = draw(st.lists(st.sampled_from(["M54.50", "M54.2", "M99.01", "S13.4XXA", "M62.830"]), min_size=n_dx, max_size=n_dx))
    pointers = st.lists(st.integers(1, n_dx), max_size=4) if n_dx else st.just([])
    start = draw(st.integers(8 * 60, 16 * 60))

    def service(i):
        svc = {"minutes": draw(st.one_of(st.none(), st.integers(0, 15)))}
        if draw(st.booleans()):
            svc["code"] = draw(st.sampled_from(["97110", "97140", "97124", "97014", "G0283"]))
        if "code" not in svc or draw(st.booleans()):
            svc["technique"] = draw(st.sampled_from(["petrissage", "myofascial_release", "therapeutic_exercise"]))
        svc["intent"] = draw(st.lists(st.sampled_from(INTENTS), max_size=2, unique=True))
        svc["regions"] = draw(st.lists(st.sampled_from(REGIONS), max_size=3, unique=True))
        svc["necessity"] = draw(st.lists(st.sampled_from(NECESSITY_CONDITIONS), max_size=2, unique=True))
        svc["diagnosis_pointers"] = draw(pointers)
        if draw(st.booleans()):
            s = start + 20 * i
            svc["start"], svc["end"] = f"{s // 60:02d}:{s % 60:02d}", f"{(s + 15) // 60:02d}:{(s + 15) % 60:02d}"
        return svc

    care = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "phase": st.sampled_from(["initial", "active", "maintenance"]),
                "visit_number": st.integers(1, 10000),
                "episode_start": st.dates(dt.date(2020, 1, 1), dt.date(2025, 1, 1)).map(dt.date.isoformat),
                "injury_date": st.dates(dt.date(2000, 1, 1), dt.date(2025, 1, 1)).map(dt.date.isoformat),
                "prior_massage_visits": st.integers(0, 10000),
                "improvement_documented": st.booleans(),
                "treatment_modified": st.booleans(),
                "plan_of_care": st.booleans(),
                "written_authorization": st.booleans(),
                "post_surgical": st.booleans(),
                "abn": st.sampled_from(["none", "voluntary", "signed"]),
                "ytd_therapy_charges": st.decimals(0, 100000, places=2).map(str),
                "bill_noncovered": st.booleans(),
                "zelis": st.booleans(),
            },
        )
    )
    data = {
        "date_of_service": draw(st.dates(dt.date(2015, 1, 1), dt.date(2026, 12, 31))).isoformat(),
        "provider": {"type": draw(st.sampled_from(["DC", "PT", "LMT"]))},
        "care": care,
        "diagnoses": diagnoses,
        "services": [service(i) for i in range(draw(st.integers(0, 3)))],
        "procedures": [
            {"code": code, "regions": draw(st.lists(st.sampled_from(REGIONS), max_size=2, unique=True)),
             "diagnosis_pointers": draw(pointers), "separately_identifiable": draw(st.sampled_from([None, True, False]))}
            for code in draw(st.lists(st.sampled_from(["98940", "98941", "99213", "97161"]), max_size=2))
        ],
    }
    if not data["services"] and not data["procedures"]:
        data["services"] = [{"code": "97110", "minutes": 10}]
    if draw(st.booleans()):
        data["id"] = draw(st.text(alphabet="abcXYZ019-/ ", min_size=1, max_size=12).filter(str.strip))
    if draw(st.booleans()):
        data["patient"] = draw(st.text(alphabet="abcXYZ019-/.:é ", min_size=1, max_size=70).filter(str.strip)).strip()
        if draw(st.booleans()):
            data["episode"] = draw(st.text(alphabet="abcXYZ019-/ ", min_size=1, max_size=20).filter(str.strip)).strip()
    if draw(st.booleans()):
        data["provider"]["npi"] = "1234567893"
    if draw(st.booleans()):
        data["documentation"] = draw(st.lists(st.sampled_from(DOCUMENTATION_ELEMENTS), max_size=4, unique=True))
    return Encounter.from_mapping(data)


@settings(max_examples=60, deadline=None)
@given(encounters())
def test_generated_encounters_round_trip(encounter):
    assert _round_trip(encounter) == encounter


# --------------------------------------------------------------------------------------------
# Outcomes


def test_outcome_claim_has_the_lines_to_bill_with_modifiers_units_and_pointers():
    encounter = read_fhir_encounter(str(FIXTURE))
    outcome = ENGINE.check(encounter, "medicare")
    claim = claim_from_outcome(outcome, encounter)
    Claim.model_validate(claim)
    lines = [
        (
            i["productOrService"]["coding"][0]["code"],
            [m["coding"][0]["code"] for m in i.get("modifier", [])],
            i["quantity"]["value"],
            i["diagnosisSequence"],
        )
        for i in claim["item"]
    ]
    # 97124 is denied by the NCCI edit: not on the claim.
    assert lines == [("98940", ["AT"], 1, [1, 2, 3]), ("97140", ["GP", "GY"], 1, [4]), ("97110", ["GP", "GY"], 1, [5])]
    assert claim["item"][1]["modifier"][0]["coding"][0]["system"] == "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    assert claim["insurer"]["identifier"]["value"] == "medicare"


def test_claim_response_carries_findings_with_rule_and_source():
    encounter = read_fhir_encounter(str(FIXTURE))
    outcome = ENGINE.check(encounter, "medicare")
    response = claim_response_from_outcome(outcome, encounter)
    ClaimResponse.model_validate(response)
    assert response["outcome"] == "partial"
    notes = response["processNote"]
    assert [n["number"] for n in notes] == [1, 2, 3]
    ncci = notes[0]
    assert ncci["text"].startswith("warning NCCI_PTP_DENIAL (CO-236): 97124 is column 2 of NCCI PTP edit 97140/97124")
    assert "[rule NCCI-01; source: CMS Medicare NCCI PTP edits" in ncci["text"]
    parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ncci["extension"][0]["extension"]}
    assert parts["code"] == "NCCI_PTP_DENIAL" and parts["severity"] == "warning" and parts["rule"] == "NCCI-01"
    assert parts["line"] == 2 and "item-sequence" not in parts  # 97124 is not on the claim
    assert parts["carc"] == {"system": "https://x12.org/codes/claim-adjustment-reason-codes", "code": "236"}
    assert parts["group"] == {"system": "https://x12.org/codes/claim-adjustment-group-codes", "code": "CO"}
    # The not-billed 97124 line is kept, with the note that explains it.
    not_billed = [e for e in response["extension"] if e["url"].endswith("/not-billed-line")]
    assert len(not_billed) == 1
    sub = not_billed[0]["extension"]
    assert sub[0] == {"url": "code", "valueCoding": {"system": "http://www.ama-assn.org/go/cpt", "code": "97124"}}
    assert {"url": "note", "valuePositiveInt": 1} in sub
    # ... and its denial in 835 terms: CO-236 (NCCI procedure-to-procedure pair) beside the finding code.
    reason = next(p["valueCodeableConcept"] for p in sub if p["url"] == "reason")
    assert reason["coding"] == [
        {"system": "https://x12.org/codes/claim-adjustment-reason-codes", "code": "236"},
        {"system": "https://payerpolicy.dev/fhir/CodeSystem/finding", "code": "NCCI_PTP_DENIAL"},
    ]
    assert reason["text"] == "CO-236"
    # Claim items: status and the notes about them (97140 is item 2, the MCR-03 note is number 2).
    # Billed with GY to be denied: an expected denial, with the finding as its reason (issue 14 item 8).
    assert response["item"][1] == {
        "itemSequence": 2,
        "noteNumber": [2],
        "adjudication": [
            {
                "category": {"coding": [{"system": "https://payerpolicy.dev/fhir/CodeSystem/line-status", "code": "expected_denial"}]},
                # A chiropractor's therapy line billed with GY: PR-170 (provider type) with N95.
                "reason": {
                    "coding": [
                        {"system": "https://x12.org/codes/claim-adjustment-reason-codes", "code": "170"},
                        {"system": "https://payerpolicy.dev/fhir/CodeSystem/finding", "code": "NONCOVERED_DC_SERVICE"},
                    ],
                    "extension": [
                        {
                            "url": "https://payerpolicy.dev/fhir/StructureDefinition/adjustment",
                            "extension": [
                                {"url": "group", "valueCoding": {"system": "https://x12.org/codes/claim-adjustment-group-codes", "code": "PR"}},
                                {"url": "rarc", "valueCoding": {"system": "https://x12.org/codes/remittance-advice-remark-codes", "code": "N95"}},
                                {"url": "source", "valueString": response["item"][1]["adjudication"][0]["reason"]["extension"][0]["extension"][2]["valueString"]},
                            ],
                        }
                    ],
                    "text": "PR-170 N95",
                },
                "value": 1,
            }
        ],
    }
    source = response["item"][1]["adjudication"][0]["reason"]["extension"][0]["extension"][2]["valueString"]
    assert source.startswith("X12 CARC list, CARC 170 (payment denied when performed or billed by this type of provider)")
    assert "error" not in response


def test_error_findings_become_claim_response_errors():
    enc = Encounter.from_mapping(
        {"date_of_service": "2025-01-02", "provider": {"type": "PT"}, "services": [{"code": "97110"}, {"code": "97112", "minutes": 15}]}
    )
    outcome = ENGINE.check(enc, "commercial")
    response = claim_response_from_outcome(outcome, enc)
    assert [e["code"]["coding"][0]["code"] for e in response["error"]] == ["TIME_MISSING"]
    assert "itemSequence" not in response["error"][0]  # the 97110 line has no time: not on the claim


def test_bundle_links_each_response_to_its_claim_and_is_deterministic():
    encounter = read_fhir_encounter(str(FIXTURE))
    outcomes = list(ENGINE.compare(encounter).values())
    bundle = outcome_bundle(encounter, outcomes)
    Bundle.model_validate(bundle)
    entries = bundle["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == ["Claim", "ClaimResponse"] * len(outcomes)
    for claim, response in zip(entries[::2], entries[1::2], strict=True):
        assert response["resource"]["request"] == {"reference": claim["fullUrl"]}
    assert outcome_bundle(encounter, outcomes) == bundle


# --------------------------------------------------------------------------------------------
# Bad FHIR


def _fixture():
    return json.loads(FIXTURE.read_text())


def _error(data) -> str:
    with pytest.raises(EncounterError) as info:
        encounter_from_claim(data)
    return str(info.value)


def test_not_a_claim():
    assert _error({"resourceType": "Patient"}) == 'resourceType: expected a FHIR "Claim" resource, found "Patient"'
    assert _error([1]) == "expected a FHIR Claim resource (a JSON object)"


def test_missing_date_of_service():
    data = _fixture()
    del data["item"][2]["servicedDate"]
    assert _error(data) == "Claim.item[2].servicedDate: required: the date of service (an ISO date, e.g. 2025-03-12)"


def test_two_dates_are_two_visits():
    data = _fixture()
    data["item"][1]["servicedDate"] = "2025-03-13"
    assert _error(data) == (
        "Claim.item[1].servicedDate: expected the date of service of Claim.item[0] (2025-03-12); "
        "one encounter is one visit; found 2025-03-13"
    )


def test_unknown_code_system():
    data = _fixture()
    data["item"][1]["productOrService"]["coding"][0]["system"] = "http://snomed.info/sct"
    assert _error(data) == (
        'Claim.item[1].productOrService.coding[0].system: unknown code system "http://snomed.info/sct"; expected '
        "http://www.ama-assn.org/go/cpt or http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets or "
        "https://payerpolicy.dev/fhir/CodeSystem/technique"
    )
    data = _fixture()
    data["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["system"] = "http://hl7.org/fhir/sid/icd-9-cm"
    assert _error(data) == (
        'Claim.diagnosis[0].diagnosisCodeableConcept.coding[0].system: unknown code system "http://hl7.org/fhir/sid/icd-9-cm"; '
        "expected http://hl7.org/fhir/sid/icd-10-cm"
    )


def test_invalid_fhir_names_the_path():
    data = _fixture()
    data["item"][0]["sequence"] = "first"
    assert _error(data).startswith("Claim.item[0].sequence: not valid FHIR R4 Claim: Input should be a valid integer")
    data = _fixture()
    del data["insurance"]
    assert _error(data) == "Claim.insurance: not valid FHIR R4 Claim: Field required"


def test_encounter_rules_name_the_fhir_element():
    data = _fixture()
    data["item"][1]["productOrService"]["coding"][0] = {"system": "http://www.ama-assn.org/go/cpt", "code": "12345"}
    assert _error(data).startswith("Claim.item[1].productOrService.coding[0].code: unknown code '12345'; known codes: ")
    data = _fixture()
    minutes = next(e for e in data["item"][1]["extension"] if e["url"].endswith("/minutes"))
    minutes["valueUnsignedInt"] = 481
    index = data["item"][1]["extension"].index(minutes)
    assert _error(data) == f"Claim.item[1].extension[{index}].valueUnsignedInt: expected a whole number from 0 to 480, found 481"
    data = _fixture()
    data["item"][1]["extension"][1]["valueCode"] = "elbow"
    assert _error(data) == (
        'Claim.item[1].extension[1].valueCode: technique "elbow" differs from productOrService "myofascial_release"'
    )
    data["item"][1]["productOrService"]["coding"][0]["code"] = "elbow"
    assert _error(data).startswith('Claim.item[1].extension[1].valueCode: unknown technique "elbow"; known: effleurage')
    data = _fixture()
    data["item"][1]["diagnosisSequence"] = [9]
    assert _error(data) == "Claim.item[1].diagnosisSequence[0]: no Claim.diagnosis has sequence 9"
    data = _fixture()
    data["extension"][0]["extension"][0] = {"url": "phase", "valueCode": "chronic"}
    assert _error(data) == 'Claim.extension[0].extension[0].valueCode: unknown phase "chronic"; known: initial, active, maintenance'


def test_payerpolicy_extensions_are_checked_and_foreign_ones_ignored():
    data = _fixture()
    data["item"][1]["extension"].append({"url": STRUCTURE_DEFINITION + "minute", "valueUnsignedInt": 3})
    n = len(data["item"][1]["extension"]) - 1
    assert _error(data).startswith(
        f"Claim.item[1].extension[{n}].url: unknown payerpolicy extension 'https://payerpolicy.dev/fhir/StructureDefinition/minute' here; known: entry"
    )
    data = _fixture()
    data["item"][1]["extension"].append({"url": "http://example.org/x", "valueString": "ignored"})
    assert encounter_from_claim(data) == encounter_from_claim(_fixture())
    data = _fixture()
    data["item"][1]["modifierExtension"] = [{"url": "http://example.org/x", "valueBoolean": True}]
    assert _error(data).startswith("Claim.item[1].modifierExtension[0]: modifier extensions are not understood")


def test_patient_and_episode_keys_travel_in_claim_patient_and_the_episode_extension():
    encounter = attrs.evolve(read_encounter(str(ROOT / "examples" / "dc_visit.json")), patient="clinic/42 A", episode="injury 1")
    claim = claim_from_encounter(encounter)
    assert claim["patient"] == {"identifier": {"system": "https://payerpolicy.dev/fhir/NamingSystem/patient", "value": "clinic/42 A"}}
    assert {"url": STRUCTURE_DEFINITION + "episode", "valueString": "injury 1"} in claim["extension"]
    assert _round_trip(encounter) == encounter
    # the outcome's Claim and ClaimResponse name the same patient; the outcome Claim keeps the episode
    outcome = ENGINE.check(encounter, "medicare")
    assert claim_from_outcome(outcome, encounter)["patient"] == claim["patient"]
    assert {"url": STRUCTURE_DEFINITION + "episode", "valueString": "injury 1"} in claim_from_outcome(outcome, encounter)["extension"]
    assert claim_response_from_outcome(outcome, encounter)["patient"] == claim["patient"]
    # without keys: today's placeholder and no episode extension
    plain = attrs.evolve(encounter, patient=None, episode=None)
    assert claim_from_encounter(plain)["patient"] == {"display": "patient (not carried by a payerpolicy encounter)"}
    assert all(e["url"] != STRUCTURE_DEFINITION + "episode" for e in claim_from_encounter(plain).get("extension", []))


@pytest.mark.parametrize(
    ("patient", "key"),
    [
        ({"reference": "Patient/123"}, "123"),
        ({"reference": "https://ehr.example/fhir/Patient/a-1.b/_history/3"}, "a-1.b"),
        ({"reference": "Patient/123", "identifier": {"system": "https://payerpolicy.dev/fhir/NamingSystem/patient", "value": "K 9"}}, "K 9"),
        ({"reference": "#p1"}, None),
        ({"reference": "Group/7"}, None),
        ({"identifier": {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "123456789"}}, None),
        ({"display": "patient (not carried by a payerpolicy encounter)"}, None),
    ],
)
def test_patient_key_from_another_tools_claim(patient, key):
    data = _fixture()
    data["patient"] = patient
    assert encounter_from_claim(data).patient == key


def test_episode_needs_a_patient_and_a_string():
    data = _fixture()
    data["extension"].append({"url": STRUCTURE_DEFINITION + "episode", "valueString": "injury 1"})
    assert encounter_from_claim(data).episode == "injury 1"
    data["patient"] = {"display": "someone"}
    assert _error(data) == "Claim.patient: required when episode is given (an episode belongs to a patient)"
    data = _fixture()
    data["extension"].append({"url": STRUCTURE_DEFINITION + "episode", "valueCode": "injury-1"})
    n = len(data["extension"]) - 1
    assert _error(data) == f"Claim.extension[{n}]: expected valueString for the episode key, found valueCode"


def test_missing_provider_type_and_wrong_value_type():
    data = _fixture()
    data["provider"]["extension"] = []
    assert _error(data).startswith("Claim.provider.extension: required extension https://payerpolicy.dev/fhir/StructureDefinition/provider-type is missing")
    data = _fixture()
    data["item"][1]["extension"][2] = {"url": STRUCTURE_DEFINITION + "intent", "valueString": "function"}
    assert _error(data) == "Claim.item[1].extension[2]: expected valueCode for one of intent, found valueString"


def test_service_extension_on_a_procedure():
    data = _fixture()
    data["item"][0]["extension"].append({"url": STRUCTURE_DEFINITION + "minutes", "valueUnsignedInt": 5})
    n = len(data["item"][0]["extension"]) - 1
    assert _error(data) == f"Claim.item[0].extension[{n}].valueUnsignedInt: minutes is for services, not procedures (entry: procedure)"


def test_reading_a_file_names_it(tmp_path):
    bad = tmp_path / "claim.json"
    data = copy.deepcopy(_fixture())
    data["resourceType"] = "ExplanationOfBenefit"
    bad.write_text(json.dumps(data))
    with pytest.raises(EncounterError) as info:
        read_fhir_encounter(str(bad))
    assert str(info.value) == f'{bad}: resourceType: expected a FHIR "Claim" resource, found "ExplanationOfBenefit"'


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_check_and_compare_read_a_fhir_claim(capsys):
    from payerpolicy.cli import main

    assert main(["check", "--from", "fhir", str(FIXTURE), "--payer", "commercial", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["encounter"] == "S42-dc-visit"
    assert [(ln["code"], ln["units"], ln["modifiers"]) for ln in out["lines"]] == [
        ("98940", 1, []), ("97140", 1, ["59"]), ("97124", 1, ["59"]), ("97110", 1, [])
    ]
    assert main(["compare", "--from", "fhir", str(FIXTURE), "--payers", "commercial,medicare"]) == 0
    assert "97140 x1 [GP, GY]" in capsys.readouterr().out


def test_cli_format_fhir_prints_a_bundle(capsys):
    from payerpolicy.cli import main

    assert main(["check", str(ROOT / "examples" / "dc_visit.json"), "--payer", "bcbsnc", "--format", "fhir"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    Bundle.model_validate(bundle)
    claim, response = (e["resource"] for e in bundle["entry"])
    assert [i["productOrService"]["coding"][0]["code"] for i in claim["item"]] == ["98940", "97140", "97110"]
    assert [n["extension"][0]["extension"][0]["valueCode"] for n in response["processNote"]] == [
        "NCCI_PTP_DENIAL", "OPEN_QUESTION_GP_ON_97140"
    ]


def test_cli_bad_fhir_is_one_line_exit_2(tmp_path, capsys):
    from payerpolicy.cli import main

    data = _fixture()
    del data["item"][0]["servicedDate"]
    bad = tmp_path / "claim.json"
    bad.write_text(json.dumps(data))
    assert main(["check", "--from", "fhir", str(bad), "--payer", "commercial"]) == 2
    assert capsys.readouterr().err == (
        f"payerpolicy: error: {bad}: Claim.item[0].servicedDate: required: the date of service (an ISO date, e.g. 2025-03-12)\n"
    )


def test_without_the_extra_the_error_says_what_to_install(monkeypatch, capsys):
    import sys

    from payerpolicy.cli import main

    monkeypatch.setitem(sys.modules, "fhir.resources.R4B", None)  # makes the import fail
    assert main(["check", "--from", "fhir", str(FIXTURE), "--payer", "commercial"]) == 2
    assert capsys.readouterr().err == (
        "payerpolicy: error: FHIR support needs the fhir.resources library: install payerpolicy[fhir]\n"
    )


def test_cli_import_stays_cheap():
    import subprocess
    import sys

    code = "import sys, payerpolicy.cli; print(sorted(m for m in ('pydantic', 'fhir', 'payerpolicy.formats.fhir', 'payerpolicy.formats.x12') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_diagnosis_and_npi_name_the_fhir_element():
    data = _fixture()
    data["diagnosis"][2]["diagnosisCodeableConcept"]["coding"][0]["code"] = "XYZ"
    assert _error(data) == 'Claim.diagnosis[2].diagnosisCodeableConcept.coding[0].code: expected an ICD-10-CM code like "M54.50", found "XYZ"'
    data = _fixture()
    data["provider"]["identifier"]["value"] = "12"
    assert _error(data) == "Claim.provider.identifier.value: expected 10 digits, found '12'"


def test_money_read_from_a_file_keeps_every_digit(tmp_path):
    """A FHIR file's decimals are read exactly: no float on the way (18 significant digits survive)."""
    enc = Encounter.from_mapping(
        {"date_of_service": "2025-01-02", "provider": {"type": "PT"},
         "care": {"ytd_therapy_charges": "123456789012345678.25"},
         "charges": {"97110": "99999999999999.99"},
         "services": [{"code": "97110", "minutes": 15, "billed": {"charge": "12345678901234567.89"}}]}
    )
    path = tmp_path / "claim.json"
    path.write_text(dumps(claim_from_encounter(enc)))
    back = read_fhir_encounter(str(path))
    assert back == enc
    assert back.care.ytd_therapy_charges == Decimal("123456789012345678.25")
    assert back.charges == (("97110", Decimal("99999999999999.99")),)
    assert back.services[0].billed is not None and back.services[0].billed.charge == Decimal("12345678901234567.89")


def test_outcome_claim_items_carry_the_line_charge_as_net():
    first = json.loads((ROOT / "examples" / "month.jsonl").read_text().splitlines()[0])
    encounter = Encounter.from_mapping(first)
    claim = claim_from_outcome(ENGINE.check(encounter, "medicare"), encounter)
    assert [(i["productOrService"]["coding"][0]["code"], i["net"]) for i in claim["item"]] == [
        ("98941", {"value": Decimal("70.00"), "currency": "USD"}),
        ("97140", {"value": Decimal("45.00"), "currency": "USD"}),
    ]
    assert '"value": 70.00' in dumps(claim)
    dc = read_encounter(str(ROOT / "examples" / "dc_visit.json"))  # no charges: no net
    assert all("net" not in i for i in claim_from_outcome(ENGINE.check(dc, "medicare"), dc)["item"])
