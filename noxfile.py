"""Development sessions: `nox -s tests` is the one CI runs (see README)."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "policies"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Run the test suite against an installed payerpolicy (cases, units, CLI, HTTP service, wheel)."""
    session.install("-e", ".[test,parquet,dask,fhir,x12,report,server,server-test,postgres]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def browser(session: nox.Session) -> None:
    """Open the compare and report pages in headless Chromium (Debian's package) and check what they show."""
    if not Path("/usr/bin/chromium").exists():
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", external=True)
        session.run(*sudo, "apt-get", "install", "-y", "chromium", external=True)
    session.install("-e", ".[test,report,parquet]")
    # PAYERPOLICY_REQUIRE_BROWSER: fail, never skip, if chromium is still missing
    session.run(
        "pytest", "-m", "browser", "tests/core/test_browser.py", *session.posargs, env={"PAYERPOLICY_REQUIRE_BROWSER": "1"}
    )


@nox.session(python="3.11")
def spark(session: nox.Session) -> None:
    """Run the Spark recipe (mapInArrow over the batch chunk function) on a local Spark session."""
    import shutil

    if shutil.which("java") is None:  # Spark 4 needs a Java 17 runtime: Debian's package
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", external=True)
        session.run(*sudo, "apt-get", "install", "-y", "openjdk-17-jre-headless", external=True)
    session.install("-e", ".[test,parquet]", "pyspark[sql]>=4.0")
    # PAYERPOLICY_REQUIRE_SPARK: fail, never skip, if pyspark cannot be imported
    session.run(
        "pytest", "-m", "spark", "tests/spark", "-W", "ignore::FutureWarning", *session.posargs,
        env={"PAYERPOLICY_REQUIRE_SPARK": "1"},
    )  # fmt: skip


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Check style and common mistakes with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "core", "plugins", "tests", "benchmarks", "noxfile.py", *session.posargs)


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """Type-check the package (installed, so the payerpolicy import name resolves) with mypy --strict."""
    session.install(".[report,server]", "mypy>=1.10")
    session.run("mypy", "--strict", "-p", "payerpolicy", *session.posargs)


@nox.session(python="3.11")
def policies(session: nox.Session) -> None:
    """Validate every shipped policy file and the code catalogue with `payerpolicy policy check`."""
    session.install(".")
    for file in sorted((ROOT / "policies").glob("*.toml")):
        # the 837P payer map and the denial terms (CARC/RARC) are not payer policies; their loaders check them
        if file.name not in ("x12_payers.toml", "adjustments.toml"):
            session.run("payerpolicy", "policy", "check", str(file))


@nox.session(python="3.11")
def example_plugin(session: nox.Session) -> None:
    """Install payerpolicy and the example third-party plugin, run its tests, and show its column."""
    session.install(".", "./tests/example_plugin[test]")
    session.chdir(ROOT / "tests" / "example_plugin")
    session.run("pytest", *session.posargs)
    session.chdir(ROOT)
    session.run("payerpolicy", "plugins")
    session.run("payerpolicy", "compare", "examples/dc_visit.json")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """Install payerpolicy and print the bundled example's claim lines for every installed payer."""
    session.install(".")
    session.run("payerpolicy", "compare", "examples/dc_visit.json", *session.posargs)


@nox.session(python="3.11", default=False)
def bench(session: nox.Session) -> None:
    """Time the NCCI tables at full size, evaluations, cold start and batch runs (prints the tables)."""
    session.install(".[parquet,dask]")
    session.run("python", "benchmarks/bench_ncci.py")
    session.run("python", "benchmarks/bench_batch.py", *session.posargs)
