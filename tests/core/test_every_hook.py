"""Every hook spec has a test: one extension plugin implements each hook and sees its effect."""

from __future__ import annotations

from typing import Any

import payerpolicy
from payerpolicy import Change, CodeChoice, Encounter, Engine, Param, PluginHost, RuleKind, hookimpl
from payerpolicy.evaluation.hookspecs import __all__ as HOOKSPEC_NAMES

ENCOUNTER = Encounter.from_mapping(
    {
        "date_of_service": "2025-04-01",
        "provider": {"type": "PT"},
        "services": [
            {"technique": "therapeutic_exercise", "minutes": 20},
            {"code": "97140", "minutes": 20, "regions": ["lumbar"]},
        ],
    }
)


def _noop_kind(rule: Any, lines: Any, ctx: Any) -> list[Change]:
    return [Change.note(rule.id, rule.source, "TEST_KIND_RAN", "info", f"value {rule['value']}")]


class EveryHook:
    """An extension plugin (registers no payer) implementing every hook."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @hookimpl
    def payerpolicy_payers(self) -> list[payerpolicy.Payer]:
        self.calls.append("payerpolicy_payers")
        return []

    @hookimpl
    def payerpolicy_rule_kinds(self) -> list[RuleKind]:
        self.calls.append("payerpolicy_rule_kinds")
        return [RuleKind("test_kind", "a test kind", apply={"review": _noop_kind}, params={"value": Param("int")})]

    @hookimpl
    def payerpolicy_choose_code(self, service: Any, index: int, context: Any) -> CodeChoice | None:
        self.calls.append("payerpolicy_choose_code")
        if service.technique == "therapeutic_exercise":
            return CodeChoice("97530", rule="TEST-CODE", source="test plugin", reason="test")
        return None

    @hookimpl
    def payerpolicy_screen_lines(self, lines: Any, context: Any) -> list[Change]:
        self.calls.append("payerpolicy_screen_lines")
        return [Change.note("TEST-SCREEN", "test plugin", "TEST_SCREEN", "info", "screened", line=0)]

    @hookimpl
    def payerpolicy_unit_method(self, context: Any) -> str:
        self.calls.append("payerpolicy_unit_method")
        return "cms_total_time"

    @hookimpl
    def payerpolicy_modifiers(self, lines: Any, context: Any) -> list[Change]:
        self.calls.append("payerpolicy_modifiers")
        return [Change("TEST-MOD", "test plugin", line=i, add_modifiers=("GP", "KX")) for i in range(len(lines))]

    @hookimpl
    def payerpolicy_order_modifiers(self, line: Any, modifiers: Any, context: Any) -> list[str]:
        self.calls.append("payerpolicy_order_modifiers")
        return sorted(modifiers, reverse=True)

    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, context: Any) -> list[Change]:
        self.calls.append("payerpolicy_adjust_lines")
        return [Change("TEST-ADJ", "test plugin", line=1, status="expected_denial")]

    @hookimpl
    def payerpolicy_order_lines(self, lines: Any, context: Any) -> list[int]:
        self.calls.append("payerpolicy_order_lines")
        return list(reversed(range(len(lines))))


def test_every_hook_is_called_and_takes_effect() -> None:
    plugin = EveryHook()
    engine = Engine(PluginHost([plugin]))
    outcome = engine.check(ENCOUNTER, "commercial")
    assert sorted(set(plugin.calls)) == sorted(n for n in HOOKSPEC_NAMES if n.startswith("payerpolicy_"))
    # choose_code: 97530 instead of 97110; unit_method: CMS total time (40 min -> 3 units: 2 + 1);
    # modifiers + order_modifiers: KX, GP (reverse order); adjust: line 1 expected denial;
    # order_lines: reversed.
    assert [(ln.code, ln.units, ln.modifiers, ln.status) for ln in outcome.lines] == [
        ("97140", 1, ("KX", "GP"), "expected_denial"),
        ("97530", 2, ("KX", "GP"), "billable"),
    ]
    assert "TEST_SCREEN" in [f.code for f in outcome.findings]
    assert any(t.rule == "TEST-CODE" and t.plugin == "EveryHook" for t in outcome.trace)


def test_a_registered_kind_is_usable_from_policy_data(tmp_path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        'schema_version = 1\nextends = "commercial"\n'
        '[payer]\nid = "commercial"\nname = "x"\npolicy_version = "t"\n'
        '[[rules]]\nid = "TEST-01"\nkind = "test_kind"\nsource = "test"\nvalue = 7\n'
    )
    host = PluginHost([EveryHook()])
    engine = Engine(host.with_policy("commercial", host.load_policy(policy)))
    outcome = engine.check(ENCOUNTER, "commercial")
    [finding] = [f for f in outcome.findings if f.code == "TEST_KIND_RAN"]
    assert (finding.rule, finding.source, finding.message, finding.plugin) == ("TEST-01", "test", "value 7", "EveryHook")
