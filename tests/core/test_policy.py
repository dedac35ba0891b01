"""Policy files: every shipped one loads, round-trips, merges by ``extends`` and reports every
problem at once, each naming file, path, what was expected and what was found."""

from __future__ import annotations

import datetime as dt
import textwrap
from importlib import resources
from pathlib import Path

import payerpolicy
import pytest
from payerpolicy.cli import main
from payerpolicy.evaluation.policy import load_policy_text

PREFIX = "payerpolicy: error: "
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host() -> payerpolicy.PluginHost:
    return payerpolicy.PluginHost()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), "utf-8")
    return path


def shipped_policy_names() -> list[str]:
    files = resources.files("payerpolicy.policies")
    return sorted(f.name for f in files.iterdir() if f.name.endswith(".toml") and f.name not in ("codes.toml", "x12_payers.toml", "adjustments.toml"))


# ---------------------------------------------------------------------------------------------
# Shipped policies


def test_the_shipped_policies_are_found() -> None:
    assert {"core.toml", "commercial.toml"} <= set(shipped_policy_names())


@pytest.mark.parametrize("name", shipped_policy_names())
def test_every_shipped_policy_loads(host: payerpolicy.PluginHost, name: str) -> None:
    policy = host.load_policy(("payerpolicy.policies", name))
    assert policy.rules
    assert policy.abstract or policy.payer_id
    assert policy.chain[-1] == f"payerpolicy/policies/{name}"
    ids = [rule.id for rule in policy.rules]
    assert len(ids) == len(set(ids))
    for rule in policy.rules:
        assert rule.kind in host.kinds
        assert rule.source.strip()
        assert rule.confidence in ("H", "M", "L")
        assert rule.origin in policy.chain


def test_core_is_abstract_and_commercial_extends_it(host: payerpolicy.PluginHost) -> None:
    core = host.load_policy(("payerpolicy.policies", "core.toml"))
    assert core.abstract
    assert core.payer_id is None
    commercial = host.policy("commercial")
    assert commercial.payer_id == "commercial"
    assert commercial.chain == ("payerpolicy/policies/core.toml", "payerpolicy/policies/commercial.toml")
    assert commercial.settings.unit_method == "ama_per_code"
    assert commercial.rule("CORE-SAME-01").origin == "payerpolicy/policies/core.toml"
    assert commercial.rule("COM-04").origin == "payerpolicy/policies/commercial.toml"
    assert not commercial.rule("COM-04").enabled


def test_every_installed_payer_round_trips(host: payerpolicy.PluginHost) -> None:
    policies = host.policies()
    assert "commercial" in policies
    for payer_id, policy in policies.items():
        again = load_policy_text(policy.to_toml(), host.kinds, name=f"{payer_id}-roundtrip.toml")
        assert again == policy, payer_id
        # the converted values (code sets, tuples, defaults) are not part of ==; check them too
        for rule, rule_again in zip(policy.rules, again.rules, strict=True):
            assert dict(rule.values) == dict(rule_again.values), rule.id
        assert again.to_toml() == policy.to_toml()


def test_the_abstract_core_round_trips(host: payerpolicy.PluginHost) -> None:
    core = host.load_policy(("payerpolicy.policies", "core.toml"))
    assert load_policy_text(core.to_toml(), host.kinds) == core


# ---------------------------------------------------------------------------------------------
# Every problem at once

BROKEN = """
    schema_version = 1
    extends = "core"

    [payer]
    id = "Bad Payer"
    name = "Broken"
    policy_version = "1"

    [settings]
    unit_method = "ama_per_code"
    modifier_order = ["pricing", "bogus"]
    colour = "blue"

    [[rules]]
    id = "BAD-01"
    kind = "no_such_kind"
    source = "x"

    [[rules]]
    id = "BAD-02"
    kind = "per_visit_limit"
    max = "four"

    [[rules]]
    id = "BAD-03"
    kind = "per_visit_limit"
    source = "y"
    max = 4
    effective_from = "2025-01-01"

    [[rules]]
    id = "BAD-03"
    kind = "per_visit_limit"
    source = "z"
    max = 3
"""


@pytest.fixture
def broken(tmp_path: Path) -> str:
    return str(write(tmp_path / "broken.toml", BROKEN))


def problems_of(host: payerpolicy.PluginHost, source: str | Path) -> tuple[payerpolicy.PolicyProblem, ...]:
    with pytest.raises(payerpolicy.PolicyValidationError) as info:
        host.load_policy(source)
    return info.value.problems


def test_every_problem_is_reported_at_once(host: payerpolicy.PluginHost, broken: str) -> None:
    problems = problems_of(host, broken)
    assert {p.path for p in problems} == {
        "payer.id",
        "settings.colour",
        "settings.modifier_order[1]",
        "rules[0] (BAD-01).kind",
        "rules[1] (BAD-02).source",
        "rules[1] (BAD-02).max",
        "rules[2] (BAD-03).effective_from",
        "rules[3].id",
    }
    for p in problems:
        assert p.file == broken
        assert p.expected
        assert p.found
        assert str(p) == f"{broken}: {p.path}: expected {p.expected}, found {p.found}"
        assert "\n" not in str(p)


def test_the_exact_text_of_problems(host: payerpolicy.PluginHost, broken: str) -> None:
    texts = [str(p) for p in problems_of(host, broken)]
    kinds = len(host.kinds)
    for expected in (
        f"{broken}: payer.id: expected a lower-case payer id like \"medicare\", found 'Bad Payer'",
        f"{broken}: rules[0] (BAD-01).kind: expected a registered rule kind ({kinds} are installed: `payerpolicy plugins` lists them), found 'no_such_kind'",
        f"{broken}: rules[1] (BAD-02).source: expected a non-empty string naming the document behind the rule, "
        "found nothing (the key is missing)",
        f"{broken}: rules[1] (BAD-02).max: expected a whole number >= 0, found 'four'",
        f"{broken}: rules[2] (BAD-03).effective_from: expected a TOML date like 2021-07-28, found '2025-01-01'",
    ):
        assert expected in texts


def test_unknown_setting_and_duplicate_id_are_reported(host: payerpolicy.PluginHost, broken: str) -> None:
    by_path = {p.path: p for p in problems_of(host, broken)}
    colour = by_path["settings.colour"]
    assert colour.expected == (
        "one of the keys unit_method, distinct_modifier_region, distinct_modifier_time, modifier_order, "
        "max_modifiers_per_line, tie_break, basis"
    )
    assert "colour" in colour.found
    duplicate = by_path["rules[3].id"]
    assert duplicate.expected == "a rule id used once per file"
    assert "BAD-03" in duplicate.found


def test_descriptive_found_texts_are_not_quoted_twice(host: payerpolicy.PluginHost, broken: str) -> None:
    texts = [str(p) for p in problems_of(host, broken)]
    assert (
        f"{broken}: settings.colour: expected one of the keys unit_method, distinct_modifier_region, "
        "distinct_modifier_time, modifier_order, max_modifiers_per_line, tie_break, basis, found unknown key 'colour'"
    ) in texts
    assert f"{broken}: rules[3].id: expected a rule id used once per file, found 'BAD-03' again" in texts


def test_syntax_error_found_text_is_not_quoted(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    path = write(tmp_path / "syntax.toml", "schema_version = 1\n[payer\n")
    [problem] = problems_of(host, path)
    assert str(problem) == (
        f"{path}: (file): expected valid TOML, found a syntax error: "
        "Expected ']' at the end of a table declaration (at line 2, column 7)"
    )


def test_a_wrong_typed_required_param_is_one_problem(host: payerpolicy.PluginHost, broken: str) -> None:
    max_problems = [str(p) for p in problems_of(host, broken) if p.path == "rules[1] (BAD-02).max"]
    assert max_problems == [f"{broken}: rules[1] (BAD-02).max: expected a whole number >= 0, found 'four'"]


def test_modifier_order_names_the_unknown_category(host: payerpolicy.PluginHost, broken: str) -> None:
    [problem] = [p for p in problems_of(host, broken) if p.path.startswith("settings.modifier_order")]
    assert "bogus" in str(problem)


def test_problems_in_a_parent_name_the_parent_file(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    parent = write(
        tmp_path / "parent.toml",
        """
        schema_version = 1
        extends = "core"
        abstract = true
        [[rules]]
        id = "PAR-01"
        kind = "per_visit_limit"
        source = "parent"
        max = 4
        count_basis = "visits"
        """,
    )
    child = write(
        tmp_path / "child.toml",
        """
        schema_version = 1
        extends = "parent.toml"
        [payer]
        id = "child"
        name = "Child"
        policy_version = "1"
        [settings]
        tie_break = "coin_toss"
        """,
    )
    assert [str(p) for p in problems_of(host, child)] == [
        f"{child}: settings.tie_break: expected one of entry_order, found 'coin_toss'",
        f"{parent}: rules[0] (PAR-01).count_basis: expected one of codes, units, found 'visits'",
    ]


def test_toml_syntax_error_is_a_problem(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    path = write(tmp_path / "syntax.toml", "schema_version = 1\n[payer\n")
    [problem] = problems_of(host, path)
    assert (problem.file, problem.path, problem.expected) == (str(path), "(file)", "valid TOML")
    assert "a syntax error: " in problem.found
    assert "(at line 2, column 7)" in problem.found


def test_missing_file_is_a_problem(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    [problem] = problems_of(host, path)
    assert (problem.file, problem.path, problem.expected) == (str(path), "(file)", "a readable policy file")
    assert "FileNotFoundError" in problem.found


def test_pathological_toml_is_a_problem(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    path = write(tmp_path / "huge.toml", "schema_version = " + "9" * 5000 + "\n")
    [problem] = problems_of(host, path)
    assert problem.path == "(file)"


# ---------------------------------------------------------------------------------------------
# `payerpolicy policy check`


def test_policy_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REPO / "policies" / "commercial.toml")
    assert main(["policy", "check", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"{path}: ok (payer commercial, ")
    assert out.rstrip().endswith("extends: payerpolicy/policies/core.toml)")


def test_policy_check_lists_every_problem(
    host: payerpolicy.PluginHost, broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = problems_of(host, broken)
    assert main(["policy", "check", broken]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.splitlines() == [f"{PREFIX}{p}" for p in problems]
    assert len(err.splitlines()) >= 8


# ---------------------------------------------------------------------------------------------
# extends: relative paths, merge by id, origins, cycles


@pytest.fixture
def family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    # the child extends a file in another directory: one declared in $PAYERPOLICY_POLICY_DIRS
    monkeypatch.setenv("PAYERPOLICY_POLICY_DIRS", str(tmp_path / "shared"))
    parent = write(
        tmp_path / "shared" / "parent.toml",
        """
        schema_version = 1
        extends = "core"
        abstract = true

        [[rules]]
        id = "PAR-01"
        kind = "per_visit_limit"
        source = "parent source 1"
        confidence = "H"
        max = 4
        count_basis = "units"

        [[rules]]
        id = "PAR-02"
        kind = "per_visit_limit"
        source = "parent source 2"
        max = 6

        [[rules]]
        id = "PAR-03"
        kind = "per_visit_limit"
        source = "parent source 3"
        max = 8
        effective_from = 2024-01-01
        """,
    )
    child = write(
        tmp_path / "payers" / "child.toml",
        """
        schema_version = 1
        extends = "../shared/parent.toml"

        [payer]
        id = "child"
        name = "Child Health"
        policy_version = "2025.1"

        [settings]
        unit_method = "ama_per_code"

        [[rules]]
        id = "PAR-01"
        max = 2

        [[rules]]
        id = "PAR-02"
        enabled = false

        [[rules]]
        id = "CORE-UTIL-02"
        enabled = false

        [[rules]]
        id = "CHILD-01"
        kind = "per_visit_limit"
        source = "child source"
        max = 10
        """,
    )
    return parent, child


def test_extends_with_a_relative_path_merges_rules_by_id(
    host: payerpolicy.PluginHost, family: tuple[Path, Path]
) -> None:
    parent, child = family
    policy = host.load_policy(child)
    assert policy.payer_id == "child"
    assert [Path(f).resolve() for f in policy.chain[1:]] == [parent, child]
    assert policy.chain[0] == "payerpolicy/policies/core.toml"
    assert policy.settings.unit_method == "ama_per_code"  # child
    assert policy.settings.tie_break == "entry_order"  # core

    par1 = policy.rule("PAR-01")
    assert par1 is not None
    assert par1["max"] == 2  # the one parameter the child overrides
    assert par1["count_basis"] == "units"  # the rest come from the parent
    assert (par1.source, par1.confidence, par1.enabled) == ("parent source 1", "H", True)

    par2 = policy.rule("PAR-02")
    assert par2 is not None and not par2.enabled
    assert par2["max"] == 6
    assert not policy.rule("CORE-UTIL-02").enabled

    day = dt.date(2025, 3, 12)
    active = [r.id for r in policy.rules_of("per_visit_limit", day)]
    assert "PAR-02" not in active
    assert {"PAR-01", "PAR-03", "CHILD-01"} <= set(active)
    assert "CORE-UTIL-02" not in [r.id for r in policy.rules_of("initial_phase_count", day)]

    # one entry per id, in first-appearance order: core's, then the parent's, then the child's new ones
    ids = [r.id for r in policy.rules]
    assert len(ids) == len(set(ids))
    assert (
        ids.index("CORE-CLAIM-01")
        < ids.index("PAR-01")
        < ids.index("PAR-02")
        < ids.index("PAR-03")
        < ids.index("CHILD-01")
    )
    assert ids[-1] == "CHILD-01"


def test_each_rule_names_the_file_it_came_from(host: payerpolicy.PluginHost, family: tuple[Path, Path]) -> None:
    parent, child = family
    policy = host.load_policy(child)
    origin = {r.id: r.origin for r in policy.rules}
    assert origin["CORE-INT-01"] == "payerpolicy/policies/core.toml"
    assert Path(origin["PAR-03"]).resolve() == parent
    # the last file that changed a rule is its origin
    for rid in ("PAR-01", "PAR-02", "CORE-UTIL-02", "CHILD-01"):
        assert origin[rid] == str(child), rid


def test_a_merged_policy_round_trips(host: payerpolicy.PluginHost, family: tuple[Path, Path]) -> None:
    _, child = family
    policy = host.load_policy(child)
    assert load_policy_text(policy.to_toml(), host.kinds) == policy


def test_extends_cycle_is_reported(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", 'schema_version = 1\nextends = "b.toml"\nabstract = true\n')
    b = write(tmp_path / "b.toml", 'schema_version = 1\nextends = "a.toml"\nabstract = true\n')
    [problem] = problems_of(host, a)
    assert (problem.file, problem.path, problem.expected) == (str(a), "extends", "a chain of policies without a cycle")
    assert f"{a} -> {b} -> {a}" in problem.found


def test_a_policy_extending_itself_is_a_cycle(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", 'schema_version = 1\nextends = "a.toml"\nabstract = true\n')
    [problem] = problems_of(host, a)
    assert (problem.path, problem.expected) == ("extends", "a chain of policies without a cycle")


def test_a_cycle_through_a_differently_spelled_path_is_a_cycle(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    c = write(tmp_path / "sub" / "c.toml", 'schema_version = 1\nextends = "../sub/c.toml"\nabstract = true\n')
    [problem] = problems_of(host, c)
    assert (problem.path, problem.expected) == ("extends", "a chain of policies without a cycle")


def test_unknown_extends_name(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    path = write(tmp_path / "orphan.toml", 'schema_version = 1\nextends = "nosuch"\nabstract = true\n')
    assert [str(p) for p in problems_of(host, path)] == [
        f"{path}: extends: expected the name of a shipped policy or installed payer, or a path, found 'nosuch'"
    ]


def test_a_misspelled_rule_kind_is_answered_with_the_close_ones(host: payerpolicy.PluginHost, tmp_path: Path) -> None:
    file = write(
        tmp_path / "typo.toml",
        """
        schema_version = 1
        extends = "commercial"

        [payer]
        id = "typo"
        name = "Typo"
        policy_version = "1"

        [[rules]]
        id = "TYPO-01"
        kind = "per_vist_limit"
        source = "a source"
        max = 4
        """,
    )
    (problem,) = [p for p in problems_of(host, str(file)) if p.path.endswith(".kind")]
    assert "did you mean per_visit_limit?" in problem.expected
