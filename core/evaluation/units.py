"""Timed-code units: the CMS total-time method and the AMA per-code method.

Both are pure functions over ``{key: minutes}`` in entry order, so they can be tested against the
CMS examples directly (CMS Pub. 100-04 ch. 5 §20.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

import attrs

__all__ = ["UnitResult", "units_ama_per_code", "units_cms_total_time", "units_for_minutes"]

K = TypeVar("K")


def units_for_minutes(minutes: int) -> int:
    """Units for ``minutes`` of timed service: 0–7 → 0, 8–22 → 1, 23–37 → 2, ... (CORE-TIME-10)."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    return (minutes + 7) // 15


@attrs.frozen
class UnitResult(Generic[K]):
    """Units per key, and the keys whose extra unit was decided by a tie (CMS method only)."""

    units: Mapping[K, int]
    tied: tuple[K, ...] = ()


def units_ama_per_code(minutes: Mapping[K, int]) -> UnitResult[K]:
    """AMA/CPT per-code midpoint method (CORE-TIME-30): each code on its own minutes."""
    return UnitResult({k: units_for_minutes(m) for k, m in minutes.items()})


def units_cms_total_time(minutes: Mapping[K, int], order: Sequence[K] | None = None) -> UnitResult[K]:
    """CMS total-time method (CMS 100-04 ch. 5 §20.2; CORE-TIME-20).

    The day's total timed minutes fix the number of units; each code first gets its full
    15-minute units; the remaining units go one each to the codes with the most leftover minutes.
    Equal leftovers are broken by ``order`` (entry order by default) and reported in ``tied``: the
    codes whose leftovers equal the last one that received a unit and the first that did not.
    """
    keys = list(order) if order is not None else list(minutes)
    rank = {k: i for i, k in enumerate(keys)}
    total = sum(minutes.values())
    allowed = units_for_minutes(total)
    units = {k: m // 15 for k, m in minutes.items()}
    rem = {k: m % 15 for k, m in minutes.items()}
    extra = allowed - sum(units.values())
    ranked = sorted((k for k in minutes if rem[k] > 0), key=lambda k: (-rem[k], rank.get(k, len(rank))))
    for k in ranked[:extra]:
        units[k] += 1
    tied: tuple[K, ...] = ()
    if 0 < extra < len(ranked) and rem[ranked[extra - 1]] == rem[ranked[extra]]:
        boundary = rem[ranked[extra]]
        tied = tuple(k for k in ranked if rem[k] == boundary)
    return UnitResult(units, tied)
