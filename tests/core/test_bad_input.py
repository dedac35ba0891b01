"""The CLI's bad-input contract.

Every bad input exits with status 2 and prints exactly one line on standard error, starting with
``payerpolicy: error: ``, that names the file, the field path and what was expected — and never a
traceback. Most cases run ``payerpolicy.cli.main`` in-process; one runs the installed command.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import vocab
from payerpolicy.cli import main

PREFIX = "payerpolicy: error: "

GOOD: dict[str, Any] = {
    "id": "bad-input",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "diagnoses": ["M54.50"],
    "services": [{"code": "97110", "minutes": 20, "regions": ["lumbar"], "diagnosis_pointers": [1]}],
}

KNOWN_PROVIDERS = ", ".join(vocab.PROVIDER_TYPES)
KNOWN_REGIONS = ", ".join(vocab.REGIONS)


def edit(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def write(tmp_path: Path, name: str, content: str | dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def run_bad(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI; check the contract and return the one error line."""
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX)
    assert out == ""
    return lines[0]


def check(capsys: pytest.CaptureFixture[str], path: str) -> str:
    return run_bad(capsys, ["check", path, "--payer", "commercial"])


def test_the_good_encounter_is_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The cases below each break one thing in GOOD, so GOOD itself must pass.
    assert main(["check", write(tmp_path, "good.json", GOOD), "--payer", "commercial"]) == 0
    assert "97110" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Files: syntax, existence, extension


def test_malformed_json_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = '{"date_of_service": "2025-03-12",\n  "provider": {"type": "PT"},\n  "services": [}\n'
    path = write(tmp_path, "broken.json", text)
    assert check(capsys, path) == f"{PREFIX}{path}: invalid JSON at line 3 column 16: Expecting value"


def test_malformed_toml_names_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "broken.toml", 'date_of_service = 2025-03-12\n[provider\ntype = "PT"\n')
    assert check(capsys, path) == (
        f"{PREFIX}{path}: invalid TOML: Expected ']' at the end of a table declaration (at line 2, column 10)"
    )


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "nowhere.json")
    assert check(capsys, path) == f"{PREFIX}{path}: no such file"


def test_wrong_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "visit.yaml", "date_of_service: 2025-03-12\n")
    assert check(capsys, path) == f"{PREFIX}{path}: expected a .json or .toml encounter file, found 'visit.yaml'"


def test_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "array.json", "[1, 2]")
    assert check(capsys, path) == f"{PREFIX}{path}: encounter: expected an object, found an array"


def test_unreadable_encoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b"\xff\xfe{}")
    line = check(capsys, str(path))
    assert line == f"{PREFIX}{path}: not UTF-8 text: byte 0xff at line 1 (byte 1) cannot be decoded; save the text as UTF-8"


def test_deeply_nested_json_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000)
    line = check(capsys, path)
    assert line.startswith(f"{PREFIX}{path}: invalid JSON")


def test_huge_json_number_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "huge.json", '{"date_of_service": "2025-03-12", "x": ' + "9" * 5000 + "}")
    line = check(capsys, path)
    assert line.startswith(f"{PREFIX}{path}: invalid JSON")


def test_pathological_toml_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "deep.toml", "a = " + "[" * 100_000)
    line = check(capsys, path)
    assert line.startswith(f"{PREFIX}{path}: invalid TOML")


# ---------------------------------------------------------------------------------------------
# Fields: the whole line is asserted wherever the text is stable and short


@pytest.mark.parametrize(
    ("case", "data", "message"),
    [
        pytest.param(
            "no_dos",
            edit(lambda d: d.pop("date_of_service")),
            "date_of_service: required field is missing (an ISO date, e.g. 2025-03-12)",
            id="missing-date_of_service",
        ),
        pytest.param(
            "bad_dos",
            edit(lambda d: d.update(date_of_service="2025-13-45")),
            'date_of_service: expected an ISO date like 2025-03-12, found "2025-13-45"',
            id="date-not-a-date",
        ),
        pytest.param(
            "no_provider",
            edit(lambda d: d.pop("provider")),
            f"provider.type: required field is missing; known: {KNOWN_PROVIDERS}",
            id="missing-provider",
        ),
        pytest.param(
            "bad_ptype",
            edit(lambda d: d.update(provider={"type": "XX"})),
            f"provider.type: unknown provider type \"XX\"; known: {KNOWN_PROVIDERS}",
            id="unknown-provider-type",
        ),
        pytest.param(
            "minutes_str",
            edit(lambda d: d["services"][0].update(minutes="twenty")),
            'services[0].minutes: expected a whole number from 0 to 480, found "twenty"',
            id="minutes-wrong-type",
        ),
        pytest.param(
            "minutes_neg",
            edit(lambda d: d["services"][0].update(minutes=-5)),
            "services[0].minutes: expected a whole number from 0 to 480, found -5",
            id="minutes-negative",
        ),
        pytest.param(
            "minutes_big",
            edit(lambda d: d["services"][0].update(minutes=9999)),
            "services[0].minutes: expected a whole number from 0 to 480, found 9999",
            id="minutes-absurd",
        ),
        pytest.param(
            "minutes_float",
            edit(lambda d: d["services"][0].update(minutes=20.5)),
            "services[0].minutes: expected a whole number from 0 to 480, found 20.5",
            id="minutes-fraction",
        ),
        pytest.param(
            "region",
            edit(lambda d: d["services"][0].update(regions=["lumbar", "neck"])),
            f'services[0].regions[1]: unknown region "neck"; known: {KNOWN_REGIONS}',
            id="unknown-region",
        ),
        pytest.param(
            "code_malformed",
            edit(lambda d: d["services"][0].update(code="ABC")),
            "services[0].code: expected a 5-character CPT/HCPCS code like \"97140\", found 'ABC'",
            id="malformed-code",
        ),
        pytest.param(
            "neither",
            edit(lambda d: d["services"][0].pop("code")),
            'services[0]: expected "code" or "technique"; found neither',
            id="neither-code-nor-technique",
        ),
        pytest.param(
            "empty",
            edit(lambda d: d.pop("services")),
            'services: expected at least one entry in "services" or "procedures"',
            id="no-services-no-procedures",
        ),
        pytest.param(
            "typo",
            edit(lambda d: d.update(servics=d.pop("services"))),
            "servics: unknown field; expected one of: id, date_of_service, provider, care, diagnoses, services, "
            "procedures, documentation, patient, episode, charges",
            id="unknown-top-level-field",
        ),
        pytest.param(
            "pointer",
            edit(lambda d: d["services"][0].update(diagnosis_pointers=[1, 2])),
            "services[0].diagnosis_pointers[1]: points to diagnosis 2 but the encounter lists 1 diagnosis",
            id="pointer-beyond-diagnoses",
        ),
        pytest.param(
            "pointer0",
            edit(lambda d: d["services"][0].update(diagnosis_pointers=[0])),
            "services[0].diagnosis_pointers[0]: expected a whole number >= 1, found 0",
            id="pointer-zero",
        ),
        pytest.param(
            "end_before_start",
            edit(lambda d: d["services"][0].update(start="10:30", end="10:15")),
            "services[0].end: expected a time after start 10:30, found 10:15",
            id="end-before-start",
        ),
        pytest.param(
            "services_object",
            edit(lambda d: d.update(services={"code": "97110"})),
            "services: expected an array, found an object",
            id="services-not-an-array",
        ),
        pytest.param(
            "procedure_no_code",
            edit(lambda d: d.update(procedures=[{"regions": ["cervical"]}])),
            "procedures[0].code: required field is missing",
            id="procedure-without-code",
        ),
        pytest.param(
            "diagnosis",
            edit(lambda d: d.update(diagnoses=["XYZ"])),
            'diagnoses[0]: expected an ICD-10-CM code like "M54.50", found "XYZ"',
            id="malformed-diagnosis",
        ),
    ],
)
def test_whole_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, data: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, f"{case}.json", data)
    assert check(capsys, path) == f"{PREFIX}{path}: {message}"


# Long messages (they list a whole vocabulary): the file, the field, the bad value and the known
# names are checked piece by piece.


def test_missing_provider_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "no_ptype.json", edit(lambda d: d.update(provider={"npi": "1234567893"})))
    line = check(capsys, path)
    assert line.startswith(f"{PREFIX}{path}: provider.type: required field is missing")


def test_missing_provider_type_lists_known_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "no_ptype.json", edit(lambda d: d.update(provider={})))
    assert check(capsys, path) == f"{PREFIX}{path}: provider.type: required field is missing; known: {KNOWN_PROVIDERS}"


@pytest.mark.parametrize(
    ("field", "value", "path", "what", "known"),
    [
        ("technique", "reiki", "services[0].technique", "unknown technique \"reiki\"", vocab.TECHNIQUES),
        ("intent", ["fun"], "services[0].intent[0]", 'unknown intent "fun"', vocab.INTENTS),
        (
            "necessity",
            ["pain"],
            "services[0].necessity[0]",
            'unknown necessity condition "pain"',
            vocab.NECESSITY_CONDITIONS,
        ),
    ],
)
def test_unknown_names_list_the_known_ones(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: Any,
    path: str,
    what: str,
    known: tuple[str, ...],
) -> None:
    data = edit(lambda d: d["services"][0].update({field: value}))
    if field == "technique":
        del data["services"][0]["code"]
    file = write(tmp_path, f"{field}.json", data)
    assert check(capsys, file) == f"{PREFIX}{file}: {path}: {what}; known: {', '.join(known)}"


def test_unknown_code_lists_known_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "code.json", edit(lambda d: d["services"][0].update(code="99999")))
    line = check(capsys, path)
    assert line.startswith(f"{PREFIX}{path}: services[0].code: unknown code '99999'; known codes: ")
    known = line.split("known codes: ", 1)[1].split(", ")
    assert {"97110", "97124", "97140", "98940", "G0283"} <= set(known)
    assert known == sorted(known)


def test_toml_encounter_errors_name_the_toml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = 'date_of_service = 2025-03-12\n[provider]\ntype = "PT"\n[[services]]\ncode = "97110"\nminutes = -1\n'
    path = write(tmp_path, "visit.toml", text)
    assert (
        check(capsys, path) == f"{PREFIX}{path}: services[0].minutes: expected a whole number from 0 to 480, found -1"
    )


@pytest.mark.parametrize("command", ["check", "explain", "compare"])
def test_every_command_reports_bad_input_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = write(tmp_path, "bad.json", edit(lambda d: d.update(date_of_service="2025-13-45")))
    argv = [command, path] + ([] if command == "compare" else ["--payer", "commercial"])
    assert (
        run_bad(capsys, argv)
        == f'{PREFIX}{path}: date_of_service: expected an ISO date like 2025-03-12, found "2025-13-45"'
    )


# ---------------------------------------------------------------------------------------------
# Payers and standard input


def test_unknown_payer_lists_installed_payers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "good.json", GOOD)
    line = run_bad(capsys, ["check", path, "--payer", "nosuch"])
    assert line.startswith(f"{PREFIX}unknown payer 'nosuch'; installed payers: ")
    assert "commercial" in line.split("installed payers: ", 1)[1].split(", ")


def test_unknown_payer_in_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "good.json", GOOD)
    line = run_bad(capsys, ["compare", path, "--payers", "commercial,nosuch"])
    assert line.startswith(f"{PREFIX}unknown payer 'nosuch'; installed payers: ")


def test_stdin_bad_field_names_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(edit(lambda d: d["services"][0].update(minutes=9999)))))
    assert run_bad(capsys, ["check", "-", "--payer", "commercial"]) == (
        f"{PREFIX}<stdin>: services[0].minutes: expected a whole number from 0 to 480, found 9999"
    )


def test_stdin_malformed_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"date_of_service": }'))
    assert run_bad(capsys, ["check", "-", "--payer", "commercial"]) == (
        f"{PREFIX}<stdin>: invalid JSON at line 1 column 21: Expecting value"
    )


def test_stdin_good_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(GOOD)))
    assert main(["check", "-", "--payer", "commercial", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out)["encounter"] == "bad-input"


# ---------------------------------------------------------------------------------------------
# The installed command: no traceback, one line, status 2


def _command() -> list[str]:
    found = shutil.which("payerpolicy") or shutil.which("payerpolicy", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "payerpolicy"]


def test_installed_command_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.json", edit(lambda d: d["services"][0].update(minutes="twenty")))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [*_command(), "check", bad, "--payer", "commercial"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        f'{PREFIX}{bad}: services[0].minutes: expected a whole number from 0 to 480, found "twenty"\n'
    )
