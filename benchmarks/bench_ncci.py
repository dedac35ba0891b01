"""Benchmark the NCCI tables at full size: import, cold load, lookups (issue 3, item 5 "Scale").

Generates synthetic files in CMS's exact format (:mod:`payerpolicy.ncci.synth`), then measures

* ``import_cms_files(..., index=True)`` on them in a fresh subprocess (wall time; includes writing
  the binary PTP index ``ptp.idx``; peak extra resident memory = ``VmHWM`` at the end minus
  ``VmRSS`` before);
* loading the imported PTP and MUE tables with :func:`payerpolicy.ncci.load_ptp` / ``load_mue`` in a
  fresh subprocess (wall time; extra resident memory = ``VmRSS`` after minus before, and the peak
  ``VmHWM`` minus ``VmRSS`` before, both read from ``/proc/self/status``); the PTP table loads
  through its index;
* 1,000,000 ``PtpTable.edit_on`` lookups cycling over 4,096 pairs (half known pairs, half random
  code pairs) against one bare pluggy hook call with five plugins registered, in the same process
  (``timeit``, best of 5, per call); and one pass over 200,000 distinct pairs (no pair repeats, so
  no row is reused: the worst case);

and prints each figure against its target (met / MISSED). Run: ``nox -s bench`` or
``python benchmarks/bench_ncci.py [--ptp-rows N] [--mue-rows N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from bench_batch import pluggy_call_s as _pluggy_call_s  # one definition of the reference hook call
from payerpolicy.ncci import load_ptp, ptp_index_path
from payerpolicy.ncci.synth import write_synthetic_cms_files

IMPORT_TARGET_S = 30.0
LOAD_TARGET_S = 1.0
LOAD_TARGET_MB = 200.0
LOOKUPS = 1_000_000
DISTINCT_LOOKUPS = 200_000

#: Shared by the subprocesses: resident memory from /proc/self/status, in MB.
_MEMORY = """
def memory_mb():
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]
"""

_IMPORT_SCRIPT = (
    _MEMORY
    + """
import json, sys, time
from payerpolicy.ncci.importer import import_cms_files
rss0, _ = memory_mb()
t = time.perf_counter()
ptp, mue = import_cms_files(sys.argv[3:], sys.argv[2], sys.argv[1], index=True)
seconds = time.perf_counter() - t
_, hwm = memory_mb()
print(json.dumps({"s": seconds, "peak_mb": hwm - rss0, "ptp": ptp.file, "mue": mue.file, "ptp_rows": ptp.rows, "mue_rows": mue.rows}))
"""
)

_LOAD_SCRIPT = (
    _MEMORY
    + """
import json, sys, time
from payerpolicy.ncci import load_mue, load_ptp
rss0, hwm0 = memory_mb()
t = time.perf_counter()
ptp = load_ptp(sys.argv[1])
t_ptp = time.perf_counter() - t
rss1, hwm1 = memory_mb()
t = time.perf_counter()
mue = load_mue(sys.argv[2])
t_mue = time.perf_counter() - t
rss2, _ = memory_mb()
print(json.dumps({"ptp_indexed": type(ptp.pairs).__name__ == "_IndexedPairs", "ptp_s": t_ptp,
                  "ptp_mb": rss1 - rss0, "ptp_peak_mb": hwm1 - rss0, "mue_s": t_mue, "mue_mb": rss2 - rss1,
                  "ptp_rows": ptp.info.rows, "mue_rows": mue.info.rows}))
"""
)


def _run(script: str, *args: str) -> dict[str, object]:
    """Run ``script`` in a fresh interpreter and return the JSON it prints."""
    out = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _lookup_s(ptp_file: Path, number: int, distinct: int, seed: int) -> tuple[float, float, float, float]:
    """Seconds per ``edit_on`` lookup and hit rate: best of 5 over 4,096 cycled pairs; one pass over distinct pairs.

    The distinct pairs never repeat, so no looked-up row is reused (the worst case).
    """
    table = load_ptp(str(ptp_file))
    rng = random.Random(seed)
    keys = list(table.pairs)
    codes = sorted({c for k in rng.sample(keys, min(len(keys), 2000)) for c in k})

    def draw(n: int) -> list[tuple[str, str]]:
        return [rng.choice(keys) if rng.random() < 0.5 else (rng.choice(codes), rng.choice(codes)) for _ in range(n)]

    day = dt.date(2024, 7, 1)
    edit_on = table.edit_on
    pairs = draw(4096)
    hits = sum(edit_on(a, b, day) is not None for a, b in pairs) / len(pairs)
    mask = len(pairs) - 1

    def run() -> None:
        for i in range(number):
            a, b = pairs[i & mask]
            edit_on(a, b, day)

    cycled = min(timeit.repeat(run, number=1, repeat=5)) / number
    fresh = draw(distinct)
    t = time.perf_counter()
    found = sum(edit_on(a, b, day) is not None for a, b in fresh)
    once = (time.perf_counter() - t) / distinct
    return cycled, hits, once, found / distinct


def main(argv: list[str] | None = None) -> int:
    """Generate, import, load and look up; print the figures against the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptp-rows", type=int, default=2_600_000)
    parser.add_argument("--mue-rows", type=int, default=15_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the generated and imported files here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ncci-bench-") as tmp:
        root = args.out or Path(tmp)
        t = time.perf_counter()
        ptp_paths, mue_path = write_synthetic_cms_files(root / "cms", args.ptp_rows, args.mue_rows, args.seed)
        gen_s = time.perf_counter() - t
        print(f"generated {args.ptp_rows:,} PTP + {args.mue_rows:,} MUE rows in {gen_s:.1f} s", flush=True)
        imported = _run(_IMPORT_SCRIPT, str(root / "tables"), str(mue_path), *map(str, ptp_paths))
        import_s, import_mb = float(imported["s"]), float(imported["peak_mb"])  # type: ignore[arg-type]
        ptp_file, mue_file = Path(str(imported["ptp"])), Path(str(imported["mue"]))
        print(f"imported in {import_s:.1f} s (fresh process)", flush=True)
        load = _run(_LOAD_SCRIPT, str(ptp_file), str(mue_file))
        print(f"loaded (cold, fresh process; PTP through its index: {bool(load['ptp_indexed'])})", flush=True)
        index_mb = ptp_index_path(ptp_file).stat().st_size / 1e6
        lookup_s, hits, once_s, once_hits = _lookup_s(ptp_file, LOOKUPS, DISTINCT_LOOKUPS, args.seed)
        hook_s = _pluggy_call_s(100_000)
    ptp_s, ptp_mb, ptp_peak = (float(load[k]) for k in ("ptp_s", "ptp_mb", "ptp_peak_mb"))  # type: ignore[arg-type]
    mue_s, mue_mb = float(load["mue_s"]), float(load["mue_mb"])  # type: ignore[arg-type]
    rows = [
        ("import (f1-f4 + MUE)", f"{import_s:.1f} s", f"<= {IMPORT_TARGET_S:.0f} s", import_s <= IMPORT_TARGET_S),
        ("import peak extra RSS", f"{import_mb:,.0f} MB", "-", None),
        ("PTP index file (ptp.idx)", f"{index_mb:.0f} MB", "-", None),
        ("load PTP table (cold)", f"{ptp_s:.2f} s", f"<= {LOAD_TARGET_S:.0f} s", ptp_s <= LOAD_TARGET_S),
        ("load PTP extra RSS (VmRSS)", f"{ptp_mb:.0f} MB", f"<= {LOAD_TARGET_MB:.0f} MB", ptp_mb <= LOAD_TARGET_MB),
        (
            "load PTP peak extra (VmHWM)",
            f"{ptp_peak:.0f} MB",
            f"<= {LOAD_TARGET_MB:.0f} MB",
            ptp_peak <= LOAD_TARGET_MB,
        ),
        ("load MUE table (cold)", f"{mue_s:.3f} s", "-", None),
        ("load MUE extra RSS", f"{mue_mb:.1f} MB", "-", None),
        ("pluggy hook call (5 plugins)", f"{hook_s * 1e9:,.0f} ns", "-", None),
        (
            f"edit_on, 4,096 pairs ({hits:.0%} hits)",
            f"{lookup_s * 1e9:,.0f} ns",
            f"< hook {hook_s * 1e9:,.0f} ns",
            lookup_s < hook_s,
        ),
        (
            f"edit_on, distinct ({once_hits:.0%} hits)",
            f"{once_s * 1e9:,.0f} ns",
            f"< hook {hook_s * 1e9:,.0f} ns",
            once_s < hook_s,
        ),
        (f"{LOOKUPS:,} lookups", f"{lookup_s * LOOKUPS:.2f} s", "-", None),
    ]
    print(
        f"\nNCCI benchmark: {imported['ptp_rows']:,} PTP rows, {imported['mue_rows']:,} MUE rows,"
        f" Python {sys.version.split()[0]}"
    )
    print(f"{'measure':<32} {'measured':>12}  {'target':<18} result")
    for name, value, target, ok in rows:
        verdict = "-" if ok is None else ("met" if ok else "MISSED")
        print(f"{name:<32} {value:>12}  {target:<18} {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
