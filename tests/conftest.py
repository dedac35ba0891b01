"""Collection settings for the main test suite."""

from __future__ import annotations

import os
import shutil
import tempfile

# tests/example_plugin is its own distribution with its own tests: they need the plugin installed
# and run in `nox -s example_plugin` (see noxfile.py), not in the main suite.
collect_ignore = ["example_plugin"]

# The parsed-TOML cache (payerpolicy.evaluation.tomlcache) of the test run lives and dies with it
# (the commands the tests start inherit it); the user's own cache is left alone.
_CACHE = None
if "PAYERPOLICY_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="payerpolicy-test-cache-")
    os.environ["PAYERPOLICY_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config: object) -> None:
    """Remove the test run's cache directory."""
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)
