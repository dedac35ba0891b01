"""`--format json` of `plugins`, `policy check` and `batch --summary`, and `policy check` on the code catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import payerpolicy
import pytest
from payerpolicy.batch import run_batch, summary_mapping
from payerpolicy.batch.synth import encounters
from payerpolicy.cli import main
from payerpolicy.evaluation.entrypoints import EntryPoint, entry_points
from payerpolicy.evaluation.vocab import catalogue_from_mapping, default_catalogue

ROOT = Path(__file__).resolve().parents[2]
CODES = str(ROOT / "policies" / "codes.toml")
MEDICARE = str(ROOT / "policies" / "medicare.toml")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], status: int = 0) -> dict:
    assert main(argv) == status
    out = capsys.readouterr().out
    return json.loads(out)


def test_plugins_json_lists_plugins_payers_and_kinds(capsys):
    data = _json(capsys, ["plugins", "--format", "json"])
    assert sorted(data) == ["payers", "plugins", "rule_kinds"]
    medicare = next(p for p in data["plugins"] if p["name"] == "medicare")
    assert medicare == {
        "name": "medicare",
        "version": payerpolicy.__version__,
        "module": "payerpolicy.plugins.medicare",
        "state": "loaded",
        "error": None,
        "payers": ["medicare"],
    }
    host = payerpolicy.PluginHost()
    assert [p["id"] for p in data["payers"]] == list(host.payers)
    payer = next(p for p in data["payers"] if p["id"] == "medicare")
    assert payer == {"id": "medicare", "name": host.payers["medicare"].name, "plugin": "medicare", "policy": "payerpolicy.policies/medicare.toml"}
    kinds = {k["name"]: k for k in data["rule_kinds"]}
    assert kinds["ncci_mue"]["phases"] == ["adjust"]
    assert kinds["ncci_mue"]["summary"] == host.kinds["ncci_mue"].summary
    assert [k["name"] for k in data["rule_kinds"]] == sorted(kinds)


def test_plugins_json_shows_blocked_and_failed_plugins(capsys, monkeypatch):
    real = entry_points("payerpolicy")
    broken = EntryPoint("broken_payer", "no_such_module_for_payerpolicy_tests", "payerpolicy", "broken", "1.0")
    monkeypatch.setattr("payerpolicy.evaluation.manager.entry_points", lambda group: [*real, broken])
    monkeypatch.setenv("PAYERPOLICY_BLOCK_PLUGINS", "aetna")
    data = _json(capsys, ["plugins", "--format", "json"])
    states = {p["name"]: (p["state"], p["error"]) for p in data["plugins"]}
    assert states["aetna"] == ("blocked", None)
    assert states["broken_payer"] == ("failed", "ModuleNotFoundError: No module named 'no_such_module_for_payerpolicy_tests'")
    assert states["medicare"] == ("loaded", None)
    assert "aetna" not in [p["id"] for p in data["payers"]]


def test_policy_check_json_for_a_policy(capsys):
    data = _json(capsys, ["policy", "check", MEDICARE, "--format", "json"])
    policy = payerpolicy.PluginHost().load_policy(MEDICARE)
    assert data["file"] == MEDICARE and data["ok"] is True and data["type"] == "policy"
    assert data["payer"] == "medicare" and data["abstract"] is False
    assert data["extends"] == list(policy.chain[:-1])
    assert [r["id"] for r in data["rules"]] == [r.id for r in policy.rules]
    first = policy.rules[0]
    assert data["rules"][0] == {
        "id": first.id,
        "kind": first.kind,
        "confidence": first.confidence,
        "enabled": first.enabled,
        "origin": first.origin,
    }


def test_policy_check_json_lists_every_problem_and_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('schema_version = 1\nextends = "commercial"\ncolour = "blue"\n[payer]\nid = "acme"\nname = "Acme"\n')
    data = _json(capsys, ["policy", "check", str(bad), "--format", "json"], status=2)
    assert data["file"] == str(bad) and data["ok"] is False
    assert data["problems"] == [
        {
            "file": str(bad),
            "path": "colour",
            "expected": "one of the top-level keys schema_version, extends, abstract, payer, settings, modifier_categories, rules",
            "found": "unknown key 'colour'",
            "message": f"{bad}: colour: expected one of the top-level keys schema_version, extends, abstract, payer, settings, modifier_categories, rules, found unknown key 'colour'",
        },
        {
            "file": str(bad),
            "path": "payer.policy_version",
            "expected": "a non-empty string",
            "found": "nothing (the key is missing)",
            "message": f"{bad}: payer.policy_version: expected a non-empty string, found nothing (the key is missing)",
        },
    ]


def test_policy_check_recognises_the_code_catalogue(capsys):
    assert main(["policy", "check", CODES]) == 0
    shipped = default_catalogue().codes.values()
    timed = sum(1 for c in shipped if c.timed)
    assert capsys.readouterr().out == f"{CODES}: ok (code catalogue, {len(shipped)} codes: {timed} timed, {len(shipped) - timed} untimed)\n"
    data = _json(capsys, ["policy", "check", CODES, "--format", "json"])
    assert data["ok"] is True and data["type"] == "code_catalogue"
    assert len(data["codes"]) == len(shipped)
    entry = next(c for c in data["codes"] if c["code"] == "97140")
    assert entry == {"code": "97140", "label": "Manual therapy", "category": "therapeutic_procedure", "timed": True, "valid_from": None, "valid_to": None}
    legacy = next(c for c in data["codes"] if c["code"] == "97250")
    assert legacy["valid_to"] == "1998-12-31" and legacy["category"] == "legacy"


def test_policy_check_lists_catalogue_codes_with_rules(capsys):
    assert main(["policy", "check", CODES, "--rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        f"  {c.code}  {c.category:<22} {'timed  ' if c.timed else 'untimed'}  {c.label}" for c in default_catalogue().codes.values()
    ]


BAD_CATALOGUE = """\
schema_version = 2
colour = "blue"

[codes."9714"]
label = ""
category = "massage"
timed = 1
valid_from = 2020-01-01
valid_to = 2019-01-01

[codes."97140"]
label = "Manual therapy"
category = "therapeutic_procedure"
timed = true
units = 1
"""


def test_policy_check_reports_every_catalogue_problem(capsys, tmp_path):
    bad = tmp_path / "codes.toml"
    bad.write_text(BAD_CATALOGUE)
    assert main(["policy", "check", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"payerpolicy: error: {bad}: {line}"
        for line in [
            "colour: expected one of the top-level keys schema_version, codes, found unknown key 'colour'",
            "schema_version: expected 1, found 2",
            'codes."9714": expected a HCPCS/CPT code: five characters, digits with at most one leading or trailing letter, found \'9714\'',
            'codes."9714".label: expected a short label in your own words (a non-empty string), found an empty string',
            'codes."9714".category: expected one of therapeutic_procedure, attended_modality, supervised_modality, group_therapy, '
            "unlisted_modality, evaluation, cmt_spinal, cmt_extraspinal, em, legacy, wound_care, found 'massage'",
            'codes."9714".timed: expected true (billed in 15-minute units from minutes) or false, found 1',
            'codes."9714".valid_to: expected a date on or after valid_from 2020-01-01, found 2019-01-01',
            'codes."97140": expected one of the keys label, category, timed, valid_from, valid_to, found unknown key \'units\'',
        ]
    ]


def test_a_catalogue_without_codes_is_a_problem():
    with pytest.raises(payerpolicy.PolicyValidationError) as info:
        catalogue_from_mapping({"schema_version": 1, "codes": {}}, file="c.toml")
    assert str(info.value) == (
        'c.toml: codes: expected a table of codes ([codes."97110"] label = ..., category = ..., timed = ...), found a table'
    )


def test_a_policy_file_is_still_checked_as_a_policy(capsys, tmp_path):
    # a [codes] table beside policy keys is a policy with an unknown key, not a catalogue
    bad = tmp_path / "p.toml"
    bad.write_text('schema_version = 1\nextends = "commercial"\n[payer]\nid = "acme"\nname = "Acme"\npolicy_version = "1"\n[codes."97140"]\nlabel = "x"\n')
    assert main(["policy", "check", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"payerpolicy: error: {bad}: codes: expected one of the top-level keys schema_version, extends")


def test_batch_summary_json(capsys, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in encounters(12, seed=5)) + "{broken\n")
    out = tmp_path / "out.jsonl"
    data = _json(capsys, ["batch", str(source), "--out", str(out), "--payers", "commercial,medicare", "--workers", "1", "--summary", "--format", "json"])
    expected = summary_mapping(run_batch(source, tmp_path / "again.jsonl", ["commercial", "medicare"], workers=1))
    assert data["out"] == str(out)
    assert data["counts"] == {
        "read": 13,
        "valid": 12,
        "invalid": 1,
        "payers": 2,
        "outcomes": 24,
        "payer_errors": 0,
        "error_rows": 1,
        "rows": 25,
        "reconciled": True,
    }
    assert list(data["payers"]) == ["commercial", "medicare"]
    assert data["payers"] == expected["payers"]
    assert data["payers"]["medicare"]["outcomes"] == 12
    assert data["resumed_from"] == 0 and isinstance(data["seconds"], float)


def test_batch_format_json_implies_summary(capsys, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in encounters(3, seed=5)))
    data = _json(capsys, ["batch", str(source), "--out", str(tmp_path / "o.jsonl"), "--payers", "commercial", "--workers", "1", "--format", "json"])
    assert data["counts"]["read"] == 3 and list(data["payers"]) == ["commercial"]
