"""Synthetic encounters for benchmarks, tests and demonstrations.

The mix follows what a therapy and chiropractic clinic bills: chiropractic visits with spinal CMT
and soft-tissue work, physical-therapy visits with an E/M or an evaluation, and one to six timed
services with realistic minutes, regions, intents and documentation. Every generated encounter is
valid input (format v1); the same ``seed`` gives the same encounters.

Command line (writes JSON Lines)::

    python -m payerpolicy.synth 100000 --out visits.jsonl --seed 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from collections.abc import Iterator
from typing import Any

from ..evaluation.vocab import DOCUMENTATION_ELEMENTS

__all__ = ["encounters", "write_jsonl"]

_SPINAL = ("cervical", "thoracic", "lumbar", "sacral", "pelvic")
_EXTRA = ("head", "upper_extremity", "lower_extremity", "rib_cage")
_SOFT = (
    ("myofascial_release", ("range_of_motion",)),
    ("petrissage", ("spasm", "preparation_for_exercise")),
    ("effleurage", ("relaxation",)),
    ("soft_tissue_mobilization", ("adhesions",)),
    ("trigger_point", ("spasm",)),
    ("massage", ("edema",)),
    ("joint_mobilization", ("range_of_motion",)),
)
_ACTIVE = (
    ("therapeutic_exercise", ("function",)),
    ("neuromuscular_reeducation", ("function",)),
    ("therapeutic_activities", ("function",)),
    ("gait_training", ("function",)),
    ("manual_traction", ("range_of_motion",)),
)
_DX_SPINE = ("M99.01", "M99.02", "M99.03", "M54.2", "M54.50", "M54.6", "S13.4XXA", "S33.5XXA")
_DX_OTHER = ("M25.511", "M25.611", "M62.830", "M79.18", "M25.561", "G44.209")
# What a usual note holds: every documentation element but the ones only some payers ask for.
_DOCS = tuple(e for e in DOCUMENTATION_ELEMENTS if e not in ("exam_findings", "countersigned", "prescription"))
_NECESSITY = (
    "tight_muscles_shortening_or_spasticity",
    "relaxation_before_neuromuscular_reed_or_exercise",
    "contracture_decreased_rom",
)


def _encounter(rng: random.Random, n: int, start: dt.date) -> dict[str, Any]:
    day = start + dt.timedelta(days=rng.randrange(0, 5 * 365))
    kind = rng.random()
    chiro = kind < 0.45
    provider = "DC" if chiro else rng.choice(("PT", "PT", "PT", "PTA", "OT", "MD", "LMT"))
    dx: list[str] = rng.sample(_DX_SPINE, rng.randint(1, 3)) + rng.sample(_DX_OTHER, rng.randint(0, 2))
    visit = rng.randint(1, 30)
    care: dict[str, Any] = {
        "phase": rng.choices(("initial", "active", "maintenance"), (2, 7, 1))[0],
        "visit_number": visit,
        "episode_start": (day - dt.timedelta(days=rng.randint(0, 60))).isoformat(),
        "injury_date": (day - dt.timedelta(days=rng.randint(1, 400))).isoformat(),
        "prior_massage_visits": rng.randint(0, 8),
        "improvement_documented": rng.random() < 0.7,
    }
    if rng.random() < 0.3:
        care["bill_noncovered"] = True
    if rng.random() < 0.2:
        care["zelis"] = True
    if rng.random() < 0.2:
        care["ytd_therapy_charges"] = str(rng.randint(0, 4000))
    procedures: list[dict[str, Any]] = []
    spinal_dx = [i + 1 for i, d in enumerate(dx) if d.startswith(("M99", "M54", "S13", "S33"))] or [1]
    if chiro:
        regions = rng.sample(_SPINAL, rng.randint(1, 4))
        code = {1: "98940", 2: "98940", 3: "98941", 4: "98941"}[len(regions)]
        procedures.append({"code": code, "regions": regions, "diagnosis_pointers": spinal_dx[:4]})
    if rng.random() < (0.15 if chiro else 0.25):
        procedures.append(
            {
                "code": rng.choice(("99212", "99213", "99203")),
                "diagnosis_pointers": [1],
                "separately_identifiable": rng.random() < 0.6,
            }
        )
    elif not chiro and visit == 1:
        procedures.append({"code": rng.choice(("97161", "97162")), "diagnosis_pointers": [1]})
    services: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 6) if not chiro else rng.randint(0, 3)):
        technique, intent = rng.choice(_SOFT if rng.random() < 0.55 else _ACTIVE)
        service: dict[str, Any] = {
            "technique": technique,
            "intent": list(intent),
            "minutes": rng.choice((5, 8, 10, 12, 15, 18, 20, 23, 25, 30, 38)),
            "regions": rng.sample(_SPINAL + _EXTRA, rng.randint(1, 2)),
            "diagnosis_pointers": [rng.randint(1, len(dx))],
        }
        if technique in ("petrissage", "effleurage", "massage") and rng.random() < 0.6:
            service["necessity"] = rng.sample(_NECESSITY, rng.randint(1, 2))
        services.append(service)
    if not services and not procedures:
        services.append({"technique": "therapeutic_exercise", "intent": ["function"], "minutes": 15})
    data: dict[str, Any] = {
        "id": f"SYN-{n:08d}",
        "date_of_service": day.isoformat(),
        "provider": {"type": provider},
        "care": care,
        "diagnoses": dx,
    }
    if procedures:
        data["procedures"] = procedures
    if services:
        data["services"] = services
    if rng.random() < 0.8:
        data["documentation"] = sorted(rng.sample(_DOCS, rng.randint(6, len(_DOCS))))
    return data


def encounters(count: int, *, seed: int = 0, start: dt.date = dt.date(2020, 1, 1)) -> Iterator[dict[str, Any]]:
    """Yield ``count`` valid encounter mappings (format v1), deterministic for a given ``seed``."""
    rng = random.Random(seed)
    for n in range(count):
        yield _encounter(rng, n, start)


def write_jsonl(path: str, count: int, *, seed: int = 0) -> None:
    """Write ``count`` synthetic encounters to ``path`` as JSON Lines."""
    with open(path, "w", encoding="utf-8") as out:
        for data in encounters(count, seed=seed):
            out.write(json.dumps(data, separators=(",", ":")))
            out.write("\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m payerpolicy.synth COUNT --out FILE``."""
    parser = argparse.ArgumentParser(prog="python -m payerpolicy.synth", description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_jsonl(args.out, args.count, seed=args.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
