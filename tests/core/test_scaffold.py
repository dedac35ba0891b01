"""`payerpolicy new-plugin`: the generated distribution installs, lists its payer and passes its tests."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import attrs
import pytest
from payerpolicy.cli import main
from payerpolicy.kit.testing import check_case, load_cases

ROOT = Path(__file__).resolve().parents[2]


def test_new_plugin_writes_the_distribution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "acme_blue", "--extends", "medicare", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "payerpolicy-acme_blue"
    assert str(target) in capsys.readouterr().out
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert files >= {
        "pyproject.toml",
        "README.md",
        "payerpolicy_acme_blue/__init__.py",
        "payerpolicy_acme_blue/plugin.py",
        "payerpolicy_acme_blue/acme_blue.toml",
        "tests/cases/example_visit.toml",
        "tests/test_cases.py",
    }
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["payerpolicy"] == {"acme_blue": "payerpolicy_acme_blue.plugin"}
    assert any(d.startswith("payerpolicy") for d in project["project"]["dependencies"])
    assert project["tool"]["setuptools"]["package-data"] == {"payerpolicy_acme_blue": ["*.toml"]}
    policy = tomllib.loads((target / "payerpolicy_acme_blue" / "acme_blue.toml").read_text())
    assert policy["extends"] == "medicare"
    assert policy["payer"]["id"] == "acme_blue"
    assert '("payerpolicy_acme_blue", "acme_blue.toml")' in (target / "payerpolicy_acme_blue" / "plugin.py").read_text()
    (case,) = load_cases(target / "tests" / "cases")
    assert case.payer == "acme_blue"
    # computed at generation time: exactly what the extended payer gives for the encounter
    assert case.lines
    assert check_case(attrs.evolve(case, payer="medicare")) == []
    # the policy file is valid for the installed host
    assert main(["policy", "check", str(target / "payerpolicy_acme_blue" / "acme_blue.toml")]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme"], "not a valid payer id"),
        (["1acme"], "not a valid payer id"),
        (["acme-blue"], "not a valid payer id"),
        (["acme", "--extends", "nobody"], "not an installed payer"),
        (["commercial"], "already served by plugin"),
    ],
)
def test_new_plugin_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["new-plugin", *args, "--dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_new_plugin_does_not_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "payerpolicy-acme").mkdir()
    (tmp_path / "payerpolicy-acme" / "keep.txt").write_text("mine")
    assert main(["new-plugin", "acme", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "payerpolicy-acme").iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_generated_plugin_installs_and_passes_its_tests(tmp_path: Path) -> None:
    assert main(["new-plugin", "acme_blue", "--dir", str(tmp_path)]) == 0
    target = tmp_path / "payerpolicy-acme_blue"
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "--quiet", str(ROOT), "-e", f"{target}[test]"],
        check=True,
        cwd=tmp_path,
    )
    tests = subprocess.run(
        [str(bindir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=target,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    plugins = subprocess.run([str(bindir / "payerpolicy"), "plugins"], cwd=tmp_path, capture_output=True, text=True)
    assert plugins.returncode == 0, plugins.stderr
    assert "acme_blue 0.1.0  (payerpolicy_acme_blue.plugin)  loaded  payers: acme_blue" in plugins.stdout

    compare = subprocess.run(
        [str(bindir / "payerpolicy"), "compare", str(ROOT / "examples" / "dc_visit.json"), "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stderr
    assert '"acme_blue"' in compare.stdout
