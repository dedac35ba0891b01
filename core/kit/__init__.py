"""The plugin kit: what a plugin author uses — the case-file test kit (``testing``) and ``new-plugin`` (``scaffold``).

Layer: imports the evaluation core and the package facade; the CLI uses it; nothing in the core
imports it.
"""
