"""`--help` shows examples for every command, the examples are valid commands, and shell completion works."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from payerpolicy import cli
from payerpolicy.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [path for path, _ in cli._subparsers(cli._parser())]


def _argv(line: str) -> list[str]:
    """The arguments of an example line: comment and redirection dropped, ``payerpolicy`` removed."""
    words = shlex.split(line.split("  #")[0])
    if ">" in words:
        words = words[: words.index(">")]
    assert words[0] == "payerpolicy"
    return words[1:]


def test_every_command_has_examples():
    assert set(COMMANDS) == set(cli._EXAMPLES)
    assert {"check", "compare", "batch", "policy check", "ncci import", "completion"} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p or "payerpolicy")
def test_help_ends_with_examples_of_the_command(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*path.split(), "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    epilog = out[out.index("\nexamples:\n") :]
    lines = [line.strip() for line in epilog.splitlines()[2:]]
    assert lines == list(cli._EXAMPLES[path])
    assert any(line.startswith(f"payerpolicy {path}".rstrip()) for line in lines)


EXAMPLE_LINES = sorted(
    {line for lines in cli._EXAMPLES.values() for line in lines if line.startswith("payerpolicy ") and "COMMAND" not in line}
)


@pytest.mark.parametrize("line", EXAMPLE_LINES)
def test_every_example_parses(line):
    cli._parser().parse_args(_argv(line))  # argparse exits (status 2) on an option that does not exist


RUNNABLE = [
    line
    for line in EXAMPLE_LINES
    if line.split()[1] in ("check", "compare", "explain", "plugins", "policy")
    and all((ROOT / w).exists() for w in _argv(line) if "/" in w and not w.startswith("-") and "=" not in w)
    and "my_payer" not in line
]


@pytest.mark.parametrize("line", RUNNABLE)
def test_every_example_that_reads_shipped_files_runs(line, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(_argv(line)) == 0
    assert capsys.readouterr().out


def test_the_runnable_examples_cover_the_main_commands():
    assert {line.split()[1] for line in RUNNABLE} == {"check", "compare", "explain", "plugins", "policy"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh", "fish"])
def test_completion_prints_a_script(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert "payerpolicy" in script and "new-plugin" in script and "--x12-envelope" in script


def _bash_complete(script: Path, words: list[str]) -> list[str]:
    array = " ".join(shlex.quote(w) for w in words)
    code = (
        f"source {shlex.quote(str(script))}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
        f'COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}; '
        f'_shtab_payerpolicy payerpolicy {shlex.quote(words[-1])} {shlex.quote(words[-2])}; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    run = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return sorted(filter(None, run.stdout.splitlines()))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_options_and_choices(tmp_path):
    script = tmp_path / "payerpolicy.bash"
    run = subprocess.run([sys.executable, "-m", "payerpolicy", "completion", "bash"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    script.write_text(run.stdout)
    assert _bash_complete(script, ["payerpolicy", "c"]) == ["check", "compare", "completion"]
    assert _bash_complete(script, ["payerpolicy", "check", "--format", ""]) == ["fhir", "json", "table", "x12"]
    assert _bash_complete(script, ["payerpolicy", "policy", "check", "--f"]) == ["--format"]
    assert "dc_visit.json" in " ".join(_bash_complete(script, ["payerpolicy", "check", "examples/d"]))


def test_completion_does_not_load_shtab_for_other_commands():
    code = "import sys; from payerpolicy.cli import main; main(['plugins']); print('shtab' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.splitlines()[-1] == "False"


def test_the_command_list_is_the_parsers():
    full = cli._parser()
    assert list(cli._COMMANDS) == [path for path in COMMANDS if path and " " not in path]
    assert full.format_help().count("\n    ") >= len(cli._COMMANDS)  # the top-level help lists them all


@pytest.mark.parametrize("path", [p for p in COMMANDS if p], ids=str)
def test_the_parser_of_one_command_is_the_whole_parsers_part(path):
    """``main`` parses with a parser holding only the command named first: same help, same usage, same results."""
    full = dict(cli._subparsers(cli._parser()))
    one = dict(cli._subparsers(cli._parser(path.split()[0])))
    assert one[path].format_help() == full[path].format_help()
    assert [p for p in one if p] == [p for p in full if p and p.split()[0] == path.split()[0]]


@pytest.mark.parametrize("line", EXAMPLE_LINES)
def test_every_example_parses_alike_with_the_parser_of_its_command(line):
    argv = _argv(line)
    assert cli._parser(argv[0]).parse_args(argv) == cli._parser().parse_args(argv)


def test_a_first_word_that_is_no_command_gets_the_whole_parsers_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["chekc", "examples/dc_visit.json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'chekc'" in err and "'compare'" in err and "'completion'" in err


@pytest.mark.parametrize("columns", [None, "100", "37", "0", "-5", "wide"])
def test_help_is_as_wide_as_argparse_makes_it(columns, monkeypatch):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    import argparse

    assert cli._Help("payerpolicy")._width == argparse.HelpFormatter("payerpolicy")._width  # type: ignore[attr-defined]
