"""What-if: change an encounter with ``PATH=VALUE`` assignments and check it again.

``payerpolicy compare ENCOUNTER --set care.phase=maintenance --set services[1].minutes=23``
evaluates the encounter as entered and as changed; :mod:`payerpolicy.grid` marks what changed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..evaluation.errors import EncounterError, PayerPolicyError
from ..evaluation.model import Encounter
from ..evaluation.paths import PathError, parse_assignment, set_path
from ..evaluation.vocab import CodeCatalogue

__all__ = ["WhatIfError", "apply_assignments"]


class WhatIfError(PayerPolicyError):
    """A ``--set`` that cannot be applied: a bad path, or a value that makes the encounter invalid.

    ``assignment`` is the ``--set`` as typed, ``field`` the encounter field that is wrong.
    """

    def __init__(self, assignment: str, field: str, message: str) -> None:
        self.assignment = assignment
        self.field = field
        self.message = message
        super().__init__(f"{assignment}: {field}: {message}" if field else f"{assignment}: {message}")


def _related(path: str, field: str) -> bool:
    return path == field or field.startswith((path + ".", path + "[")) or path.startswith((field + ".", field + "["))


def apply_assignments(
    data: Mapping[str, Any], assignments: Sequence[str], *, catalogue: CodeCatalogue | None = None
) -> Encounter:
    """Return the encounter ``data`` (format v1) with every ``PATH=VALUE`` applied, validated.

    Values are JSON when they parse as JSON (``23``, ``true``, ``"x"``, ``[1, 2]``, ``null`` removes
    the key), else text. Raises :class:`WhatIfError` naming the ``--set`` and the field.
    """
    changed: Any = copy.deepcopy(dict(data))
    parsed = []
    for text in assignments:
        label = f"--set {text}"
        try:
            path, value = parse_assignment(text)
            set_path(changed, path, value)
        except PathError as exc:
            raise WhatIfError(label, exc.where, exc.message) from None
        parsed.append((label, path))
    try:
        return Encounter.from_mapping(changed, catalogue=catalogue)
    except EncounterError as exc:
        named = [label for label, path in parsed if exc.field and _related(path, exc.field)] or [
            label for label, _ in parsed
        ]
        raise WhatIfError(" ".join(named), exc.field, exc.message) from None
