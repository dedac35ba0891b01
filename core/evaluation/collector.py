"""Pausing Python's cyclic garbage collector around work that allocates many objects it need not scan."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector in the block; its state is put back afterwards.

    For work that allocates many objects and frees almost none (loading the engine, parsing an
    NCCI table): the collections they would trigger cost more than the work. Nesting is safe: an
    inner block leaves the collector as the outer one set it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
