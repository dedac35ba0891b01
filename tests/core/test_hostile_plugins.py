"""Hostile third-party plugins: each is isolated, named, and the builtin payers keep answering.

A plugin that fails at registration (raises, returns garbage, claims a payer id or rule kind that
is taken, implements a hook that does not exist) is left out and reported by name in
``payerpolicy plugins``; a hook that raises (also inside a generator, also ``EncounterError``) or
returns what the engine cannot use gives ``PLUGIN_FAILED`` on its own payer's outcome only. Each
case is checked in ``compare``, ``batch`` and the HTTP service; strict mode still stops.
"""

from __future__ import annotations

import functools
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import payerpolicy
import pytest
from payerpolicy import Change, EncounterError, Engine, Payer, PluginHost, RuleKind, hookimpl
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.cli import main

BUILTIN = ["aetna", "bcbsnc", "ca_wc", "commercial", "medicare"]
VISIT: dict[str, Any] = {
    "id": "hostile-1",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "diagnoses": ["M54.50", "M62.830"],
    "services": [
        {"code": "97110", "minutes": 20, "regions": ["lumbar"], "diagnosis_pointers": [1]},
        {"code": "97140", "minutes": 15, "regions": ["cervical"], "diagnosis_pointers": [2], "start": "09:00", "end": "09:15"},
    ],
}
POLICY = textwrap.dedent(
    """
    schema_version = 1
    extends = "commercial"

    [payer]
    id = "hostile"
    name = "Hostile Health"
    policy_version = "2025.1"
    """
)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hostile") / "hostile.toml"
    path.write_text(POLICY, "utf-8")
    return str(path)


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    encounter = payerpolicy.Encounter.from_mapping(VISIT)
    return {pid: o.to_mapping() for pid, o in Engine(PluginHost()).compare(encounter).items()}


# ---- plugins that fail at registration


class RaisesInPayers:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        raise RuntimeError("no payers today")


class GarbagePayers:
    @hookimpl
    def payerpolicy_payers(self) -> Any:
        return 42


class GarbagePayerItems:
    @hookimpl
    def payerpolicy_payers(self) -> Any:
        return ["commercial", None]


class BadPayerId:
    @hookimpl
    def payerpolicy_payers(self) -> Any:
        return [Payer(id="Bad Id\n", name="x", policy="nowhere.toml")]


class RaisesInRuleKinds:
    @hookimpl
    def payerpolicy_rule_kinds(self) -> list[RuleKind]:
        raise ValueError("kinds exploded")


class GarbageRuleKinds:
    @hookimpl
    def payerpolicy_rule_kinds(self) -> Any:
        return "per_visit_limit"


class GarbageRuleKindItems:
    @hookimpl
    def payerpolicy_rule_kinds(self) -> Any:
        return [object()]


class DuplicatePayerId:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [Payer(id="commercial", name="Not commercial", policy=("payerpolicy.policies", "commercial.toml"))]


class DuplicateRuleKind:
    @hookimpl
    def payerpolicy_rule_kinds(self) -> list[RuleKind]:
        return [RuleKind(name="per_visit_limit", summary="mine now", apply={"adjust": lambda rule, lines, ctx: []})]


class MisspelledHook:
    @hookimpl
    def payerpolicy_adjust_line(self, lines: Any, context: Any) -> list[Change]:  # the hook is ..._lines
        return []


class UnknownArgument:
    @hookimpl
    def payerpolicy_adjust_lines(self, lines: Any, contxt: Any) -> list[Change]:
        return []


class GeneratorPayers:
    @hookimpl
    def payerpolicy_payers(self) -> Iterator[Payer]:
        yield Payer(id="genpayer", name="x", policy="nowhere.toml")
        raise RuntimeError("after the first payer")


class GarbagePolicySource:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [Payer(id="garbagepol", name="x", policy=42)]  # type: ignore[arg-type]


class BrokenPolicy:
    @hookimpl
    def payerpolicy_payers(self) -> list[Payer]:
        return [Payer(id="brokenpol", name="x", policy="no/such/policy.toml")]


REGISTRATION = [
    (RaisesInPayers, "RuntimeError: no payers today"),
    (GarbagePayers, "returned 42, expected a list"),
    (GarbagePayerItems, "returned 'commercial' from payerpolicy_payers"),
    (BadPayerId, "from payerpolicy_payers; expected Payer records with an id of lower case letters"),
    (RaisesInRuleKinds, "ValueError: kinds exploded"),
    (GarbageRuleKinds, "returned 'per_visit_limit', expected a list"),
    (GarbageRuleKindItems, "from payerpolicy_rule_kinds; expected RuleKind records"),
    (DuplicatePayerId, "payer id 'commercial' is claimed by two plugins: 'commercial' and 'DuplicatePayerId'"),
    (DuplicateRuleKind, "rule kind 'per_visit_limit' is registered by two plugins"),
    (MisspelledHook, "implements payerpolicy_adjust_line, which is not a payerpolicy hook (misspelled?)"),
    (UnknownArgument, "cannot be registered"),
    (GeneratorPayers, "RuntimeError: after the first payer"),
    (GarbagePolicySource, "expected Payer records with an id of lower case letters, digits and _, a name and a policy file"),
    (BrokenPolicy, "the policy of payer 'brokenpol' cannot be used: no/such/policy.toml: (file): expected a readable policy file"),
]


@pytest.mark.parametrize(("plugin", "error"), REGISTRATION, ids=[c.__name__ for c, _ in REGISTRATION])
def test_a_plugin_failing_at_registration_is_left_out_and_named(plugin: type, error: str, baseline: dict[str, Any]) -> None:
    host = PluginHost([plugin()])
    [info] = [i for i in host.plugin_infos() if i.name == plugin.__name__]
    assert info.error is not None and error in info.error
    assert "\n" not in info.error
    assert sorted(host.payers) == BUILTIN
    assert host.payers["commercial"].plugin == "commercial"
    outcomes = Engine(host).compare(payerpolicy.Encounter.from_mapping(VISIT))
    assert {pid: o.to_mapping() for pid, o in outcomes.items()} == baseline


@pytest.mark.parametrize(("plugin", "error"), REGISTRATION, ids=[c.__name__ for c, _ in REGISTRATION])
def test_strict_mode_still_stops_on_a_registration_failure(plugin: type, error: str) -> None:
    with pytest.raises(payerpolicy.PayerPolicyError) as info:
        PluginHost([plugin()], strict=True)
    named = "no/such/policy.toml" if plugin is BrokenPolicy else plugin.__name__  # a policy problem names its file
    assert named in str(info.value)


def test_the_plugins_command_reports_the_failed_plugin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the commands import the plugin host when they run: the one of payerpolicy.evaluation.manager
    monkeypatch.setattr("payerpolicy.evaluation.manager.PluginHost", functools.partial(PluginHost, [RaisesInPayers(), DuplicatePayerId()]))
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "  RaisesInPayers   (test_hostile_plugins)  FAILED: plugin 'RaisesInPayers' failed in payerpolicy_payers: RuntimeError: no payers today" in out
    assert "DuplicatePayerId   (test_hostile_plugins)  FAILED: payer id 'commercial' is claimed by two plugins" in out
    visit = tmp_path / "v.json"
    visit.write_text(json.dumps(VISIT), "utf-8")
    assert main(["compare", str(visit), "--format", "json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["payers"]) == BUILTIN


# ---- hooks that fail while evaluating (scoped to their own payer)


def _payer_plugin(policy: str, **hooks: Any) -> object:
    """A plugin serving payer ``hostile`` with the given hook functions."""
    namespace: dict[str, Any] = {
        "payerpolicy_payers": hookimpl(lambda self: [Payer(id="hostile", name="Hostile", policy=policy)])
    }
    for name, function in hooks.items():
        namespace[f"payerpolicy_{name}"] = hookimpl(function)
    return type("Hostile", (), namespace)()


def _raise_after_first(self: Any, lines: Any, context: Any) -> Iterator[Change]:
    yield Change(rule="H", source="test", line=0, add_modifiers=("GP",))
    raise RuntimeError("after the first change")


def _encounter_error(self: Any, lines: Any, context: Any) -> list[Change]:
    raise EncounterError("services[0].minutes", "the plugin does not like this")


HOOKS: list[tuple[str, dict[str, Any], str]] = [
    ("adjust raises", {"adjust_lines": lambda self, lines, context: 1 / 0}, "raised ZeroDivisionError in payerpolicy_adjust_lines"),
    ("generator raises after a yield", {"adjust_lines": _raise_after_first}, "raised RuntimeError in payerpolicy_adjust_lines: after the first change"),
    ("hook raises EncounterError", {"screen_lines": _encounter_error}, "raised EncounterError in payerpolicy_screen_lines"),
    ("modifiers returns garbage", {"modifiers": lambda self, lines, context: 42}, "failed in payerpolicy_modifiers: returned 42, expected Change values"),
    ("screen returns non-Change", {"screen_lines": lambda self, lines, context: ["x"]}, "returned 'x', expected Change values"),
    ("change names no line", {"adjust_lines": lambda self, lines, context: [Change(rule="H", source="test", line=99, units=1)]}, "change names line 99, but there are 2 lines"),
    ("change sets an unknown code", {"adjust_lines": lambda self, lines, context: [Change(rule="H", source="test", line=0, code="ZZZZZ")]}, "code 'ZZZZZ' is not in the code catalogue"),
    ("choose_code returns garbage", {"choose_code": lambda self, service, index, context: "97110"}, "failed in payerpolicy_choose_code: returned '97110', expected a CodeChoice"),
    ("choose_code raises", {"choose_code": lambda self, service, index, context: {}["x"]}, "raised KeyError in payerpolicy_choose_code"),
    ("unit_method returns garbage", {"unit_method": lambda self, context: "per_fortnight"}, "returned unit method 'per_fortnight'"),
    ("order_modifiers drops one", {"order_modifiers": lambda self, line, modifiers, context: ["XX"]}, "reordering may not add or drop any"),
    ("finding with a garbage severity", {"adjust_lines": lambda self, lines, context: [Change(rule="H", source="test", finding=payerpolicy.Finding("X", "fatal", "m"))]}, "is not a Finding with a code, a severity and a message"),  # type: ignore[arg-type]
    ("order_lines returns garbage", {"order_lines": lambda self, lines, context: "01"}, "not a permutation of 0..1"),
]


@pytest.mark.parametrize(("hooks", "message"), [(h, m) for _, h, m in HOOKS], ids=[n for n, _, _ in HOOKS])
def test_a_failing_hook_is_plugin_failed_on_its_payer_only(
    hooks: dict[str, Any], message: str, policy_file: str, baseline: dict[str, Any]
) -> None:
    if "order_modifiers" in hooks:  # it is asked only about lines with two or more modifiers
        hooks = {**hooks, "modifiers": lambda self, lines, context: [Change(rule="H", source="test", line=0, add_modifiers=("GP", "KX"))]}
    engine = Engine(PluginHost([_payer_plugin(policy_file, **hooks)]))
    outcomes = engine.compare(payerpolicy.Encounter.from_mapping(VISIT))
    assert {pid: o.to_mapping() for pid, o in outcomes.items() if pid != "hostile"} == baseline
    failed = [f for f in outcomes["hostile"].findings if f.code == "PLUGIN_FAILED"]
    assert failed and all(f.plugin == "Hostile" and f.severity == "error" for f in failed)
    assert message in failed[0].message, failed[0].message
    assert "\n" not in failed[0].message


def test_a_generator_that_raises_applies_none_of_its_changes(policy_file: str) -> None:
    engine = Engine(PluginHost([_payer_plugin(policy_file, adjust_lines=_raise_after_first)]))
    outcome = engine.check(payerpolicy.Encounter.from_mapping(VISIT), "hostile")
    assert not [t for t in outcome.trace if t.plugin == "Hostile"]


def test_a_hook_raising_encounter_error_is_a_plugin_hook_error_in_strict_mode(policy_file: str) -> None:
    engine = Engine(PluginHost([_payer_plugin(policy_file, screen_lines=_encounter_error)], strict=True))
    with pytest.raises(payerpolicy.PluginHookError) as info:
        engine.check(payerpolicy.Encounter.from_mapping(VISIT), "hostile")
    assert info.value.plugin == "Hostile"


# ---- batch and the HTTP service with hostile plugins


def _hostile_host(policy_file: str) -> PluginHost:
    plugins = [cls() for cls, _ in REGISTRATION]
    plugins.append(_payer_plugin(policy_file, adjust_lines=_raise_after_first, screen_lines=_encounter_error))
    return PluginHost(plugins)


def test_batch_with_hostile_plugins_answers_for_the_builtin_payers(policy_file: str, tmp_path: Path, baseline: dict[str, Any]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(VISIT) + "\n", "utf-8")
    out = tmp_path / "out.jsonl"
    result = run_batch(src, out, [*BUILTIN, "hostile"], workers=1, engine=Engine(_hostile_host(policy_file)))
    assert result.counts.reconciled and result.counts.payer_errors == 0
    rows = {r["payer"]: r["outcome"] for r in read_rows(out)}
    for pid in BUILTIN:
        expected = dict(baseline[pid])
        del expected["trace"]
        assert rows[pid] == expected
    assert "PLUGIN_FAILED" in {f["code"] for f in rows["hostile"]["findings"]}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_http_service_starts_and_answers_with_hostile_plugins(policy_file: str, baseline: dict[str, Any]) -> None:
    pytest.importorskip("starlette", reason="needs payerpolicy[server]")
    httpx = pytest.importorskip("httpx", reason="needs payerpolicy[server-test]")
    from payerpolicy.service.server import create_app
    from starlette.testclient import TestClient

    app = create_app(Engine(_hostile_host(policy_file)))
    with TestClient(app) as client:
        response = client.post("/v1/compare", json={"encounter": VISIT, "payers": BUILTIN})
        assert response.status_code == 200
        body = response.json()
        assert body["payers"] == BUILTIN
        assert [o["lines"] for o in body["outcomes"]] == [baseline[p]["lines"] for p in BUILTIN]
        assert [p["id"] for p in client.get("/v1/payers").json()["payers"]] == ["aetna", "bcbsnc", "ca_wc", "commercial", "hostile", "medicare"]
    del httpx


# ---- a hook that never ends


def _forever(self: Any, lines: Any, context: Any) -> list[Change]:
    while True:
        pass


def test_a_hook_over_the_time_limit_is_stopped_with_plugin_failed(policy_file: str, baseline: dict[str, Any]) -> None:
    engine = Engine(PluginHost([_payer_plugin(policy_file, adjust_lines=_forever)]), hook_timeout=0.2)
    outcomes = engine.compare(payerpolicy.Encounter.from_mapping(VISIT))
    [failed] = [f for f in outcomes["hostile"].findings if f.code == "PLUGIN_FAILED"]
    assert failed.message.startswith(
        "plugin Hostile raised PluginTimeout in payerpolicy_adjust_lines: took longer than the limit of 0.2 s ($PAYERPOLICY_HOOK_TIMEOUT)"
    )
    assert {pid: o.to_mapping() for pid, o in outcomes.items() if pid != "hostile"} == baseline


def test_the_hook_time_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYERPOLICY_HOOK_TIMEOUT", "1.5")
    assert Engine().hook_timeout == 1.5
    monkeypatch.setenv("PAYERPOLICY_HOOK_TIMEOUT", "soon")
    with pytest.raises(payerpolicy.PayerPolicyError, match=r"\$PAYERPOLICY_HOOK_TIMEOUT: expected a number of seconds"):
        Engine()
