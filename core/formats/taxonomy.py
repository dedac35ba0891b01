"""NUCC provider taxonomy codes and the encounter format's provider types: one table, both ways.

The 837P reader (:mod:`payerpolicy.formats.x12_in`) maps a taxonomy code (``PRV03``) to a provider
type; the writer (:mod:`payerpolicy.formats.x12`) maps a provider type to the taxonomy code of its
NUCC classification for ``PRV*PE`` (rendering provider) and ``PRV*BI``. Both read
:data:`TAXONOMY_PROVIDER_TYPES`. Source: NUCC, *Health Care Provider Taxonomy* code set (nucc.org).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TAXONOMY_PROVIDER_TYPES", "provider_type_for_taxonomy", "taxonomy_for_provider_type"]

#: NUCC provider taxonomy code (PRV03) -> provider type of the encounter format. A key ending in
#: ``*`` is a prefix: ``111N*`` covers the chiropractor classification and all its specializations.
#: Physicians (the NUCC "Allopathic & Osteopathic Physicians" codes 207… and 208…) are ``MD``: the
#: taxonomy does not tell an MD from a DO. Any other code is an error for the claim.
TAXONOMY_PROVIDER_TYPES: Mapping[str, str] = {
    "111N*": "DC",  # Chiropractor
    "2251*": "PT",  # Physical Therapist (225100000X and its specializations)
    "225200000X": "PTA",  # Physical Therapy Assistant
    "225X*": "OT",  # Occupational Therapist (225X00000X and its specializations)
    "224Z*": "OTA",  # Occupational Therapy Assistant (224Z00000X and its specializations)
    "225700000X": "LMT",  # Massage Therapist
    "2255A2300X": "ATC",  # Athletic Trainer
    "207*": "MD",  # Allopathic & Osteopathic Physicians
    "208*": "MD",  # Allopathic & Osteopathic Physicians
}


def provider_type_for_taxonomy(code: str) -> str | None:
    """The provider type :data:`TAXONOMY_PROVIDER_TYPES` gives a taxonomy code, or None when it gives none."""
    exact = TAXONOMY_PROVIDER_TYPES.get(code)
    if exact is not None and not code.endswith("*"):
        return exact
    for key, ptype in TAXONOMY_PROVIDER_TYPES.items():
        if key.endswith("*") and code.startswith(key[:-1]):
            return ptype
    return None


def taxonomy_for_provider_type(provider_type: str) -> str | None:
    """The taxonomy code of the provider type's NUCC classification, or None when the table has none.

    An exact key is its own code; a 4-character classification prefix (``111N*``) gives the
    classification's code (``111N00000X``). Physicians (``MD``, ``DO``) have no single code: the
    specialty decides it (207…, 208…), so the envelope must give it.
    """
    for key, ptype in TAXONOMY_PROVIDER_TYPES.items():
        if ptype != provider_type:
            continue
        if not key.endswith("*"):
            return key
        if len(key) == 5:
            return f"{key[:-1]}00000X"
    return None
