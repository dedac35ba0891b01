"""Money: fee schedules, payment rules, and the expected allowed amount of each claim line.

A payer's policy says how its lines are priced, with rules read by the engine after the claim is
built (the ``price`` phase, like ``timed_units`` in the units phase):

``fee_schedule``
    where the amount of one unit comes from: ``method = "rbrvs"`` computes the Medicare physician
    fee schedule the way CMS does — ``[(work RVU × work GPCI) + (PE RVU × PE GPCI) + (MP RVU ×
    MP GPCI)] × conversion factor`` — from CMS's relative value and GPCI files (imported with
    ``payerpolicy fees import``) and the conversion factor in force on the date of service (policy
    data); ``method = "fee_file"`` takes the amount from the practice's own fee file (``--fees``).
``therapy_mppr``
    the multiple procedure payment reduction: the practice-expense part (or, for a payer that
    says so, the whole amount) of the second and later units and procedures of the listed codes
    on one day is reduced by ``percent``; the unit with the highest practice-expense payment is
    paid in full.
``assistant_payment``
    a line carrying one of the ``modifiers`` (CQ, CO) is paid ``percent`` of the amount otherwise
    due.

Lines that do not go on the claim, and lines expected to be denied, are valued at zero. Every
amount, and every reduction, is a trace entry (field ``allowed``) with its rule and source.
Money is ``Decimal`` throughout, rounded to the cent half up (CMS publishes its per-unit payment
amounts with two decimals; its rounding of a reduction is not published — see
docs/fee-schedules.md).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from .errors import PayerPolicyError, PolicyProblem, PolicyValidationError
from .model import ClaimLine, Finding

if TYPE_CHECKING:
    from .rules import Policy, Rule

# csv, hashlib, tomllib and pathlib are imported by the functions that read fee files: a cold
# `payerpolicy check` without fees never does.

__all__ = [
    "CENT",
    "FEES_DIR_ENV",
    "FEES_FILE_ENV",
    "LOCALITY_ENV",
    "FeeBook",
    "FeeRow",
    "Gpci",
    "LinePrice",
    "Payment",
    "PfsData",
    "Pricing",
    "RvuRow",
    "cents",
    "check_fee_payers",
    "load_fee_file",
    "money_text",
    "price_lines",
]

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)

#: A fee file (CSV or TOML) the engine reads when none is given (``payerpolicy batch`` workers).
FEES_FILE_ENV = "PAYERPOLICY_FEES"
#: A directory written by ``payerpolicy fees import`` (CMS relative value and GPCI files).
FEES_DIR_ENV = "PAYERPOLICY_FEES_DIR"
#: The Medicare payment locality to price with (``MAC-LOCALITY`` like ``01112-05``); national when unset.
LOCALITY_ENV = "PAYERPOLICY_MEDICARE_LOCALITY"

#: PPRRVU status codes paid under the fee schedule (A active, R restricted, T paid only when no
#: other service is paid that day); the others (B bundled, I not valid for Medicare, N, X
#: statutory exclusion, C carrier priced, ...) have no fee schedule amount.
PAYABLE_STATUS = ("A", "R", "T")

#: Largest fee file read (bytes) and rows kept.
MAX_FEE_FILE_BYTES = 8 * 1024 * 1024

#: Finding codes of the payment reductions (their dollars show in ``cost_by_finding``).
MPPR_FINDING = "MPPR_REDUCTION"
ASSISTANT_FINDING = "ASSISTANT_PAYMENT_REDUCTION"
UNPAID = "NOT_PAID"


def cents(value: Decimal) -> Decimal:
    """``value`` rounded to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_text(value: Decimal | None) -> str | None:
    """An amount as outcome format v1 writes it: a decimal string with two places (None stays None)."""
    return None if value is None else f"{cents(value):.2f}"


def _dollars(value: Decimal) -> str:
    return f"${cents(value):,.2f}"


# --------------------------------------------------------------------------------------------
# Data: the practice's fee file, CMS's relative values and GPCIs


@attrs.frozen
class FeeRow:
    """One row of a fee file: the allowed amount of one unit of ``code`` (with ``modifier``) for ``payer``.

    ``payer`` empty means every payer priced from the fee file; ``where`` is ``FILE row N``.
    """

    code: str
    amount: Decimal
    payer: str = ""
    modifier: str = ""
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None
    where: str = ""

    def active_on(self, day: dt.date) -> bool:
        """Whether the row is in force on ``day``."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_to is None or day <= self.effective_to


@attrs.frozen
class RvuRow:
    """One PPRRVU row: relative value units and status of ``code`` (``modifier`` empty for the global service)."""

    code: str
    modifier: str
    status: str
    work: Decimal
    pe_nonfacility: Decimal
    pe_facility: Decimal
    mp: Decimal
    mult_proc: str = ""


@attrs.frozen
class Gpci:
    """The geographic practice cost indices of one Medicare payment locality."""

    locality: str
    name: str
    work: Decimal
    pe: Decimal
    mp: Decimal


NATIONAL = Gpci("national", "national (no geographic adjustment)", Decimal(1), Decimal(1), Decimal(1))


@attrs.frozen
class PfsData:
    """One year of CMS relative value and GPCI data, with the version and hashes of the files it came from."""

    year: int
    version: str
    source: str
    rvus: Mapping[tuple[str, str], RvuRow] = attrs.field(hash=False)
    gpcis: Mapping[str, Gpci] = attrs.field(hash=False)
    sha256: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class FeeBook:
    """Everything amounts are computed from: the practice's fee file and CMS's imported data.

    ``locality`` is the Medicare payment locality (``MAC-LOCALITY``); None prices at the national
    amount (every GPCI 1.000).
    """

    rows: tuple[FeeRow, ...] = ()
    file: str = ""
    pfs: Mapping[int, PfsData] = attrs.field(factory=dict, hash=False)
    locality: str | None = None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to price with."""
        return not self.rows and not self.pfs

    def contract(self, payer: str, code: str, modifiers: Sequence[str], day: dt.date, *, any_payer: bool) -> FeeRow | None:
        """The fee file row for one line, or None.

        The payer's own row comes before a row for every payer, a row for one of the line's
        modifiers before a row without one; ``any_payer`` False ignores rows without a payer.
        """
        best: tuple[int, int, FeeRow] | None = None
        for row in self.rows:
            if row.code != code or not row.active_on(day):
                continue
            if row.payer and row.payer != payer:
                continue
            if not row.payer and not any_payer:
                continue
            if row.modifier and row.modifier not in modifiers:
                continue
            rank = (1 if row.payer else 0, 1 if row.modifier else 0, row)
            if best is None or rank[:2] > best[:2]:
                best = rank
        return best[2] if best else None


# --------------------------------------------------------------------------------------------
# The fee file (CSV or TOML), validated like a policy file: every problem at once

_FEE_COLUMNS = ("code", "amount", "modifier", "payer", "effective_from", "effective_to")


def load_fee_file(path: str | os.PathLike[str]) -> tuple[FeeRow, ...]:
    """Read and validate a fee file; raise :class:`PolicyValidationError` listing every problem.

    CSV: a header row with ``code`` and ``amount`` (and optionally ``modifier``, ``payer``,
    ``effective_from``, ``effective_to``); lines starting with ``#`` are comments. TOML: an array
    ``[[fees]]`` of tables with the same keys.
    """
    from pathlib import Path

    name = str(path)
    try:
        file = Path(path)
        if not file.is_file():
            raise OSError("not a regular file")
        size = file.stat().st_size
        if size > MAX_FEE_FILE_BYTES:
            raise OSError(f"larger than the limit of {MAX_FEE_FILE_BYTES} bytes")
        text = file.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, UnicodeDecodeError):
            reason = f"not UTF-8 text (byte {exc.start + 1})"
        raise PolicyValidationError([PolicyProblem(name, "(file)", "a readable fee file (CSV or TOML)", reason)]) from None
    return parse_fee_text(text, name, toml=name.lower().endswith(".toml"))


def parse_fee_text(text: str, name: str, *, toml: bool) -> tuple[FeeRow, ...]:
    """Validate fee file text (CSV, or TOML when ``toml``); every problem at once."""
    import csv
    import tomllib

    problems: list[PolicyProblem] = []
    records: list[tuple[str, Mapping[str, Any]]] = []
    if toml:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
            raise PolicyValidationError([PolicyProblem(name, "(file)", "valid TOML", f"a syntax error: {exc}")]) from None
        unknown = [k for k in data if k != "fees"]
        for key in unknown:
            problems.append(PolicyProblem(name, key, "only [[fees]] entries", "an unknown key"))
        entries = data.get("fees", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(PolicyProblem(name, "fees", "an array of tables [[fees]]", type(entries).__name__))
            entries = []
        for i, entry in enumerate(entries):
            records.append((f"fees[{i}]", entry))
    else:
        numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip() and not line.lstrip().startswith("#")]
        if not numbered:
            raise PolicyValidationError([PolicyProblem(name, "(file)", "a header row with code and amount", "no rows")])
        header = [h.strip().lower() for h in next(csv.reader([numbered[0][1]]))]
        for column in ("code", "amount"):
            if column not in header:
                problems.append(PolicyProblem(name, f"line {numbered[0][0]} (header)", f"a column {column!r}", ", ".join(header) or "no header"))
        for column in header:
            if column not in _FEE_COLUMNS:
                problems.append(
                    PolicyProblem(name, f"line {numbered[0][0]} (header): {column}", f"one of {', '.join(_FEE_COLUMNS)}", "an unknown column")
                )
        if problems:
            raise PolicyValidationError(problems)
        for n, line in numbered[1:]:
            cells = next(csv.reader([line]))
            if len(cells) > len(header):
                problems.append(PolicyProblem(name, f"line {n}", f"at most {len(header)} columns", str(len(cells))))
                continue
            records.append((f"line {n}", {k: cells[i].strip() if i < len(cells) else "" for i, k in enumerate(header)}))
    rows: list[FeeRow] = []
    seen: dict[tuple[str, str, str, dt.date | None], str] = {}
    for where, record in records:
        row = _fee_row(name, where, record, problems, toml=toml)
        if row is None:
            continue
        identity = (row.payer, row.code, row.modifier, row.effective_from)
        if identity in seen:
            problems.append(
                PolicyProblem(
                    name, f"{where}: code", f"one row per payer, code, modifier and start date (also {seen[identity]})", repr(row.code)
                )
            )
            continue
        seen[identity] = where
        rows.append(row)
    if problems:
        raise PolicyValidationError(problems)
    return tuple(rows)


def _fee_row(name: str, where: str, record: Mapping[str, Any], problems: list[PolicyProblem], *, toml: bool) -> FeeRow | None:
    from .codeset import parse_code_item

    before = len(problems)
    for key in record:
        if key not in _FEE_COLUMNS:
            problems.append(PolicyProblem(name, f"{where}: {key}", f"one of {', '.join(_FEE_COLUMNS)}", "an unknown key"))
    code = record.get("code")
    code_text = code.strip().upper() if isinstance(code, str) else ""
    if not code_text or parse_code_item(code_text) is None or "-" in code_text:
        problems.append(PolicyProblem(name, f"{where}: code", 'a 5-character CPT/HCPCS code like "97140"', _found(code)))
    raw = record.get("amount")
    amount: Decimal | None = None
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        try:
            amount = Decimal(str(raw).strip().lstrip("$").replace(",", ""))
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        expected = 'an amount as a string like "54.20" (>= 0, at most 2 decimals)' if toml else 'an amount like 54.20 (>= 0, at most 2 decimals)'
        problems.append(PolicyProblem(name, f"{where}: amount", expected, _found(raw)))
    modifier = record.get("modifier") or ""
    if not isinstance(modifier, str) or (modifier and not (len(modifier.strip()) == 2 and modifier.strip().isalnum())):
        problems.append(PolicyProblem(name, f"{where}: modifier", 'a 2-character modifier like "GP" or nothing', _found(modifier)))
        modifier = ""
    payer = record.get("payer") or ""
    if not isinstance(payer, str) or (payer and not payer.strip().replace("_", "").isalnum()):
        problems.append(PolicyProblem(name, f"{where}: payer", "a payer id like aetna or nothing (every payer)", _found(payer)))
        payer = ""
    dates: list[dt.date | None] = []
    for key in ("effective_from", "effective_to"):
        value = record.get(key)
        if value in (None, ""):
            dates.append(None)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            dates.append(value)
        else:
            try:
                dates.append(dt.date.fromisoformat(str(value)))
            except ValueError:
                problems.append(PolicyProblem(name, f"{where}: {key}", "an ISO date like 2025-01-01 or nothing", _found(value)))
                dates.append(None)
    if dates[0] and dates[1] and dates[1] < dates[0]:
        problems.append(PolicyProblem(name, f"{where}: effective_to", f"a date on or after effective_from {dates[0]}", str(dates[1])))
    if len(problems) != before or amount is None:
        return None
    return FeeRow(code_text, amount, payer.strip().lower(), modifier.strip().upper(), dates[0], dates[1], f"{name} {where}")


def check_fee_payers(rows: Iterable[FeeRow], file: str, known: Iterable[str]) -> None:
    """Raise :class:`PolicyValidationError` naming every row whose ``payer`` is not one of ``known``."""
    payers = sorted(known)
    problems = [
        PolicyProblem(
            file,
            f"{row.where.removeprefix(file).strip()}: payer",
            f"an installed payer id ({', '.join(payers)}) or nothing",
            repr(row.payer),
        )
        for row in rows
        if row.payer and row.payer not in payers
    ]
    if problems:
        raise PolicyValidationError(problems)


def _found(value: Any) -> str:
    if value is None or value == "":
        return "nothing"
    if isinstance(value, str):
        return repr(value[:40])
    return repr(value)[:40]


# --------------------------------------------------------------------------------------------
# Pricing


@attrs.frozen
class LinePrice:
    """The money of one line: the charge, the expected allowed amount, and what findings cost it.

    ``allowed`` is None when no fee is known for the line's code; ``lost`` maps finding codes to
    the dollars they took off the line (denied or cut units valued at their full fee, reductions).
    """

    charge: Decimal | None = None
    allowed: Decimal | None = None
    lost: Mapping[str, Decimal] = attrs.field(factory=dict)


@attrs.frozen
class Step:
    """One pricing step of one line, shown in the trace (field ``allowed``)."""

    rule: str
    source: str
    line: int
    before: str | None
    after: str
    reason: str


@attrs.frozen
class Pricing:
    """The result of pricing an outcome's lines: one :class:`LinePrice` per line, the steps, and findings."""

    lines: tuple[LinePrice, ...]
    steps: tuple[Step, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def priced(self) -> bool:
        """Whether any line has an amount."""
        return any(p.allowed is not None for p in self.lines)


@attrs.frozen
class _Unit:
    """The fee of one unit: the full amount, the amount with the MPPR reduction, the PE payment."""

    full: Decimal
    reduced: Decimal | None
    pe_payment: Decimal | None
    rule: str
    source: str
    how: str


def _conversion_factor(rule: Rule, day: dt.date) -> tuple[Decimal, str] | None:
    table: Mapping[str, str] = rule.get("conversion_factors") or {}
    best: tuple[dt.date, str] | None = None
    for start, value in table.items():
        try:
            since = dt.date.fromisoformat(start)
        except ValueError:
            raise PayerPolicyError(f"rule {rule.id} ({rule.origin}): conversion_factors key {start!r} is not an ISO date") from None
        if since <= day and (best is None or since > best[0]):
            best = (since, value)
    if best is None:
        return None
    try:
        return Decimal(best[1]), best[0].isoformat()
    except InvalidOperation:
        raise PayerPolicyError(f"rule {rule.id} ({rule.origin}): conversion factor {best[1]!r} is not a number") from None


@attrs.frozen
class Payment:
    """Whom and when a line is priced for: the payer's id, its policy and the date of service."""

    payer: str
    policy: Policy
    day: dt.date


def _mppr_rule(ctx: Payment) -> Rule | None:
    rules = ctx.policy.rules_of("therapy_mppr", ctx.day)
    return rules[0] if rules else None


def _unit_fee(line: ClaimLine, rule: Rule, book: FeeBook, ctx: Payment, mppr: Rule | None) -> _Unit | None:
    day = ctx.day
    payer = ctx.payer
    method = rule["method"]
    row = book.contract(payer, line.code, line.modifiers, day, any_payer=method == "fee_file")
    whole_mppr = mppr is not None and mppr["component"] == "whole" and line.code in mppr["codes"]
    if row is not None:
        reduced = cents(row.amount * (HUNDRED - mppr["percent"]) / HUNDRED) if whole_mppr and mppr is not None else None
        return _Unit(row.amount, reduced, None, rule.id, f"{rule.source}; {row.where}", f"fee file: {_dollars(row.amount)} a unit ({row.where})")
    if method != "rbrvs":
        return None
    data = book.pfs.get(day.year)
    if data is None:
        return None
    rvu = data.rvus.get((line.code, ""))
    if rvu is None or rvu.status not in PAYABLE_STATUS:
        return None
    found = _conversion_factor(rule, day)
    if found is None:
        return None
    cf, since = found
    gpci = data.gpcis.get(book.locality, NATIONAL) if book.locality else NATIONAL
    facility = rule["setting"] == "facility"
    pe = rvu.pe_facility if facility else rvu.pe_nonfacility
    work_part, pe_part, mp_part = rvu.work * gpci.work, pe * gpci.pe, rvu.mp * gpci.mp
    full = cents((work_part + pe_part + mp_part) * cf)
    reduced = None
    if mppr is not None and line.code in mppr["codes"]:
        share = (HUNDRED - mppr["percent"]) / HUNDRED
        reduced = cents((work_part + pe_part * share + mp_part) * cf) if mppr["component"] != "whole" else cents(full * share)
    setting = "facility" if facility else "non-facility"
    how = (
        f"[(work {rvu.work} × {gpci.work}) + ({setting} PE {pe} × {gpci.pe}) + (MP {rvu.mp} × {gpci.mp})] × CF {cf}"
        f" = {_dollars(full)} a unit (CMS {data.version}, locality {gpci.locality}; CF from {since})"
    )
    source = f"{rule.source}; CMS relative value file {data.version} ({data.source})"
    return _Unit(full, reduced, cents(pe_part * cf), rule.id, source, how)


def price_lines(
    lines: Sequence[ClaimLine],
    ctx: Payment,
    book: FeeBook | None,
    *,
    findings: Sequence[Finding] = (),
    counted: Sequence[int] | None = None,
    unit_charges: Sequence[Decimal | None] | None = None,
    causes: Sequence[str] | None = None,
) -> Pricing:
    """Price ``lines`` (in claim order) for the payer, policy and day of ``ctx``.

    ``findings`` (their ``line`` indexes ``lines``) name what a denied or cut line lost;
    ``counted`` is each line's units when units were counted (the units a later rule cut or
    denied); ``unit_charges`` the practice's charge per unit of each line's entry; ``causes`` the
    finding code each line's lost dollars are charged to (by default its finding of highest
    severity).
    """
    n = len(lines)
    counted = list(counted) if counted is not None else [line.units for line in lines]
    charges: list[Decimal | None] = []
    for i, line in enumerate(lines):
        if line.billed is not None and line.billed.charge is not None:
            charges.append(cents(line.billed.charge))
        elif unit_charges is not None and (per_unit := unit_charges[i]) is not None:
            charges.append(cents(per_unit * line.units))
        else:
            charges.append(None)
    schedule = ctx.policy.rules_of("fee_schedule", ctx.day)
    if book is None or book.empty or not schedule:
        return Pricing(tuple(LinePrice(charge=c) for c in charges))
    rule = schedule[0]
    mppr = _mppr_rule(ctx)
    assistant = ctx.policy.rules_of("assistant_payment", ctx.day)
    for r in (mppr, *assistant):
        if r is not None and r["percent"] > 100:
            raise PayerPolicyError(f"rule {r.id} ({r.origin}): percent must be 0 to 100, found {r['percent']}")
    units_fee = [_unit_fee(line, rule, book, ctx, mppr) for line in lines]
    steps: list[Step] = []
    allowed: list[Decimal | None] = [None] * n
    lost: list[dict[str, Decimal]] = [{} for _ in range(n)]
    reduced_units = [0] * n

    def cause(i: int) -> str:
        if causes is not None:
            return causes[i]
        rank = {"expected_denial": 0, "error": 1, "warning": 2, "info": 3}
        mine = sorted((rank[f.severity], k, f.code) for k, f in enumerate(findings) if f.line == i)
        return mine[0][2] if mine else UNPAID

    # MPPR: one full unit for the line with the highest PE payment; every other unit reduced
    if mppr is not None:
        therapy = [
            i
            for i, line in enumerate(lines)
            if line.status == "billable" and line.units > 0 and line.code in mppr["codes"] and units_fee[i] is not None
        ]
        if sum(lines[i].units for i in therapy) > 1:
            def weight(i: int) -> Decimal:
                unit = units_fee[i]
                assert unit is not None
                return unit.pe_payment if unit.pe_payment is not None else unit.full

            top = max(therapy, key=lambda i: (weight(i), -i))
            for i in therapy:
                reduced_units[i] = lines[i].units - (1 if i == top else 0)

    for i, line in enumerate(lines):
        unit = units_fee[i]
        if unit is None:
            steps.append(Step(rule.id, rule.source, i, None, "unknown", _unknown(line, rule, book, ctx)))
            continue
        potential = max(counted[i], line.units)
        if line.status != "billable":
            allowed[i] = ZERO
            value = cents(unit.full * potential)
            if value:
                lost[i][cause(i)] = value
            why = "not on the claim" if line.status == "not_billable" else "expected to be denied"
            steps.append(Step(rule.id, unit.source, i, None, "0.00", f"{unit.how}; the line is {why}: valued at $0.00"))
            continue
        amount = cents(unit.full * line.units)
        steps.append(Step(unit.rule, unit.source, i, None, f"{amount:.2f}", f"{unit.how} × {line.units} = {_dollars(amount)}"))
        if potential > line.units:
            lost[i][cause(i)] = cents(unit.full * (potential - line.units))
        k = reduced_units[i]
        if k and mppr is not None and unit.reduced is None:
            steps.append(
                Step(
                    mppr.id,
                    mppr.source,
                    i,
                    f"{amount:.2f}",
                    f"{amount:.2f}",
                    f"MPPR applies to {k} unit(s) of this line, but the fee file gives one amount a unit and no"
                    " practice-expense part: not reduced here, so the payer may pay less than this amount",
                )
            )
        if k and mppr is not None and unit.reduced is not None and unit.reduced < unit.full:
            after = cents(unit.full * (line.units - k) + unit.reduced * k)
            what = "practice-expense part" if mppr["component"] != "whole" else "amount"
            steps.append(
                Step(
                    mppr.id,
                    mppr.source,
                    i,
                    f"{amount:.2f}",
                    f"{after:.2f}",
                    f"MPPR: {k} of {line.units} unit(s) are second or later therapy units of the day: {mppr['percent']} % off the"
                    f" {what}, {_dollars(unit.full)} → {_dollars(unit.reduced)} a unit",
                )
            )
            lost[i][MPPR_FINDING] = lost[i].get(MPPR_FINDING, ZERO) + amount - after
            amount = after
        for a in assistant:
            hit = [m for m in a["modifiers"] if m in line.modifiers]
            if not hit:
                continue
            after = cents(amount * a["percent"] / HUNDRED)
            steps.append(
                Step(
                    a.id,
                    a.source,
                    i,
                    f"{amount:.2f}",
                    f"{after:.2f}",
                    f"{hit[0]}: furnished in whole or in part by a therapy assistant, paid {a['percent']} % of {_dollars(amount)}",
                )
            )
            lost[i][ASSISTANT_FINDING] = lost[i].get(ASSISTANT_FINDING, ZERO) + amount - after
            amount = after
            break
        allowed[i] = amount

    extra: list[Finding] = []
    for code, rules in ((MPPR_FINDING, [mppr] if mppr else []), (ASSISTANT_FINDING, list(assistant))):
        for i in range(n):
            if code in lost[i] and lost[i][code] > 0 and rules:
                r = next((x for x in rules if any(s.rule == x.id and s.line == i for s in steps)), rules[0])
                extra.append(
                    Finding(
                        code,
                        "info",
                        f"{lines[i].code}: {_dollars(lost[i][code])} less than the full fee"
                        + (" (multiple procedure payment reduction)" if code == MPPR_FINDING else " (therapy assistant, 85 % payment)"),
                        r.id,
                        r.source,
                        i,
                    )
                )
    prices = tuple(LinePrice(charges[i], allowed[i], {k: v for k, v in lost[i].items() if v > 0}) for i in range(n))
    return Pricing(prices, tuple(steps), tuple(extra))


def _unknown(line: ClaimLine, rule: Rule, book: FeeBook, ctx: Payment) -> str:
    day = ctx.day
    if rule["method"] == "fee_file":
        where = f" in {book.file}" if book.file else ""
        return f"no fee{where} for {line.code} on {day} for {ctx.payer}: amount unknown (add a row to the fee file, --fees)"
    data = book.pfs.get(day.year)
    if data is None:
        return (
            f"no CMS relative value data for {day.year} imported (payerpolicy fees import) and no {ctx.payer} row in a fee file:"
            f" {line.code} amount unknown"
        )
    rvu = data.rvus.get((line.code, ""))
    if rvu is None:
        return f"{line.code} is not in CMS relative value file {data.version}: amount unknown"
    if rvu.status not in PAYABLE_STATUS:
        return f"{line.code} has fee schedule status {rvu.status} in CMS {data.version} (not separately paid under the fee schedule)"
    return f"no conversion factor in force on {day} in rule {rule.id}: amount unknown"


def amounts_of(lines: Iterable[ClaimLine]) -> Decimal:
    """The sum of the lines' known allowed amounts."""
    return sum((line.allowed for line in lines if line.allowed is not None), ZERO)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
