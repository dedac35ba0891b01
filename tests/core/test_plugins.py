"""The plugin host: conflicts, unknown hooks, failing hooks, scoping, plugin payers and the
code-choice and line-order hooks."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import payerpolicy
import pytest
from payerpolicy import Change, CodeChoice, Engine, Payer, PluginHost, hookimpl
from payerpolicy.cli import main

COMMERCIAL = ("payerpolicy.policies", "commercial.toml")

ENCOUNTER: dict[str, Any] = {
    "id": "plugin-test",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "diagnoses": ["M54.50", "M62.830"],
    "services": [
        {"code": "97110", "minutes": 20, "regions": ["lumbar"], "diagnosis_pointers": [1]},
        {
            "technique": "myofascial_release",
            "intent": ["range_of_motion"],
            "minutes": 15,
            "regions": ["cervical"],
            "diagnosis_pointers": [2],
        },
    ],
}


@pytest.fixture
def encounter() -> payerpolicy.Encounter:
    return payerpolicy.Encounter.from_mapping(ENCOUNTER)


def acme_policy(tmp_path: Path, payer_id: str = "acme") -> str:
    path = tmp_path / f"{payer_id}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            schema_version = 1
            extends = "commercial"

            [payer]
            id = "{payer_id}"
            name = "Acme Health"
            policy_version = "2025.1"

            [[rules]]
            id = "ACME-01"
            kind = "per_visit_limit"
            source = "Acme provider manual (test)"
            max = 1
            """
        ),
        "utf-8",
    )
    return str(path)


class PayerPlugin:
    """Registers one payer and records every call of its hooks."""

    def __init__(self, payer_id: str, policy: Any) -> None:
        self.payer = Payer(id=payer_id, name=payer_id.title(), policy=policy)
        self.calls: list[str] = []

    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [self.payer]

    @hookimpl
    def payerpolicy_adjust_lines(
        self, lines: tuple[payerpolicy.ClaimLine, ...], context: payerpolicy.Context
    ) -> list[Change]:
        self.calls.append(context.payer.id)
        return []


class Extension:
    """Registers no payer: it takes part in every payer's evaluation."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def payerpolicy_adjust_lines(
        self, lines: tuple[payerpolicy.ClaimLine, ...], context: payerpolicy.Context
    ) -> list[Change]:
        self.calls.append(context.payer.id)
        return []


# ---------------------------------------------------------------------------------------------
# Registration errors


class ClaimsCommercial:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [Payer(id="commercial", name="x", policy=COMMERCIAL)]


class AlsoClaimsCommercial:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [Payer(id="commercial", name="y", policy=COMMERCIAL)]


def test_two_plugins_claiming_one_payer_are_named() -> None:
    with pytest.raises(payerpolicy.PluginConflictError) as info:
        PluginHost([ClaimsCommercial(), AlsoClaimsCommercial()], entry_points=False, strict=True)
    assert str(info.value) == (
        "payer id 'commercial' is claimed by two plugins: 'ClaimsCommercial' and 'AlsoClaimsCommercial'"
    )
    assert set(info.value.plugins) == {"ClaimsCommercial", "AlsoClaimsCommercial"}


def test_a_plugin_claiming_a_builtin_payer_is_named_with_the_builtin() -> None:
    with pytest.raises(payerpolicy.PluginConflictError) as info:
        PluginHost([ClaimsCommercial()], strict=True)
    assert "'commercial'" in str(info.value)
    assert "'ClaimsCommercial'" in str(info.value)
    assert set(info.value.plugins) == {"commercial", "ClaimsCommercial"}


class Misspelled:
    @hookimpl
    def payerpolicy_payer(self) -> list[Payer]:  # the hook is payerpolicy_payers
        return []


def test_a_misspelled_hook_is_an_error_naming_the_hook() -> None:
    with pytest.raises(payerpolicy.PluginConflictError) as info:
        PluginHost([Misspelled()], strict=True)
    assert "payerpolicy_payer" in str(info.value)
    assert "which is not a payerpolicy hook" in str(info.value)


def test_a_misspelled_hook_names_the_plugin() -> None:
    with pytest.raises(payerpolicy.PluginConflictError) as info:
        PluginHost([Misspelled()], strict=True)
    assert info.value.plugins == ("Misspelled",)
    assert str(info.value) == "plugin 'Misspelled' implements payerpolicy_payer, which is not a payerpolicy hook (misspelled?)"
    assert " object at 0x" not in str(info.value)


class WrongArgument:
    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, contxt: Any) -> list[Change]:  # "contxt": not in the spec
        return []


def test_a_hook_with_an_unknown_argument_is_a_plugin_error() -> None:
    with pytest.raises(payerpolicy.PluginConflictError, match="WrongArgument"):
        PluginHost([WrongArgument()], strict=True)


def test_two_plugin_objects_of_one_class_get_distinct_names() -> None:
    host = PluginHost([Extension(), Extension()], entry_points=False)
    names = [info.name for info in host.plugin_infos()]
    assert "Extension" in names and "Extension#2" in names


class BrokenRegistration:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        raise RuntimeError("kaboom")


def test_a_registration_hook_that_raises_names_the_plugin() -> None:
    with pytest.raises((payerpolicy.PluginHookError, payerpolicy.PluginConflictError), match="BrokenRegistration"):
        PluginHost([BrokenRegistration()], strict=True)


class RaisingAdjuster:
    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, context: Any) -> list[Change]:
        raise ZeroDivisionError("oops")


def test_a_hook_that_raises_is_skipped_with_a_finding_naming_the_plugin(encounter: payerpolicy.Encounter) -> None:
    engine = Engine(PluginHost([RaisingAdjuster()]))
    outcome = engine.check(encounter, "commercial")
    [failed] = [f for f in outcome.findings if f.code == "PLUGIN_FAILED"]
    assert failed.severity == "error" and failed.plugin == "RaisingAdjuster" and failed.line is None
    assert failed.message.startswith("plugin RaisingAdjuster raised ZeroDivisionError in payerpolicy_adjust_lines: oops")
    assert outcome.lines == Engine().check(encounter, "commercial").lines


def test_a_hook_that_raises_is_a_plugin_hook_error_in_strict_mode(encounter: payerpolicy.Encounter) -> None:
    engine = Engine(PluginHost([RaisingAdjuster()], strict=True))
    with pytest.raises(payerpolicy.PluginHookError) as info:
        engine.check(encounter, "commercial")
    assert info.value.plugin == "RaisingAdjuster"
    assert info.value.where == "payerpolicy_adjust_lines"
    assert str(info.value) == "plugin 'RaisingAdjuster' in payerpolicy_adjust_lines: ZeroDivisionError: oops"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# ---------------------------------------------------------------------------------------------
# Scoping


def test_hooks_are_scoped_to_the_payer_plugin(tmp_path: Path, encounter: payerpolicy.Encounter) -> None:
    acme = PayerPlugin("acme", acme_policy(tmp_path))
    extension = Extension()
    engine = Engine(PluginHost([acme, extension]))
    assert {"acme", "commercial"} <= set(engine.payer_ids)

    engine.check(encounter, "commercial")
    assert acme.calls == []  # another payer's plugin is never called
    assert extension.calls == ["commercial"]  # a plugin with no payer is called for every payer

    engine.check(encounter, "acme")
    assert acme.calls == ["acme"]
    assert extension.calls == ["commercial", "acme"]

    engine.compare(encounter)
    assert acme.calls == ["acme", "acme"]
    assert sorted(extension.calls) == sorted(["commercial", "acme", *engine.payer_ids])


def test_implementations_in_scope(tmp_path: Path) -> None:
    host = PluginHost([PayerPlugin("acme", acme_policy(tmp_path)), Extension()])
    in_scope = {
        pid: [name for name, _, _ in host.implementations("payerpolicy_adjust_lines", pid)]
        for pid in ("commercial", "acme")
    }
    assert "PayerPlugin" not in in_scope["commercial"]
    assert "Extension" in in_scope["commercial"]
    assert {"PayerPlugin", "Extension"} <= set(in_scope["acme"])


# ---------------------------------------------------------------------------------------------
# A plugin payer with its own policy


def test_a_plugin_payer_gets_outcomes(tmp_path: Path, encounter: payerpolicy.Encounter) -> None:
    acme = PayerPlugin("acme", acme_policy(tmp_path))
    engine = Engine(PluginHost([acme]))
    assert "acme" in engine.payer_ids
    assert engine.host.payer("acme").plugin == "PayerPlugin"

    policy = engine.host.policy("acme")
    assert policy.payer_id == "acme"
    assert policy.chain[-2:] == ("payerpolicy/policies/commercial.toml", acme.payer.policy)
    assert policy.rule("ACME-01").origin == acme.payer.policy
    assert policy.settings.unit_method == "ama_per_code"  # inherited from commercial

    outcome = engine.check(encounter, "acme")
    assert outcome.payer.id == "acme"
    assert outcome.payer.name == "Acme Health"
    assert outcome.payer.policy_version == "2025.1"
    assert [line.code for line in outcome.lines] == ["97110", "97140"]
    # ACME-01 allows one code per visit: the second becomes an expected denial
    assert [line.status for line in outcome.lines].count("expected_denial") == 1
    assert any(f.rule == "ACME-01" for f in outcome.findings)

    both = engine.compare(encounter, ["commercial", "acme"])
    assert list(both) == ["commercial", "acme"]
    assert all(line.status == "billable" for line in both["commercial"].lines)


def test_a_plugin_payer_whose_policy_names_another_payer(tmp_path: Path) -> None:
    plugin = PayerPlugin("acme", acme_policy(tmp_path, payer_id="other"))
    with pytest.raises(
        payerpolicy.PluginConflictError, match="'PayerPlugin' registers payer 'acme' with a policy for 'other'"
    ):
        PluginHost([plugin], strict=True)
    host = PluginHost([plugin])  # not strict: the plugin is left out, and says why
    assert "acme" not in host.payers
    [info] = [i for i in host.plugin_infos() if i.name == "PayerPlugin"]
    assert info.error is not None
    assert "'PayerPlugin' registers payer 'acme' with a policy for 'other'" in info.error


# ---------------------------------------------------------------------------------------------
# Code choice and line order


class ChoosesMassage:
    @hookimpl
    def payerpolicy_choose_code(
        self, service: payerpolicy.Service, index: int, context: payerpolicy.Context
    ) -> CodeChoice | None:
        if service.technique == "myofascial_release":
            return CodeChoice("97124", rule="TEST-CODE-01", source="test source", reason="test plugin prefers 97124")
        return None


def test_choose_code_hook_is_honoured_and_traced(encounter: payerpolicy.Encounter) -> None:
    default = Engine(PluginHost()).check(encounter, "commercial")
    assert [line.code for line in default.lines] == ["97110", "97140"]

    outcome = Engine(PluginHost([ChoosesMassage()])).check(encounter, "commercial")
    assert [line.code for line in outcome.lines] == ["97110", "97124"]
    [entry] = [t for t in outcome.trace if t.rule == "TEST-CODE-01"]
    assert (entry.plugin, entry.field, entry.before, entry.after) == ("ChoosesMassage", "code", None, "97124")
    assert entry.line == 1
    assert entry.source == "test source"
    assert entry.reason == "test plugin prefers 97124"


class BadOrder:
    def __init__(self, order: Sequence[int]) -> None:
        self.order = order

    @hookimpl
    def payerpolicy_order_lines(self, lines: Any, context: Any) -> Sequence[int]:
        return self.order


@pytest.mark.parametrize("order", [[0, 0], [0], [1, 2], [0, 1, 2]])
def test_order_lines_must_return_a_permutation(encounter: payerpolicy.Encounter, order: list[int]) -> None:
    engine = Engine(PluginHost([BadOrder(order)], strict=True))
    with pytest.raises(payerpolicy.PluginHookError) as info:
        engine.check(encounter, "commercial")
    assert info.value.plugin == "BadOrder"
    assert info.value.where == "payerpolicy_order_lines"
    assert f"returned {order}, not a permutation of 0..1" in str(info.value)


@pytest.mark.parametrize("order", [[0, 0], [0], [1, 2], [0, 1, 2]])
def test_an_order_that_is_not_a_permutation_is_skipped_with_a_finding(encounter: payerpolicy.Encounter, order: list[int]) -> None:
    outcome = Engine(PluginHost([BadOrder(order)])).check(encounter, "commercial")
    [failed] = [f for f in outcome.findings if f.code == "PLUGIN_FAILED"]
    assert failed.message.startswith(f"plugin BadOrder failed in payerpolicy_order_lines: returned {order}, not a permutation of 0..1")
    assert outcome.lines == Engine().check(encounter, "commercial").lines


def test_order_lines_permutation_is_used(encounter: payerpolicy.Encounter) -> None:
    outcome = Engine(PluginHost([BadOrder([1, 0])])).check(encounter, "commercial")
    assert [line.code for line in outcome.lines] == ["97140", "97110"]


# ---------------------------------------------------------------------------------------------
# `payerpolicy plugins`


def test_plugins_command_lists_commercial(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "plugins"
    assert any(
        line.split()[:1] == ["commercial"] and "loaded" in line and "payers: commercial" in line for line in lines
    )
    payers = lines[lines.index("payers") + 1 : lines.index("rule kinds")]
    assert any(
        line.split()[0] == "commercial" and "policy payerpolicy.policies/commercial.toml" in line for line in payers
    )
    kinds = lines[lines.index("rule kinds") + 1 :]
    assert any(line.split()[0] == "timed_units" for line in kinds)
