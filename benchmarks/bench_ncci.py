"""Benchmark the NCCI tables at full size: import, cold load, lookups (issue 3, item 5 "Scale").

Generates synthetic files in CMS's exact format (:mod:`payerpolicy.ncci_synth`), then measures

* ``import_cms_files(..., index=True)`` on them (wall time; includes writing the binary PTP index
  ``ptp.idx``);
* loading the imported PTP and MUE tables with :func:`payerpolicy.ncci.load_ptp` / ``load_mue`` in a
  fresh subprocess (wall time, extra peak RSS from ``resource.getrusage``); the PTP table loads
  through its index;
* 1,000,000 ``PtpTable.edit_on`` lookups against one bare pluggy hook call with five plugins
  registered (``timeit``, best of 5, per call);

and prints each figure against its target. Run: ``nox -s bench`` or
``python benchmarks/bench_ncci.py [--ptp-rows N] [--mue-rows N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import pluggy
from payerpolicy.ncci import load_ptp, ptp_index_path
from payerpolicy.ncci_import import import_cms_files
from payerpolicy.ncci_synth import write_synthetic_cms_files

IMPORT_TARGET_S = 30.0
LOAD_TARGET_S = 1.0
LOAD_TARGET_MB = 200.0
LOOKUPS = 1_000_000

_LOAD_SCRIPT = """
import json, resource, sys, time
from payerpolicy.ncci import load_mue, load_ptp
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = rss_mb()
t = time.perf_counter()
ptp = load_ptp(sys.argv[1])
t_ptp = time.perf_counter() - t
after_ptp = rss_mb()
t = time.perf_counter()
mue = load_mue(sys.argv[2])
t_mue = time.perf_counter() - t
print(json.dumps({"ptp_indexed": type(ptp.pairs).__name__ == "_IndexedPairs", "ptp_s": t_ptp, "ptp_mb": after_ptp - before, "mue_s": t_mue, "mue_mb": rss_mb() - after_ptp,
                  "ptp_rows": ptp.info.rows, "mue_rows": mue.info.rows}))
"""


def _cold_load(ptp_file: Path, mue_file: Path) -> dict[str, float]:
    """Load both tables in a fresh interpreter; return times (s) and extra peak RSS (MB)."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(ptp_file), str(mue_file)], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _pluggy_call_s(number: int) -> float:
    """Seconds per bare hook call with five plugins registered (best of 5)."""
    spec = pluggy.HookspecMarker("bench")
    impl = pluggy.HookimplMarker("bench")

    class Spec:
        @spec
        def bench_hook(self, x: int) -> int:  # type: ignore[empty-body]
            """A hook with one argument."""

    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Spec)
    for n in range(5):

        class Plugin:
            @impl
            def bench_hook(self, x: int) -> int:
                return x

        pm.register(Plugin(), name=f"p{n}")
    hook = pm.hook.bench_hook
    return min(timeit.repeat(lambda: hook(x=1), number=number, repeat=5)) / number


def _lookup_s(ptp_file: Path, number: int, seed: int) -> tuple[float, float]:
    """Seconds per ``edit_on`` lookup (best of 5) over a mix of known pairs and random misses; hit rate."""
    table = load_ptp(str(ptp_file))
    rng = random.Random(seed)
    keys = list(table.pairs)
    codes = sorted({c for k in rng.sample(keys, min(len(keys), 2000)) for c in k})
    pairs = [rng.choice(keys) if rng.random() < 0.5 else (rng.choice(codes), rng.choice(codes)) for _ in range(4096)]
    day = dt.date(2024, 7, 1)
    hits = sum(table.edit_on(a, b, day) is not None for a, b in pairs) / len(pairs)
    edit_on = table.edit_on
    mask = len(pairs) - 1

    def run() -> None:
        for i in range(number):
            a, b = pairs[i & mask]
            edit_on(a, b, day)

    return min(timeit.repeat(run, number=1, repeat=5)) / number, hits


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
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        ptp_info, mue_info = import_cms_files(ptp_paths, mue_path, root / "tables", index=True)
        import_s = time.perf_counter() - t
        import_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        print(f"imported in {import_s:.1f} s", flush=True)
        load = _cold_load(Path(ptp_info.file), Path(mue_info.file))
        print(f"loaded (cold, fresh process; PTP through its index: {bool(load['ptp_indexed'])})", flush=True)
        index_mb = ptp_index_path(ptp_info.file).stat().st_size / 1e6
        lookup_s, hits = _lookup_s(Path(ptp_info.file), LOOKUPS, args.seed)
        hook_s = _pluggy_call_s(100_000)
    rows = [
        ("import (f1-f4 + MUE)", f"{import_s:.1f} s", f"<= {IMPORT_TARGET_S:.0f} s", import_s <= IMPORT_TARGET_S),
        ("import peak extra RSS", f"{import_mb:.0f} MB", "-", None),
        ("PTP index file (ptp.idx)", f"{index_mb:.0f} MB", "-", None),
        (
            "load PTP table (cold)",
            f"{load['ptp_s']:.2f} s",
            f"<= {LOAD_TARGET_S:.0f} s",
            load["ptp_s"] <= LOAD_TARGET_S,
        ),
        (
            "load PTP extra RSS",
            f"{load['ptp_mb']:.0f} MB",
            f"<= {LOAD_TARGET_MB:.0f} MB",
            load["ptp_mb"] <= LOAD_TARGET_MB,
        ),
        ("load MUE table (cold)", f"{load['mue_s']:.3f} s", "-", None),
        ("load MUE extra RSS", f"{load['mue_mb']:.1f} MB", "-", None),
        (
            f"edit_on lookup ({hits:.0%} hits)",
            f"{lookup_s * 1e9:.0f} ns",
            f"< hook {hook_s * 1e9:.0f} ns",
            lookup_s < hook_s,
        ),
        (f"{LOOKUPS:,} lookups", f"{lookup_s * LOOKUPS:.2f} s", "-", None),
    ]
    print(f"\nNCCI benchmark: {ptp_info.rows:,} PTP rows, {mue_info.rows:,} MUE rows, Python {sys.version.split()[0]}")
    print(f"{'measure':<28} {'measured':>12}  {'target':<18} result")
    for name, value, target, ok in rows:
        verdict = "-" if ok is None else ("met" if ok else "MISSED")
        print(f"{name:<28} {value:>12}  {target:<18} {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
