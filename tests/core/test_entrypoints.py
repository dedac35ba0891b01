"""Entry points read from the dist-info directories agree with importlib.metadata (the plugins a pip install adds)."""

from __future__ import annotations

import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from payerpolicy.evaluation.entrypoints import EntryPoint, entry_points

GROUP = "payerpolicy_entrypoints_test"


def _reference(group: str) -> list[tuple[str, str, str | None, str]]:
    return [
        (ep.name, ep.value, ep.dist.metadata["Name"] if ep.dist else None, ep.dist.version if ep.dist else "")
        for ep in metadata.entry_points(group=group)
    ]


def _ours(group: str) -> list[tuple[str, str, str | None, str]]:
    return [(ep.name, ep.value, ep.distribution, ep.version) for ep in entry_points(group)]


def _dist(root: Path, directory: str, name: str, version: str, entry_points_txt: str | None) -> None:
    d = root / directory
    d.mkdir(parents=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not this one\n", "utf-8")
    if entry_points_txt is not None:
        (d / "entry_points.txt").write_text(entry_points_txt, "utf-8")


@pytest.mark.parametrize("group", ["payerpolicy", "console_scripts", "pytest11"])
def test_the_installed_entry_points_are_importlib_metadatas(group):
    assert _ours(group) == _reference(group)


def test_the_builtin_payers_come_from_the_payerpolicy_distribution():
    found = {ep.name: ep for ep in entry_points("payerpolicy")}
    assert {"aetna", "bcbsnc", "ca_wc", "commercial", "medicare"} <= set(found)
    medicare = found["medicare"]
    assert (medicare.value, medicare.distribution, medicare.version) == (
        "payerpolicy.plugins.medicare",
        "payerpolicy",
        metadata.version("payerpolicy"),
    )
    assert medicare.load() is sys.modules["payerpolicy.plugins.medicare"]


def test_directories_on_sys_path_first_name_wins_comments_and_other_groups(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    text = f"# a comment\n[console_scripts]\nacme-cli = acme.cli:main\n\n[{GROUP}]\n  acme = acme_plugin.module : hooks\nbeta=beta_plugin\n"
    _dist(first, "Acme_Payer-1.2.dist-info", "Acme_Payer", "1.2", text)
    _dist(first, "quiet-0.1.dist-info", "quiet", "0.1", None)  # no entry points at all
    _dist(second, "acme.payer-9.0.dist-info", "acme.payer", "9.0", f"[{GROUP}]\nshadowed = acme_old\n")  # same normalized name: shadowed
    _dist(second, "other-2.0.egg-info", "other", "2.0", f"[{GROUP}]\nother = other_plugin:make [extra]\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    assert _ours(GROUP) == _reference(GROUP) == [
        ("acme", "acme_plugin.module : hooks", "Acme_Payer", "1.2"),
        ("beta", "beta_plugin", "Acme_Payer", "1.2"),
        ("other", "other_plugin:make [extra]", "other", "2.0"),
    ]


def test_a_zip_on_sys_path_is_read_through_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-3.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 3.0\n\n")
        z.writestr("zipped-3.0.dist-info/entry_points.txt", f"[{GROUP}]\nzipped = zipped_plugin\n")
    monkeypatch.syspath_prepend(str(archive))
    assert _ours(GROUP) == [("zipped", "zipped_plugin", "zipped", "3.0")]


def test_load_imports_the_module_and_follows_the_attribute_path():
    assert EntryPoint("x", "payerpolicy.evaluation.entrypoints:EntryPoint.load", GROUP).load() is EntryPoint.load
    assert EntryPoint("x", "payerpolicy.evaluation.entrypoints [extra]", GROUP).load() is sys.modules[
        "payerpolicy.evaluation.entrypoints"
    ]
    with pytest.raises(ModuleNotFoundError):
        EntryPoint("x", "no_such_module_for_payerpolicy_tests", GROUP).load()
