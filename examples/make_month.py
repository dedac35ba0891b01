"""Make examples/month.jsonl: a month of varied visits, the input of the bundled batch report.

    python examples/make_month.py                                   # rewrite examples/month.jsonl (seed 8)
    payerpolicy batch examples/month.jsonl --out month-out.jsonl --trace
    payerpolicy report month-out.jsonl --out report.html

The encounters are generated from a fixed seed, so the file is the same on every run: chiropractic
visits (CMT, sometimes an E/M) and therapy visits (an evaluation sometimes), each with 1 to 6 timed
services, in March 2025. Every one is valid encounter format v1.

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
MONTH = HERE / "month.jsonl"

SPINAL = ["cervical", "thoracic", "lumbar", "sacral", "pelvic"]
EXTRASPINAL = ["upper_extremity", "lower_extremity", "rib_cage", "head"]
SUBLUXATION = ["M99.01", "M99.02", "M99.03", "M99.04"]
SYMPTOMS = ["M54.2", "M54.50", "M54.6", "M25.511", "M25.561", "M62.830", "M79.18", "R26.89"]
# technique or code, intents, who does it
SERVICES: list[tuple[dict[str, Any], Sequence[str]]] = [
    ({"technique": "myofascial_release", "intent": ["range_of_motion"]}, ("DC", "PT")),
    ({"technique": "soft_tissue_mobilization", "intent": ["adhesions"]}, ("DC", "PT")),
    ({"technique": "petrissage", "intent": ["spasm", "preparation_for_exercise"]}, ("DC", "PT")),
    ({"technique": "effleurage", "intent": ["relaxation"]}, ("DC",)),
    ({"technique": "therapeutic_exercise", "intent": ["function"]}, ("DC", "PT")),
    ({"technique": "neuromuscular_reeducation", "intent": ["function"]}, ("PT",)),
    ({"technique": "therapeutic_activities", "intent": ["function"]}, ("PT",)),
    ({"technique": "gait_training", "intent": ["function"]}, ("PT",)),
    ({"code": "97140"}, ("DC", "PT")),
    ({"code": "97124"}, ("DC",)),
]
#: The practice's charge per unit of each code it may bill (its charge master): EXAMPLE amounts, not a
#: fee schedule. Every encounter carries it as `charges`, the 837P line charges (SV102).
CHARGES = {
    "98940": "55.00", "98941": "70.00", "98942": "85.00", "99213": "110.00", "97161": "150.00",
    "97162": "160.00", "97110": "45.00", "97112": "48.00", "97116": "42.00", "97124": "40.00",
    "97140": "45.00", "97250": "45.00", "97530": "50.00", "97014": "20.00", "G0283": "20.00",
    "97012": "25.00", "97035": "20.00",
}  # fmt: skip
DOCUMENTED = [
    "rationale", "goals", "functional_goal", "objective_measures", "exam_findings", "progress", "regions",
    "technique", "patient_response", "time_in_out", "signed", "countersigned", "plan_of_care",
]  # fmt: skip


def _visit(rng: random.Random, n: int) -> dict[str, Any]:
    provider = "DC" if rng.random() < 0.6 else "PT"
    day = dt.date(2025, 3, 1) + dt.timedelta(days=rng.randrange(31))
    episode = day - dt.timedelta(days=rng.randrange(3, 60))
    diagnoses = (rng.sample(SUBLUXATION, rng.randint(1, 2)) if provider == "DC" else []) + rng.sample(
        SYMPTOMS, rng.randint(1, 3)
    )
    care: dict[str, Any] = {
        "phase": rng.choices(["initial", "active", "maintenance"], [2, 6, 2])[0],
        "visit_number": rng.randint(1, 30),
        "episode_start": episode.isoformat(),
        "prior_massage_visits": rng.randint(0, 6),
        "improvement_documented": rng.random() < 0.7,
    }
    if rng.random() < 0.3:
        care["injury_date"] = (episode - dt.timedelta(days=rng.randrange(1, 20))).isoformat()
    if provider == "DC" and rng.random() < 0.5:
        care["bill_noncovered"] = True
        care["abn"] = rng.choice(["none", "voluntary", "signed"])
    if rng.random() < 0.25:
        care["zelis"] = True
    if rng.random() < 0.3:
        care["ytd_therapy_charges"] = str(rng.randrange(200, 2600, 50))

    procedures: list[dict[str, Any]] = []
    if provider == "DC":
        if rng.random() < 0.3:
            procedures.append({"code": "99213", "diagnosis_pointers": [len(diagnoses)],
                               "separately_identifiable": rng.random() < 0.6})  # fmt: skip
        regions = rng.sample(SPINAL, rng.choice([1, 2, 2, 3]))
        code = "98940" if len(regions) <= 2 else "98941"
        procedures.append({"code": code, "regions": regions, "diagnosis_pointers": [1]})
    elif rng.random() < 0.25:
        procedures.append({"code": rng.choice(["97161", "97162"]), "diagnosis_pointers": [1]})

    services = []
    clock = dt.datetime.combine(day, dt.time(9, 0)) + dt.timedelta(minutes=5 * rng.randrange(12))
    choices = [s for s, who in SERVICES if provider in who]
    for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 5, 6])):
        service = dict(rng.choice(choices))
        minutes = rng.choice([5, 8, 10, 12, 15, 18, 20, 23, 25, 30, 38])
        service["minutes"] = minutes
        if rng.random() < 0.5:
            service["start"] = clock.strftime("%H:%M")
            service["end"] = (clock + dt.timedelta(minutes=minutes)).strftime("%H:%M")
        clock += dt.timedelta(minutes=minutes)
        pool = SPINAL if rng.random() < 0.6 else EXTRASPINAL
        service["regions"] = [rng.choice(pool)]
        service["diagnosis_pointers"] = [rng.randint(1, len(diagnoses))]
        if service.get("technique") in ("petrissage", "effleurage") or service.get("code") == "97124":
            service["necessity"] = ["tight_muscles_shortening_or_spasticity"]
        services.append(service)

    visit: dict[str, Any] = {
        "id": f"M-{n:03d}",
        "date_of_service": day.isoformat(),
        "provider": {"type": provider},
        "care": care,
        "diagnoses": diagnoses,
        "procedures": procedures,
        "services": services,
    }
    if rng.random() < 0.7:
        visit["documentation"] = sorted(rng.sample(DOCUMENTED, rng.randint(8, len(DOCUMENTED))))
    if not procedures:
        del visit["procedures"]
    # Added after every random draw, so the visits are those of earlier versions of this file.
    if provider == "DC" and n % 3 == 0:
        care["last_xray"] = (episode - dt.timedelta(days=10)).isoformat()  # 837P DTP*455
    visit["charges"] = dict(CHARGES)
    return visit


def generate(count: int = 40, seed: int = 8) -> list[dict[str, Any]]:
    """``count`` varied encounters (format v1), the same for the same seed."""
    rng = random.Random(seed)
    return [_visit(rng, n + 1) for n in range(count)]


def main(argv: Sequence[str] | None = None) -> int:
    """Write examples/month.jsonl."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encounters", default=str(MONTH), help="encounters file (default: examples/month.jsonl)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    visits = generate(args.count, args.seed)
    import payerpolicy

    for visit in visits:
        payerpolicy.Encounter.from_mapping(visit)  # every generated visit must be valid input
    Path(args.encounters).write_text("".join(json.dumps(v, separators=(", ", ": ")) + "\n" for v in visits), "utf-8")
    print(f"wrote {args.encounters}: {len(visits)} encounters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
