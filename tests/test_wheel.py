"""The wheel, installed in a fresh virtual environment, works from outside the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
    )
    (found,) = out.glob("payerpolicy-*.whl")
    return found


def test_wheel_maps_folders_into_one_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"payerpolicy"}
    assert "payerpolicy/policies/commercial.toml" in names
    assert "payerpolicy/policies/core.toml" in names
    assert "payerpolicy/policies/codes.toml" in names
    assert "payerpolicy/policies/x12_payers.toml" in names
    assert "payerpolicy/policies/adjustments.toml" in names
    assert "payerpolicy/policies/fhir/StructureDefinition-finding.json" in names
    assert "payerpolicy/plugins/commercial.py" in names
    assert "payerpolicy/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[payerpolicy]" in text and "commercial = payerpolicy.plugins.commercial" in text


def test_wheel_carries_the_licence_and_its_metadata(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert archive.read(licence) == (ROOT / "LICENSE").read_bytes()
    metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    headers = metadata.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
    assert not any(h.startswith("Classifier: License ::") for h in headers)  # the SPDX expression says it
    urls = {h.split(": ", 1)[1].split(", ", 1)[0] for h in headers if h.startswith("Project-URL: ")}
    assert urls == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    version = ROOT.joinpath("core", "_version.py").read_text().split('__version__ = "', 1)[1].split('"', 1)[0]
    assert f"Version: {version}" in headers and wheel.name.startswith(f"payerpolicy-{version}-")


def test_installed_cli_runs_outside_checkout(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bindir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    subprocess.run([str(bindir / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    encounter = tmp_path / "visit.json"
    encounter.write_text((ROOT / "examples" / "dc_visit.json").read_text())
    run = subprocess.run(
        [str(bindir / "payerpolicy"), "check", str(encounter), "--payer", "commercial", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    assert [(line["code"], line["units"], line["modifiers"]) for line in outcome["lines"]] == [
        ("98940", 1, []),
        ("97140", 1, ["59"]),
        ("97124", 1, ["59"]),
        ("97110", 1, []),
    ]
    plugins = subprocess.run([str(bindir / "payerpolicy"), "plugins"], cwd=tmp_path, capture_output=True, text=True)
    assert plugins.returncode == 0
    assert "FAILED" not in plugins.stdout
    site = subprocess.run(
        [str(bindir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert not (Path(site) / "core").exists() and not (Path(site) / "plugins").exists()
