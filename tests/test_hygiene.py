"""Project hygiene: the licence, one version, the changelog, the contributor guide, pre-commit."""

from __future__ import annotations

import ast
import hashlib
import re
import tomllib
from importlib import metadata
from pathlib import Path

import payerpolicy

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))

#: sha256 of the Apache License 2.0 text as the ASF publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_licence_is_the_full_apache_2_text():
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    assert b"Apache License\n                           Version 2.0, January 2004" in text


def test_licence_metadata_is_spdx_with_the_file():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))
    # PEP 639 (SPDX string, license-files) needs setuptools 77 or later
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert minimum and int(minimum.group(1)) >= 77


def test_project_urls():
    assert set(PYPROJECT["project"]["urls"]) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url.startswith("https://") for url in PYPROJECT["project"]["urls"].values())


def test_the_version_is_written_in_one_place():
    assert PYPROJECT["project"]["dynamic"] == ["version"] and "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "payerpolicy._version.__version__"}
    assigned = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "core").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    ]
    assert assigned == ["core/_version.py"]
    assert metadata.version("payerpolicy") == payerpolicy.__version__


def test_changelog_keeps_a_changelog_with_the_formats():
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    assert text.startswith("# Changelog\n") and "keepachangelog.com" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert versions[0] == "Unreleased" and payerpolicy.__version__ in versions
    for version in versions:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, flags=re.M), f"no link for [{version}]"
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    assert all("### Formats" in section for section in sections)
    for document in ("encounter format v1", "outcome format v1", "policy schema 1"):
        assert document in text.lower()


def test_contributing_names_every_nox_session():
    tree = ast.parse((ROOT / "noxfile.py").read_text("utf-8"))
    sessions = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any("session" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert {"tests", "lint", "typecheck", "policies"} <= set(sessions)
    text = (ROOT / "CONTRIBUTING.md").read_text("utf-8")
    assert [s for s in sessions if f"`nox -s {s}`" not in text] == []
    assert "python3 -m venv .venv" in text and "## Adding a payer" in text


def test_pre_commit_runs_ruff():
    text = (ROOT / ".pre-commit-config.yaml").read_text("utf-8")
    assert "repo: https://github.com/astral-sh/ruff-pre-commit" in text
    assert re.search(r"^\s+- id: ruff$", text, flags=re.M)
    assert re.search(r"^\s+rev: v\d+\.\d+\.\d+", text, flags=re.M)
