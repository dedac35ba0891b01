"""The generic commercial payer (AMA/CPT conventions). All of its behaviour is policy data."""

from __future__ import annotations

from payerpolicy import Payer, hookimpl

__all__ = ["payerpolicy_payers"]


@hookimpl
def payerpolicy_payers() -> list[Payer]:
    """Register the ``commercial`` payer and its policy file."""
    return [
        Payer(
            id="commercial",
            name="Commercial (AMA/CPT conventions)",
            policy=("payerpolicy.policies", "commercial.toml"),
            description="Generic commercial plan: AMA per-code units, NCCI-style CMT bundling with 59, no therapy modifier.",
        )
    ]
