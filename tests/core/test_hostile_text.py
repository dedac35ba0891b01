"""Hostile text: lone surrogates, bytes that are not UTF-8, a key given twice, control characters
and huge values are bad input naming the field (exit 2, HTTP 422), in one short line."""

from __future__ import annotations

import copy
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from payerpolicy import Encounter, EncounterError
from payerpolicy.batch import read_rows, run_batch
from payerpolicy.cli import main

PREFIX = "payerpolicy: error: "
GOOD: dict[str, Any] = {
    "id": "text-1",
    "date_of_service": "2025-03-12",
    "provider": {"type": "PT"},
    "diagnoses": ["M54.50"],
    "services": [{"code": "97110", "minutes": 20, "regions": ["lumbar"], "diagnosis_pointers": [1]}],
}
GOOD_TEXT = json.dumps(GOOD)
# The same encounter with its id a lone surrogate escape: valid JSON, not valid Unicode text.
SURROGATE_ID = GOOD_TEXT.replace('"text-1"', '"\\ud800"')
# "minutes" given twice: the last value would silently win and change the units billed.
TWICE = GOOD_TEXT.replace('"minutes": 20', '"minutes": 15, "minutes": 45')


def bad_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, err
    assert "Traceback" not in err and out == ""
    (line,) = err.splitlines()
    assert line.startswith(PREFIX)
    return line


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, "utf-8")
    return str(path)


# ---- the CLI


def test_a_lone_surrogate_id_is_bad_input_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "s.json", SURROGATE_ID)
    assert bad_line(capsys, ["check", path, "--payer", "commercial"]) == (
        f'{PREFIX}{path}: id: not valid Unicode text: a lone surrogate U+D800 at character 1 of "\\ud800"'
    )


@pytest.mark.parametrize("command", [["check", "--payer", "commercial"], ["compare"], ["explain", "--payer", "medicare"]])
def test_every_command_refuses_a_lone_surrogate(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    text = GOOD_TEXT.replace('"lumbar"', '"lum\\udfffbar"')
    path = write(tmp_path, "s.json", text)
    line = bad_line(capsys, [command[0], path, *command[1:]])
    assert line.startswith(f"{PREFIX}{path}: services[0].regions[0]: not valid Unicode text: a lone surrogate U+DFFF at character 4")


def test_a_key_given_twice_is_bad_input_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "twice.json", TWICE)
    assert bad_line(capsys, ["check", path, "--payer", "commercial"]) == (
        f"{PREFIX}{path}: services[0].minutes: this key is given twice in one object;"
        " give each field once (which value was meant is unknown)"
    )


def test_a_top_level_key_given_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "twice.json", GOOD_TEXT.replace('"id": "text-1"', '"id": "a", "id": "b"'))
    assert bad_line(capsys, ["compare", path]).startswith(f"{PREFIX}{path}: id: this key is given twice in one object")


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "latin1.json", GOOD_TEXT.replace("text-1", "caf\xe9").encode("latin-1"))
    assert bad_line(capsys, ["check", path, "--payer", "commercial"]) == (
        f"{PREFIX}{path}: not UTF-8 text: byte 0xe9 at line 1 (byte 12) cannot be decoded; save the text as UTF-8"
    )


class _BytesStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)

    def read(self) -> str:  # pragma: no cover - the reader must use the bytes
        raise AssertionError("standard input must be read as bytes")


def test_stdin_that_is_not_utf8_is_bad_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _BytesStdin(b'{"id": "\xff"}'))
    assert bad_line(capsys, ["check", "-", "--payer", "commercial"]) == (
        f"{PREFIX}<stdin>: not UTF-8 text: byte 0xff at line 1 (byte 9) cannot be decoded; save the text as UTF-8"
    )


def test_stdin_as_bytes_still_reads_a_good_encounter(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _BytesStdin(GOOD_TEXT.encode()))
    assert main(["check", "-", "--payer", "commercial", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["encounter"] == "text-1"


def test_a_toml_file_with_a_key_given_twice_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "t.toml", 'date_of_service = 2025-03-12\nid = "a"\nid = "b"\n[provider]\ntype = "PT"\n')
    assert bad_line(capsys, ["check", path, "--payer", "commercial"]).startswith(f"{PREFIX}{path}: invalid TOML")


def test_control_characters_in_a_value_stay_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(GOOD)
    data["provider"]["type"] = "P\nT\r\x1b[31m\u2028X"
    path = write(tmp_path, "c.json", json.dumps(data))
    line = bad_line(capsys, ["check", path, "--payer", "commercial"])
    assert line.startswith(f'{PREFIX}{path}: provider.type: unknown provider type "P\\nT\\r\\u001b[31m\\u2028X"')
    assert "\x1b" not in line and "\u2028" not in line


def test_an_unknown_key_with_a_newline_stays_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {**GOOD, "evil\nkey\x00": 1}
    path = write(tmp_path, "k.json", json.dumps(data))
    line = bad_line(capsys, ["check", path, "--payer", "commercial"])
    assert line.startswith(f"{PREFIX}{path}: evil\\x0akey\\x00: unknown field; expected one of: ")


def test_a_huge_value_is_echoed_as_a_short_excerpt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(GOOD)
    data["services"][0]["regions"] = ["x" * 400_000]
    path = write(tmp_path, "big.json", json.dumps(data))
    line = bad_line(capsys, ["check", path, "--payer", "commercial"])
    assert f'"{"x" * 40}…" (400000 characters)' in line
    assert len(line) < 400


def test_an_unknown_key_of_a_megabyte_is_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {**GOOD, "k" * 1_000_000: 1}
    path = write(tmp_path, "bigkey.json", json.dumps(data))
    assert len(bad_line(capsys, ["check", path, "--payer", "commercial"])) < 900


def test_from_mapping_refuses_a_lone_surrogate_from_python() -> None:
    data = {**GOOD, "diagnoses": ["M54.\udc80"]}
    with pytest.raises(EncounterError) as info:
        Encounter.from_mapping(data)
    assert info.value.field == "diagnoses[0]"
    assert info.value.message.startswith("not valid Unicode text: a lone surrogate U+DC80 at character 5")


# ---- batch: the record with a lone surrogate is an error row, the rest goes on


def test_batch_a_lone_surrogate_record_is_an_error_row_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        "\n".join([GOOD_TEXT, SURROGATE_ID, TWICE, GOOD_TEXT.replace("text-1", "text-4")]).encode() + b"\n\xff\xfe\n"
    )
    out = tmp_path / "out.jsonl"
    result = run_batch(src, out, ["commercial"], workers=1)
    assert (result.counts.read, result.counts.valid, result.counts.invalid) == (5, 2, 3)
    rows = list(read_rows(out))
    errors = [(r["record"], r["source"], r["encounter"], r["error"]["field"]) for r in rows if r["error"]]
    assert errors == [(1, "in.jsonl:2", None, "id"), (2, "in.jsonl:3", None, "services[0].minutes"), (4, "in.jsonl:5", None, "")]
    assert rows[-1]["error"]["text"] == "in.jsonl:5: not UTF-8 text: byte 0xff at line 1 (byte 1) cannot be decoded; save the text as UTF-8"
    assert [r["encounter"] for r in rows if r["outcome"]] == ["text-1", "text-4"]
    out.read_bytes().decode("utf-8")  # the output is valid UTF-8 throughout


def test_batch_resume_of_a_run_with_a_surrogate_record_finishes(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([GOOD_TEXT, SURROGATE_ID, GOOD_TEXT]) + "\n", "utf-8")
    out = tmp_path / "out.jsonl"
    calls = 0

    def stop(_: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, ["commercial"], workers=1, chunk_size=1, on_chunk=stop)
    result = run_batch(src, out, ["commercial"], workers=1, chunk_size=1, resume=True)
    assert (result.counts.read, result.counts.invalid) == (3, 1)


def test_an_x12_envelope_with_a_lone_surrogate_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    visit = write(tmp_path, "v.json", GOOD_TEXT)
    envelope = write(tmp_path, "env.json", '{"submitter": {"name": "A\\ud800B"}}')
    line = bad_line(capsys, ["check", visit, "--payer", "commercial", "--format", "x12", "--x12", "interchange", "--x12-envelope", envelope])
    assert line == f"{PREFIX}{envelope}: submitter.name: not valid Unicode text: a lone surrogate U+D800 at character 2 of \"A\\ud800B\""
