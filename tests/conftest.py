"""Collection settings for the main test suite."""

# tests/example_plugin is its own distribution with its own tests: they need the plugin installed
# and run in `nox -s example_plugin` (see noxfile.py), not in the main suite.
collect_ignore = ["example_plugin"]
