"""Policy files the loader cannot use are problems `policy check` reports, never a crash or a hang:
``extends`` leads only beside the file (or to a declared directory), to regular files of bounded
size, in chains of bounded depth."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from payerpolicy import PluginHost, PolicyValidationError
from payerpolicy.cli import main
from payerpolicy.evaluation.policy import MAX_EXTENDS_DEPTH, MAX_POLICY_BYTES

PREFIX = "payerpolicy: error: "
HEAD = 'schema_version = 1\nextends = "{parent}"\nabstract = true\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def problems(path: Path) -> list[tuple[str, str, str, str]]:
    with pytest.raises(PolicyValidationError) as info:
        PluginHost().load_policy(str(path))
    return [(p.file, p.path, p.expected, p.found) for p in info.value.problems]


def check_line(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    assert main(["policy", "check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    (line,) = err.splitlines()
    return line


def test_an_absolute_extends_path_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere" / "base.toml", "schema_version = 1\nabstract = true\n")
    child = write(tmp_path / "p" / "child.toml", HEAD.format(parent=tmp_path / "elsewhere" / "base.toml"))
    [(file, path, expected, _)] = problems(child)
    assert (file, path, expected) == (str(child), "extends", "a relative path to a .toml file (not an absolute path)")


def test_an_extends_path_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", "schema_version = 1\nabstract = true\n")
    child = write(tmp_path / "p" / "child.toml", HEAD.format(parent="../base.toml"))
    [(_, path, expected, found)] = problems(child)
    assert path == "extends" and found == "'../base.toml'"
    assert expected == f"a file beside this one (in {tmp_path / 'p'} or below) or in a directory of $PAYERPOLICY_POLICY_DIRS"


def test_a_declared_directory_may_be_extended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "shared" / "base.toml", 'schema_version = 1\nextends = "core"\nabstract = true\n')
    child = write(tmp_path / "p" / "child.toml", HEAD.format(parent="../shared/base.toml"))
    monkeypatch.setenv("PAYERPOLICY_POLICY_DIRS", str(tmp_path / "shared"))
    assert PluginHost().load_policy(str(child)).chain[-1] == str(child)


def test_a_link_beside_the_file_that_leads_out_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret" / "base.toml", "schema_version = 1\nabstract = true\n")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "base.toml").symlink_to(tmp_path / "secret" / "base.toml")
    child = write(tmp_path / "p" / "child.toml", HEAD.format(parent="base.toml"))
    [(_, path, expected, _)] = problems(child)
    assert path == "extends" and expected.startswith("a file beside this one")


def test_a_link_to_a_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    assert check_line(capsys, tmp_path / "zero.toml") == (
        f"{PREFIX}{tmp_path / 'zero.toml'}: (file): expected a readable policy file, found OSError: not a regular file"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_beside_the_file_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "base.toml")
    child = write(tmp_path / "child.toml", HEAD.format(parent="base.toml"))
    [(file, path, expected, found)] = problems(child)
    assert (file, path, expected, found) == (str(tmp_path / "base.toml"), "(file)", "a readable policy file", "OSError: not a regular file")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "base.toml").mkdir()
    child = write(tmp_path / "child.toml", HEAD.format(parent="base.toml"))
    [(_, path, _, found)] = problems(child)
    assert (path, found) == ("(file)", "OSError: not a regular file")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = write(tmp_path / "big.toml", "schema_version = 1\nabstract = true\n" + "# padding\n" * (MAX_POLICY_BYTES // 10 + 1))
    [(_, path, _, found)] = problems(big)
    assert path == "(file)" and found.startswith(f"OSError: larger than the limit of {MAX_POLICY_BYTES} bytes")


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'schema_version = 1\nabstract = true\n# caf\xe9\n')
    [(_, where, _, found)] = problems(path)
    assert (where, found) == ("(file)", "OSError: not UTF-8 text (byte 41)")


def test_a_nul_in_an_extends_path_is_a_problem(tmp_path: Path) -> None:
    child = write(tmp_path / "child.toml", 'schema_version = 1\nextends = "a\\u0000.toml"\nabstract = true\n')
    [(_, path, expected, _)] = problems(child)
    assert (path, expected) == ("extends", "a relative path to a .toml file (not an absolute path)")


def test_a_non_utf8_file_name_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = os.fsdecode(b"caf\xff.toml")  # a surrogate escape: not printable as UTF-8
    path = write(tmp_path / name, "schema_version = 1\nabstract = true\n[settings]\nunit_method = 3\n")
    assert main(["policy", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "\udcff" not in err
    assert all(line.startswith(f"{PREFIX}{tmp_path}/caf\\udcff.toml: ") for line in err.splitlines())


def test_a_long_chain_stops_at_the_depth_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "f0.toml", "schema_version = 1\nabstract = true\n")
    for n in range(1, 950):
        write(tmp_path / f"f{n}.toml", HEAD.format(parent=f"f{n - 1}.toml"))
    line = check_line(capsys, tmp_path / "f949.toml")
    assert line.endswith(f"extends: expected a chain of at most {MAX_EXTENDS_DEPTH} policy files, found a chain of more than {MAX_EXTENDS_DEPTH}")


def test_modifier_order_with_a_non_string_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "m.toml",
        'schema_version = 1\nextends = "commercial"\n[payer]\nid = "m"\nname = "M"\npolicy_version = "1"\n[settings]\nmodifier_order = [[]]\n',
    )
    assert main(["policy", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{PREFIX}{path}: settings.modifier_order[0]: expected a category defined in [modifier_categories]" in err
