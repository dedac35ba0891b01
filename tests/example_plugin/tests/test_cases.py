"""Regional Blue's case files, run with payerpolicy.testing against the installed plugins."""

from pathlib import Path

import pytest
from payerpolicy import Engine, PluginHost
from payerpolicy.testing import assert_case, case_ids, load_cases

CASES = load_cases(Path(__file__).parent / "cases")


@pytest.fixture(scope="module")
def engine() -> Engine:
    # strict: a plugin that fails to load stops the run instead of being skipped.
    return Engine(PluginHost(strict=True))


def test_payer_and_kind_are_installed(engine: Engine) -> None:
    assert engine.host.payers["regional_blue"].plugin == "regional_blue"
    assert engine.host.kinds["regional_blue_visit_cap"].plugin == "regional_blue"
    policy = engine.host.policy("regional_blue")
    assert policy.settings.distinct_modifier_region == "XS"
    assert policy.settings.unit_method == "ama_per_code"


def test_blocking_the_plugin_removes_the_payer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYERPOLICY_BLOCK_PLUGINS", "regional_blue")
    host = PluginHost()
    assert "regional_blue" not in host.payers
    assert any(info.name == "regional_blue" and info.blocked for info in host.plugin_infos())


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_case(case, engine: Engine) -> None:
    assert_case(case, engine)
