"""The ``payerpolicy`` command.

Exit status: 0 when an outcome was produced (whatever its findings), 2 for bad input (one line on
standard error naming the file and field), 1 for a bug.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from ._version import __version__
from .evaluation.errors import PayerPolicyError, PolicyValidationError, one_line

# The layers below are imported by the commands that use them: `payerpolicy check` loads no batch,
# format, view or server code it does not run, and loads the engine with the collector paused (_evaluate).
if TYPE_CHECKING:
    from .evaluation.engine import Engine
    from .evaluation.model import Encounter, Outcome
    from .evaluation.money import FeeBook

__all__ = ["main"]


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, without importing shutil (and bz2, lzma with it).

    argparse asks for the width whenever it makes a formatter, which it does for every argument added.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
    return size.columns or 80


class _Help(argparse.HelpFormatter):
    """argparse's help formatter, its width worked out by :func:`_columns`."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width, **kwargs)


class _HelpWithExamples(_Help, argparse.RawDescriptionHelpFormatter):
    """The same, keeping the lines of the examples after the options as they are."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"payerpolicy: error: {message}\n")


class _Skipped:
    """Stands in for the parser of a command that is not being run: takes every call, builds nothing."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return lambda *args, **kwargs: self


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only`` (a command name), one whose other commands are left out.

    ``main`` parses with the parser of the command named first (argparse builds every subparser it is
    given, each costing a look-up of its translations), and with the whole one otherwise, so help
    and errors about the command itself are the same.
    """
    parser = _Parser(
        prog="payerpolicy",
        description="Claim lines per payer for a therapy encounter, with the rule and source behind every decision.",
    )
    parser.add_argument("--version", action="version", version=f"payerpolicy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return cast(argparse.ArgumentParser, _Skipped())
        return sub.add_parser(name, **kwargs)

    strict = _Parser(add_help=False)
    strict.add_argument(
        "--strict",
        action="store_true",
        help="stop when a plugin fails to load or raises, instead of skipping it with a PLUGIN_FAILED finding",
    )
    source = _Parser(add_help=False)
    source.add_argument(
        "--from",
        dest="source",
        choices=("encounter", "fhir", "x12"),
        default="encounter",
        help="input format: an encounter (default), a FHIR R4 Claim in JSON (needs payerpolicy[fhir]),"
        " or an X12 837P (one claim of it: --claim)",
    )
    source.add_argument(
        "--claim",
        metavar="ID",
        help="with --from x12: the claim to read, by CLM01 or by its number in the file (1, 2, ...);"
        " needed when the 837P holds more than one",
    )

    money = _Parser(add_help=False)
    money.add_argument(
        "--fees",
        metavar="FILE",
        help="the practice's fee file (CSV or TOML: code, amount, optional modifier, payer, effective dates);"
        " default $PAYERPOLICY_FEES. Lines then carry expected allowed amounts",
    )
    money.add_argument(
        "--fees-dir",
        metavar="DIR",
        help="CMS relative value and GPCI data written by `payerpolicy fees import` (Medicare amounts);"
        " default $PAYERPOLICY_FEES_DIR",
    )
    money.add_argument(
        "--locality",
        metavar="MAC-LOCALITY",
        help="Medicare payment locality of the GPCI file, like 01112-05 (default $PAYERPOLICY_MEDICARE_LOCALITY, else national)",
    )

    p = command("check", parents=[strict, source, money], help="claim lines and findings for one payer")
    p.add_argument("encounter", help="encounter file (.json or .toml), or - for JSON on standard input")
    p.add_argument("--payer", required=True, help="payer id (see `payerpolicy plugins`)")
    p.add_argument(
        "--format",
        choices=("table", "json", "fhir", "x12"),
        help="table (default; x12 when --x12 or --x12-envelope is given), json, fhir: a Bundle with a Claim and a "
        "ClaimResponse (docs/fhir.md), x12: 837P segments (docs/x12.md)",
    )
    p.add_argument(
        "--x12",
        choices=("lines", "interchange"),
        help="837P output (implies --format x12): only HI and the LX/SV1/DTP service lines (default), or a full 005010X222A1 interchange",
    )
    p.add_argument(
        "--x12-envelope",
        metavar="FILE",
        help="envelope settings (TOML or JSON: submitter, receiver, billing provider, subscriber, payer ids, charges) for --x12 interchange",
    )

    p = command("compare", parents=[strict, source, money], help="claim lines side by side for several payers")
    p.add_argument("encounter", help="encounter file (.json or .toml), or - for JSON on standard input")
    p.add_argument("--payers", help="comma-separated payer ids (default: every installed payer)")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json", "html"), default="table")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        dest="assignments",
        metavar="PATH=VALUE",
        help="what-if: change the encounter (care.phase=maintenance, services[1].minutes=23) and show before and after; repeatable",
    )

    p = command("report", help="an HTML report with charts from the output of `payerpolicy batch`")
    p.add_argument(
        "batch_output", metavar="BATCH_OUTPUT", help="batch output: JSON Lines (.jsonl) or Parquet (.parquet)"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--title", help="page title (default: the input file's name)")

    p = command(
        "explain", parents=[strict, source, money], help="why each line has its code, units and modifiers, rule by rule"
    )
    p.add_argument("encounter", help="encounter file (.json or .toml), or - for JSON on standard input")
    p.add_argument("--payer", required=True, help="payer id")

    p = command("plugins", parents=[strict], help="installed plugins, versions, payers and policy files")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: one object with the plugins (name, version, module, state, error, payers), payers and rule kinds",
    )

    p = command(
        "batch",
        parents=[strict],
        help="evaluate many encounters for several payers: JSON Lines, a directory or Parquet in; JSON Lines or Parquet out",
    )
    p.add_argument(
        "input", help="encounters: a .jsonl file (one per line), a directory of .json/.toml files, or a .parquet file"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output file: .jsonl or .parquet, one row per (encounter, payer); or .x12/.edi/.837: one 837P "
        "interchange per payer (OUT's name with the payer id: claims.medicare.x12), the rows kept in OUT.jsonl",
    )
    p.add_argument(
        "--x12-envelope",
        metavar="FILE",
        help="with --out *.x12: envelope settings (TOML or JSON; docs/x12.md) for the 837P files",
    )
    p.add_argument("--payers", help="comma-separated payer ids (default: every installed payer)")
    p.add_argument(
        "--fees", metavar="FILE", help="the practice's fee file: outcomes carry amounts (default $PAYERPOLICY_FEES)"
    )
    p.add_argument("--workers", type=int, help="processes to use (default: every core)")
    p.add_argument(
        "--chunk-size", type=int, default=500, help="records per unit of work and per part file (default 500)"
    )
    p.add_argument("--resume", action="store_true", help="continue the interrupted run that left OUT.partial/")
    p.add_argument("--trace", action="store_true", help="keep each outcome's trace (large; off by default)")
    p.add_argument("--summary", action="store_true", help="print per payer billable units, expected denials and findings by code")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="how --summary prints: text (default) or json, one object with the counts and each payer's figures (implies --summary)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster (tcp://host:8786; needs payerpolicy[dask]); with OUT and INPUT on storage every "
        "worker shares, workers read their own slices and write their own parts (docs/batch.md)",
    )
    p.add_argument(
        "--history",
        metavar="FILE",
        help="claim history: a SQLite file (created when missing) or a postgresql:// URL (payerpolicy[postgres]): evaluate per patient in date order, derive visit"
        " counts, prior massage visits and year-to-date therapy charges from earlier visits, and record these visits",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress line on standard error (default: on a terminal)")

    p = command("ncci", help="NCCI edit tables")
    nsub = p.add_subparsers(dest="ncci_command", required=True, parser_class=_Parser)
    ni = nsub.add_parser(
        "import",
        help="import CMS practitioner PTP files (f1-f4) and the MUE CSV into the compact tables the plugins load",
    )
    ni.add_argument("--ptp", nargs="+", required=True, metavar="FILE", help="CMS practitioner PTP text files")
    ni.add_argument("--mue", required=True, metavar="FILE", help="CMS practitioner MUE CSV")
    ni.add_argument("--out", required=True, metavar="DIR", help="output directory (point $PAYERPOLICY_NCCI_DIR at it)")
    ni.add_argument("--ptp-version", help="version label (default: from the file names)")
    ni.add_argument("--mue-version", help="version label (default: from the file name)")
    nx = nsub.add_parser("index", help="(re)build the binary index ptp.idx of an imported PTP table")
    nx.add_argument("table", metavar="TABLE", help="the PTP table (ptp.tsv) or the directory holding it")

    p = command("fees", help="fee schedules: CMS relative value files, the practice's fee file")
    fsub = p.add_subparsers(dest="fees_command", required=True, parser_class=_Parser)
    fi = fsub.add_parser(
        "import", help="import CMS's PPRRVU and GPCI CSV files (PFS Relative Value Files bundle) for Medicare amounts"
    )
    fi.add_argument("--rvu", required=True, metavar="FILE", help="CMS PPRRVU CSV, e.g. PPRRVU25_JAN.csv")
    fi.add_argument("--gpci", required=True, metavar="FILE", help="CMS GPCI CSV (Addendum E), e.g. GPCI2025.csv")
    fi.add_argument("--out", required=True, metavar="DIR", help="output directory (point $PAYERPOLICY_FEES_DIR or --fees-dir at it)")
    fi.add_argument("--year", type=int, help="calendar year of the files (default: from the PPRRVU file name)")
    fi.add_argument("--version", dest="rvu_version", help="version label (default: the PPRRVU file name)")
    fc = fsub.add_parser("check", help="validate a fee file (CSV or TOML); every problem at once, exit 2")
    fc.add_argument("file", help="the fee file")

    p = command("policy", help="policy files")
    psub = p.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    pc = psub.add_parser(
        "check", parents=[strict], help="validate a policy file or the code catalogue (codes.toml) and report every problem"
    )
    pc.add_argument("file", help="policy TOML file, or a code catalogue like policies/codes.toml")
    pc.add_argument("--rules", action="store_true", help="list the resolved rules and the file each came from (a catalogue: its codes)")
    pc.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: one object with ok, the rules or codes, or the problems (exit status 2 when there are any)",
    )

    p = command(
        "serve", parents=[strict], help="run the HTTP service (needs payerpolicy[server]; see docs/http.md)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--max-body",
        type=int,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest request body, else 413 (default: 1048576)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time limit of one evaluation, else 503 (default: 10)",
    )
    p.add_argument(
        "--workers", type=int, default=8, metavar="N",
        help="evaluations at once, counting those abandoned after a time-out, else 503 busy (default: 8)",
    )
    p.add_argument(
        "--read-timeout", type=float, default=30.0, metavar="SECONDS",
        help="time a client has to send its request body, else 408 (default: 30)",
    )
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    p.add_argument(
        "--history",
        metavar="FILE",
        help="claim history: a SQLite file (created when missing) or a postgresql:// URL: counters derived from earlier visits;"
        ' a POST /v1/check with "record": true records the visit',
    )

    p = command(
        "scrub",
        parents=[strict],
        help="check a claim as billed: billed vs expected lines, with the repairs a tool may apply and the edits a person decides",
    )
    p.add_argument(
        "claim",
        help="a claim: an encounter whose entries say what was billed (.json/.toml), a FHIR Claim (--from fhir),"
        " or an X12 837P with many claims (.x12/.edi/.837, or --from x12); - for standard input",
    )
    p.add_argument(
        "--from",
        dest="source",
        choices=("encounter", "fhir", "x12"),
        help="input format (default: x12 for .x12, .edi and .837 files, else an encounter)",
    )
    p.add_argument(
        "--payer",
        action="append",
        metavar="ID",
        help="payer id(s), comma-separated or repeated (default: the payer an 837P claim is mapped to, else every payer)",
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "x12"),
        default="table",
        help="json: docs/scrub.md; x12: the 837P written back with the repairs applied and nothing else changed",
    )
    p.add_argument(
        "--payer-map", metavar="FILE", help="837P payer mapping (TOML; default: the shipped policies/x12_payers.toml)"
    )

    p = command("new-plugin", help="write a new pip-installable payer plugin (payerpolicy-NAME/)")
    p.add_argument("name", help="the new payer id: lower case letters, digits and _ (e.g. regional_blue)")
    p.add_argument(
        "--extends", default="commercial", help="installed payer whose policy it starts from (default: commercial)"
    )
    p.add_argument("--dir", default=".", help="directory to create payerpolicy-NAME/ in (default: the current one)")

    p = command("completion", help="print a shell completion script (bash, zsh, tcsh or fish)")
    p.add_argument("shell", choices=_SHELLS, help="the shell to complete in")
    _add_examples(parser)
    return parser


#: The commands (``_parser``'s subcommands, in its order; tests/core/test_cli_help.py checks them).
_COMMANDS = (
    "check", "compare", "report", "explain", "plugins", "batch", "ncci", "fees", "policy", "serve", "scrub",
    "new-plugin", "completion",
)  # fmt: skip

#: Shells ``payerpolicy completion`` writes a script for (shtab's generators).
_SHELLS = ("bash", "zsh", "tcsh", "fish")

#: ``--help`` examples, by command path (``""`` is ``payerpolicy`` itself). The paths are those of a
#: clone of the repository; tests/core/test_cli_help.py checks every command has some.
_EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "payerpolicy compare examples/dc_visit.json",
        "payerpolicy check examples/dc_visit.json --payer medicare",
        "payerpolicy COMMAND --help",
    ),
    "check": (
        "payerpolicy check examples/dc_visit.json --payer medicare",
        "payerpolicy check examples/pt_visit.toml --payer commercial --format json",
        "payerpolicy check examples/dc_visit.json --payer medicare --x12 interchange",
        "payerpolicy check --from fhir tests/fixtures/fhir/claim_dc_visit.json --payer bcbsnc --format fhir",
    ),
    "compare": (
        "payerpolicy compare examples/dc_visit.json",
        "payerpolicy compare examples/dc_visit.json --fees examples/fees.csv",
        "payerpolicy compare examples/dc_visit.json --payers commercial,medicare --format markdown",
        "payerpolicy compare examples/dc_visit.json --set care.phase=maintenance --format html > whatif.html",
    ),
    "report": (
        "payerpolicy batch examples/month.jsonl --out month-out.jsonl --trace",
        "payerpolicy report month-out.jsonl --out report.html --title 'March 2025'",
    ),
    "explain": (
        "payerpolicy explain examples/dc_visit.json --payer aetna",
        "payerpolicy explain examples/dc_visit.json --payer aetna --fees examples/fees.csv",
        "payerpolicy explain tests/fixtures/x12/multi_payer.x12 --from x12 --claim MULTI-2 --payer medicare",
    ),
    "scrub": (
        "payerpolicy scrub examples/claim_bcbsnc.json --payer bcbsnc",
        "payerpolicy scrub tests/fixtures/x12/multi_payer.x12 --format json",
        "payerpolicy scrub claims.x12 --format x12 > claims.repaired.x12   # the repairs applied, nothing else",
    ),
    "plugins": ("payerpolicy plugins", "payerpolicy plugins --format json"),
    "batch": (
        "payerpolicy batch examples/month.jsonl --out month-out.jsonl --summary",
        "payerpolicy batch visits.parquet --out results.parquet --payers medicare,aetna --format json",
        "payerpolicy batch visits.jsonl --out results.jsonl --resume        # after an interrupted run",
        "payerpolicy batch examples/history_month.jsonl --history month.db --out out.jsonl   # counters from claim history",
        "payerpolicy batch examples/month.jsonl --out month.x12   # one 837P per payer: month.medicare.x12, ...",
    ),
    "ncci": ("payerpolicy ncci import --ptp f1.txt f2.txt f3.txt f4.txt --mue mue.csv --out ~/ncci-2025q1",),
    "ncci import": (
        "payerpolicy ncci import --ptp f1.txt f2.txt f3.txt f4.txt --mue mue.csv --out ~/ncci-2025q1",
        "export PAYERPOLICY_NCCI_DIR=~/ncci-2025q1",
    ),
    "ncci index": ("payerpolicy ncci index ~/ncci-2025q1",),
    "fees": (
        "payerpolicy fees check examples/fees.csv",
        "payerpolicy fees import --rvu PPRRVU25_JAN.csv --gpci GPCI2025.csv --out ~/pfs",
    ),
    "fees import": (
        "payerpolicy fees import --rvu PPRRVU25_JAN.csv --gpci GPCI2025.csv --out ~/pfs",
        "payerpolicy compare examples/dc_visit.json --fees examples/fees.csv --fees-dir ~/pfs --locality 01112-05",
    ),
    "fees check": ("payerpolicy fees check examples/fees.csv", "payerpolicy fees check my_fees.toml"),
    "policy": ("payerpolicy policy check policies/medicare.toml",),
    "policy check": (
        "payerpolicy policy check policies/medicare.toml --rules",
        "payerpolicy policy check policies/codes.toml",
        "payerpolicy policy check my_payer.toml --format json",
    ),
    "serve": (
        "payerpolicy serve",
        "payerpolicy serve --host 0.0.0.0 --port 8080 --timeout 5",
        "payerpolicy serve --history clinic.db     # POST /v1/check with \"record\": true records the visit",
    ),
    "new-plugin": ("payerpolicy new-plugin acme_blue --extends commercial --dir ~/src",),
    "completion": (
        "payerpolicy completion bash > ~/.local/share/bash-completion/completions/payerpolicy",
        "payerpolicy completion zsh > ~/.zfunc/_payerpolicy        # with fpath+=(~/.zfunc) before compinit",
        "payerpolicy completion fish > ~/.config/fish/completions/payerpolicy.fish",
    ),
}


def _subparsers(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """``(command path, parser)`` for ``parser`` and every subcommand below it."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _subparsers(child, f"{path} {name}".strip())
    return found


def _add_examples(parser: argparse.ArgumentParser) -> None:
    for path, p in _subparsers(parser):
        lines = _EXAMPLES.get(path, ())
        if lines:
            p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)
            p.formatter_class = _HelpWithExamples


#: Arguments that name files or directories, for the completion script (by ``dest``).
_FILE_ARGS = (
    "encounter", "input", "batch_output", "file", "out", "x12_envelope", "ptp", "mue", "table", "claim", "payer_map", "history",
)  # fmt: skip
_DIR_ARGS = ("dir",)


def _completion(shell: str) -> str:
    """The completion script: shtab walks the same argparse parser ``main`` uses, so it never drifts."""
    import shtab

    parser = _parser()
    for path, p in _subparsers(parser):
        for action in p._actions:
            if action.dest in _FILE_ARGS and not (path == "ncci import" and action.dest == "out"):
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif action.dest in _DIR_ARGS or (path == "ncci import" and action.dest == "out"):
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell=shell))


def _payer_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    first = arguments[0] if arguments else None
    with _collector_paused():
        parser = _parser(first) if first in _COMMANDS else _parser()
        args = parser.parse_args(arguments)
    global _command
    _command = args.command
    try:
        return _run(args)
    except PolicyValidationError as exc:
        for problem in exc.problems:
            print(f"payerpolicy: error: {one_line(str(problem))}", file=sys.stderr)
        return 2
    except PayerPolicyError as exc:
        print(f"payerpolicy: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - output piped into `head`
        return 0
    except Exception:
        import traceback

        print("payerpolicy: internal error (a bug; please report it with the input that caused it):", file=sys.stderr)
        traceback.print_exc()
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "policy":
        return _policy_check(args)
    if args.command == "plugins":
        return _plugins(args.strict, args.format)
    if args.command == "completion":
        print(_completion(args.shell), end="")
        return 0
    if args.command == "new-plugin":
        from .kit.scaffold import new_plugin

        target = new_plugin(args.name, extends=args.extends, directory=args.dir)
        print(f'wrote {target}: pip install -e "{target}[test]" && pytest {target}')
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "scrub":
        return _scrub(args)
    if args.command == "fees":
        return _fees(args)
    if args.command == "batch":
        from .evaluation.manager import PluginHost
        from .evaluation.money import FEES_FILE_ENV, check_fee_payers
        from .evaluation.pfs import fee_book

        previous = os.environ.get(FEES_FILE_ENV)
        if args.fees:  # the workers build their engines from the environment
            book = fee_book(args.fees, None, None)  # a bad fee file fails here, once, not in every worker
            check_fee_payers(book.rows, book.file, PluginHost().payers)
            os.environ[FEES_FILE_ENV] = os.path.abspath(args.fees)
        from .batch import process_engine

        process_engine.cache_clear()  # an engine built before (same process) has other fees
        try:
            return _batch(args)
        finally:
            if args.fees:
                if previous is None:
                    os.environ.pop(FEES_FILE_ENV, None)
                else:
                    os.environ[FEES_FILE_ENV] = previous
                process_engine.cache_clear()
    if args.command == "ncci" and args.ncci_command == "index":
        from pathlib import Path

        from .ncci import PTP_FILE, load_ptp, write_ptp_index

        table = Path(args.table) / PTP_FILE if Path(args.table).is_dir() else Path(args.table)
        index = write_ptp_index(table)
        print(f"{index}: {load_ptp(str(table.resolve())).info.rows} rows indexed")
        return 0
    if args.command == "ncci":
        from .ncci.importer import import_cms_files

        for info in import_cms_files(
            args.ptp, args.mue, args.out, ptp_version=args.ptp_version, mue_version=args.mue_version
        ):
            print(f"{info.file}: {info.rows} rows, version {info.version}, sha256 {info.sha256[:16]}...")
        print(f"set PAYERPOLICY_NCCI_DIR={args.out} to use these tables")
        return 0

    if args.command == "report":
        from .evaluation.wording import plural
        from .views.report import write_report

        summary = write_report(args.batch_output, args.out, title=args.title)
        print(
            f"wrote {args.out}: {plural(summary.records, 'encounter')}, {plural(summary.outcome_rows, 'outcome row')}, "
            f"{plural(summary.error_rows, 'error row')}, payers {', '.join(summary.payers) or '(none)'}"
        )
        return 0
    with _collector_paused():
        return _evaluate(args)


def _collector_paused() -> contextlib.AbstractContextManager[None]:
    """Pause the cyclic garbage collector while arguments are parsed and a ``check``, ``explain`` or ``compare`` runs.

    Loading the engine, plugins and policies allocates tens of thousands of objects that live until
    the process ends and frees almost none; the collections they would trigger cost a cold start
    several milliseconds. One evaluation after that allocates little. The collector's state is put
    back afterwards (``main`` may be called many times in one process).
    """
    from .evaluation.collector import collector_paused

    return collector_paused()


def _evaluate(args: argparse.Namespace) -> int:
    """``check``, ``explain`` and ``compare``: build the engine, read the encounter, evaluate, print."""
    from .evaluation.engine import Engine
    from .evaluation.manager import PluginHost
    from .evaluation.money import check_fee_payers
    from .views.render import render_check, render_explain

    host = PluginHost(strict=args.strict)
    book = _fee_book(args)
    check_fee_payers(book.rows, book.file, host.payers)
    engine = Engine(host, fees=book)
    if args.command == "compare":
        return _compare(engine, args)
    encounter = _read(args, engine)
    if args.command == "check":
        x12_options = args.x12 is not None or args.x12_envelope is not None
        if args.format is None:
            args.format = "x12" if x12_options else "table"
        elif args.format != "x12" and x12_options:
            raise PayerPolicyError(f"--x12 and --x12-envelope go with --format x12, not --format {args.format}")
        outcome = engine.check(encounter, args.payer)
        if args.format in ("fhir", "x12"):
            print(_interchange(args, encounter, outcome), end="" if args.format == "x12" else "\n")
        else:
            print(outcome.to_json() if args.format == "json" else render_check(outcome))
    elif args.command == "explain":
        print(render_explain(encounter, engine.check(encounter, args.payer)))
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    """``payerpolicy policy check FILE``: a payer policy, or the code catalogue (``codes.toml``)."""
    import json
    import tomllib

    from .evaluation.manager import PluginHost
    from .evaluation.policy import read_policy_text
    from .evaluation.vocab import catalogue_from_mapping, is_code_catalogue
    from .evaluation.wording import plural

    try:  # the policy loader's own reader: regular files of bounded size only (never /dev/zero or a FIFO)
        data = tomllib.loads(read_policy_text(args.file))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        data = {}  # the policy loader reports the file or its TOML, with the policy's own wording
    try:
        if is_code_catalogue(data):
            catalogue = catalogue_from_mapping(data, file=args.file)
            report: dict[str, object] = {
                "file": args.file,
                "ok": True,
                "type": "code_catalogue",
                "codes": [
                    {
                        "code": info.code,
                        "label": info.label,
                        "category": info.category,
                        "timed": info.timed,
                        "valid_from": info.valid_from.isoformat() if info.valid_from else None,
                        "valid_to": info.valid_to.isoformat() if info.valid_to else None,
                    }
                    for info in catalogue.codes.values()
                ],
            }
        else:
            policy = PluginHost(strict=args.strict).load_policy(args.file)
            report = {
                "file": args.file,
                "ok": True,
                "type": "policy",
                "payer": policy.payer_id,
                "abstract": policy.abstract,
                "extends": list(policy.chain[:-1]),
                "rules": [
                    {"id": r.id, "kind": r.kind, "confidence": r.confidence, "enabled": r.enabled, "origin": r.origin}
                    for r in policy.rules
                ],
            }
    except PolicyValidationError as exc:
        if args.format != "json":
            raise
        problems = [
            {"file": p.file, "path": p.path, "expected": p.expected, "found": p.found, "message": str(p)} for p in exc.problems
        ]
        print(json.dumps({"file": args.file, "ok": False, "problems": problems}, indent=2, ensure_ascii=False))
        return 2
    if args.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    elif report["type"] == "code_catalogue":
        codes = catalogue.codes.values()
        timed = sum(1 for info in codes if info.timed)
        print(f"{args.file}: ok (code catalogue, {plural(len(codes), 'code')}: {timed} timed, {len(codes) - timed} untimed)")
        if args.rules:
            for info in codes:
                print(f"  {info.code}  {info.category:<22} {'timed  ' if info.timed else 'untimed'}  {info.label}")
    else:
        what = f"payer {policy.payer_id}" if policy.payer_id else "abstract base policy"
        print(f"{args.file}: ok ({what}, {plural(len(policy.rules), 'rule')}, extends: {' -> '.join(policy.chain[:-1]) or 'nothing'})")
        if args.rules:
            for rule in policy.rules:
                state = "" if rule.enabled else " (disabled)"
                print(f"  {rule.id:<18} {rule.kind:<26} {rule.confidence}  from {rule.origin}{state}")
    return 0


def _read_x12_claim(path: str, wanted: str | None, engine: Engine) -> Encounter:
    """One claim of an 837P as an encounter (as billed, with the facts its modifiers state)."""
    from .formats.claim_facts import claim_facts
    from .formats.x12_in import ClaimError, read_837p_file, to_encounter

    name = "<stdin>" if path == "-" else path
    claims = list(read_837p_file(path, catalogue=engine.catalogue))
    if wanted is None:
        if len(claims) != 1:
            raise PayerPolicyError(
                f"{name}: the 837P holds {len(claims)} claims: choose one with --claim ID or NUMBER,"
                " or check them all with `payerpolicy scrub` or `payerpolicy batch`"
            )
        claim = claims[0]
    else:
        found = [c for c in claims if c.claim_id == wanted or str(c.position + 1) == wanted]
        if not found:
            raise PayerPolicyError(f"{name}: --claim {wanted!r}: no claim has that CLM01 or number (1 to {len(claims)})")
        claim = found[0]
    if isinstance(claim, ClaimError):
        raise PayerPolicyError(f"{name}: {claim}")
    encounter = to_encounter(claim, catalogue=engine.catalogue)
    if isinstance(encounter, ClaimError):
        raise PayerPolicyError(f"{name}: {encounter}")
    from .evaluation.model import Encounter

    data, facts = claim_facts(encounter.to_mapping(), engine.catalogue)
    return Encounter.from_mapping(data, catalogue=engine.catalogue) if facts else encounter


def _read(args: argparse.Namespace, engine: Engine) -> Encounter:
    """The encounter named on the command line: format v1 (JSON/TOML), a FHIR Claim, or one 837P claim."""
    if getattr(args, "claim", None) is not None and getattr(args, "source", "encounter") != "x12":
        raise PayerPolicyError("--claim goes with --from x12")
    if getattr(args, "source", "encounter") == "x12":
        return _read_x12_claim(args.encounter, args.claim, engine)
    if getattr(args, "source", "encounter") == "fhir":
        from .formats.fhir import read_fhir_encounter

        return read_fhir_encounter(args.encounter, catalogue=engine.catalogue)
    from .formats.io import read_encounter

    return read_encounter(args.encounter, catalogue=engine.catalogue)


def _batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .batch import render_summary, run_batch, summary_mapping

    claims_out = Path(args.out) if Path(args.out).suffix.lower() in (".x12", ".edi", ".837") else None
    if args.x12_envelope is not None and claims_out is None:
        raise PayerPolicyError("--x12-envelope goes with --out *.x12 (837P files)")
    envelope = None
    if claims_out is not None:
        from .formats import x12

        envelope = x12.load_envelope(args.x12_envelope) if args.x12_envelope else x12.Envelope()
    result = run_batch(
        args.input,
        f"{args.out}.jsonl" if claims_out is not None else args.out,
        _payer_list(args.payers),
        workers=args.workers,
        chunk_size=args.chunk_size,
        resume=args.resume,
        trace=args.trace,
        strict=args.strict,
        scheduler=args.scheduler,
        progress=args.progress,
        history=args.history,
    )
    if args.format == "json":
        import json

        print(json.dumps(summary_mapping(result), indent=2, ensure_ascii=False))
    elif args.summary:
        print(render_summary(result))
    resumed = f" (resumed after record {result.resumed_from})" if result.resumed_from else ""
    print(f"{result.out}: {result.counts.text()}{resumed}; {result.seconds:.1f} s", file=sys.stderr)
    if claims_out is not None:
        from .batch.claims_x12 import write_837p_files

        for path, count in write_837p_files(args.input, result.out, claims_out, envelope):
            print(f"{path}: {count} claims", file=sys.stderr)
    return 0


def _fee_book(args: argparse.Namespace) -> FeeBook:
    """The fee book of --fees / --fees-dir / --locality, each falling back to its environment variable."""
    from .evaluation.money import FEES_DIR_ENV, FEES_FILE_ENV, LOCALITY_ENV
    from .evaluation.pfs import fee_book

    file = getattr(args, "fees", None) or os.environ.get(FEES_FILE_ENV, "").strip() or None
    directory = getattr(args, "fees_dir", None) or os.environ.get(FEES_DIR_ENV, "").strip() or None
    locality = getattr(args, "locality", None) or os.environ.get(LOCALITY_ENV, "").strip() or None
    return fee_book(file, directory, locality)


def _fees(args: argparse.Namespace) -> int:
    from .evaluation.manager import PluginHost
    from .evaluation.money import check_fee_payers, load_fee_file
    from .evaluation.wording import plural

    if args.fees_command == "check":
        rows = load_fee_file(args.file)
        check_fee_payers(rows, args.file, PluginHost().payers)
        payers = sorted({r.payer or "(every payer)" for r in rows})
        print(f"{args.file}: ok ({plural(len(rows), 'row')}; payers: {', '.join(payers) or '(none)'})")
        return 0
    from .evaluation.pfs import import_pfs_files

    info = import_pfs_files(args.rvu, args.gpci, args.out, year=args.year, version=args.rvu_version)
    print(f"{info.directory}: {info.rvus} RVU rows, {info.gpcis} localities, year {info.year}, version {info.version}")
    for name, sha in info.sha256.items():
        print(f"  {name}: sha256 {sha}")
    print(f"set PAYERPOLICY_FEES_DIR={args.out} (or --fees-dir {args.out}) to price Medicare lines")
    return 0


def _compare(engine: Engine, args: argparse.Namespace) -> int:
    from .formats.io import encounter_from_data, read_encounter_data
    from .views.grid import WhatIf, build_grid
    from .views.render import compare_csv, compare_json, compare_markdown, compare_table

    what_if = None
    if args.assignments:
        from .views.whatif import apply_assignments

        if getattr(args, "source", "encounter") != "encounter":
            before = _read(args, engine)
            data = before.to_mapping()
        else:
            data = read_encounter_data(args.encounter)
            before = encounter_from_data(data, args.encounter, catalogue=engine.catalogue)
        encounter = apply_assignments(data, args.assignments, catalogue=engine.catalogue)
        payers = _payer_list(args.payers)
        what_if = WhatIf(args.assignments, before, engine.compare(before, payers))
        outcomes = engine.compare(encounter, payers)
    else:
        encounter = _read(args, engine)
        outcomes = engine.compare(encounter, _payer_list(args.payers))
    if args.format == "json":
        print(compare_json(encounter, outcomes, what_if))
        return 0
    grid = build_grid(encounter, outcomes, what_if)
    if args.format == "html":
        from .views.pages import compare_html

        print(compare_html(grid), end="")
    elif args.format == "markdown":
        print(compare_markdown(grid), end="")
    elif args.format == "csv":
        print(compare_csv(grid), end="")
    else:
        print(compare_table(grid))
    return 0


def _scrub(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .evaluation.engine import Engine
    from .evaluation.manager import PluginHost
    from .views.scrub import ScrubError, ScrubResult, render_scrub, scrub_document, scrub_file

    source = args.source or ("x12" if Path(args.claim).suffix.lower() in (".x12", ".edi", ".837") else "encounter")
    if args.format == "x12" and source != "x12":
        raise PayerPolicyError(
            f"{args.claim}: --format x12 writes an 837P back, so the input must be an 837P (--from x12)"
        )
    payers = _payer_list(",".join(args.payer)) if args.payer else None
    if args.format == "x12" and payers and len(payers) > 1:
        raise PayerPolicyError("--format x12 writes one claim per payer: give at most one --payer")
    engine = Engine(PluginHost(strict=args.strict))
    run = scrub_file(args.claim, engine, source=source, payers=payers, payer_map=args.payer_map)
    results = run.results
    for r in results:
        if isinstance(r, ScrubError):
            print(f"payerpolicy: error: {run.name}: {r.message}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(scrub_document(results), indent=2, ensure_ascii=False))
    elif args.format == "x12":
        out, notes = run.repaired()
        for note in notes:
            print(f"payerpolicy: {note}", file=sys.stderr)
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    else:
        print(render_scrub(results))
    checked = sum(1 for r in results if isinstance(r, ScrubResult))
    return 2 if checked < len(results) else 0


#: What ``payerpolicy[server]`` installs (pyproject.toml): all three are needed to serve.
_SERVER_PACKAGES = ("starlette", "uvicorn", "anyio")


def _serve(args: argparse.Namespace) -> int:
    if args.max_body < 1:
        raise PayerPolicyError(f"--max-body: expected a whole number of bytes >= 1, found {args.max_body}")
    if not args.timeout > 0:
        raise PayerPolicyError(f"--timeout: expected a number of seconds > 0, found {args.timeout:g}")
    if args.workers < 1:
        raise PayerPolicyError(f"--workers: expected a whole number >= 1, found {args.workers}")
    if not args.read_timeout > 0:
        raise PayerPolicyError(f"--read-timeout: expected a number of seconds > 0, found {args.read_timeout:g}")
    import importlib.util

    missing = [name for name in _SERVER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise PayerPolicyError(
            f"the HTTP service needs {', '.join(_SERVER_PACKAGES)}; not installed: {', '.join(missing)}: "
            "pip install 'payerpolicy[server]'"
        )
    from .evaluation.engine import Engine
    from .evaluation.manager import PluginHost
    from .history import SQLiteHistory
    from .service.server import serve

    _fee_book(args)  # a bad $PAYERPOLICY_FEES / _FEES_DIR stops the start-up here: one line, exit 2
    engine = Engine(PluginHost(strict=True)) if args.strict else None
    history = SQLiteHistory(args.history) if args.history else None
    try:
        serve(
            args.host,
            args.port,
            engine=engine,
            max_body=args.max_body,
            timeout=args.timeout,
            log_level=args.log_level,
            workers=args.workers,
            read_timeout=args.read_timeout,
            history=history,
        )
    finally:
        if history is not None:
            history.close()
    return 0


def _interchange(args: argparse.Namespace, encounter: Encounter, outcome: Outcome) -> str:
    """The outcome as FHIR (a Bundle) or X12 837P text; the libraries are imported only here."""
    if args.format == "fhir":
        from .formats.fhir import dumps, outcome_bundle

        return dumps(outcome_bundle(encounter, [outcome]), indent=2)
    from .formats import x12

    if args.x12 in (None, "lines") and args.x12_envelope is None:
        segments = x12.service_line_segments(outcome, encounter.date_of_service, encounter=encounter)
        return "".join(f"{s}{x12.TERMINATOR}\n" for s in segments)
    envelope = x12.load_envelope(args.x12_envelope) if args.x12_envelope else x12.Envelope()
    return x12.interchange(outcome, encounter, envelope)


def _plugins(strict: bool, fmt: str = "text") -> int:
    from .evaluation.manager import PluginHost

    host = PluginHost(strict=strict)
    if fmt == "json":
        import json

        data = {
            "plugins": [
                {
                    "name": info.name,
                    "version": info.version,
                    "module": info.module,
                    "state": "blocked" if info.blocked else ("failed" if info.error else "loaded"),
                    "error": info.error,
                    "payers": list(info.payers),
                }
                for info in host.plugin_infos()
            ],
            "payers": [
                {
                    "id": payer.id,
                    "name": payer.name,
                    "plugin": payer.plugin,
                    "policy": payer.policy if isinstance(payer.policy, str) else "/".join(payer.policy),
                }
                for payer in host.payers.values()
            ],
            "rule_kinds": [
                {"name": kind.name, "summary": kind.summary, "plugin": kind.plugin, "phases": list(kind.apply)}
                for kind in sorted(host.kinds.values(), key=lambda k: k.name)
            ],
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print("plugins")
    for info in host.plugin_infos():
        state = "blocked" if info.blocked else (f"FAILED: {info.error}" if info.error else "loaded")
        print(
            f"  {info.name} {info.version}  ({info.module})  {state}"
            + (f"  payers: {', '.join(info.payers)}" if info.payers else "")
        )
    print("payers")
    for payer in host.payers.values():
        policy = payer.policy if isinstance(payer.policy, str) else "/".join(payer.policy)
        print(f"  {payer.id:<12} {payer.name}  [plugin {payer.plugin}]  policy {policy}")
    print("rule kinds")
    for kind in sorted(host.kinds.values(), key=lambda k: k.name):
        print(f"  {kind.name:<26} {kind.summary}")
    return 0


#: The command ``main`` ran last (for :func:`_exit`).
_command: str | None = None
#: Commands whose process ends holding only the engine, its plugins and policies (and what was printed).
_EVALUATIONS = ("check", "explain", "compare")


def _exit(status: int) -> NoReturn:
    """End the ``payerpolicy`` process with ``status`` (``python -m payerpolicy`` and the console script).

    After ``check``, ``explain`` or ``compare`` the objects left are the engine, its plugins and
    policies, made at start-up and alive until the end. :func:`gc.freeze` takes them out of the
    collector's sight, so the collections of the interpreter's shutdown pass them over (about 10 ms
    of a cold check). The rest of the shutdown is as usual: atexit handlers, flushing the standard
    streams, clearing the modules. Never called by ``main`` itself (embedding and tests call it).
    """
    if _command in _EVALUATIONS:
        gc.freeze()
    sys.exit(status)


def _entry() -> None:  # pragma: no cover
    _exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
