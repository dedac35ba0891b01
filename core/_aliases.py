"""The import paths of payerpolicy 0.1's flat layout, kept working after the move into subpackages.

``import payerpolicy.engine`` (or ``from payerpolicy.fhir import ...``) gives the very module object
of its new place (:data:`ALIASES`), imported only when first asked for, so classes keep one
identity and a program that never names an old path pays nothing. ``python -m payerpolicy.synth``
and ``python -m payerpolicy.ncci_synth`` run the new module as ``__main__``.

New code should import from the new places; ``docs/architecture.md`` lists both.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader
    from importlib.abc import MetaPathFinder as _Finder
else:  # the import system needs no ABC, and importing importlib.abc costs a cold start ~5 ms (importlib.resources)
    _Loader = _Finder = object

#: Old module (under ``payerpolicy.``) -> its place now.
ALIASES: dict[str, str] = {
    **{
        name: f"evaluation.{name}"
        for name in (
            "codeset",
            "engine",
            "errors",
            "hookspecs",
            "kinds",
            "library",
            "manager",
            "model",
            "paths",
            "policy",
            "units",
            "vocab",
        )
    },
    **{name: f"formats.{name}" for name in ("fhir", "io", "schema", "x12")},
    **{name: f"views.{name}" for name in ("charts", "grid", "pages", "render", "report", "whatif")},
    "server": "service.server",
    "scaffold": "kit.scaffold",
    "testing": "kit.testing",
    "dask": "batch.dask",
    "synth": "batch.synth",
    "ncci_import": "ncci.importer",
    "ncci_synth": "ncci.synth",
}

_PACKAGE = __name__.rpartition(".")[0]


class _AliasLoader(_Loader):
    """Loads an old name as the module object of its new place (no second copy)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        """The target module itself, imported if need be."""
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target ran when it was imported. Its own spec (replaced by the import system) is put back."""
        if self._spec is not None:
            module.__spec__ = self._spec

    def get_code(self, fullname: str) -> CodeType:
        """For ``python -m OLD_NAME``: run the target module as ``__main__``."""
        return compile(
            f"import runpy\nrunpy.run_module({self.target!r}, run_name='__main__', alter_sys=True)\n", fullname, "exec"
        )

    def is_package(self, fullname: str) -> bool:
        """Old names were all plain modules."""
        return False


class _AliasFinder(_Finder):
    """Finds ``payerpolicy.OLD`` for every name in :data:`ALIASES`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec whose loader hands back the module at the new place."""
        package, _, name = fullname.rpartition(".")
        if package != _PACKAGE or name not in ALIASES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(f"{_PACKAGE}.{ALIASES[name]}"))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
