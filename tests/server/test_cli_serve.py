"""`payerpolicy serve` on the command line: options, and a clean error without the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest
from payerpolicy.cli import main


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", [["starlette"], ["uvicorn"], ["anyio"], ["starlette", "anyio"]])
def test_without_the_extra_serve_is_one_line_and_exit_2(missing):
    run = _run(
        f"import sys; sys.modules.update(dict.fromkeys({missing!r}))\n"
        "from payerpolicy.cli import main\n"
        "sys.exit(main(['serve', '--port', '1']))\n"
    )
    assert run.returncode == 2
    assert run.stderr == (
        f"payerpolicy: error: the HTTP service needs starlette, uvicorn, anyio; not installed: {', '.join(missing)}: "
        "pip install 'payerpolicy[server]'\n"
    )


def test_the_cli_does_not_import_the_server_until_serve():
    run = _run(
        "import sys, payerpolicy.cli; print(sorted(m for m in ('starlette', 'uvicorn', 'payerpolicy.service.server') if m in sys.modules))"
    )
    assert run.stdout == "[]\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timeout", "0"], "payerpolicy: error: --timeout: expected a number of seconds > 0, found 0\n"),
        (["--max-body", "0"], "payerpolicy: error: --max-body: expected a whole number of bytes >= 1, found 0\n"),
    ],
)
def test_bad_limits_are_rejected(capsys, argv, message):
    assert main(["serve", *argv]) == 2
    assert capsys.readouterr().err == message


def test_serve_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--max-body", "--timeout", "--log-level", "--strict"):
        assert option in out
