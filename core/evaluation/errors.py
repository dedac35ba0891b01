"""Errors a user can cause, each carrying the data a billing tool needs to point at the problem.

The CLI prints every one of these as a single line and exits with status 2; anything else that
escapes is a bug (exit status 1).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import attrs

__all__ = [
    "EncounterError",
    "PayerPolicyError",
    "PluginConflictError",
    "PluginHookError",
    "PolicyProblem",
    "PolicyValidationError",
    "UnknownPayerError",
    "one_line",
]

#: Characters of one error message (file, field and message together), at most.
MESSAGE_LIMIT = 4000

# C0 and C1 controls, DEL, the line/paragraph separators and lone surrogates (compiled on first
# use: ~0.5 ms that a check without errors never needs).
_UNSAFE_CHARACTERS = "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"


@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile(_UNSAFE_CHARACTERS)


def _escape(match: re.Match[str]) -> str:
    c = ord(match.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` with every control character, line break and lone surrogate escaped, cut to ``limit``."""
    safe = _unsafe().sub(_escape, text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


class PayerPolicyError(Exception):
    """Base class of every error caused by input, policy data or plugin set-up."""


class EncounterError(PayerPolicyError):
    """An encounter that does not follow the encounter format.

    ``field`` is the path of the offending field (``services[1].minutes``), ``message`` says what
    was expected and what was found, and ``file`` names the input when it came from one.
    """

    def __init__(self, field: str, message: str, file: str | None = None) -> None:
        # Whatever the input held, the message stays one line: controls escaped, long values cut.
        self.field = one_line(field, 200)
        self.message = one_line(message)
        self.file = one_line(file, 300) if file is not None else None
        super().__init__(str(self))

    def with_file(self, file: str) -> EncounterError:
        """Return the same error, naming the file it came from."""
        return EncounterError(self.field, self.message, file)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


@attrs.frozen
class PolicyProblem:
    """One problem in a policy file: where it is, what was expected, what was found."""

    file: str
    path: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: expected {self.expected}, found {self.found}"


class PolicyValidationError(PayerPolicyError):
    """A policy file with one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[PolicyProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class UnknownPayerError(PayerPolicyError):
    """A payer id that no installed plugin serves."""

    def __init__(self, payer_id: str, known: Sequence[str]) -> None:
        self.payer_id = payer_id
        self.known = tuple(known)
        super().__init__(str(self))

    def __str__(self) -> str:
        known = ", ".join(self.known) or "(none installed)"
        return f"unknown payer {self.payer_id!r}; installed payers: {known}"


class PluginConflictError(PayerPolicyError):
    """Two plugins claim one payer id, or a plugin's hooks are not valid."""

    def __init__(self, message: str, plugins: Sequence[str] = ()) -> None:
        self.plugins = tuple(plugins)
        super().__init__(message)


class PluginHookError(Exception):
    """A plugin's hook or rule raised, or returned something the engine cannot apply.

    Not a :class:`PayerPolicyError`: it is a bug in the plugin (CLI exit status 1), and the message
    names the plugin and the hook or rule.
    """

    def __init__(self, plugin: str, where: str, message: str) -> None:
        self.plugin = plugin
        self.where = where
        super().__init__(f"plugin {plugin!r} in {where}: {message}")
