"""Test helpers shipped in the wheel: case files and an isolated plugin host.

A **case file** (TOML) states an encounter and the exact outcome one payer must give::

    title = "S15 — 97140 in another region than CMT"
    scenario = "S15"                 # optional: the public scenario it encodes
    payer = "commercial"

    [encounter]                      # encounter format v1
    date_of_service = 2025-05-06
    provider = { type = "DC" }
    ...

    [expect]
    lines = ["98940 x1 []", "97140 x1 [59]"]          # every line, claim order
    findings = ["BUNDLED_SAME_REGION_CMT"]             # finding codes, any order, exact multiset

A line is ``"CODE xUNITS [MOD, MOD]"`` followed by its status when it is not ``billable``
(``"97140 x0 [] not_billable"``), or a table ``{line = "...", pointers = [3]}`` to also check its
diagnosis pointers. ``[[variants]]`` repeat the case with ``set = {"care.zelis" = false}`` (dotted
paths into the encounter; ``services[0].minutes`` indexes arrays), an optional ``payer``, an
optional ``[variants.policy]`` of settings/rules laid over the payer's policy, and their own
``expect``.

For a claim as billed (entries with ``billed``), ``repairs`` and ``edits`` in ``expect`` list the
outcome's differences, exact multiset, each as ``"LINECODE DIFFERENCE BILLED -> EXPECTED"``
(lists comma-joined, ``-`` for none; ``claim`` for a difference with no line)::

    repairs = ["97124 MODIFIER_ORDER GP,59 -> 59,GP"]
    edits = ["97124 UNITS_CHANGED 2 -> 1"]

**Amounts.** A ``[fees]`` table prices the case: ``file`` (a fee file, CSV or TOML, relative to
the case file), ``rows`` (fee rows inline, as in a TOML fee file), and for Medicare CMS's own
``rvu`` (PPRRVU CSV) and ``gpci`` (GPCI CSV) files with the ``year`` they hold and an optional
``locality``. Variants inherit it. ``expect`` may then state the exact money, each amount a
decimal string with two places::

    allowed = ["28.14", "20.36"]            # each line's expected allowed amount, claim order ("-": unknown)
    total = "48.50"                         # the outcome's expected_total
    cost = { MPPR_REDUCTION = "6.47" }      # cost_by_finding, exact mapping

Use :func:`load_cases` and :func:`check_case` from pytest (see ``tests/test_cases.py``), or
:func:`assert_case` for a readable failure.
"""

from __future__ import annotations

import contextlib
import copy
import re
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import tomli_w

from ..evaluation.engine import Engine
from ..evaluation.manager import PluginHost
from ..evaluation.model import Encounter, Outcome
from ..evaluation.money import FeeBook, FeeRow, PfsData, load_fee_file, money_text, parse_fee_text
from ..evaluation.paths import set_path
from ..evaluation.pfs import parse_gpci, parse_pprrvu
from ..evaluation.policy import load_policy

__all__ = ["Case", "assert_case", "check_case", "difference_texts", "isolated_engine", "load_cases", "set_path"]

_LINE = re.compile(
    r"^(?P<code>\S+)\s+[x×](?P<units>\d+)\s+\[(?P<mods>[^\]]*)\](?:\s+(?P<status>billable|expected_denial|not_billable))?$"
)


@attrs.frozen
class Case:
    """One expectation: an encounter, a payer, and the exact lines and finding codes."""

    id: str
    file: str
    payer: str
    encounter: Mapping[str, Any]
    lines: tuple[str, ...]
    pointers: Mapping[int, tuple[int, ...]]
    findings: tuple[str, ...]
    policy: Mapping[str, Any] | None = None
    title: str = ""
    repairs: tuple[str, ...] | None = None
    edits: tuple[str, ...] | None = None
    fees: FeeBook | None = None
    allowed: tuple[str, ...] | None = None
    total: str | None = None
    cost: Mapping[str, str] | None = None


def _normalise_line(entry: Any, where: str) -> tuple[str, tuple[int, ...] | None]:
    pointers = None
    if isinstance(entry, Mapping):
        pointers = tuple(entry.get("pointers", ()))
        entry = entry.get("line")
    if not isinstance(entry, str) or not _LINE.match(entry.strip()):
        raise ValueError(
            f'{where}: expected a line like "97140 x1 [59]" (status after it when not billable), found {entry!r}'
        )
    m = _LINE.match(entry.strip())
    assert m is not None
    mods = [x.strip() for x in m["mods"].split(",") if x.strip()]
    text = f"{m['code']} x{m['units']} [{', '.join(mods)}]"
    if m["status"] and m["status"] != "billable":
        text += f" {m['status']}"
    return text, pointers


def _case(
    file: str,
    case_id: str,
    payer: str,
    encounter: Mapping[str, Any],
    expect: Mapping[str, Any],
    policy: Mapping[str, Any] | None,
    title: str,
    fees: FeeBook | None = None,
) -> Case:
    lines, pointers = [], {}
    for i, entry in enumerate(expect.get("lines", [])):
        text, ptrs = _normalise_line(entry, f"{file}: {case_id}: expect.lines[{i}]")
        lines.append(text)
        if ptrs is not None:
            pointers[i] = ptrs
    return Case(
        case_id,
        file,
        payer,
        encounter,
        tuple(lines),
        pointers,
        tuple(sorted(expect.get("findings", []))),
        policy,
        title,
        _differences(expect, "repairs"),
        _differences(expect, "edits"),
        fees,
        tuple(str(a) for a in expect["allowed"]) if "allowed" in expect else None,
        str(expect["total"]) if "total" in expect else None,
        {str(k): str(v) for k, v in expect["cost"].items()} if "cost" in expect else None,
    )


def _fees(file: Path, data: Any) -> FeeBook | None:
    """The fee book of a case file's ``[fees]`` table."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError(f"{file}: fees: expected a table with file, rows, rvu, gpci, year, locality")
    unknown = sorted(set(data) - {"file", "rows", "rvu", "gpci", "year", "locality"})
    if unknown:
        raise ValueError(f"{file}: fees: unknown key(s) {', '.join(unknown)}")
    rows: list[FeeRow] = []
    if "file" in data:
        rows.extend(load_fee_file(file.parent / str(data["file"])))
    if "rows" in data:
        rows.extend(parse_fee_text(tomli_w.dumps({"fees": data["rows"]}), f"{file} [fees] rows", toml=True))
    pfs: dict[int, PfsData] = {}
    if "rvu" in data or "gpci" in data:
        if not ("rvu" in data and "gpci" in data and isinstance(data.get("year"), int)):
            raise ValueError(f"{file}: fees: rvu, gpci and year go together")
        rvu, gpci = file.parent / str(data["rvu"]), file.parent / str(data["gpci"])
        year = int(data["year"])
        pfs[year] = PfsData(
            year,
            rvu.stem,
            "case file",
            parse_pprrvu(rvu.read_text("utf-8"), str(rvu)),
            parse_gpci(gpci.read_text("utf-8"), str(gpci)),
        )
    return FeeBook(tuple(rows), str(data.get("file", "")), pfs, data.get("locality"))


def _differences(expect: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    if key not in expect:
        return None
    return tuple(sorted(" ".join(str(x).split()) for x in expect[key]))


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def difference_texts(outcome: Outcome, kind: str) -> list[str]:
    """The outcome's repairs or edits as case-file strings: ``"97124 MODIFIER_ORDER GP,59 -> 59,GP"``."""
    out = []
    for d in outcome.differences:
        if d.kind != kind:
            continue
        where = outcome.lines[d.line].code if d.line is not None else "claim"
        out.append(f"{where} {d.code} {_shown(d.billed)} -> {_shown(d.expected)}")
    return sorted(out)


def load_cases(path: str | Path) -> list[Case]:
    """Load the cases of one case file, or of every ``*.toml`` below a directory."""
    path = Path(path)
    files = sorted(path.rglob("*.toml")) if path.is_dir() else [path]
    cases: list[Case] = []
    for file in files:
        try:
            data = tomllib.loads(file.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{file}: invalid TOML: {exc}") from None
        name = file.stem
        base = data["encounter"]
        title = data.get("title", "")
        fees = _fees(file, data.get("fees"))
        cases.append(
            _case(str(file), name, data["payer"], base, data.get("expect", {}), data.get("policy"), title, fees)
        )
        for n, variant in enumerate(data.get("variants", [])):
            encounter = copy.deepcopy(base)
            for key, value in variant.get("set", {}).items():
                set_path(encounter, key, value)
            vid = f"{name}[{variant.get('name', n)}]"
            cases.append(
                _case(
                    str(file),
                    vid,
                    variant.get("payer", data["payer"]),
                    encounter,
                    variant.get("expect", {}),
                    variant.get("policy", data.get("policy")),
                    variant.get("title", title),
                    fees,
                )
            )
    return cases


@contextlib.contextmanager
def isolated_engine(*plugins: object, entry_points: bool = True) -> Iterator[Engine]:
    """Yield an engine with its own plugin host.

    The host loads the installed plugins (unless ``entry_points=False``) plus ``plugins``; nothing
    is shared with other engines.
    """
    yield Engine(PluginHost(plugins, entry_points=entry_points))


def _engine_for(case: Case, engine: Engine) -> Engine:
    if case.fees is not None:
        engine = Engine(engine.host, engine.catalogue, fees=case.fees)
    if not case.policy:
        return engine
    base = engine.host.payer(case.payer)
    overlay = {"schema_version": 1, "extends": case.payer, **case.policy}
    overlay.setdefault("payer", {"id": case.payer, "name": base.name, "policy_version": "case-overlay"})
    host = engine.host
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{case.payer}-overlay.toml"
        file.write_text(tomli_w.dumps(overlay), "utf-8")
        policy = load_policy(file, host.kinds, resolver=host.resolve)
    return Engine(host.with_policy(case.payer, policy), engine.catalogue, fees=engine.fees)


def run_case(case: Case, engine: Engine | None = None, *, trace: bool = True) -> Outcome:
    """Evaluate the case's encounter for its payer (``trace=False``: without building the trace)."""
    engine = engine or Engine()
    encounter = Encounter.from_mapping(case.encounter, catalogue=engine.catalogue)
    if not trace:
        return _engine_for(case, engine).evaluate(encounter, case.payer, trace=False)
    return _engine_for(case, engine).check(encounter, case.payer)


def _actual(outcome: Outcome) -> tuple[list[str], list[str]]:
    lines = []
    for line in outcome.lines:
        text = f"{line.code} x{line.units} [{', '.join(line.modifiers)}]"
        if line.status != "billable":
            text += f" {line.status}"
        lines.append(text)
    return lines, sorted(f.code for f in outcome.findings)


def check_case(case: Case, engine: Engine | None = None) -> list[str]:
    """Evaluate a case and return the differences (empty when the outcome is as expected)."""
    outcome = run_case(case, engine)
    lines, findings = _actual(outcome)
    problems = []
    if lines != list(case.lines):
        problems.append("lines differ:\n" + _side_by_side(list(case.lines), lines))
    for i, ptrs in case.pointers.items():
        if i < len(outcome.lines) and outcome.lines[i].diagnosis_pointers != ptrs:
            problems.append(
                f"line {i + 1} ({lines[i]}): diagnosis pointers {list(outcome.lines[i].diagnosis_pointers)}, expected {list(ptrs)}"
            )
    if findings != list(case.findings):
        detail = "\n".join(f"      {f.severity:<15} {f.code}: {f.message} [{f.rule}]" for f in outcome.findings)
        problems.append(
            "finding codes differ:\n"
            + _side_by_side(list(case.findings), findings)
            + "\n    actual findings:\n"
            + detail
        )
    problems.extend(_money_problems(case, outcome))
    for kind, wanted in (("repair", case.repairs), ("edit", case.edits)):
        if wanted is None:
            continue
        got = difference_texts(outcome, kind)
        if got != list(wanted):
            detail = "\n".join(f"      {d.kind:<6} {d.code}: {d.message} [{d.rule}]" for d in outcome.differences)
            problems.append(
                f"{kind}s differ:\n" + _side_by_side(list(wanted), got) + "\n    actual differences:\n" + detail
            )
    return problems


def _money_problems(case: Case, outcome: Outcome) -> list[str]:
    problems = []
    if case.allowed is not None:
        got = [money_text(line.allowed) or "-" for line in outcome.lines]
        if got != list(case.allowed):
            steps = "\n".join(
                f"      line {t.line}: {t.before} -> {t.after} [{t.rule}] {t.reason}" for t in outcome.trace if t.field == "allowed"
            )
            problems.append("allowed amounts differ:\n" + _side_by_side(list(case.allowed), got) + "\n    pricing steps:\n" + steps)
    if case.total is not None and (money_text(outcome.expected_total) or "-") != case.total:
        problems.append(f"expected_total {money_text(outcome.expected_total)}, expected {case.total}")
    if case.cost is not None:
        got_cost = {k: money_text(v) for k, v in outcome.cost_by_finding.items()}
        if got_cost != dict(case.cost):
            problems.append(f"cost_by_finding {got_cost}, expected {dict(case.cost)}")
    return problems


def _side_by_side(expected: list[str], actual: list[str]) -> str:
    width = max([len(x) for x in expected] + [8])
    rows = [f"    {'expected':<{width}}  | actual"]
    for i in range(max(len(expected), len(actual))):
        e = expected[i] if i < len(expected) else ""
        a = actual[i] if i < len(actual) else ""
        mark = " " if e == a else "≠"
        rows.append(f"  {mark} {e:<{width}}  | {a}")
    return "\n".join(rows)


def assert_case(case: Case, engine: Engine | None = None) -> None:
    """Raise AssertionError with a readable diff when the case's outcome is not as expected."""
    problems = check_case(case, engine)
    if problems:
        title = f" — {case.title}" if case.title else ""
        raise AssertionError(f"case {case.id} ({case.file}), payer {case.payer}{title}\n" + "\n".join(problems))


def case_ids(cases: Iterable[Case]) -> list[str]:
    """Readable pytest ids: ``payer/case``."""
    return [f"{c.payer}/{c.id}" for c in cases]
