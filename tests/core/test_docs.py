"""Meta-tests: every hook spec is documented with its exact signature, every rule kind too."""

from __future__ import annotations

import inspect
from pathlib import Path

import payerpolicy
import pytest
from payerpolicy import hookspecs
from payerpolicy.evaluation.manager import BUILTIN_MODULES

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOOKS = [name for name in dir(hookspecs) if name.startswith("payerpolicy_")]


def _signature(function: object) -> str:
    sig = inspect.signature(function)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{function.__name__}({params}) -> {sig.return_annotation}"  # type: ignore[attr-defined]


def test_there_are_hooks():
    assert len(HOOKS) >= 9


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_exact_signature(name):
    text = (DOCS / "hooks.md").read_text()
    assert f"## {name}\n" in text
    assert _signature(getattr(hookspecs, name)) in text


@pytest.mark.parametrize("name", HOOKS)
def test_hook_spec_has_a_docstring(name):
    doc = getattr(hookspecs, name).__doc__ or ""
    assert len(doc.split()) > 20


def test_every_core_rule_kind_is_documented():
    text = (DOCS / "policy-format.md").read_text()
    host = payerpolicy.PluginHost()
    core = [name for name, kind in host.kinds.items() if kind.plugin in BUILTIN_MODULES]
    assert "cmt_same_region" in core
    missing = [k for k in core if f"### {k} " not in text]
    assert not missing, f"rule kinds missing from docs/policy-format.md: {missing}"
