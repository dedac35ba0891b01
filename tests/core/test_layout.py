"""The layout of core/: which layer may import which, no import cycles, and the 0.1 import paths still working.

The layers are those of docs/architecture.md. Every ``import``/``from ... import`` in core/ is read
with ``ast`` (module level, inside functions and under ``if TYPE_CHECKING:`` alike), so a lazy
import cannot hide a wrong direction.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"

#: Layer -> the layers it may import (besides itself). "" is the package facade (core/__init__.py,
#: _version, _aliases); "cli" is core/cli.py and core/__main__.py.
ALLOWED: dict[str, set[str]] = {
    "evaluation": {"_version"},
    "ncci": {"evaluation", "_version"},
    "formats": {"evaluation", "_version"},
    "history": {"evaluation", "_version"},
    "batch": {"evaluation", "formats", "history", "_version"},
    "views": {"evaluation", "formats", "batch", "_version"},
    "kit": {"evaluation", "", "_version"},
    "service": {"evaluation", "formats", "views", "history", "", "_version"},
    "": {"evaluation", "history", "_aliases", "_version"},
    "_aliases": set(),
    "_version": set(),
    "cli": {"evaluation", "ncci", "formats", "history", "batch", "views", "kit", "service", "", "_version"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(CORE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["payerpolicy", *parts])


def _layer(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if parts[0] in ("cli", "__main__"):
        return "cli"
    return parts[0]


def _imports(path: Path) -> set[str]:
    """Every payerpolicy module ``path`` imports (relative imports resolved)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "payerpolicy")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "payerpolicy":
                continue
            if node.module is None or target == "payerpolicy":
                # `from . import x` / `from payerpolicy import x`: x may be a submodule
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if _exists(sub) else target)
            else:
                found.add(target)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (CORE / rel).with_suffix(".py").exists() or (CORE / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(CORE.rglob("*.py"))}


def test_every_module_is_in_a_known_layer() -> None:
    unknown = sorted(m for m in _graph() if _layer(m) not in ALLOWED)
    assert unknown == [], f"modules outside the layers of docs/architecture.md: {unknown}"


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md draws the tree: a module added without a line there fails here."""
    page = (CORE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(p.relative_to(CORE) for p in CORE.glob("*/*.py") if p.name != "__init__.py")
    assert [str(m) for m in modules if m.name not in page] == []
    assert [p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists() and f"{p.name}/" not in page] == []


def test_layers_import_only_downward() -> None:
    wrong = []
    for module, targets in _graph().items():
        for target in sorted(targets):
            src, dst = _layer(module), _layer(target)
            if dst != src and dst not in ALLOWED[src]:
                wrong.append(f"{module} imports {target} ({src or 'facade'} -> {dst or 'facade'})")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle with them
    edges = {m: {t for t in ts if t in graph and not (m.startswith(t + ".") and _exists(t))} for m, ts in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_every_subpackage_says_what_it_owns() -> None:
    for init in sorted(CORE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "Layer" in doc, f"{init} needs a docstring saying what it owns and what it may import"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("payerpolicy.engine", "payerpolicy.evaluation.engine"),
        ("payerpolicy.model", "payerpolicy.evaluation.model"),
        ("payerpolicy.library", "payerpolicy.evaluation.library"),
        ("payerpolicy.vocab", "payerpolicy.evaluation.vocab"),
        ("payerpolicy.testing", "payerpolicy.kit.testing"),
        ("payerpolicy.schema", "payerpolicy.formats.schema"),
        ("payerpolicy.fhir", "payerpolicy.formats.fhir"),
        ("payerpolicy.x12", "payerpolicy.formats.x12"),
        ("payerpolicy.grid", "payerpolicy.views.grid"),
        ("payerpolicy.dask", "payerpolicy.batch.dask"),
        ("payerpolicy.synth", "payerpolicy.batch.synth"),
        ("payerpolicy.ncci_import", "payerpolicy.ncci.importer"),
    ],
)
def test_old_import_paths_give_the_same_module(old: str, new: str) -> None:
    if old.endswith(("fhir", "dask")):
        pytest.importorskip({"fhir": "fhir.resources", "dask": "distributed"}[old.rpartition(".")[2]])
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_names_keep_their_classes_identical() -> None:
    import payerpolicy
    from payerpolicy.engine import Engine as Old  # type: ignore[import-not-found,unused-ignore]
    from payerpolicy.evaluation.engine import Engine

    assert Old is Engine is payerpolicy.Engine
    assert payerpolicy.model is importlib.import_module("payerpolicy.evaluation.model")


def test_documented_public_names_keep_working() -> None:
    from payerpolicy.batch import iter_output, process_engine, read_rows, run_batch
    from payerpolicy.ncci import load_ptp, payerpolicy_rule_kinds
    from payerpolicy.schema import encounter_schema, outcome_schema  # type: ignore[import-not-found,unused-ignore]
    from payerpolicy.testing import isolated_engine  # type: ignore[import-not-found,unused-ignore]

    assert all(callable(f) for f in (iter_output, process_engine, read_rows, run_batch, load_ptp, payerpolicy_rule_kinds))
    assert callable(encounter_schema) and callable(outcome_schema) and callable(isolated_engine)


@pytest.mark.parametrize("module", ["payerpolicy.synth", "payerpolicy.batch.synth"])
def test_old_and_new_module_paths_run_with_dash_m(module: str) -> None:
    run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage:" in run.stdout
