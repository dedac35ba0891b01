"""Synthetic 837P (005010X222A1) interchanges with many claims: test fixtures and benchmarks.

:func:`interchange_text` writes claims described by :class:`SynthClaim` as one interchange (one
``GS``, one or more ``ST``), with the loops :mod:`payerpolicy.formats.x12_in` reads: 2000A billing
provider, 2000B subscriber with ``SBR`` and the 2010BB payer, 2000C patient when the patient is not
the subscriber, 2300 ``CLM``/``HI``, 2310B rendering provider, 2310C service facility, 2400
``LX``/``SV1``/``DTP*472``. :func:`synthetic_837p` draws ``n`` claims for the five builtin payers
from a seed (the same seed gives the same bytes) and writes them as several interchanges. Every
name, id and address is a placeholder; NPIs have a valid check digit. Nothing here is real data.

Command line::

    python -m payerpolicy.formats.x12_synth 1000 --seed 7 > claims.x12
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from collections.abc import Sequence
from decimal import Decimal

import attrs

__all__ = ["SynthClaim", "SynthLine", "SynthProvider", "interchange_text", "npi_with_check_digit", "synthetic_837p", "synthetic_claims"]

_IMPLEMENTATION = "005010X222A1"


def npi_with_check_digit(first_nine: str) -> str:
    """A 10-digit NPI: ``first_nine`` and its Luhn check digit (computed with the 80840 prefix)."""
    digits = [int(c) for c in "80840" + first_nine]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return first_nine + str((10 - total % 10) % 10)


@attrs.frozen
class SynthProvider:
    """A billing, rendering or facility provider: name, NPI, taxonomy, address."""

    name: str
    npi: str
    taxonomy: str | None = None
    first_name: str | None = None  # a person (NM102 1) when set
    state: str = "NC"
    city: str = "RALEIGH"
    zip: str = "276011234"
    tax_id: str = "000000000"


@attrs.frozen
class SynthLine:
    """One service line: code, modifiers in claim order, units, diagnosis pointers, charge."""

    code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    pointers: tuple[int, ...] = (1,)
    charge: Decimal = Decimal("0")


@attrs.frozen
class SynthClaim:
    """One claim and what surrounds it. Consecutive claims with the same ``member_id`` and payer share a subscriber loop."""

    claim_id: str
    date_of_service: dt.date
    diagnoses: tuple[str, ...]
    lines: tuple[SynthLine, ...]
    billing: SynthProvider
    payer_name: str
    payer_id: str
    filing_indicator: str
    member_id: str = "PLACEHOLDER0001"
    subscriber: tuple[str, str] = ("PLACEHOLDER", "SUBSCRIBER")
    patient: tuple[str, str] | None = None  # a 2000C patient (a dependant) when set
    rendering: SynthProvider | None = None
    facility: SynthProvider | None = None


def _seg(*elements: str) -> str:
    parts = list(elements)
    while parts and parts[-1] == "":
        parts.pop()
    return "*".join(parts)


def _amount(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _provider_name(p: SynthProvider, entity: str) -> str:
    if p.first_name:
        return _seg("NM1", entity, "1", p.name, p.first_name, "", "", "", "XX", p.npi)
    return _seg("NM1", entity, "2", p.name, "", "", "", "", "XX", p.npi)


def _claim_segments(claim: SynthClaim) -> list[str]:
    total = sum((line.charge for line in claim.lines), Decimal(0))
    out = [
        _seg("CLM", claim.claim_id, _amount(total), "", "", "11:B:1", "Y", "A", "Y", "Y"),
        _seg("HI", *(f"{'ABK' if n == 0 else 'ABF'}:{dx.replace('.', '')}" for n, dx in enumerate(claim.diagnoses))),
    ]
    if claim.rendering is not None:
        out.append(_provider_name(claim.rendering, "82"))
        if claim.rendering.taxonomy:
            out.append(_seg("PRV", "PE", "PXC", claim.rendering.taxonomy))
    if claim.facility is not None:
        out += [
            _seg("NM1", "77", "2", claim.facility.name, "", "", "", "", "XX", claim.facility.npi),
            _seg("N3", "PLACEHOLDER ADDRESS"),
            _seg("N4", claim.facility.city, claim.facility.state, claim.facility.zip),
        ]
    day = claim.date_of_service.strftime("%Y%m%d")
    for n, line in enumerate(claim.lines, 1):
        procedure = ":".join(("HC", line.code, *line.modifiers))
        out += [
            _seg("LX", str(n)),
            _seg("SV1", procedure, _amount(line.charge), "UN", str(line.units), "", "", ":".join(str(p) for p in line.pointers)),
            _seg("DTP", "472", "D8", day),
        ]
    return out


def _transaction(claims: Sequence[SynthClaim], control: str, created: dt.datetime) -> list[str]:
    out = [
        _seg("ST", "837", control, _IMPLEMENTATION),
        _seg("BHT", "0019", "00", f"BATCH{control}", created.strftime("%Y%m%d"), created.strftime("%H%M"), "CH"),
        _seg("NM1", "41", "2", "PLACEHOLDER SUBMITTER", "", "", "", "", "46", "PLACEHOLDERSUB"),
        _seg("PER", "IC", "PLACEHOLDER CONTACT", "TE", "5555550100"),
        _seg("NM1", "40", "2", "PLACEHOLDER RECEIVER", "", "", "", "", "46", "PLACEHOLDERRCV"),
    ]
    hl = 0
    billing_hl = subscriber_hl = 0
    last_billing: SynthProvider | None = None
    last_subscriber: tuple[str, str, str] | None = None
    for claim in claims:
        if claim.billing != last_billing:
            hl += 1
            billing_hl = hl
            out.append(_seg("HL", str(hl), "", "20", "1"))
            if claim.billing.taxonomy:
                out.append(_seg("PRV", "BI", "PXC", claim.billing.taxonomy))
            out += [
                _provider_name(claim.billing, "85"),
                _seg("N3", "PLACEHOLDER ADDRESS"),
                _seg("N4", claim.billing.city, claim.billing.state, claim.billing.zip),
                _seg("REF", "EI", claim.billing.tax_id),
            ]
            last_billing = claim.billing
            last_subscriber = None
        key = (claim.member_id, claim.payer_id, claim.filing_indicator)
        if key != last_subscriber or claim.patient is not None:
            hl += 1
            subscriber_hl = hl
            self_ = claim.patient is None
            out += [
                _seg("HL", str(hl), str(billing_hl), "22", "0" if self_ else "1"),
                _seg("SBR", "P", "18" if self_ else "", "", "", "", "", "", "", claim.filing_indicator),
                _seg("NM1", "IL", "1", claim.subscriber[0], claim.subscriber[1], "", "", "", "MI", claim.member_id),
                _seg("N3", "PLACEHOLDER ADDRESS"),
                _seg("N4", "PLACEHOLDER", claim.billing.state, "00000"),
            ]
            if self_:
                out.append(_seg("DMG", "D8", "19700101", "U"))
            out.append(_seg("NM1", "PR", "2", claim.payer_name, "", "", "", "", "PI", claim.payer_id))
            last_subscriber = key if self_ else None
            if not self_:
                assert claim.patient is not None
                hl += 1
                out += [
                    _seg("HL", str(hl), str(subscriber_hl), "23", "0"),
                    _seg("PAT", "19"),
                    _seg("NM1", "QC", "1", claim.patient[0], claim.patient[1]),
                    _seg("N3", "PLACEHOLDER ADDRESS"),
                    _seg("N4", "PLACEHOLDER", claim.billing.state, "00000"),
                    _seg("DMG", "D8", "20100101", "U"),
                ]
        out += _claim_segments(claim)
    out.append(_seg("SE", str(len(out) + 1), control))
    return out


def interchange_text(
    claims: Sequence[SynthClaim], *, control: int = 1, created: dt.datetime | None = None, claims_per_transaction: int = 100
) -> str:
    """One interchange (one ``GS``) holding ``claims``, ``claims_per_transaction`` per ``ST``; segments end with ``~`` and a newline."""
    created = created or dt.datetime(2025, 3, 13, 9, 30)
    body: list[str] = []
    sets = 0
    for start in range(0, len(claims), claims_per_transaction):
        sets += 1
        body += _transaction(claims[start : start + claims_per_transaction], f"{sets:04d}", created)
    isa = _seg(
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "PAYERPOLICY".ljust(15), "ZZ", "RECEIVER".ljust(15),
        created.strftime("%y%m%d"), created.strftime("%H%M"), "^", "00501", f"{control:09d}", "0", "T", ":",
    )
    segments = [
        isa,
        _seg("GS", "HC", "PAYERPOLICY", "RECEIVER", created.strftime("%Y%m%d"), created.strftime("%H%M"), str(control), "X", _IMPLEMENTATION),
        *body,
        _seg("GE", str(sets), str(control)),
        _seg("IEA", "1", f"{control:09d}"),
    ]
    return "".join(f"{s}~\n" for s in segments)


# --------------------------------------------------------------------------------------------
# Random claims for the builtin payers

_PAYERS = (
    # payer name, payer identifier, SBR09, state of the billing provider
    ("PLACEHOLDER MEDICARE CONTRACTOR", "MACPLACEHOLDER", "MB", "NC"),
    ("BLUE CROSS BLUE SHIELD OF NORTH CAROLINA", "BCBSNCPLACEHOLDER", "BL", "NC"),
    ("AETNA", "60054", "CI", "NC"),
    ("PLACEHOLDER COMMERCIAL PLAN", "COMMPLACEHOLDER", "CI", "NC"),
    ("PLACEHOLDER WORKERS COMP CARRIER", "WCPLACEHOLDER", "WC", "CA"),
)
_TAXONOMY = {"DC": "111N00000X", "PT": "225100000X", "PTA": "225200000X", "OT": "225X00000X", "LMT": "225700000X", "MD": "207Q00000X"}
_DX_SPINE = ("M99.01", "M99.02", "M99.03", "M54.2", "M54.50", "M54.6", "S13.4XXA")
_DX_OTHER = ("M25.511", "M25.611", "M62.830", "M79.18")
_CHARGE = {"98940": "45", "98941": "55", "98942": "65", "97140": "38.50", "97110": "40", "97112": "42", "97124": "36",
           "97530": "44", "97161": "110", "97165": "115", "99213": "95", "97035": "20"}


def _random_claim(rng: random.Random, n: int, start: dt.date) -> SynthClaim:
    name, payer_id, filing, state = rng.choice(_PAYERS)
    ptype = rng.choice(("DC", "DC", "DC", "PT", "PT", "PTA", "OT", "LMT", "MD"))
    diagnoses = tuple(rng.sample(_DX_SPINE, rng.randint(1, 3)) + rng.sample(_DX_OTHER, rng.randint(0, 2)))
    therapy_mods: tuple[str, ...] = ("GP",) if filing == "MB" and ptype != "OT" else ("GO",) if filing == "MB" else ()
    if ptype == "PTA" and filing == "MB":
        therapy_mods = ("GP", "CQ")
    lines: list[SynthLine] = []
    if ptype == "DC":
        cmt = rng.choice(("98940", "98940", "98941", "98942"))
        lines.append(SynthLine(cmt, ("AT",) if filing == "MB" else (), pointers=tuple(range(1, min(len(diagnoses), 3) + 1))))
        for code in rng.sample(("97140", "97110", "97112", "97124"), rng.randint(0, 2)):
            mods = ("GP", "GY") if filing == "MB" else ("59",) if code in ("97140", "97124") else ()
            lines.append(SynthLine(code, mods, pointers=(len(diagnoses),)))
    elif ptype == "MD":
        lines.append(SynthLine("99213", pointers=(1,)))
        if rng.random() < 0.5:
            lines.append(SynthLine("97110", therapy_mods, rng.randint(1, 2), (1,)))
    elif ptype == "LMT":
        lines.append(SynthLine("97124", (), rng.randint(1, 4), (1,)))
    else:
        if rng.random() < 0.3:
            lines.append(SynthLine("97161" if ptype.startswith("PT") and ptype != "PTA" else "97165" if ptype == "OT" else "97110", therapy_mods[:1], pointers=(1,)))
        for code in rng.sample(("97110", "97112", "97530", "97140", "97035"), rng.randint(1, 3)):
            lines.append(SynthLine(code, therapy_mods, rng.randint(1, 3), (rng.randint(1, len(diagnoses)),)))
    lines = [attrs.evolve(line, charge=Decimal(_CHARGE.get(line.code, "30")) * line.units) for line in lines]
    group = rng.random() < 0.3
    billing = SynthProvider(
        name="PLACEHOLDER THERAPY GROUP" if group else f"PLACEHOLDER {ptype} PRACTICE",
        npi=npi_with_check_digit(f"{100000000 + (7 if group else sorted(_TAXONOMY).index(ptype)):09d}"),
        taxonomy=None if group else _TAXONOMY[ptype],
        state=state,
        city="SACRAMENTO" if state == "CA" else "RALEIGH",
        zip="958140000" if state == "CA" else "276011234",
    )
    rendering = (
        SynthProvider(name="PLACEHOLDER", first_name=ptype, npi=npi_with_check_digit(f"{200000000 + n % 1000:09d}"), taxonomy=_TAXONOMY[ptype])
        if group else None
    )
    member = f"MEMBER{rng.randint(1, max(2, n // 2)):06d}"
    dependant = rng.random() < 0.1
    return SynthClaim(
        claim_id=f"SYN{n:06d}",
        date_of_service=start + dt.timedelta(days=rng.randrange(0, 365)),
        diagnoses=diagnoses,
        lines=tuple(lines),
        billing=billing,
        payer_name=name,
        payer_id=payer_id,
        filing_indicator=filing,
        member_id=member,
        patient=("PLACEHOLDER", "DEPENDANT") if dependant else None,
        rendering=rendering,
    )


def synthetic_claims(n: int, *, seed: int = 0, start: dt.date = dt.date(2025, 1, 2)) -> list[SynthClaim]:
    """``n`` random claims for the five builtin payers; the same seed gives the same claims."""
    rng = random.Random(seed)
    return [_random_claim(rng, k, start) for k in range(n)]


def synthetic_837p(n: int, *, seed: int = 0, claims_per_interchange: int = 250, claims_per_transaction: int = 100) -> bytes:
    """``n`` random claims as 837P bytes: several interchanges, each with one group and several transaction sets."""
    claims = synthetic_claims(n, seed=seed)
    parts = []
    for k, first in enumerate(range(0, n, claims_per_interchange), 1):
        parts.append(interchange_text(claims[first : first + claims_per_interchange], control=k, claims_per_transaction=claims_per_transaction))
    return "".join(parts).encode("ascii")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m payerpolicy.formats.x12_synth N [--seed S]``: write N synthetic claims as 837P to standard output."""
    parser = argparse.ArgumentParser(prog="python -m payerpolicy.formats.x12_synth", description="Write synthetic 837P claims (placeholder data).")
    parser.add_argument("claims", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sys.stdout.write(synthetic_837p(args.claims, seed=args.seed).decode("ascii"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
