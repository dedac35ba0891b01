"""What a cold ``payerpolicy check`` loads, and the cheap readers that keep it small, reading what they replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from payerpolicy.evaluation.shipped import package_has_file, read_package_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "dc_visit.json")


def _modules_after(code: str) -> set[str]:
    """The modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"import sys, json, io, contextlib\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out.splitlines()[-1]))


#: Modules only some commands need (optional extras, other formats, the server, batch, history, reports)
#: and standard-library modules a check does not need.
NOT_FOR_CHECK = (
    "pyarrow",
    "dask",
    "fhir",
    "matplotlib",
    "starlette",
    "uvicorn",
    "sqlite3",
    "importlib.metadata",
    "importlib.resources",
    "email",
    "tempfile",
    "csv",
    "difflib",
    "payerpolicy.formats.fhir",
    "payerpolicy.formats.x12",
    "payerpolicy.formats.x12_in",
    "payerpolicy.batch",
    "payerpolicy.views.grid",
    "payerpolicy.views.report",
    "payerpolicy.service",
    "payerpolicy.history",
    "payerpolicy.kit",
)


def _loaded(modules: set[str], name: str) -> bool:
    return name in modules or any(m.startswith(f"{name}.") for m in modules)


def test_import_payerpolicy_loads_no_optional_or_command_specific_module():
    modules = _modules_after("import payerpolicy")
    assert [name for name in NOT_FOR_CHECK if _loaded(modules, name)] == []


def test_payerpolicy_check_loads_no_optional_or_command_specific_module():
    modules = _modules_after(
        "from payerpolicy.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['check', {EXAMPLE!r}, '--payer', 'medicare']) == 0\n"
        "assert 'medicare' in out.getvalue()"
    )
    assert [name for name in NOT_FOR_CHECK if _loaded(modules, name)] == []


def test_the_public_names_are_importable_and_are_the_objects_of_their_modules():
    names = ", ".join(__import__("payerpolicy").__all__)
    modules = _modules_after(
        f"from payerpolicy import {names}\n"
        "import payerpolicy, payerpolicy.history as h, payerpolicy.evaluation.engine as e\n"
        "assert payerpolicy.HistoryStore is h.HistoryStore and payerpolicy.Engine is e.Engine\n"
        "assert set(payerpolicy.__all__) <= set(dir(payerpolicy))"
    )
    assert "payerpolicy.history" in modules


@pytest.mark.parametrize("name", ["codes.toml", "core.toml", "medicare.toml", "adjustments.toml"])
def test_shipped_files_read_as_importlib_resources_reads_them(name):
    expected = resources.files("payerpolicy.policies").joinpath(name).read_text("utf-8")
    assert read_package_text("payerpolicy.policies", name) == expected
    assert package_has_file("payerpolicy.policies", name)


def test_shipped_files_in_a_subdirectory_and_missing_ones():
    expected = resources.files("payerpolicy.policies").joinpath("ncci", "ptp.tsv").read_text("utf-8")
    assert read_package_text("payerpolicy.policies", "ncci", "ptp.tsv") == expected
    assert not package_has_file("payerpolicy.policies", "no_such_policy.toml")
    with pytest.raises(FileNotFoundError):
        read_package_text("payerpolicy.policies", "no_such_policy.toml")


def test_a_package_inside_a_zip_is_read_through_importlib_resources(tmp_path, monkeypatch):
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_policies_pkg/__init__.py", "")
        z.writestr("zipped_policies_pkg/acme.toml", 'payer = "acme"\n')
    monkeypatch.syspath_prepend(str(archive))
    assert read_package_text("zipped_policies_pkg", "acme.toml") == 'payer = "acme"\n'
    assert package_has_file("zipped_policies_pkg", "acme.toml")
    assert not package_has_file("zipped_policies_pkg", "other.toml")


PATHS = [
    "dc_visit.json", "a/b.json", "/abs/x.TOML", "./a.json", "a/./b.json", "a//b.json", "//a.json", "a/", "a.json/",
    "a/..", "x.json/..", ".json", "a.", "a..json", "dir.json/file", "a/b/.hidden", "C:x.json", "a\\b.json", "..", ".", "/",
]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_an_encounter_paths_suffix_and_file_are_pathlibs(path, tmp_path, monkeypatch):
    from pathlib import Path

    from payerpolicy.formats import io

    assert io._suffix(path) == Path(path).suffix
    if io._plain(path):
        assert str(Path(path)) == path
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.json").write_bytes(b"{}")
    (tmp_path / "dc_visit.json").write_bytes(b"[]")

    def outcome(read):  # the bytes, or the kind of error
        try:
            return read()
        except (OSError, ValueError) as exc:
            return type(exc)

    assert outcome(lambda: io._read_bytes(path)) == outcome(lambda: Path(path).read_bytes())


def _implementations(pm: object) -> list[tuple[str, str, str, bool, bool]]:
    hook = pm.hook  # type: ignore[attr-defined]
    return sorted(
        (name, impl.plugin_name, impl.function.__qualname__, impl.tryfirst, impl.trylast)
        for name in dir(hook)
        if not name.startswith("_")
        for impl in getattr(hook, name).get_hookimpls()
    )


def test_the_plugin_manager_finds_what_pluggy_finds_in_every_builtin_and_an_odd_module():
    import importlib
    import types

    import pluggy
    from payerpolicy import hookimpl
    from payerpolicy.evaluation import hookspecs, manager

    odd = types.ModuleType("odd_plugin")
    exec(  # a module with hook implementations in every form pluggy accepts
        "import os\n"
        "from os import getcwd\n"
        "class Holder:\n"
        "    @staticmethod\n"
        "    def payerpolicy_payers():\n"
        "        return []\n"
        "def payerpolicy_rule_kinds():\n"
        "    return []\n"
        "payerpolicy_rule_kinds = hookimpl(tryfirst=True)(payerpolicy_rule_kinds)\n"
        "payerpolicy_payers = hookimpl(Holder.payerpolicy_payers)\n"
        "not_a_hook = lambda: None\n",
        {"hookimpl": hookimpl, "__name__": "odd_plugin"},
        odd.__dict__,
    )
    modules = [importlib.import_module(name) for name in manager.BUILTIN_MODULES]
    modules += [importlib.import_module(f"payerpolicy.plugins.{p}") for p in ("aetna", "bcbsnc", "ca_wc", "commercial", "medicare")]
    ours, theirs = manager.make_plugin_manager(), pluggy.PluginManager(hookspecs.PROJECT)
    theirs.add_hookspecs(hookspecs)
    for module in [*modules, odd]:
        ours.register(module, name=module.__name__)
        theirs.register(module, name=module.__name__)
    assert _implementations(ours) == _implementations(theirs)
    assert ("payerpolicy_rule_kinds", "odd_plugin", "payerpolicy_rule_kinds", True, False) in _implementations(ours)
    assert ("payerpolicy_payers", "odd_plugin", "Holder.payerpolicy_payers", False, False) in _implementations(ours)


def _end_of(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` the way the ``payerpolicy`` script does, with an atexit handler that reports the collector."""
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('atexit ran; frozen:', gc.get_freeze_count() > 0, file=sys.stderr))\n"
        "from payerpolicy.cli import _exit, main\n"
        f"_exit(main({command!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)


def test_after_a_check_the_process_ends_with_its_output_status_and_atexit_handlers(capsys):
    from payerpolicy.cli import main

    assert main(["check", EXAMPLE, "--payer", "medicare"]) == 0
    expected = capsys.readouterr().out
    done = _end_of(["check", EXAMPLE, "--payer", "medicare"])
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "atexit ran; frozen: True\n")
    module = subprocess.run(
        [sys.executable, "-m", "payerpolicy", "check", EXAMPLE, "--payer", "medicare"], capture_output=True, text=True
    )
    assert (module.returncode, module.stdout, module.stderr) == (0, expected, "")


def test_bad_input_and_other_commands_end_as_before():
    bad = _end_of(["check", str(ROOT / "no_such_visit.json"), "--payer", "medicare"])
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("payerpolicy: error: ") and bad.stderr.endswith("atexit ran; frozen: True\n")
    plugins = _end_of(["plugins"])
    assert plugins.returncode == 0 and "medicare" in plugins.stdout
    assert plugins.stderr == "atexit ran; frozen: False\n"  # only an evaluation's objects are frozen
