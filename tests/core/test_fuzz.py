"""Fuzz (hypothesis, CI-sized): hostile encounters, JSON text, policy settings and 837P bytes never crash.

Whatever the input, reading it either gives an encounter or raises the one error a user can cause
(``EncounterError``: one line, no control characters, a bounded length); evaluating a read
encounter for every payer gives outcomes whose JSON is valid UTF-8; a policy either loads or is
refused with problems, and a loaded policy evaluates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payerpolicy import Encounter, EncounterError, Engine, PolicyValidationError
from payerpolicy.evaluation.vocab import REGIONS
from payerpolicy.formats.io import parse_json

ENGINE = Engine()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CONTROL = {chr(c) for c in range(0x20)} | {"\x7f", "\u2028", "\u2029"}

# Hostile scalars: wrong types, huge numbers, control characters, lone surrogates, long strings.
hostile_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "line\nbreak", "\x1b[31m", "\u2028", "x" * 500, ""]),
)
scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True), hostile_text,
    st.sampled_from(["97110", "97140", "98940", "2025-03-12", "PT", "DC", "lumbar", "M54.50", "09:00"]),
)  # fmt: skip
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)), max_leaves=8)
service = st.fixed_dictionaries(
    {},
    optional={
        "code": st.one_of(st.sampled_from(["97110", "97140", "97530", "97124", "97010"]), value),
        "technique": st.one_of(st.sampled_from(["petrissage", "myofascial_release"]), value),
        "minutes": st.one_of(st.integers(-5, 500), value),
        "regions": st.one_of(st.lists(st.sampled_from(REGIONS), max_size=2), value),
        "diagnosis_pointers": st.one_of(st.lists(st.integers(0, 3), max_size=2), value),
        "start": st.one_of(st.sampled_from(["09:00", "09:10", "25:00"]), value),
        "end": st.one_of(st.sampled_from(["09:15", "09:05"]), value),
    },
)
encounter = st.fixed_dictionaries(
    {
        "date_of_service": st.one_of(st.sampled_from(["2025-03-12", "2019-12-31", "2025-02-30"]), value),
        "provider": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["PT", "DC", "LMT", "PTA"])}), value),
    },
    optional={
        "id": st.one_of(hostile_text, value),
        "diagnoses": st.one_of(st.lists(st.sampled_from(["M54.50", "M99.01", "X"]), max_size=3), value),
        "services": st.one_of(st.lists(service, max_size=4), value),
        "procedures": st.one_of(st.lists(st.fixed_dictionaries({"code": st.sampled_from(["98940", "98941", "97161"])}), max_size=2), value),
        "care": st.one_of(st.dictionaries(st.sampled_from(["phase", "visit_number", "abn", "zelis"]), value, max_size=2), value),
        "documentation": st.one_of(st.lists(hostile_text, max_size=2), value),
    },
)


def _one_line(exc: EncounterError) -> None:
    text = str(exc)
    assert not CONTROL & set(text), text
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text), text
    assert len(text) < 5000
    text.encode("utf-8")


@FUZZ
@given(data=encounter)
def test_any_encounter_is_read_or_refused_and_evaluates(data: dict[str, Any]) -> None:
    try:
        enc = Encounter.from_mapping(data, catalogue=ENGINE.catalogue)
    except EncounterError as exc:
        _one_line(exc)
        return
    for outcome in ENGINE.compare(enc).values():
        outcome.to_json().encode("utf-8")


@FUZZ
@given(text=st.one_of(st.text(max_size=60), st.binary(max_size=60), encounter.map(json.dumps)))
def test_any_json_text_is_parsed_or_refused_in_one_line(text: str | bytes) -> None:
    try:
        data = parse_json(text, "fuzz.json")
    except EncounterError as exc:
        _one_line(exc)
        return
    try:
        Encounter.from_mapping(data, catalogue=ENGINE.catalogue)
    except EncounterError as exc:
        _one_line(exc)


settings_values = st.one_of(value, st.sampled_from(["cms_total_time", "ama_per_code", "59", "XS", ["distinct"], [[]], 0, 5]))
setting_keys = st.sampled_from(
    ["unit_method", "distinct_modifier_region", "distinct_modifier_time", "modifier_order", "max_modifiers_per_line", "tie_break"]
)


@FUZZ
@given(changes=st.dictionaries(setting_keys, settings_values, min_size=1, max_size=3), categories=st.dictionaries(st.sampled_from(["distinct", "therapy", "x"]), value, max_size=2))
def test_any_policy_settings_are_loaded_or_reported(changes: dict[str, Any], categories: dict[str, Any], tmp_path_factory: Any) -> None:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "extends": "commercial",
        "payer": {"id": "commercial", "name": "Fuzz", "policy_version": "1"},
        "settings": changes,
    }
    if categories:
        doc["modifier_categories"] = categories
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # not expressible in TOML (None, NaN keys, surrogates)
        return
    path: Path = tmp_path_factory.mktemp("fuzz") / "p.toml"
    try:
        path.write_text(text, "utf-8")
    except UnicodeEncodeError:
        return
    host = ENGINE.host
    try:
        policy = host.load_policy(str(path))
    except PolicyValidationError:  # every problem listed, nothing else raised
        return
    enc = Encounter.from_mapping(
        {
            "date_of_service": "2025-03-12",
            "provider": {"type": "DC"},
            "diagnoses": ["M99.01"],
            "procedures": [{"code": "98940", "regions": ["cervical"], "diagnosis_pointers": [1]}],
            "services": [{"code": "97140", "minutes": 10, "regions": ["cervical"], "diagnosis_pointers": [1]}],
        }
    )
    # what `policy check` accepts, the engine can use: no error of any kind at evaluation time
    Engine(host.with_policy("commercial", policy), ENGINE.catalogue).check(enc, "commercial").to_json()



FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "x12").glob("*.x12"))


@st.composite
def mangled_837p(draw: st.DrawFn) -> bytes:
    """A shipped 837P fixture with a few bytes replaced, inserted or cut (hostile, but mostly X12)."""
    data = bytearray(draw(st.sampled_from(FIXTURES)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["replace", "insert", "cut"]))
        piece = draw(st.one_of(st.binary(min_size=1, max_size=6), st.sampled_from([b"~", b"*", b":", b"^", b"\xff", b"\x00", b"\r\n", b"SV1*"])))
        if action == "replace":
            data[at : at + len(piece)] = piece
        elif action == "insert":
            data[at:at] = piece
        else:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


@FUZZ
@given(mangled_837p())
def test_any_837p_bytes_give_claims_error_rows_or_one_line(data: bytes) -> None:
    from payerpolicy.formats.x12_in import ClaimError, X12Error, read_837p, to_encounter

    try:
        records = list(read_837p(data, source="fuzz.x12", catalogue=ENGINE.catalogue))
    except X12Error as exc:  # an envelope that cannot be read: one line naming the place
        text = str(exc)
        assert "\n" not in text and text.startswith("fuzz.x12") and len(text) < 5000, text
        return
    for record in records:
        if isinstance(record, ClaimError):
            assert "\n" not in str(record)
            continue
        encounter = to_encounter(record, catalogue=ENGINE.catalogue)
        if isinstance(encounter, ClaimError):
            assert "\n" not in str(encounter)
            continue
        for outcome in ENGINE.compare(encounter).values():
            outcome.to_json().encode("utf-8")
