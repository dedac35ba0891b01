"""Builtin payer plugins. Each module registers one payer through the ``payerpolicy`` entry points."""
