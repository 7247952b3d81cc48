"""The collector's settings of a serving worker (and of the benchmarks' in-process baselines, to be fair).

What exists once the app serves (LiteLLM's modules and tables: ~400,000 objects) lives as long as the
process: frozen out of the collector's reach, a full collection takes microseconds instead of ~220 ms
of CPU, which busy workers paid every few thousand requests (bench/README.md). And a 1 MB Claude Code
turn makes tens of thousands of objects that die with it: collected every 700 allocations, as Python's
default has it, they were walked over and over and promoted to the oldest generation, where the
history caches make every pass long; every ``YOUNG_ALLOCATIONS`` they mostly die first.
"""
from __future__ import annotations

import gc

YOUNG_ALLOCATIONS = 10_000   # allocations between two collections of the youngest objects (Python: 700)


def settle() -> None:
    """Freeze what exists now and collect the youngest generation every YOUNG_ALLOCATIONS allocations
    (the older generations keep Python's thresholds)."""
    gc.freeze()
    gc.set_threshold(YOUNG_ALLOCATIONS, *gc.get_threshold()[1:])
