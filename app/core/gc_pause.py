"""Pause the cyclic garbage collector around bulk work.

Parsing and storing 500,000 records creates millions of objects that all stay alive until the end of the
request. Each generation-2 collection rescans all of them, so the collector's cost grows with the square
of the batch (measured: 3.9 s instead of 0.4 s to validate 100,000 records). The bulk path creates no
reference cycles, so nothing is lost by pausing the collector while it runs.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector until the last concurrent holder leaves (re-entrant across threads)."""
    global _holders
    with _lock:
        _holders += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.enable()
