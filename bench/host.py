"""The benches' yardstick of the host's speed (imports nothing heavy, so any bench can quote it)."""
from __future__ import annotations

import time


def machine_reference_ms() -> float:
    """Best of 5 runs of ``sum(range(1_000_000))``: how fast this machine runs Python right now.

    Shared machines vary by 2x from hour to hour; quoting this beside the figures lets two
    runs be compared (the ratios within one run do not depend on it).
    """
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        sum(range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
