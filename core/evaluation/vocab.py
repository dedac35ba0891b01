"""Controlled vocabularies of the encounter format, and the code catalogue.

Every name a user may write in an encounter is listed here; an unknown name is bad input whose
message lists the known ones. The lists are part of the public encounter format
(`docs/encounter-format.md`): names are added, never renamed or removed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import PolicyProblem, PolicyValidationError
from .tomlcache import load_package_toml

__all__ = [
    "ABN_KINDS",
    "CATALOGUE_KEYS",
    "CATEGORIES",
    "CODE_ENTRY_KEYS",
    "CODE_PATTERN",
    "DOCUMENTATION_ELEMENTS",
    "INTENTS",
    "NECESSITY_CONDITIONS",
    "PHASES",
    "PROCEDURE_CATEGORIES",
    "PROVIDER_TYPES",
    "REGIONS",
    "SPINAL_REGIONS",
    "TECHNIQUES",
    "CodeCatalogue",
    "CodeInfo",
    "catalogue_from_mapping",
    "default_catalogue",
    "is_code_catalogue",
]

#: CMT and body regions (CORE-REG-01): five spinal, five extraspinal.
SPINAL_REGIONS = ("cervical", "thoracic", "lumbar", "sacral", "pelvic")
REGIONS = (*SPINAL_REGIONS, "head", "upper_extremity", "lower_extremity", "rib_cage", "abdomen")

PROVIDER_TYPES = ("DC", "PT", "PTA", "OT", "OTA", "MD", "DO", "LMT", "ATC")

TECHNIQUES = (
    "effleurage",
    "petrissage",
    "tapotement",
    "massage",
    "hand_held_massage_tool",
    "mechanical_massage",
    "myofascial_release",
    "soft_tissue_mobilization",
    "trigger_point",
    "active_release",
    "deep_tissue",
    "joint_mobilization",
    "manipulation",
    "manual_traction",
    "manual_lymphatic_drainage",
    "therapeutic_exercise",
    "neuromuscular_reeducation",
    "therapeutic_activities",
    "gait_training",
)

INTENTS = (
    "relaxation",
    "stress_relief",
    "wellness",
    "circulation",
    "edema",
    "spasm",
    "preparation_for_exercise",
    "range_of_motion",
    "extensibility",
    "adhesions",
    "function",
)

#: The seven medical-necessity conditions for massage (CORE-DOC-03).
NECESSITY_CONDITIONS = (
    "paralysis_impaired_circulation",
    "excess_interstitial_or_joint_fluid",
    "tissue_pressure_sensitivity",
    "tight_muscles_shortening_or_spasticity",
    "abnormal_tissue_adherence",
    "relaxation_before_neuromuscular_reed_or_exercise",
    "contracture_decreased_rom",
)

DOCUMENTATION_ELEMENTS = (
    "rationale",
    "goals",
    "functional_goal",
    "objective_measures",
    "exam_findings",
    "progress",
    "regions",
    "technique",
    "patient_response",
    "time_in_out",
    "signed",
    "countersigned",
    "plan_of_care",
    "prescription",
    "parameters",
)

PHASES = ("initial", "active", "maintenance")
ABN_KINDS = ("none", "voluntary", "signed")

#: A HCPCS/CPT code: five characters, digits with at most one leading or trailing letter.
CODE_PATTERN = re.compile(r"^(?:\d{5}|[A-Z]\d{4}|\d{4}[A-Z])$")

#: The categories of the code catalogue (``category`` of a ``codes.toml`` entry).
CATEGORIES = (
    "therapeutic_procedure",
    "attended_modality",
    "supervised_modality",
    "group_therapy",
    "unlisted_modality",
    "evaluation",
    "cmt_spinal",
    "cmt_extraspinal",
    "em",
    "legacy",
    "wound_care",
)

#: Categories of codes that are encounter ``procedures`` (untimed, one unit, with a code) when an
#: input format does not say (a FHIR Claim item without the entry extension, every 837P line).
PROCEDURE_CATEGORIES = ("cmt_spinal", "cmt_extraspinal", "em", "evaluation")


@attrs.frozen
class CodeInfo:
    """One procedure code: a short label in our own words, its category and billing basis."""

    code: str
    label: str
    category: str
    timed: bool
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @property
    def is_cmt(self) -> bool:
        """Chiropractic manipulative treatment, spinal or extraspinal."""
        return self.category in ("cmt_spinal", "cmt_extraspinal")

    @property
    def is_em(self) -> bool:
        """Evaluation and management (office visit)."""
        return self.category == "em"

    @property
    def is_physical_medicine(self) -> bool:
        """A therapy procedure or modality (not CMT, not E/M, not an evaluation)."""
        return self.category in (
            "therapeutic_procedure",
            "attended_modality",
            "supervised_modality",
            "group_therapy",
            "unlisted_modality",
            "legacy",
        )

    def valid_on(self, day: dt.date) -> bool:
        """Whether the code exists in the current code set on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_to is not None and day > self.valid_to)


@attrs.frozen
class CodeCatalogue:
    """The codes the engine knows, keyed by code."""

    codes: Mapping[str, CodeInfo]

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def get(self, code: str) -> CodeInfo | None:
        """Return the entry for ``code``, or None when it is not catalogued."""
        return self.codes.get(code)

    def __getitem__(self, code: str) -> CodeInfo:
        return self.codes[code]


@functools.cache
def default_catalogue() -> CodeCatalogue:
    """Load the catalogue shipped in ``payerpolicy/policies/codes.toml`` (once per process)."""
    data = load_package_toml("payerpolicy.policies", "codes.toml")
    return catalogue_from_mapping(data, file="payerpolicy/policies/codes.toml")


#: The top-level keys of a code catalogue file (``codes.toml``) and the keys of one entry.
CATALOGUE_KEYS = ("schema_version", "codes")
CODE_ENTRY_KEYS = ("label", "category", "timed", "valid_from", "valid_to")
#: Top-level keys of a policy file that a code catalogue never has.
_POLICY_ONLY_KEYS = ("extends", "abstract", "payer", "settings", "modifier_categories", "rules")


def is_code_catalogue(data: Mapping[str, Any]) -> bool:
    """Whether parsed TOML is a code catalogue (a ``[codes]`` table, none of a policy's keys)."""
    return "codes" in data and not any(key in data for key in _POLICY_ONLY_KEYS)


def _shown(value: object) -> str:
    if value is None:
        return "nothing (the key is missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if value else "an empty string"
    if isinstance(value, dt.datetime):
        return f"a date and time {value.isoformat()}"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def catalogue_from_mapping(data: Mapping[str, Any], *, file: str = "<catalogue>") -> CodeCatalogue:
    """Validate parsed catalogue TOML and build the catalogue.

    Raises :class:`~payerpolicy.PolicyValidationError` listing every problem, each naming the file,
    the table path and key (``codes."97140".timed``), what was expected and what was found.
    """
    problems: list[PolicyProblem] = []

    def problem(path: str, expected: str, found: object) -> None:
        problems.append(PolicyProblem(file, path, expected, _shown(found)))

    for key in data:
        if key not in CATALOGUE_KEYS:
            problems.append(
                PolicyProblem(file, key, f"one of the top-level keys {', '.join(CATALOGUE_KEYS)}", f"unknown key {key!r}")
            )
    if data.get("schema_version") != 1 or isinstance(data.get("schema_version"), bool):
        problem("schema_version", "1", data.get("schema_version"))
    table = data.get("codes")
    codes: dict[str, CodeInfo] = {}
    if not isinstance(table, Mapping) or not table:
        problem("codes", 'a table of codes ([codes."97110"] label = ..., category = ..., timed = ...)', table)
        table = {}
    for code, entry in table.items():
        where = f'codes."{code}"'
        if not CODE_PATTERN.match(code):
            problems.append(
                PolicyProblem(file, where, "a HCPCS/CPT code: five characters, digits with at most one leading or trailing letter", repr(code))
            )
        if not isinstance(entry, Mapping):
            problem(where, "a table with label, category and timed", entry)
            continue
        for key in entry:
            if key not in CODE_ENTRY_KEYS:
                problems.append(PolicyProblem(file, where, f"one of the keys {', '.join(CODE_ENTRY_KEYS)}", f"unknown key {key!r}"))
        label, category, timed = entry.get("label"), entry.get("category"), entry.get("timed")
        if not isinstance(label, str) or not label.strip():
            problem(f"{where}.label", "a short label in your own words (a non-empty string)", label)
        if category not in CATEGORIES:
            problem(f"{where}.category", f"one of {', '.join(CATEGORIES)}", category)
        if not isinstance(timed, bool):
            problem(f"{where}.timed", "true (billed in 15-minute units from minutes) or false", timed)
        dates: dict[str, dt.date | None] = {}
        for key in ("valid_from", "valid_to"):
            value = entry.get(key)
            if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
                problem(f"{where}.{key}", "a TOML date like 2014-01-01", value)
                value = None
            dates[key] = value
        start, end = dates["valid_from"], dates["valid_to"]
        if start is not None and end is not None and start > end:
            problem(f"{where}.valid_to", f"a date on or after valid_from {start.isoformat()}", end)
        if isinstance(label, str) and category in CATEGORIES and isinstance(timed, bool):
            codes[code] = CodeInfo(code=code, label=label, category=category, timed=timed, valid_from=start, valid_to=end)
    if problems:
        raise PolicyValidationError(problems)
    return CodeCatalogue(codes)
