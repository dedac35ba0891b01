"""StructureDefinitions of payerpolicy's FHIR extensions (``policies/fhir/``), built from one table.

Every extension that :mod:`payerpolicy.formats.fhir` writes or reads is defined here: where it goes
(``context``), its value type, or for a complex extension its sub-extensions with their value types
and cardinalities. :func:`structure_definition` gives the FHIR R4 ``StructureDefinition`` (an
``Extension`` constraint with a differential); the shipped JSON files in ``policies/fhir/`` are
exactly these, written by ``python -m payerpolicy.formats.fhir_definitions DIR``. ``docs/fhir.md``
lists them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["DEFINITIONS", "ExtensionDefinition", "Part", "structure_definition", "structure_definitions", "write"]

BASE = "https://payerpolicy.dev/fhir/StructureDefinition/"
FHIR_VERSION = "4.0.1"


@attrs.frozen
class Part:
    """One sub-extension of a complex extension: its url, value type, and cardinality."""

    url: str
    type: str
    min: int = 0
    max: str = "1"
    short: str = ""


@attrs.frozen
class ExtensionDefinition:
    """One extension: name (the last part of its URL), contexts, and a value type or sub-extensions.

    ``open_parts`` is for a complex extension whose sub-extension urls are data (``charges``: the url
    is a procedure code): any url, each with the value type ``open_parts``.
    """

    name: str
    title: str
    description: str
    contexts: tuple[str, ...]
    type: str | None = None
    parts: tuple[Part, ...] = ()
    open_parts: str | None = None

    @property
    def url(self) -> str:
        """The canonical URL."""
        return BASE + self.name


_CARE = (
    Part("phase", "code", short="care.phase: initial, active or maintenance"),
    Part("visit_number", "positiveInt", short="care.visit_number"),
    Part("episode_start", "date", short="care.episode_start (first date of the episode; 837P DTP*454)"),
    Part("prior_massage_visits", "unsignedInt", short="care.prior_massage_visits"),
    Part("improvement_documented", "boolean", short="care.improvement_documented"),
    Part("treatment_modified", "boolean", short="care.treatment_modified"),
    Part("plan_of_care", "boolean", short="care.plan_of_care"),
    Part("written_authorization", "boolean", short="care.written_authorization"),
    Part("post_surgical", "boolean", short="care.post_surgical"),
    Part("abn", "code", short="care.abn: none, voluntary or signed"),
    Part("ytd_therapy_charges", "Money", short="care.ytd_therapy_charges (USD)"),
    Part("bill_noncovered", "boolean", short="care.bill_noncovered"),
    Part("zelis", "boolean", short="care.zelis"),
    Part("last_xray", "date", short="care.last_xray (837P DTP*455)"),
)

_ITEM = ("Claim.item",)

DEFINITIONS: tuple[ExtensionDefinition, ...] = (
    ExtensionDefinition(
        "provider-type",
        "Provider type",
        "The encounter's provider type (DC, PT, PTA, OT, OTA, MD, DO, LMT, ATC).",
        ("Claim.provider", "ClaimResponse.requestor"),
        "code",
    ),
    ExtensionDefinition(
        "care",
        "Care facts",
        "The encounter's care facts: one sub-extension per field, named as in the encounter format.",
        ("Claim",),
        parts=_CARE,
    ),
    ExtensionDefinition(
        "documentation",
        "Documentation",
        "What the clinical note contains: listed = true, and one element per documentation element.",
        ("Claim",),
        parts=(
            Part("listed", "boolean", 1, "1", "true: the elements are listed (none listed: nothing documented)"),
            Part("element", "code", 0, "*", "a documentation element"),
        ),
    ),
    ExtensionDefinition(
        "charges",
        "Charges",
        "The practice's charge per unit of each code (its charge master): one sub-extension per code, url = the code, valueMoney in USD.",
        ("Claim",),
        open_parts="Money",
    ),
    ExtensionDefinition(
        "episode",
        "Episode",
        "The encounter's episode key (the episode of care or the injury, within the patient) that claim history counts visits by: an opaque string, never a name. Added in 0.2.0.",
        ("Claim",),
        "string",
    ),
    ExtensionDefinition(
        "entry", "Encounter list", "Which encounter list the item belongs to: service or procedure.", _ITEM, "code"
    ),
    ExtensionDefinition(
        "technique", "Technique", "The technique of a service (payerpolicy technique code system).", _ITEM, "code"
    ),
    ExtensionDefinition(
        "intent", "Intent", "One intent of a service; repeat the extension for several.", _ITEM, "code"
    ),
    ExtensionDefinition("minutes", "Minutes", "Direct one-on-one minutes of a service.", _ITEM, "unsignedInt"),
    ExtensionDefinition(
        "assistant-minutes",
        "Assistant minutes",
        "Minutes a therapy assistant furnished apart from the therapist.",
        _ITEM,
        "unsignedInt",
    ),
    ExtensionDefinition("start", "Start", "Start of the service (whole minutes).", _ITEM, "time"),
    ExtensionDefinition("end", "End", "End of the service (whole minutes).", _ITEM, "time"),
    ExtensionDefinition("regions", "Region", "One body region; repeat the extension for several.", _ITEM, "code"),
    ExtensionDefinition(
        "necessity", "Necessity", "One medical-necessity condition; repeat the extension for several.", _ITEM, "code"
    ),
    ExtensionDefinition(
        "separately-identifiable",
        "Separately identifiable",
        "A procedure (E/M) was significant and separately identifiable.",
        _ITEM,
        "boolean",
    ),
    ExtensionDefinition(
        "line-status",
        "Line status",
        "The status of an outcome line on the claim: billable or expected_denial.",
        _ITEM,
        "code",
    ),
    ExtensionDefinition(
        "encounter-entry",
        "Encounter entry",
        "The encounter entry a line comes from, e.g. services[2].",
        _ITEM,
        "string",
    ),
    ExtensionDefinition(
        "finding",
        "Finding",
        "A payerpolicy finding: code, severity, rule, source, plugin, the line, and the denial in remittance (835) terms when it denies or reduces the line.",
        ("ClaimResponse.processNote", "ClaimResponse.error"),
        parts=(
            Part("code", "code", 1, "1", "the finding code"),
            Part("severity", "code", 1, "1", "error, expected_denial, warning or info"),
            Part("rule", "string", short="the rule id"),
            Part("source", "string", short="the public source of the rule"),
            Part("plugin", "string", short="the plugin that made the finding"),
            Part("line", "unsignedInt", short="index of the line in the outcome"),
            Part("item-sequence", "positiveInt", short="the Claim item of the line, when it is on the claim"),
            Part("group", "Coding", short="claim adjustment group code (X12): CO, PR, OA, PI"),
            Part("carc", "Coding", short="claim adjustment reason code (X12)"),
            Part("rarc", "Coding", 0, "*", "remittance advice remark code (X12)"),
        ),
    ),
    ExtensionDefinition(
        "not-billed-line",
        "Line not billed",
        "A line of the outcome that is not on the claim, with the findings that explain it and its denial in remittance terms.",
        ("ClaimResponse",),
        parts=(
            Part("code", "Coding", 1, "1", "the procedure code"),
            Part("units", "unsignedInt", 1, "1", "units (0)"),
            Part("modifier", "Coding", 0, "*", "a modifier"),
            Part("encounter-entry", "string", 1, "1", "the encounter entry, e.g. services[2]"),
            Part("line", "unsignedInt", 1, "1", "index of the line in the outcome"),
            Part("note", "positiveInt", 0, "*", "a processNote number about the line"),
            Part("reason", "CodeableConcept", short="the CARC and the finding code (with the adjustment extension)"),
        ),
    ),
    ExtensionDefinition(
        "payer-policy",
        "Payer policy",
        "The payer id and the version of its policy that was applied.",
        ("ClaimResponse",),
        parts=(Part("payer", "string", 1, "1", "payer id"), Part("version", "string", 1, "1", "policy version")),
    ),
    ExtensionDefinition(
        "adjustment",
        "Adjustment",
        "On a denial reason whose coding holds a claim adjustment reason code: the group code, the remittance advice remark codes and the public source of the pairing (policies/adjustments.toml).",
        ("CodeableConcept",),
        parts=(
            Part("group", "Coding", 1, "1", "claim adjustment group code (X12): CO, PR, OA, PI"),
            Part("rarc", "Coding", 0, "*", "remittance advice remark code (X12)"),
            Part("source", "string", short="the public source of the pairing"),
        ),
    ),
)


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _context(path: str) -> dict[str, str]:
    return {"type": "element", "expression": path}


def structure_definition(definition: ExtensionDefinition) -> dict[str, Any]:
    """The FHIR R4 StructureDefinition (an Extension constraint, differential only) of one extension."""
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": definition.title, "definition": definition.description}
    ]
    if definition.type is not None:
        elements += [
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": definition.url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": definition.type}]},
        ]
    elif definition.open_parts is not None:
        elements += [
            {"id": "Extension.extension", "path": "Extension.extension", "min": 1},
            {"id": "Extension.extension.extension", "path": "Extension.extension.extension", "max": "0"},
            {
                "id": "Extension.extension.value[x]",
                "path": "Extension.extension.value[x]",
                "min": 1,
                "type": [{"code": definition.open_parts}],
            },
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": definition.url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
        ]
    else:
        elements.append(
            {
                "id": "Extension.extension",
                "path": "Extension.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"},
            }
        )
        for part in definition.parts:
            slice_id = f"Extension.extension:{part.url}"
            elements += [
                {
                    "id": slice_id,
                    "path": "Extension.extension",
                    "sliceName": part.url,
                    "short": part.short or part.url,
                    "min": part.min,
                    "max": part.max,
                },
                {"id": f"{slice_id}.extension", "path": "Extension.extension.extension", "max": "0"},
                {"id": f"{slice_id}.url", "path": "Extension.extension.url", "fixedUri": part.url},
                {
                    "id": f"{slice_id}.value[x]",
                    "path": "Extension.extension.value[x]",
                    "min": 1,
                    "type": [{"code": part.type}],
                },
            ]
        elements += [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": definition.url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
        ]
    return {
        "resourceType": "StructureDefinition",
        "id": definition.name,
        "url": definition.url,
        "name": _pascal(definition.name),
        "title": definition.title,
        "status": "active",
        "publisher": "payerpolicy",
        "description": definition.description,
        "fhirVersion": FHIR_VERSION,
        "kind": "complex-type",
        "abstract": False,
        "context": [_context(c) for c in definition.contexts],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def structure_definitions() -> Mapping[str, dict[str, Any]]:
    """Every StructureDefinition by file name (``StructureDefinition-<name>.json``)."""
    return {f"StructureDefinition-{d.name}.json": structure_definition(d) for d in DEFINITIONS}


def write(directory: str | Path) -> Sequence[Path]:
    """Write every StructureDefinition as JSON into ``directory``; return the files."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in structure_definitions().items():
        path = target / name
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - the shipped files are checked against structure_definitions()
    for written_path in write(sys.argv[1] if len(sys.argv) > 1 else "policies/fhir"):
        print(written_path)
