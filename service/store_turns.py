"""How many of a worker's request threads may wait on the store at once, so that checks always find one.

A check never waits on the store (its key is looked up in a thread of its own, service.auth),
but a report does by its nature: it writes its label, and on SQLite a write that keeps finding
the file locked gives up only after 10 s. With every thread of a worker in such a wait, checks
queued behind them: in a probe (2026-11-28) four reports against a locked file held all four
threads of a server for 10-58 s and checks timed out at 20 s.

So a request that writes to the store takes a turn first (:meth:`StoreTurns.turn`). A worker has
half its threads' worth of turns (at least one). A request that finds every turn taken waits for
one while the holders are quick (the store answers in milliseconds), and gives up (the caller
answers "please retry") as soon as every holder has held its turn for :data:`SLOW_AFTER_SECONDS`:
then they wait on the store, and so would it. While the check log's writer finds the store
unreachable, a request takes a free turn or none.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from store import StoreBusyError

#: A turn held this long means its holder is waiting on the store, not using it.
SLOW_AFTER_SECONDS = 1.0
#: The longest a request waits for a turn while the holders are quick.
MAX_WAIT_SECONDS = 3.0


class NoTurnError(StoreBusyError):
    """Raised when every turn at the store is held by requests waiting on a slow or locked store."""


class StoreTurns:
    """A worker's turns at the store for request threads."""

    def __init__(self, turns: int) -> None:
        self.turns = max(1, turns)
        self._cond = threading.Condition()
        self._held: list[float] = []  # when each held turn was taken (monotonic)

    @contextmanager
    def turn(self, *, wait: bool = True) -> Iterator[None]:
        """Hold a turn for the block; :class:`NoTurnError` when none comes (``wait=False``: unless
        one is free now)."""
        taken = self._take(MAX_WAIT_SECONDS if wait else 0.0)
        if taken is None:
            raise NoTurnError("every turn at the store is held by requests waiting on it")
        try:
            yield
        finally:
            with self._cond:
                self._held.remove(taken)
                self._cond.notify()

    def _take(self, wait: float) -> float | None:
        deadline = time.monotonic() + wait
        with self._cond:
            while len(self._held) >= self.turns:
                now = time.monotonic()
                # Every holder slow: they wait on the store. The newest holder decides, since
                # one turn stuck while the others come and go quickly leaves room.
                slow_at = max(self._held) + SLOW_AFTER_SECONDS
                if now >= deadline or now >= slow_at:
                    return None
                self._cond.wait(min(deadline, slow_at) - now)
            taken = time.monotonic()
            self._held.append(taken)
            return taken


def turns_for(threads: int, worker_class: str) -> int:
    """Half the threads a worker serves requests with (``gthread``), at least one."""
    return max(1, threads // 2) if worker_class == "gthread" else 1


__all__ = ["MAX_WAIT_SECONDS", "NoTurnError", "SLOW_AFTER_SECONDS", "StoreTurns", "turns_for"]
