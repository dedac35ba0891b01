"""Sets of procedure codes written as data: single codes and inclusive ranges (``"98940-98942"``)."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .vocab import CODE_PATTERN

__all__ = ["CodeSet", "parse_code_item"]


def parse_code_item(item: str) -> tuple[str, str] | None:
    """Parse ``"97140"`` or ``"98940-98942"`` into (low, high); None when it is not one."""
    if not isinstance(item, str):
        return None
    lo, sep, hi = item.partition("-")
    if not sep:
        hi = lo
    if not (CODE_PATTERN.match(lo) and CODE_PATTERN.match(hi)):
        return None
    if len(lo) != len(hi) or lo[0].isalpha() != hi[0].isalpha() or lo > hi:
        return None
    return lo, hi


@attrs.frozen
class CodeSet:
    """An immutable set of codes given as single codes and ranges, as written in policy files."""

    items: tuple[str, ...]
    _singles: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    _ranges: tuple[tuple[str, str], ...] = attrs.field(init=False, eq=False, repr=False)
    _memo: dict[str, bool] = attrs.field(init=False, eq=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        singles, ranges = set(), []
        for item in self.items:
            parsed = parse_code_item(item)
            if parsed is None:
                raise ValueError(f"not a code or code range: {item!r}")
            lo, hi = parsed
            if lo == hi:
                singles.add(lo)
            else:
                ranges.append((lo, hi))
        object.__setattr__(self, "_singles", frozenset(singles))
        object.__setattr__(self, "_ranges", tuple(ranges))

    @classmethod
    def of(cls, items: Iterable[str]) -> CodeSet:
        """Build a set from codes and ranges."""
        return cls(tuple(items))

    def __contains__(self, code: object) -> bool:
        try:
            return self._memo[code]  # type: ignore[index]
        except (KeyError, TypeError):  # not asked before, or not hashable
            pass
        if not isinstance(code, str):
            return False
        known = code in self._singles or any(len(code) == len(lo) and lo <= code <= hi for lo, hi in self._ranges)
        if len(self._memo) < 4096:  # codes come from a catalogue of a few hundred: the memo stays small
            self._memo[code] = known
        return known

    def __bool__(self) -> bool:
        return bool(self.items)
