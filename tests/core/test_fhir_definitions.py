"""Every payerpolicy FHIR extension has a shipped StructureDefinition, and every output conforms to it."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.formats.fhir import EXTENSIONS, claim_from_encounter, dumps, outcome_bundle
from payerpolicy.formats.fhir_definitions import BASE, DEFINITIONS, structure_definitions
from payerpolicy.formats.io import read_encounter
from payerpolicy.kit.testing import load_cases

pytest.importorskip("fhir.resources", reason="needs payerpolicy[fhir]")

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Engine()
PAYERS = ("aetna", "bcbsnc", "ca_wc", "commercial", "medicare")
SHIPPED = resources.files("payerpolicy.policies").joinpath("fhir")


def _shipped() -> dict[str, dict[str, Any]]:
    return {f.name: json.loads(f.read_text("utf-8")) for f in SHIPPED.iterdir() if f.name.endswith(".json")}


def test_every_extension_the_writer_knows_has_a_definition_and_the_shipped_files_are_current():
    assert {d.name for d in DEFINITIONS} == set(EXTENSIONS)
    assert _shipped() == structure_definitions()  # python -m payerpolicy.formats.fhir_definitions policies/fhir


@pytest.mark.parametrize("name", sorted(structure_definitions()))
def test_each_definition_is_a_valid_r4_structure_definition(name):
    from fhir.resources.R4B.structuredefinition import StructureDefinition

    data = _shipped()[name]
    StructureDefinition.model_validate(data)
    assert data["url"] == BASE + data["id"] and data["type"] == "Extension" and data["derivation"] == "constraint"


class _Rules:
    """What a shipped definition allows: contexts, the value type, or the sub-extensions (url -> type, min, max)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.contexts = {c["expression"] for c in data["context"]}
        elements = {e["id"]: e for e in data["differential"]["element"]}
        value = elements.get("Extension.value[x]", {})
        self.type = value["type"][0]["code"] if value.get("type") else None
        self.open = elements.get("Extension.extension.value[x]", {}).get("type", [{}])[0].get("code")
        self.parts = {
            e["sliceName"]: (elements[f"{e['id']}.value[x]"]["type"][0]["code"], e["min"], e["max"])
            for e in data["differential"]["element"]
            if "sliceName" in e
        }


RULES = {data["url"]: _Rules(data) for data in _shipped().values()}


def _value_type(ext: dict[str, Any]) -> str:
    [key] = [k for k in ext if k.startswith("value")]
    name = key[len("value") :]
    return name if name[:2].isupper() or name in ("Money", "Coding", "CodeableConcept") else name[0].lower() + name[1:]


def _check(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _check(item, path, problems)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "extension":
            for ext in value:
                url = ext.get("url", "")
                if not url.startswith(BASE):
                    continue
                rules = RULES.get(url)
                if rules is None:
                    problems.append(f"{path}: {url} has no StructureDefinition")
                    continue
                context = "CodeableConcept" if "coding" in node else path
                if context not in rules.contexts:
                    problems.append(f"{path}: {url} used outside its context {sorted(rules.contexts)}")
                if rules.type is not None:
                    if _value_type(ext) != rules.type or "extension" in ext:
                        problems.append(f"{path}: {url} expects value{rules.type}, found {sorted(ext)}")
                    continue
                counts: dict[str, int] = {}
                for part in ext.get("extension", []):
                    name = part["url"]
                    counts[name] = counts.get(name, 0) + 1
                    expected = rules.open if rules.open else rules.parts.get(name, (None,))[0]
                    if expected is None or _value_type(part) != expected:
                        problems.append(f"{path}: {url} sub-extension {name} ({_value_type(part)}) not in its definition")
                    for k, v in part.items():
                        if k.startswith("value"):
                            _check(v, f"{path}.extension.extension.{k}", problems)
                for name, (_, low, high) in rules.parts.items():
                    n = counts.get(name, 0)
                    if n < low or (high != "*" and n > int(high)):
                        problems.append(f"{path}: {url} has {n} {name}, allowed {low}..{high}")
        elif key != "resource":
            _check(value, f"{path}.{key}", problems)
        else:
            _check(value, value.get("resourceType", ""), problems)


def _encounters() -> list[Encounter]:
    examples = [read_encounter(str(p)) for p in sorted((ROOT / "examples").iterdir()) if p.suffix in (".json", ".toml")]
    month = [Encounter.from_mapping(json.loads(line)) for line in (ROOT / "examples" / "month.jsonl").read_text().splitlines()]
    cases = [Encounter.from_mapping(c.encounter) for c in load_cases(ROOT / "tests" / "cases")]
    return examples + month[:10] + cases


def test_every_written_extension_conforms_to_its_definition():
    """Claims from every example, some of the month and every case, and each payer's Bundle: all conform."""
    problems: list[str] = []
    used: set[str] = set()
    for encounter in _encounters():
        claim = claim_from_encounter(encounter)
        bundle = outcome_bundle(encounter, [ENGINE.check(encounter, p) for p in PAYERS])
        for resource in (claim, bundle):
            data = json.loads(dumps(resource))
            _check(data, data["resourceType"], problems)
            used.update(u for u in _urls(data) if u.startswith(BASE))
    assert problems == []
    assert used == set(RULES)  # every definition is exercised, every used URL is defined


def test_the_conformance_check_catches_a_wrong_value_type_and_an_unknown_sub_extension():
    problems: list[str] = []
    claim = {"resourceType": "Claim", "item": [{"extension": [{"url": BASE + "minutes", "valueString": "15"}]}],
             "extension": [{"url": BASE + "documentation", "extension": [{"url": "listd", "valueBoolean": True}]}]}
    _check(claim, "Claim", problems)
    assert problems == [
        f"Claim.item: {BASE}minutes expects valueunsignedInt, found ['url', 'valueString']",
        f"Claim: {BASE}documentation sub-extension listd (boolean) not in its definition",
        f"Claim: {BASE}documentation has 0 listed, allowed 1..1",
    ]


def _urls(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_urls(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["url"]} if isinstance(node.get("url"), str) else set()
    return found.union(*(_urls(v) for v in node.values()))
