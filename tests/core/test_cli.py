"""The CLI's main jobs on the bundled examples: check, compare, explain, plugins, policy check."""

from __future__ import annotations

import json
from pathlib import Path

from payerpolicy.cli import main

ROOT = Path(__file__).resolve().parents[2]
DC = str(ROOT / "examples" / "dc_visit.json")
PT = str(ROOT / "examples" / "pt_visit.toml")


def test_check_json_is_a_v1_outcome(capsys):
    assert main(["check", DC, "--payer", "commercial", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome_version"] == 1
    assert out["encounter"] == "S42-dc-visit"
    assert out["payer"] == {"id": "commercial", "name": "Commercial (AMA/CPT conventions)", "policy_version": "2025.11"}
    assert [(ln["code"], ln["units"], ln["modifiers"], ln["status"]) for ln in out["lines"]] == [
        ("98940", 1, [], "billable"),
        ("97140", 1, ["59"], "billable"),
        ("97124", 1, ["59"], "billable"),
        ("97110", 1, [], "billable"),
    ]
    assert [(f["code"], f["severity"], f["rule"], f["line"]) for f in out["findings"]] == [
        ("MASSAGE_AUDIT_TRIGGER_VISITS", "warning", "CORE-UTIL-01", 2)
    ]
    assert all(f["source"] for f in out["findings"])
    assert {"rule", "plugin", "line", "field", "before", "after"} <= set(out["trace"][0])


def test_check_table_reads_toml(capsys):
    assert main(["check", PT, "--payer", "commercial"]) == 0
    out = capsys.readouterr().out
    assert "97112      2  -" in out and "97110      2  -" in out
    assert "billable units: 4" in out


def test_compare_marks_cells_that_differ(capsys):
    assert main(["compare", DC, "--payers", "commercial,commercial"]) == 0
    out = capsys.readouterr().out
    assert "97140 x1 [59]" in out
    assert "*" not in out.split("* differs")[0].replace("* differs", "")


def test_compare_json_lists_outcomes_per_payer(capsys):
    assert main(["compare", DC, "--payers", "commercial", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["payers"] == ["commercial"]
    assert out["outcomes"][0]["payer"]["id"] == "commercial"


def test_explain_names_rules_and_sources(capsys):
    assert main(["explain", DC, "--payer", "commercial"]) == 0
    out = capsys.readouterr().out
    assert "modifiers: [] -> [59]   CORE-SAME-01" in out
    assert "source: NCCI Policy Manual ch. XI" in out
    assert "units: 0 -> 1   CORE-TIME-30" in out


def test_plugins_lists_commercial(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "commercial" in out and "payerpolicy.plugins.commercial" in out
    assert "cmt_same_region" in out


def test_policy_check_ok(capsys):
    assert main(["policy", "check", str(ROOT / "policies" / "commercial.toml")]) == 0
    assert "ok (payer commercial" in capsys.readouterr().out


def test_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO((ROOT / "examples" / "dc_visit.json").read_text()))
    assert main(["check", "-", "--payer", "commercial", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["encounter"] == "S42-dc-visit"


def test_compare_defaults_to_every_payer_commercial_first(capsys):
    assert main(["compare", DC, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["payers"] == ["commercial", "aetna", "bcbsnc", "ca_wc", "medicare"]
    lines = {o["payer"]["id"]: [(ln["code"], ln["modifiers"], ln["status"]) for ln in o["lines"]] for o in out["outcomes"]}
    assert lines["medicare"][0] == ("98940", ["AT"], "billable")
    assert lines["bcbsnc"][2] == ("97124", [], "not_billable")


def test_policy_check_rules_names_the_file_each_rule_came_from(capsys):
    assert main(["policy", "check", str(ROOT / "policies" / "commercial.toml"), "--rules"]) == 0
    out = capsys.readouterr().out
    assert "extends: payerpolicy/policies/core.toml" in out
    assert any(line.split()[:2] == ["CORE-SAME-01", "cmt_same_region"] and "core.toml" in line for line in out.splitlines())
    assert any(line.split()[0] == "COM-06" and line.endswith("commercial.toml") for line in out.splitlines()[1:])
    assert any(line.split()[0] == "COM-04" and line.endswith("(disabled)") for line in out.splitlines()[1:])
