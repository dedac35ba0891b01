"""Benchmark evaluation and batch runs (issue 7 item 5, issue 20 item 6).

Run: ``nox -s bench`` or ``python benchmarks/bench_batch.py [--big 1000000] [--scaling 20000] [--skip-dask]``.

Prints one table, each figure against its target:

* evaluations per second per payer on one core (synthetic encounters, parsed once), and the ratio
  of one evaluation to one bare pluggy hook call with five plugins registered, in the same run;
* ``payerpolicy batch`` from JSON Lines to Parquet with 2 worker processes at 100,000 and at
  ``--big`` encounters × 5 payers: wall time and peak resident memory of the whole process tree
  (sampled from /proc), so "memory flat" can be read off the two rows;
* ``payerpolicy check`` on one encounter, cold, as a whole process, against
  ``python -c "import pluggy, attrs"`` (best of 10 each);
* speed-up from 1 to 2 worker processes, and a 2-worker Dask LocalCluster against 2 local processes;
* the compiled plans (default engine) against the reference interpreter (``Engine(compiled=False)``).

The machine's load average is printed beside the table: figures taken under load are slower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import payerpolicy
import pluggy
from payerpolicy import Encounter
from payerpolicy.batch import run_batch
from payerpolicy.batch.synth import encounters, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
PAYERS = ["commercial", "medicare", "bcbsnc", "aetna", "ca_wc"]
RATIO_TARGET = 10.0
BIG_TARGET_S = 120.0
BIG_TARGET_MB = 500.0
COLD_TARGET = 2.0
SPEEDUP_TARGET = 1.8
DASK_TARGET = 1.15  # Dask with 2 workers within 15 % of 2 local processes


def pluggy_call_s(number: int = 100_000) -> float:
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


def evaluation_s(count: int, engine: Any = None) -> dict[str, float]:
    """Seconds per evaluation, per payer (best of 3 passes over ``count`` encounters)."""
    engine = engine if engine is not None else payerpolicy.default_engine()
    items = [Encounter.from_mapping(d, catalogue=engine.catalogue) for d in encounters(count, seed=1)]
    result = {}
    for payer in PAYERS:
        for e in items[:50]:
            engine.evaluate(e, payer)
        best = min(timeit.repeat(lambda p=payer: [engine.evaluate(e, p) for e in items], number=1, repeat=3))
        result[payer] = best / count
    return result


def _tree_rss_kb(root: int) -> int:
    """Memory of ``root`` and all its descendants (kB), from /proc.

    Proportional set size (``Pss`` in smaps_rollup): pages shared by forked workers are counted
    once, split between the processes sharing them, so the sum is what the tree really occupies.
    """
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/smaps_rollup") as f:
                status = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        for line in status.splitlines():
            if line.startswith("Pss:"):
                rss[int(entry)] = int(line.split()[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return wall seconds and the peak memory (PSS) of its process tree (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, peak / 1024


def big_run(tmp: Path, count: int) -> tuple[float, float]:
    """``payerpolicy batch`` JSONL -> Parquet, 2 workers, ``count`` encounters × 5 payers."""
    src = tmp / f"big-{count}.jsonl"
    if not src.exists():
        write_jsonl(str(src), count, seed=7)
    out = tmp / f"big-{count}.parquet"
    cmd = [sys.executable, "-m", "payerpolicy", "batch", str(src), "--out", str(out), "--payers", ",".join(PAYERS), "--workers", "2"]
    result = run_measured(cmd)
    out.unlink()
    return result


def cold_check() -> tuple[float, float]:
    """Best of 10: ``payerpolicy check`` on the bundled example, and ``python -c "import pluggy, attrs"``."""

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(10):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
        return min(times)

    check = best([sys.executable, "-m", "payerpolicy", "check", str(ROOT / "examples" / "dc_visit.json"), "--payer", "medicare"])
    base = best([sys.executable, "-c", "import pluggy, attrs"])
    return check, base


def scaling(tmp: Path, count: int) -> tuple[float, float]:
    """Wall seconds for ``count`` encounters × 5 payers with 1 and with 2 worker processes."""
    src = tmp / f"scale-{count}.jsonl"
    write_jsonl(str(src), count, seed=3)
    times = []
    for workers in (1, 2):
        t = time.perf_counter()
        run_batch(src, tmp / f"scale-{workers}.jsonl", PAYERS, workers=workers, progress=False)
        times.append(time.perf_counter() - t)
    return times[0], times[1]


def dask_scaling(tmp: Path, count: int) -> tuple[float, float]:
    """The same on a Dask LocalCluster with 1 and with 2 single-threaded worker processes."""
    from distributed import Client, LocalCluster

    src = tmp / f"scale-{count}.jsonl"
    times = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("payerpolicy.batch", fromlist=["x"]).process_engine())
            t = time.perf_counter()
            run_batch(src, tmp / f"dask-{workers}.jsonl", PAYERS, scheduler=client, progress=False)
            times.append(time.perf_counter() - t)
    return times[0], times[1]


def verdict(ok: bool) -> str:
    """``met`` or ``MISSED``."""
    return "met" if ok else "MISSED"


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the table (and ``--json FILE`` for the README)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-count", type=int, default=2000)
    parser.add_argument("--big", type=int, default=1_000_000, help="encounters in the large run (0 to skip)")
    parser.add_argument("--small", type=int, default=100_000, help="encounters in the run memory is compared with")
    parser.add_argument("--scaling", type=int, default=20_000)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str, str]] = []
    figures: dict[str, Any] = {"cpus": os.cpu_count()}
    load_before = os.getloadavg()

    hook = pluggy_call_s()
    per_payer = evaluation_s(args.eval_count)
    figures.update(hook_us=hook * 1e6, eval_us={p: s * 1e6 for p, s in per_payer.items()})
    rows.append(("bare pluggy hook call (5 plugins)", f"{hook * 1e6:.2f} µs", "", ""))
    for payer, s in per_payer.items():
        ratio = s / hook
        rows.append((f"evaluate, {payer} (1 core)", f"{1 / s:,.0f}/s = {s * 1e6:.0f} µs = {ratio:.0f}× hook", f"≤ {RATIO_TARGET:.0f}× hook", verdict(ratio <= RATIO_TARGET)))
    reference = evaluation_s(args.eval_count, payerpolicy.Engine(compiled=False))
    figures.update(reference_eval_us={p: s * 1e6 for p, s in reference.items()})
    for payer, s in reference.items():
        rows.append((f"  reference interpreter, {payer}", f"{s * 1e6:.0f} µs: compiled plans {s / per_payer[payer]:.2f}× faster", "", ""))

    check, base = cold_check()
    figures.update(cold_check_s=check, cold_import_s=base)
    rows.append(("cold `payerpolicy check` vs import pluggy, attrs", f"{check:.3f} s vs {base:.3f} s = {check / base:.1f}×", f"≤ {COLD_TARGET:.0f}×", verdict(check / base <= COLD_TARGET)))

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        one, two = scaling(tmp, args.scaling)
        figures.update(scale_1_s=one, scale_2_s=two)
        rows.append((f"{args.scaling:,} × 5, 1 -> 2 processes", f"{one:.1f} s -> {two:.1f} s = {one / two:.2f}×", f"≥ {SPEEDUP_TARGET}×", verdict(one / two >= SPEEDUP_TARGET)))
        if not args.skip_dask:
            d1, d2 = dask_scaling(tmp, args.scaling)
            figures.update(dask_1_s=d1, dask_2_s=d2)
            rows.append((f"{args.scaling:,} × 5, Dask 1 -> 2 workers", f"{d1:.1f} s -> {d2:.1f} s = {d1 / d2:.2f}×", "", ""))
            rows.append((f"{args.scaling:,} × 5, Dask 2 workers vs 2 processes", f"{d2:.1f} s vs {two:.1f} s = {d2 / two:.2f}×", f"≤ {DASK_TARGET:.2f}×", verdict(d2 / two <= DASK_TARGET)))
        for count in [c for c in (args.small, args.big) if c]:
            wall, mb = big_run(tmp, count)
            figures[f"batch_{count}"] = {"wall_s": wall, "peak_mb": mb}
            target = f"≤ {BIG_TARGET_S:.0f} s, ≤ {BIG_TARGET_MB:.0f} MB" if count == args.big else "memory ≈ the big run's"
            ok = wall <= BIG_TARGET_S and mb <= BIG_TARGET_MB if count == args.big else mb <= BIG_TARGET_MB
            rows.append((f"batch {count:,} × 5, JSONL -> Parquet, 2 workers", f"{wall:,.1f} s, peak {mb:,.0f} MB", target, verdict(ok)))

    load_after = os.getloadavg()
    figures.update(load_before=load_before, load_after=load_after)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"payerpolicy {payerpolicy.__version__} — batch benchmarks on {os.cpu_count()} CPUs")
    print(f"  load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}")
    for r in rows:
        print("  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
