"""Controlled vocabularies of the encounter format, and the code catalogue.

Every name a user may write in an encounter is listed here; an unknown name is bad input whose
message lists the known ones. The lists are part of the public encounter format
(`docs/encounter-format.md`): names are added, never renamed or removed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Mapping
from importlib import resources

import attrs

__all__ = [
    "ABN_KINDS",
    "CODE_PATTERN",
    "DOCUMENTATION_ELEMENTS",
    "INTENTS",
    "NECESSITY_CONDITIONS",
    "PHASES",
    "PROVIDER_TYPES",
    "REGIONS",
    "SPINAL_REGIONS",
    "TECHNIQUES",
    "CodeCatalogue",
    "CodeInfo",
    "default_catalogue",
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
    text = resources.files("payerpolicy.policies").joinpath("codes.toml").read_text("utf-8")
    data = tomllib.loads(text)
    codes = {}
    for code, entry in data["codes"].items():
        codes[code] = CodeInfo(
            code=code,
            label=entry["label"],
            category=entry["category"],
            timed=bool(entry["timed"]),
            valid_from=entry.get("valid_from"),
            valid_to=entry.get("valid_to"),
        )
    return CodeCatalogue(codes)
