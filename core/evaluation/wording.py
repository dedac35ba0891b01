"""Small pieces of English for messages a biller reads: counts with the right noun, "a" or "an"."""

from __future__ import annotations

__all__ = ["a_or_an", "count_range", "plural"]

#: Letters whose names begin with a vowel sound when an initialism is read letter by letter
#: ("an LMT", "an OT", "an MD", "a DC", "a PT").
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 spinal region"``, ``"2 spinal regions"``; ``plural_form`` when adding "s" is wrong."""
    word = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {word}"


def count_range(low: int, high: int, singular: str, plural_form: str | None = None) -> str:
    """``"1-2 spinal regions"``, or ``"5 spinal regions"`` when both ends are one number."""
    if low == high:
        return plural(low, singular, plural_form)
    return f"{low}-{high} {plural_form or singular + 's'}"


def a_or_an(initialism: str) -> str:
    """The initialism with its indefinite article: ``"an LMT"``, ``"a DC"``, ``"an OTA"``.

    Provider types are read letter by letter, so the article follows the sound of the first
    letter's name, not whether it is a vowel.
    """
    first = initialism[:1].upper()
    return f"{'an' if first in _VOWEL_SOUND_LETTERS else 'a'} {initialism}"
