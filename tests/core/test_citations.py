"""Every source and message a user sees cites a public document, never an internal label (issue 14, item 12).

The project's domain reference labels its sources "seed 003", its sections "rules.md §8" and its
disagreements "DISPUTED D6"; none of that means anything to a biller. Shipped policy data, plugins,
core code, README and docs must name the public document instead (author or publisher, title, year,
section or URL), and so must every finding, trace entry and ``explain`` text the engine produces.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from payerpolicy import Encounter, Engine
from payerpolicy.kit.testing import load_cases
from payerpolicy.views.render import render_explain

ROOT = Path(__file__).resolve().parents[2]

#: Labels that are internal wherever they appear.
INTERNAL = re.compile(
    r"\bseeds? ?0\d\d\b"  # "Seed 003", "seeds 000, 001"
    r"|\b\d{3}_[0-9a-f]{16}\.txt\b"  # a seed's file name
    r"|(?-i:\bDISPUTED\b ?D?\d*)"  # "DISPUTED D6" (the English word "disputed" is fine)
    r"|(?-i:\bCONTRADICTED\b)"
    r"|scenarios\.md"
    r"|rules\.md ?(?:§|section|D\d|[A-Z]{2,5}-\d)",  # "rules.md §8.1", "rules.md D5", "rules.md CAWC-03"
    re.IGNORECASE,
)
#: In shipped code and data even a bare mention of the reference file is internal.
SHIPPED = re.compile(INTERNAL.pattern + r"|rules\.md", re.IGNORECASE)


def _files() -> list[tuple[Path, re.Pattern[str]]]:
    shipped = [
        *(ROOT / "policies").rglob("*.toml"),
        *(ROOT / "policies" / "ncci").glob("*.tsv"),
        *(ROOT / "plugins").glob("*.py"),
        *(ROOT / "core").rglob("*.py"),
    ]
    documents = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    return [(p, SHIPPED) for p in shipped] + [(p, INTERNAL) for p in documents]


FILES = _files()


def _hits(text: str, pattern: re.Pattern[str]) -> list[str]:
    hits = []
    for n, line in enumerate(text.splitlines(), start=1):
        for m in pattern.finditer(line):
            # a finding code (upper-case identifier such as SEED_RULE_DISPUTED) is not a citation
            if m.group(0).upper() == "DISPUTED" and re.search(r"[A-Z_]DISPUTED\b", line[: m.end()]):
                continue
            hits.append(f"{n}: {m.group(0)!r} in {line.strip()[:100]}")
    return hits


def test_there_are_files_to_check() -> None:
    names = {p.name for p, _ in FILES}
    assert {"core.toml", "medicare.toml", "library.py", "medicare.py", "README.md", "policy-format.md"} <= names


@pytest.mark.parametrize(("path", "pattern"), FILES, ids=[str(p.relative_to(ROOT)) for p, _ in FILES])
def test_no_internal_label_in_shipped_text(path: Path, pattern: re.Pattern[str]) -> None:
    hits = _hits(path.read_text("utf-8"), pattern)
    assert not hits, f"{path.relative_to(ROOT)} cites internal labels:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "text",
    ["Seed 003 (HNS)", "seeds 000, 001", "(DISPUTED D6)", "rules.md §8.1", "see rules.md D5", "rules.md CAWC-03",
     "003_fb2381d74abe4897.txt", "scenarios.md payer table"],
)
def test_the_check_catches_each_kind_of_label(text: str) -> None:
    assert _hits(text, INTERNAL)


def test_a_finding_code_and_a_docs_link_are_not_labels() -> None:
    assert not _hits('finding = "SEED_RULE_DISPUTED"', SHIPPED)
    assert not _hits("see [docs/rules.md](rules.md#phases)", INTERNAL)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def test_every_source_and_message_of_every_case_is_public(engine: Engine) -> None:
    """Run every case file; no finding, trace entry or explain text carries an internal label."""
    cases = load_cases(ROOT / "tests" / "cases")
    assert len(cases) > 50
    bad = []
    for case in cases:
        encounter = Encounter.from_mapping(case.encounter, catalogue=engine.catalogue)
        outcome = engine.check(encounter, case.payer)
        texts = [f.source for f in outcome.findings] + [f.message for f in outcome.findings]
        texts += [t.source for t in outcome.trace] + [t.reason for t in outcome.trace]
        texts.append(render_explain(encounter, outcome))
        for text in texts:
            bad += [f"{case.id}: {h}" for h in _hits(text, SHIPPED)]
    assert not bad, "\n".join(bad[:20])


def test_every_rule_and_setting_of_every_payer_names_a_public_source(engine: Engine) -> None:
    bad = []
    payers = engine.payer_ids
    assert {"medicare", "bcbsnc", "aetna", "ca_wc", "commercial"} <= set(payers)
    for payer in payers:
        policy = engine.host.policy(payer)
        for rule in policy.rules:
            if not rule.source.strip() or _hits(rule.source + " " + rule.note + " " + str(rule.params), SHIPPED):
                bad.append(f"{payer} {rule.id}: {rule.source!r}")
        for name, basis in policy.settings.basis.items():
            if _hits(basis.source, SHIPPED):
                bad.append(f"{payer} settings.{name}: {basis.source!r}")
    assert not bad, "\n".join(bad)
