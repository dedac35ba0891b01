"""Make examples/history_month.jsonl: a clinic's month for 50 patients, for claim history (docs/history.md).

    python examples/make_history_month.py                  # rewrite examples/history_month.jsonl
    payerpolicy batch examples/history_month.jsonl --history month.db --out out.jsonl --payers ca_wc,medicare,aetna,commercial
    payerpolicy report out.jsonl --out report.html

Every encounter names its ``patient`` (a pseudonymous key) and ``episode`` and leaves out the
counters history derives (``visit_number``, ``prior_massage_visits``, ``ytd_therapy_charges``,
``episode_start``), so the caps and thresholds are found from history alone:

* P-01, a workers' comp chiropractic patient seen Monday to Saturday, and P-02, a physical
  therapy patient seen as often: their 25th and 26th visits are beyond California's 24-visit cap;
* P-03 to P-12, chiropractic visits with massage twice a week: the 4th massage visit of the
  episode and later ones are a massage audit trigger;
* P-13 to P-22, physical therapy three times a week with billed charges: once the year's billed
  therapy charges reach Medicare's KX threshold, the next visits carry KX;
* P-23 to P-50, a mix of chiropractic and therapy visits once or twice a week.

Generated from a fixed seed: the same file on every run. Visits are written in date order across
patients, as a clinic's system would export them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "history_month.jsonl"
MARCH = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(31)]
SPINAL = ["cervical", "thoracic", "lumbar"]
SUBLUXATION = ["M99.01", "M99.02", "M99.03"]
SYMPTOMS = ["M54.2", "M54.50", "M54.6", "M25.511", "M62.830"]
CHARGES = {"97110": "95.00", "97140": "90.00", "97112": "100.00", "97530": "105.00"}


def _days(rng: random.Random, weekdays: Sequence[int]) -> list[dt.date]:
    return [d for d in MARCH if d.weekday() in weekdays]


def _dc(rng: random.Random, massage: bool) -> dict[str, Any]:
    region = rng.choice(SPINAL)
    services: list[dict[str, Any]] = [
        {"code": "97140", "minutes": rng.choice([8, 10, 12, 15]), "regions": ["upper_extremity"], "diagnosis_pointers": [2]}
    ]
    if massage:
        services.append(
            {"technique": "effleurage", "intent": ["spasm"], "minutes": rng.choice([10, 15]), "regions": ["lower_extremity"],
             "diagnosis_pointers": [2], "necessity": ["tight_muscles_shortening_or_spasticity"]}
        )  # fmt: skip
    return {
        "provider": {"type": "DC"},
        "diagnoses": [rng.choice(SUBLUXATION), rng.choice(SYMPTOMS)],
        "procedures": [{"code": "98940", "regions": [region], "diagnosis_pointers": [1]}],
        "services": services,
    }


def _pt(rng: random.Random, billed: bool) -> dict[str, Any]:
    services = []
    for code in rng.sample(sorted(CHARGES), rng.randint(2, 3)):
        minutes = rng.choice([15, 20, 25, 30])
        service: dict[str, Any] = {"code": code, "minutes": minutes, "regions": ["lumbar"], "diagnosis_pointers": [1]}
        if billed:
            units = (minutes + 7) // 15
            service["billed"] = {"units": units, "charge": f"{float(CHARGES[code]) * units:.2f}"}
        services.append(service)
    return {"provider": {"type": "PT"}, "diagnoses": [rng.choice(SYMPTOMS)], "services": services}


def generate(seed: int = 19) -> list[dict[str, Any]]:
    """The month's encounters (format v1), the same for the same seed, in date order."""
    rng = random.Random(seed)
    visits: list[tuple[dt.date, str, dict[str, Any]]] = []

    def add(patient: int, day: dt.date, body: dict[str, Any], care: dict[str, Any]) -> None:
        key = f"P-{patient:02d}"
        n = sum(1 for _, p, _ in visits if p == key) + 1
        encounter = {"id": f"{key}-V{n:02d}", "patient": key, "episode": "E1", "date_of_service": day.isoformat(), **body}
        if care:
            encounter["care"] = care
        visits.append((day, key, encounter))

    mon_sat = (0, 1, 2, 3, 4, 5)
    for day in _days(rng, mon_sat):
        add(1, day, _dc(rng, massage=False), {"injury_date": "2025-02-24"})
        add(2, day, _pt(rng, billed=False), {"injury_date": "2025-02-20"})
    for patient in range(3, 13):
        for day in _days(rng, rng.choice([(0, 3), (1, 4), (2, 5)])):
            add(patient, day, _dc(rng, massage=True), {"improvement_documented": True})
    for patient in range(13, 23):
        for day in _days(rng, (0, 2, 4)):
            add(patient, day, _pt(rng, billed=True), {"plan_of_care": True})
    for patient in range(23, 51):
        chiro = rng.random() < 0.5
        weekdays = rng.sample(range(6), rng.randint(1, 2))
        for day in _days(rng, weekdays):
            body = _dc(rng, massage=rng.random() < 0.3) if chiro else _pt(rng, billed=rng.random() < 0.5)
            care = {"improvement_documented": rng.random() < 0.8} if chiro else {}
            add(patient, day, body, care)
    visits.sort(key=lambda v: (v[0], v[1]))
    return [v[2] for v in visits]


def main(argv: Sequence[str] | None = None) -> int:
    """Write examples/history_month.jsonl."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help="encounters file (default: examples/history_month.jsonl)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    visits = generate(args.seed)
    import payerpolicy

    for visit in visits:
        payerpolicy.Encounter.from_mapping(visit)  # every generated visit must be valid input
    Path(args.out).write_text("".join(json.dumps(v, separators=(", ", ": ")) + "\n" for v in visits), "utf-8")
    print(f"wrote {args.out}: {len(visits)} encounters, {len({v['patient'] for v in visits})} patients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
