"""The docs' commands name files that exist, their transcripts are what the CLI prints, and a new
plugin's first commands work as printed."""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from payerpolicy.cli import main
from payerpolicy.kit.scaffold import new_plugin

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Files a reader brings: (name, why the docs may name it without shipping it).
BROUGHT = {
    "f1.txt": "CMS's quarterly PTP files are licensed downloads, never committed",
    "f2.txt": "CMS's quarterly PTP files are licensed downloads, never committed",
    "f3.txt": "CMS's quarterly PTP files are licensed downloads, never committed",
    "f4.txt": "CMS's quarterly PTP files are licensed downloads, never committed",
    "mue.csv": "CMS's quarterly MUE file is a licensed download, never committed",
    "PPRRVU25_JAN.csv": "CMS's relative value file, downloaded from CMS by the user (large, changes quarterly)",
    "GPCI2025.csv": "CMS's GPCI file, downloaded from CMS by the user",
}

_COMMAND = re.compile(r"(?:^|[\s;&|(])(?:payerpolicy|python -m payerpolicy\.[a-z_.]+)\s+(?=[a-z0-9])")
_FILE = re.compile(r"\.(json|toml|jsonl|ndjson|parquet|x12|csv|tsv|txt|html)$")


def _code_lines(md: Path) -> Iterator[tuple[int, str]]:
    fenced = False
    for number, line in enumerate(md.read_text("utf-8").splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
        elif fenced:
            yield number, line


def _tokens(line: str) -> list[str]:
    text = line.split(" #")[0]
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _outputs(md: Path) -> set[str]:
    """Files some command of the document writes (``--out X``, ``> X``)."""
    made = set()
    for _, line in _code_lines(md):
        tokens = _tokens(line)
        for before, token in itertools.pairwise(tokens):
            if before in ("--out", ">", ">>"):
                made.add(token)
    return made


def _named_files(md: Path) -> Iterator[tuple[int, str]]:
    """(line, path) for every file a payerpolicy command in a code block of ``md`` reads."""
    for number, line in _code_lines(md):
        match = _COMMAND.search(line)
        if not match:
            continue
        previous = ""
        for token in _tokens(line[match.end() :]):
            if token in (">", ">>", "|", "&&"):
                if token != "&&":
                    break
                previous = token
                continue
            takes_output = previous in ("--out", "--dir")
            previous = token
            if takes_output or token.startswith("-") or "://" in token or "*" in token:
                continue
            if "=" in token:  # --set PATH=VALUE
                continue
            if _FILE.search(token) or "/" in token:
                yield number, token


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_plugin("acme_blue", directory=tmp_path_factory.mktemp("plugin"))


@pytest.mark.parametrize("md", DOCS, ids=lambda p: p.name)
def test_every_file_a_documented_command_reads_exists(md: Path, plugin_dir: Path) -> None:
    made = _outputs(md)
    # writing-a-plugin.md runs its commands inside the generated distribution
    bases = [ROOT, plugin_dir] if md.name == "writing-a-plugin.md" else [ROOT]
    missing = [
        f"{md.relative_to(ROOT)}:{n}: {name}"
        for n, name in _named_files(md)
        if name not in made
        and name not in BROUGHT
        and not name.startswith("/tmp/")  # the page shows the file's content right there
        and not any((base / name).exists() for base in bases)
    ]
    assert missing == []


def test_the_scan_sees_the_commands() -> None:
    named = {name for md in DOCS for _, name in _named_files(md)}
    assert {"examples/dc_visit.json", "examples/x12/envelope.toml", "examples/bad/minutes.json", "examples/visit.json"} <= named


@pytest.mark.parametrize("md", ["http.md", "encounter-format.md"])
def test_the_error_transcript_is_what_the_cli_prints(md: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    lines = [line.strip() for _, line in _code_lines(ROOT / "docs" / md)]
    start = lines.index("$ payerpolicy check examples/bad/minutes.json --payer commercial")
    assert main(shlex.split(lines[start])[2:]) == 2
    assert capsys.readouterr().err == lines[start + 1] + "\n"


def test_new_plugin_prints_an_install_command_with_the_test_extra(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "acme_blue", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "payerpolicy-acme_blue"
    assert capsys.readouterr().out == f'wrote {target}: pip install -e "{target}[test]" && pytest {target}\n'
    assert shlex.split(f'pip install -e "{target}[test]"')[-1] == f"{target}[test]"


def test_the_new_plugins_readme_names_files_it_has(plugin_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    readme = plugin_dir / "README.md"
    named = [name for _, name in _named_files(readme)]
    assert "examples/visit.json" in named
    assert [name for name in named if not (plugin_dir / name).exists()] == []
    monkeypatch.chdir(plugin_dir)
    assert main(["check", "examples/visit.json", "--payer", "commercial"]) == 0  # a valid encounter file
    capsys.readouterr()


def test_writing_a_plugin_says_how_to_install_before_a_release() -> None:
    text = (ROOT / "docs" / "writing-a-plugin.md").read_text("utf-8")
    first_block = text[text.index("```sh") : text.index("```", text.index("```sh") + 5)]
    assert "pip install payerpolicy\n" not in first_block
    assert "pip install -e /path/to/payerpolicy" in first_block  # a clone
    assert "python -m build --wheel" in first_block and "dist/payerpolicy-*.whl" in first_block  # a wheel
